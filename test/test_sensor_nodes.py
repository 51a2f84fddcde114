"""Sensor nodes over real DDS: a raw message in, the model's features out; bad input is counted."""
from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from rosgraph_msgs.msg import Clock as ClockMsg  # noqa: E402
from sensor_msgs.msg import Image, PointCloud2  # noqa: E402

from ros_domain import ros_domain  # noqa: E402
from mmhpe_ros.data.bag_format import encode_points, frame_messages  # noqa: E402
from mmhpe_ros.data.frames import Frame, SequenceKey  # noqa: E402
from mmhpe_ros.modalities import SENSOR_TOPICS, TOPICS  # noqa: E402
from mmhpe_ros.model.config import ModelConfig  # noqa: E402
from mmhpe_ros.model.inputs import prepare_modality  # noqa: E402
from mmhpe_ros.nodes.camera import CameraNode  # noqa: E402
from mmhpe_ros.nodes.lidar import LidarNode  # noqa: E402
from mmhpe_ros.nodes.mmwave import MmwaveNode  # noqa: E402
from mmhpe_ros.nodes.wifi import WifiNode  # noqa: E402
from mmhpe_ros.runtime import codecs  # noqa: E402
from mmhpe_ros.runtime.features import feature_topic, read_features  # noqa: E402
from ros_domain import lease_domain  # noqa: E402

CONFIG = ModelConfig(feature_dim=8, hidden_dim=8, lidar_points=64, mmwave_points=16)
STAMP_NS = 7_000_000_000
TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> str:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from mmhpe_ros.model.checkpoint import save_model
    from mmhpe_ros.model.pose_model import PoseModel

    return str(save_model(tmp_path_factory.mktemp("model") / "m.safetensors", PoseModel(CONFIG)))


ROS_DOMAIN_ID = lease_domain()  # this file's own DDS domain: no cross-talk with other tests running at the same time


@pytest.fixture(scope="module")
def ros():
    with ros_domain(ROS_DOMAIN_ID):
        executor = SingleThreadedExecutor()
        helper = rclpy.create_node("sensor_nodes_test")
        executor.add_node(helper)
        yield helper, executor
        executor.shutdown()
        helper.destroy_node()


@pytest.fixture
def start(ros, model_path):
    """start(NodeClass, **parameters) -> node, spun by the test's executor; destroyed afterwards."""
    helper, executor = ros
    nodes = []

    def _start(node_class, **parameters):
        overrides = [Parameter("model_path", value=model_path)]
        overrides += [Parameter(name, value=value) for name, value in parameters.items()]
        node = node_class(parameter_overrides=overrides)
        executor.add_node(node)
        nodes.append(node)
        return node

    yield _start
    for node in nodes:
        executor.remove_node(node)
        node.destroy_node()


def _spin_until(executor, condition, publish=lambda: None) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition() and time.monotonic() < deadline:
        publish()
        executor.spin_once(timeout_sec=0.05)
    assert condition(), "timed out waiting over DDS"


def _types() -> codecs.MessageTypes:
    return codecs.rclpy_types()


@pytest.mark.parametrize("node_class, modality, columns", [(LidarNode, "lidar", 3), (MmwaveNode, "mmwave", 5)])
def test_cloud_node_publishes_the_models_features_and_counts_bad_clouds(ros, start, node_class, modality, columns):
    helper, executor = ros
    node = start(node_class)
    received = []
    helper.create_subscription(PointCloud2, feature_topic(modality), received.append, 10)
    publisher = helper.create_publisher(PointCloud2, SENSOR_TOPICS[modality], qos_profile_sensor_data)
    types = _types()
    raw = np.random.default_rng(0).normal(size=(200, columns))
    raw[7, 0] = np.nan
    good = encode_points(types, codecs.make_header(types, STAMP_NS, "sensor"), modality, raw)
    bad = encode_points(types, codecs.make_header(types, STAMP_NS, "sensor"), modality, raw)
    bad.row_step += 1  # data length no longer matches

    _spin_until(executor, lambda: received and node.inputs[SENSOR_TOPICS[modality]].dropped,
                lambda: (publisher.publish(bad), publisher.publish(good)))
    msg = received[0]
    assert codecs.header_stamp_ns(msg) == STAMP_NS and msg.header.frame_id == "sensor"
    expected, _ = prepare_modality(modality, raw, CONFIG)
    got = read_features(modality, msg, CONFIG)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])
    counters = node.inputs[SENSOR_TOPICS[modality]]
    assert counters.non_finite_points >= 1 and "row_step" in counters.last_error


