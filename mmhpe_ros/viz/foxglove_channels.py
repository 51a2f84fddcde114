"""What `mmhpe-ros run --foxglove` serves, without rclpy: Foxglove channels of ROS 2 messages in CDR.

Each served topic becomes a Foxglove WebSocket channel with message encoding ``cdr`` and a
``ros2msg`` schema (the message definition with those it uses, as in rosbag2 MCAP files), so the
bytes received over DDS are forwarded unchanged: the Foxglove app decodes them as it does from
foxglove_bridge on a ROS install, with the same topic names and types, so one Foxglove layout
serves both. Foxglove draws these types natively: MarkerArray and PoseArray in the 3D panel,
PointCloud2 coloured by a field, Float64 in the Plot panel, DiagnosticArray in the Diagnostics
panel. ``/tf_static`` (tf2_msgs/TFMessage, built here) places each sensor frame in the skeleton's
frame, from a calibration file or at its origin (as in the bundled data).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from mmhpe_ros.modalities import FRAME_IDS
from mmhpe_ros.viz.frames import FrameTransforms
from mmhpe_ros.viz.topics import DIAGNOSTICS, RECORDED_TOPICS, ViewedTopic

DEFAULT_HOST = "127.0.0.1"  # this machine only; 0.0.0.0 serves every interface
DEFAULT_PORT = 8765  # the Foxglove app's default connection
MESSAGE_ENCODING = "cdr"
SCHEMA_ENCODING = "ros2msg"
TF_STATIC = ViewedTopic("/tf_static", "tf2_msgs/msg/TFMessage")
SERVED_TOPICS: tuple[ViewedTopic, ...] = RECORDED_TOPICS + (DIAGNOSTICS,)
SENSOR_FRAMES: tuple[str, ...] = tuple(FRAME_IDS[m] for m in ("rgb", "lidar", "mmwave", "wifi"))


@dataclass(frozen=True)
class ChannelSpec:
    """One Foxglove channel: its topic (absolute), schema name and ``ros2msg`` schema text."""

    topic: str
    schema_name: str
    schema: str


def _typestore() -> Any:
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


def channel_spec(topic: str, msgtype: str, typestore: Any = None) -> ChannelSpec:
    """The channel of ``topic`` (made absolute) carrying ``msgtype`` (``pkg/msg/Name``) as CDR."""
    text, _ = (typestore or _typestore()).generate_msgdef(msgtype, ros_version=2)
    return ChannelSpec("/" + topic.lstrip("/"), msgtype, text)


def parse_address(text: str) -> tuple[str, int]:
    """``"PORT"`` or ``"HOST:PORT"`` -> (host, port); port 0 picks a free one. ValueError if malformed."""
    host, _, port = str(text).rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"expected PORT or HOST:PORT, got {text!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"port must be 0..65535, got {number}")
    return host.strip("[]") or DEFAULT_HOST, number


def static_transforms(transforms: FrameTransforms, parent: str, children: Iterable[str],
                      typestore: Any = None) -> bytes:
    """tf2_msgs/TFMessage (CDR bytes) with the pose of each of ``children`` in ``parent`` (stamp 0,
    as static transforms are stamped)."""
    from scipy.spatial.transform import Rotation

    store = typestore or _typestore()
    types = {name: store.types[f"{package}/msg/{name}"] for package, name in (
        ("std_msgs", "Header"), ("builtin_interfaces", "Time"), ("geometry_msgs", "TransformStamped"),
        ("geometry_msgs", "Transform"), ("geometry_msgs", "Vector3"), ("geometry_msgs", "Quaternion"),
        ("tf2_msgs", "TFMessage"))}
    stamped = []
    for child in children:
        if child == parent:
            continue
        pose = transforms.between(parent, child)
        x, y, z, w = Rotation.from_matrix(pose[:3, :3]).as_quat()
        stamped.append(types["TransformStamped"](
            header=types["Header"](stamp=types["Time"](sec=0, nanosec=0), frame_id=parent),
            child_frame_id=child,
            transform=types["Transform"](
                translation=types["Vector3"](x=float(pose[0, 3]), y=float(pose[1, 3]), z=float(pose[2, 3])),
                rotation=types["Quaternion"](x=float(x), y=float(y), z=float(z), w=float(w)))))
    message = types["TFMessage"](transforms=stamped)
    return bytes(store.serialize_cdr(message, TF_STATIC.msgtype))

