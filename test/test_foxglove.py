"""`mmhpe-ros run --foxglove`: a WebSocket client speaking the Foxglove protocol subscribes and decodes
the skeleton, joints and clouds from the schemas the server advertises; the channel helpers alone."""
from __future__ import annotations

import asyncio
import json
import math
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from ros_domain import lease_domain
from mmhpe_ros.modalities import TOPICS
from mmhpe_ros.viz.foxglove_channels import SERVED_TOPICS, TF_STATIC, channel_spec, parse_address, static_transforms
from mmhpe_ros.viz.frames import FrameTransforms, pose_matrix

ROS_DOMAIN_ID = lease_domain()  # this file's own DDS domain
SUBPROTOCOLS = ["foxglove.sdk.v1", "foxglove.websocket.v1"]  # the SDK's, then the older name
MESSAGE_DATA = 0x01  # server -> client binary opcode: u8 op, u32 subscription id, u64 log time, payload


def _client_types(schema_name: str, schema_text: str):
    """A typestore that knows only what a client learns from the advertised ros2msg schema."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.EMPTY)
    store.register(get_types_from_msg(schema_text, schema_name))
    return store


def test_every_schema_is_a_complete_ros2msg_definition():
    from rosbags.typesys import Stores, get_typestore

    full = get_typestore(Stores.ROS2_KILTED)
    for topic in (*SERVED_TOPICS, TF_STATIC):
        spec = channel_spec(topic.name, topic.msgtype)
        assert spec.topic.startswith("/") and spec.schema_name == topic.msgtype
        client = _client_types(spec.schema_name, spec.schema)
        assert client.fielddefs[topic.msgtype] == full.fielddefs[topic.msgtype]


def test_static_transforms_place_each_sensor_frame():
    from rosbags.typesys import Stores, get_typestore

    transforms = FrameTransforms("base_link", {"lidar": pose_matrix([1.0, 2.0, 3.0], [0.0, 0.0, math.pi / 2])})
    with pytest.warns(UserWarning, match="radar"):
        data = static_transforms(transforms, "base_link", ["lidar", "radar", "base_link"])
    message = get_typestore(Stores.ROS2_KILTED).deserialize_cdr(data, TF_STATIC.msgtype)
    by_child = {t.child_frame_id: t for t in message.transforms}
    assert set(by_child) == {"lidar", "radar"} and {t.header.frame_id for t in message.transforms} == {"base_link"}
    lidar = by_child["lidar"].transform
    assert (lidar.translation.x, lidar.translation.y, lidar.translation.z) == (1.0, 2.0, 3.0)
    half = math.sqrt(0.5)  # yaw 90 deg: (0, 0, sin 45, cos 45)
    np.testing.assert_allclose([lidar.rotation.x, lidar.rotation.y, lidar.rotation.z, lidar.rotation.w],
                               [0.0, 0.0, half, half], atol=1e-12)
    radar = by_child["radar"].transform  # not calibrated: at the base frame's origin
    assert (radar.translation.x, radar.translation.y, radar.translation.z, radar.rotation.w) == (0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize("text, address", [("8765", ("127.0.0.1", 8765)), ("0.0.0.0:9000", ("0.0.0.0", 9000)),
                                           ("[::1]:0", ("::1", 0))])
def test_address(text, address):
    assert parse_address(text) == address


@pytest.mark.parametrize("text", ["abc", "host:", "70000", "-1"])
def test_a_bad_address_is_refused(text):
    with pytest.raises(ValueError):
        parse_address(text)


async def _receive(port: int, topics: list[str], timeout_s: float) -> dict[str, object]:
    """Connect, subscribe to ``topics`` and decode the first message of each with the advertised schema."""
    import websockets

    decoded: dict[str, object] = {}
    async with websockets.connect(f"ws://127.0.0.1:{port}", subprotocols=SUBPROTOCOLS, max_size=None) as ws:
        assert ws.subprotocol in SUBPROTOCOLS
        channels: dict[str, dict] = {}
        end = time.monotonic() + timeout_s
        while not set(topics) <= set(channels):
            message = await asyncio.wait_for(ws.recv(), max(end - time.monotonic(), 0.1))
            if isinstance(message, str) and json.loads(message)["op"] == "advertise":
                channels.update({c["topic"]: c for c in json.loads(message)["channels"]})
        for topic in topics:
            assert channels[topic]["encoding"] == "cdr" and channels[topic]["schemaEncoding"] == "ros2msg"
        subscriptions = {number: topic for number, topic in enumerate(topics, start=1)}
        await ws.send(json.dumps({"op": "subscribe", "subscriptions": [
            {"id": number, "channelId": channels[topic]["id"]} for number, topic in subscriptions.items()]}))
        while len(decoded) < len(topics):
            message = await asyncio.wait_for(ws.recv(), max(end - time.monotonic(), 0.1))
            if isinstance(message, bytes) and message[0] == MESSAGE_DATA:
                topic = subscriptions[struct.unpack_from("<I", message, 1)[0]]
                channel = channels[topic]
                types = _client_types(channel["schemaName"], channel["schema"])
                decoded.setdefault(topic, types.deserialize_cdr(message[13:], channel["schemaName"]))
    return decoded


def test_run_serves_the_skeleton_to_a_foxglove_client(tmp_path):
    pytest.importorskip("rclpy", reason="rclpy not installed")
    pytest.importorskip("websockets", reason="websockets (test requirement) not installed")
    from rosbags.typesys import Stores, get_typestore

    sphere_list = get_typestore(Stores.ROS2_KILTED).types["visualization_msgs/msg/Marker"].SPHERE_LIST
    env = dict(os.environ, ROS_DOMAIN_ID=ROS_DOMAIN_ID, OMP_NUM_THREADS="1")
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "mmhpe_ros", "run", "--rate", "2", "--loop",
                                    "--foxglove", "127.0.0.1:0"], env=env, stdout=subprocess.PIPE, stderr=stderr,
                                   text=True)
        try:
            end = time.monotonic() + 90.0
            while not (found := re.search(r"Foxglove: ws://127\.0\.0\.1:(\d+)", log.read_text())):
                assert process.poll() is None and time.monotonic() < end, log.read_text()[-2000:]
                time.sleep(0.2)
            topics = ["/" + TOPICS.markers, "/" + TOPICS.joints, "/" + TOPICS.lidar_points, TF_STATIC.name]
            received = asyncio.run(_receive(int(found.group(1)), topics, timeout_s=60.0))
            process.send_signal(signal.SIGINT)
            out, _ = process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == 0, log.read_text()[-2000:]
    assert out.strip().splitlines()[-1].startswith("fused "), out

    joints_marker = received["/" + TOPICS.markers].markers[0]
    assert joints_marker.type == sphere_list
    skeleton = np.array([[p.x, p.y, p.z] for p in joints_marker.points])
    assert skeleton.shape == (17, 3) and np.isfinite(skeleton).all() and np.ptp(skeleton[:, 2]) > 1.0  # a person
    joints = received["/" + TOPICS.joints]
    assert len(joints.poses) == 17 and all(np.isfinite([p.position.x, p.position.y, p.position.z]).all()
                                           for p in joints.poses)
    cloud = received["/" + TOPICS.lidar_points]
    assert cloud.width * cloud.height > 0 and {f.name for f in cloud.fields} >= {"x", "y", "z"}
    frames = {t.child_frame_id for t in received[TF_STATIC.name].transforms}
    assert {cloud.header.frame_id, joints_marker.header.frame_id} <= frames | {
        received[TF_STATIC.name].transforms[0].header.frame_id}  # Foxglove can place the cloud beside the skeleton


def test_a_port_in_use_is_a_clear_error():
    pytest.importorskip("rclpy", reason="rclpy not installed")
    from rclpy.parameter import Parameter

    from mmhpe_ros.nodes.foxglove_bridge import FoxgloveBridge
    from ros_domain import ros_domain

    with socket.socket() as taken, ros_domain(ROS_DOMAIN_ID):
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=f"cannot serve Foxglove on 127.0.0.1:{port}"):
            FoxgloveBridge(parameter_overrides=[Parameter("port", value=port)])