def _feed_csi_packets(ros, node, seed: int, packets: int = 10) -> tuple[np.ndarray, list]:
    """Publish the first ``packets`` CSI packets of one random frame to ``node``, one at a time (best
    effort may drop a burst); returns (the frame's CSI, the list its features arrive in)."""
    helper, executor = ros
    received = []
    helper.create_subscription(Image, feature_topic("wifi"), received.append, 10)
    publisher = helper.create_publisher(Image, SENSOR_TOPICS["wifi"], qos_profile_sensor_data)
    _spin_until(executor, lambda: publisher.get_subscription_count() > 0)
    csi = np.random.default_rng(seed).normal(size=(2, 3, 114, 10))
    frame = Frame(SequenceKey("E01", "S01", "A01"), 0, np.zeros((17, 3)), {"wifi": csi})
    messages = [msg for stream, _, msg in frame_messages(_types(), frame, STAMP_NS, ["wifi"])
                if stream.msgtype.endswith("Image")]
    monitor = node.inputs[SENSOR_TOPICS["wifi"]].monitor
    for msg in messages[:packets]:
        counted = monitor.count
        _spin_until(executor, lambda: monitor.count > counted, lambda: publisher.publish(msg))
    return csi, received


def test_wifi_node_assembles_packets_into_one_window(ros, start):
    csi, received = _feed_csi_packets(ros, start(WifiNode), seed=1)
    _spin_until(ros[1], lambda: received)
    assert codecs.header_stamp_ns(received[0]) == STAMP_NS
    np.testing.assert_array_equal(read_features("wifi", received[0], CONFIG)["wifi"],
                                  prepare_modality("wifi", csi, CONFIG)[0]["wifi"])


def test_wifi_node_flushes_an_unfinished_window_while_sim_time_stands_still(ros, start):
    """7 of 10 packets, then silence, on sim time with no /clock: the window still goes out."""
    node = start(WifiNode, use_sim_time=True, window_timeout_s=0.2)
    _, received = _feed_csi_packets(ros, node, seed=2, packets=7)
    assert not received and node.get_clock().now().nanoseconds == 0  # sim time, never advanced
    _spin_until(ros[1], lambda: received)
    window = read_features("wifi", received[0], CONFIG)["wifi"]
    assert codecs.header_stamp_ns(received[0]) == STAMP_NS and window.shape == (2, 3, 114, 10)
    assert node.processor.assembler.counters.incomplete == 1


def test_camera_node_publishes_keypoints_and_diagnostics_under_sim_time(ros, start):
    helper, executor = ros
    node = start(CameraNode, use_sim_time=True)
    received, diagnostics = [], []
    helper.create_subscription(PointCloud2, feature_topic("rgb"), received.append, 10)
    helper.create_subscription(DiagnosticArray, TOPICS.diagnostics, diagnostics.append, 10)
    publisher = helper.create_publisher(PointCloud2, TOPICS.camera_keypoints, qos_profile_sensor_data)
    clock = helper.create_publisher(ClockMsg, "/clock", 10)
    types = _types()
    keypoints = np.random.default_rng(2).uniform(0, 480, size=(17, 2))
    msg = encode_points(types, codecs.make_header(types, STAMP_NS, "camera"), "rgb", keypoints)
    sim_now = ClockMsg(clock=codecs.ns_to_stamp(types, STAMP_NS + 200_000_000))

    def ours(array):
        return [s for s in array.status if s.name.startswith(node.get_name())]

    _spin_until(executor, lambda: received and any(ours(d) for d in diagnostics),
                lambda: (clock.publish(sim_now), publisher.publish(msg)))
    np.testing.assert_array_equal(read_features("rgb", received[0], CONFIG)["rgb"],
                                  prepare_modality("rgb", keypoints, CONFIG)[0]["rgb"])
    status = next(s for d in diagnostics for s in ours(d))
    values = {kv.key: kv.value for kv in status.values}
    assert {"rate_hz", "age_s", "dropped", "published"} <= set(values)
    assert 0.0 <= float(values["age_s"]) < 1.0  # age in simulated time: /clock is 0.2 s after the stamp


def test_a_model_without_the_modality_is_refused(ros, tmp_path):
    from mmhpe_ros.model.checkpoint import save_model
    from mmhpe_ros.model.pose_model import PoseModel

    path = save_model(tmp_path / "lidar_only.safetensors",
                      PoseModel(ModelConfig(modalities=("lidar",), feature_dim=8, hidden_dim=8)))
    with pytest.raises(ValueError, match="fuses \\['lidar'\\], not wifi"):
        WifiNode(parameter_overrides=[Parameter("model_path", value=str(path))])


NODES = {"camera_node": CameraNode, "lidar_node": LidarNode, "mmwave_node": MmwaveNode, "wifi_node": WifiNode}


@pytest.mark.parametrize("name", sorted(NODES))
def test_nodes_start_from_config_fusion_yaml_and_declare_every_parameter_it_sets(start, name):
    from mmhpe_ros.resources import SOURCE_ROOT
    from mmhpe_ros.runtime.params_file import load_parameter_file, parameters_for

    parameters = parameters_for(load_parameter_file(SOURCE_ROOT / "config" / "fusion.yaml"), name)
    assert parameters, f"config/fusion.yaml has no {name} section"
    parameters.pop("model_path")  # the shipped model may not exist yet; the fixture's model is used
    node = start(NODES[name], **parameters)
    assert node.get_name() == name
    for parameter, value in parameters.items():
        assert node.has_parameter(parameter), f"{name} does not declare {parameter}"
        assert node.get_parameter(parameter).value == value
        assert node.describe_parameter(parameter).description, f"{name}.{parameter} has no description"


def test_camera_node_without_the_image_path_still_takes_keypoints(start):
    node = start(CameraNode, use_images=True)
    topics = {subscription.topic_name.lstrip("/") for subscription in node.subscriptions}
    assert TOPICS.camera_keypoints in topics
    if node._detector is None:  # no mediapipe / image modules here: reported, not fatal
        assert TOPICS.camera_image not in topics


def test_camera_node_warns_when_images_come_without_use_images(ros, start, monkeypatch):
    import mmhpe_ros.nodes.camera as camera

    monkeypatch.setattr(camera, "UNUSED_IMAGES_CHECK_S", 0.1)
    helper, executor = ros
    node = start(CameraNode)  # use_images: false
    assert not node.images_ignored
    publisher = helper.create_publisher(Image, TOPICS.camera_image, qos_profile_sensor_data)
    _spin_until(executor, lambda: node.images_ignored)
    helper.destroy_publisher(publisher)
    quiet = start(CameraNode, use_images=False)  # nobody publishes images now: no warning
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    assert not quiet.images_ignored


def test_a_replayed_bag_drives_all_four_nodes_frame_for_frame(ros, start, tmp_path):
    """replayer (looping) -> camera, lidar, mmwave, wifi nodes over DDS: every frame's features at
    its stamp, on each pass (stamps jump back at the loop)."""
    from mmhpe_ros.data.bag_format import FIRST_SEQUENCE_NS, frame_stamp_ns
    from mmhpe_ros.data.bags import convert
    from mmhpe_ros.nodes.replayer import Replayer

    helper, executor = ros
    rng = np.random.default_rng(8)
    key = SequenceKey("E01", "S02", "A03")
    frames = [Frame(key, i, rng.normal(size=(17, 3)), {
        "rgb": rng.uniform(0, 480, size=(17, 2)), "lidar": rng.normal(size=(300, 3)),
        "mmwave": rng.normal(size=(20, 5)), "wifi": rng.normal(size=(2, 3, 114, 10)),
    }) for i in range(4)]
    (bag,) = convert(frames, tmp_path / "bags", progress=False)
    received: dict[str, list] = {m: [] for m in ("rgb", "lidar", "mmwave", "wifi")}
    for modality, cls in (("rgb", PointCloud2), ("lidar", PointCloud2), ("mmwave", PointCloud2), ("wifi", Image)):
        helper.create_subscription(cls, feature_topic(modality), received[modality].append, 50)
    nodes = [start(node_class) for node_class in (CameraNode, LidarNode, MmwaveNode, WifiNode)]
    replayer = Replayer(parameter_overrides=[Parameter("bag", value=str(bag)), Parameter("delay", value=0.5),
                                             Parameter("clock_frequency", value=0.0), Parameter("loop", value=True)])
    passes = 2
    executor.add_node(replayer)
    try:
        _spin_until(executor, lambda: all(len(r) >= passes * len(frames) for r in received.values()))
    finally:
        executor.remove_node(replayer)
        replayer.destroy_node()
    # CSI packets are best-effort at 100 Hz: on a starved machine one may be lost, and the wifi
    # node then reports the window incomplete; only such windows may differ from the bag's.
    incomplete = nodes[-1].processor.assembler.counters.incomplete
    for modality, messages in received.items():
        assert [codecs.header_stamp_ns(m) for m in messages[:passes * len(frames)]] == [
            frame_stamp_ns(FIRST_SEQUENCE_NS, f.index) for f in frames] * passes, modality
        differing = 0
        for frame, msg in zip(frames * passes, messages):
            expected, _ = prepare_modality(modality, frame.data[modality], CONFIG)
            got = read_features(modality, msg, CONFIG)
            same = all(np.array_equal(got[name], expected[name]) for name in expected)
            if modality != "wifi":
                for name in expected:
                    np.testing.assert_array_equal(got[name], expected[name], err_msg=f"{modality} frame {frame.index}")
            differing += not same
        assert differing <= (incomplete if modality == "wifi" else 0), f"{modality}: {differing} frames differ"
    assert all(counters.dropped == 0 for node in nodes for counters in node.inputs.values())
    assert nodes[-1].processor.assembler.counters.resets >= passes - 1


def test_camera_node_image_path_uses_the_detector_and_intrinsics(ros, start, monkeypatch):
    """The image wiring with stand-ins for runtime.images / pose2d / intrinsics (mediapipe-free)."""
    import types as pytypes

    from sensor_msgs.msg import CameraInfo

    detected = np.column_stack([np.linspace(10, 300, 17), np.linspace(20, 200, 17), np.full(17, 0.8)])
    seen_info = []

    class Detector:
        def detect(self, rgb):
            return None if rgb.mean() > 0 else detected  # a white image: nobody in view

    def to_model_pixels(keypoints, camera_info, width, height):
        seen_info.append(camera_info)
        return keypoints * np.array([640 / width, 480 / height, 1.0])

    def image_to_rgb(msg):
        return np.full((msg.height, msg.width, 3), 255 if msg.encoding == "white" else 0, np.uint8)

    for name, attributes in (("images", {"image_to_rgb": image_to_rgb}),
                             ("pose2d", {"KeypointDetector": Detector}),
                             ("intrinsics", {"to_model_pixels": to_model_pixels})):
        monkeypatch.setitem(__import__("sys").modules, f"mmhpe_ros.runtime.{name}",
                            pytypes.SimpleNamespace(**attributes))
    helper, executor = ros
    node = start(CameraNode, use_images=True)
    received = []
    helper.create_subscription(PointCloud2, feature_topic("rgb"), received.append, 10)
    images = helper.create_publisher(Image, TOPICS.camera_image, qos_profile_sensor_data)
    infos = helper.create_publisher(CameraInfo, TOPICS.camera_info, qos_profile_sensor_data)
    types = _types()
    header = codecs.make_header(types, STAMP_NS, "camera")
    person = Image(header=header, height=240, width=320, encoding="rgb8", step=960, data=bytes(240 * 960))
    empty_room = Image(header=header, height=240, width=320, encoding="white", step=960, data=bytes(240 * 960))
    counters = node.inputs[TOPICS.camera_image]
    _spin_until(executor, lambda: received and counters.empty,
                lambda: (infos.publish(CameraInfo(header=header, width=320, height=240)),
                         images.publish(empty_room), images.publish(person)))
    expected = prepare_modality("rgb", detected[:, :2] * [2.0, 2.0], CONFIG)[0]["rgb"]
    np.testing.assert_array_equal(read_features("rgb", received[0], CONFIG)["rgb"], expected)
    np.testing.assert_allclose(codecs.read_points_array(received[0], ["score"])[:, 0], 0.8, rtol=1e-6)
    assert counters.dropped == 0 and any(info is not None for info in seen_info)


def test_setup_py_entry_points_name_these_nodes():
    import importlib
    import re

    from mmhpe_ros.resources import SOURCE_ROOT

    entry_points = dict(re.findall(r'"(\w+_node)": "([\w.]+:main)"', (SOURCE_ROOT / "setup.py").read_text()))
    for executable, node_class in (("camera_node", CameraNode), ("lidar_node", LidarNode),
                                   ("mmwave_node", MmwaveNode), ("wifi_node", WifiNode)):
        module, _, function = entry_points[executable].partition(":")
        assert importlib.import_module(module).__dict__[function].__module__ == node_class.__module__
