"""Sensor nodes over real DDS: raw messages in the sensors' frames in, observations in the base
frame out (moved by the extrinsics the node got as calibration parameters); nobody found -> an
empty message; no transform -> nothing published and an ERROR diagnostic naming the frames; bad
input is counted."""
from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed")
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from rosgraph_msgs.msg import Clock as ClockMsg  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from ros_domain import lease_domain, ros_domain  # noqa: E402
from mmhpe_ros.data.bag_format import encode_points, frame_messages  # noqa: E402
from mmhpe_ros.data.frames import Frame, SequenceKey  # noqa: E402
from mmhpe_ros.modalities import SENSOR_TOPICS, TOPICS  # noqa: E402
from mmhpe_ros.model.config import ModelConfig  # noqa: E402
from mmhpe_ros.model.inputs import prepare_csi  # noqa: E402
from mmhpe_ros.nodes.camera import CameraNode  # noqa: E402
from mmhpe_ros.nodes.lidar import LidarNode  # noqa: E402
from mmhpe_ros.nodes.mmwave import MmwaveNode  # noqa: E402
from mmhpe_ros.nodes.wifi import WifiNode  # noqa: E402
from mmhpe_ros.runtime import codecs  # noqa: E402
from mmhpe_ros.runtime.features import feature_topic, features_present, read_features  # noqa: E402

from hand_geometry import (  # noqa: E402
    BASE, CAMERA_MOUNT, LIDAR_MOUNT, RADAR_MOUNT, calibration_parameters, floor, intrinsics_parameters,
    nearest_distance, person, pinhole_rays, rpy_matrix, to_sensor,
)

CONFIG = ModelConfig(feature_dim=8, hidden_dim=8, lidar_points=64, mmwave_points=16)
STAMP_NS = 7_000_000_000
TIMEOUT_S = 5.0
FX, FY, CX, CY = 500.0, 520.0, 320.0, 240.0
CALIBRATION = {**calibration_parameters(lidar=LIDAR_MOUNT, radar=RADAR_MOUNT, camera_optical=CAMERA_MOUNT),
               **intrinsics_parameters("camera_optical", 640, 480, FX, FY, CX, CY)}


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
    """start(NodeClass, **parameters) -> node with the rig's calibration (unless calibration=False),
    spun by the test's executor; destroyed afterwards."""
    helper, executor = ros
    nodes = []

    def _start(node_class, calibration=True, **parameters):
        values = {"model_path": model_path, **(CALIBRATION if calibration else {}), **parameters}
        node = node_class(parameter_overrides=[Parameter(name, value=value) for name, value in values.items()])
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


def _spin_for(executor, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)


def _types() -> codecs.MessageTypes:
    return codecs.rclpy_types()


def _cloud(modality: str, points: np.ndarray, frame_id: str, stamp: int = STAMP_NS):
    types = _types()
    return encode_points(types, codecs.make_header(types, stamp, frame_id), modality, points)


def test_lidar_node_moves_the_person_it_finds_into_the_base_frame_and_counts_bad_clouds(ros, start):
    """A person-shaped cluster placed in the LiDAR's frame; extrinsics given as parameters."""
    helper, executor = ros
    node = start(LidarNode)
    received = []
    helper.create_subscription(PointCloud2, feature_topic("lidar"), received.append, 10)
    publisher = helper.create_publisher(PointCloud2, SENSOR_TOPICS["lidar"], qos_profile_sensor_data)
    rng = np.random.default_rng(0)
    body = person(3.0, -1.0, rng)
    scan = to_sensor(np.vstack([body, floor(rng)]), LIDAR_MOUNT)
    scan[7] = np.nan
    good = _cloud("lidar", scan, "lidar")
    bad = _cloud("lidar", scan, "lidar")
    bad.row_step += 1  # data length no longer matches
    counters = node.inputs[SENSOR_TOPICS["lidar"]]
    _spin_until(executor, lambda: received and counters.dropped, lambda: (publisher.publish(bad), publisher.publish(good)))
    msg = received[0]
    assert codecs.header_stamp_ns(msg) == STAMP_NS and msg.header.frame_id == BASE
    points = read_features("lidar", msg, CONFIG)["lidar_points"]
    assert nearest_distance(points, body).max() < 1e-4  # the person's own points, in the base frame
    assert np.hypot(*(np.median(points[:, :2], axis=0) - [3.0, -1.0])) < 0.1
    assert counters.non_finite_points >= 1 and "row_step" in counters.last_error and counters.empty == 0


def test_mmwave_node_publishes_the_radar_points_in_the_base_frame(ros, start):
    helper, executor = ros
    start(MmwaveNode)
    received = []
    helper.create_subscription(PointCloud2, feature_topic("mmwave"), received.append, 10)
    publisher = helper.create_publisher(PointCloud2, SENSOR_TOPICS["mmwave"], qos_profile_sensor_data)
    rng = np.random.default_rng(1)
    base = np.column_stack([rng.uniform(1, 5, 30), rng.uniform(-2, 2, 30), rng.uniform(0, 2, 30),
                            rng.normal(size=30), rng.uniform(1, 9, 30)])
    msg = _cloud("mmwave", to_sensor(base, RADAR_MOUNT), "radar")
    _spin_until(executor, lambda: received, lambda: publisher.publish(msg))
    got = read_features("mmwave", received[0], CONFIG)
    assert received[0].header.frame_id == BASE and got["mmwave_valid"].sum() == 30
    np.testing.assert_allclose(got["mmwave_points"][:30], base, atol=1e-4)


def test_lidar_node_removes_the_background_of_its_background_file(ros, start, tmp_path):
    """A wardrobe-sized box is person-shaped: without a background model the node reports it; with
    the empty room's background (base frame) it reports nobody, and a person in front of the box."""
    from mmhpe_ros.geometry.background import BackgroundModel

    helper, executor = ros
    rng = np.random.default_rng(12)
    box = np.column_stack([np.full(1500, 4.5), rng.uniform(-2.4, -1.8, 1500), rng.uniform(0.15, 1.8, 1500)])
    room = np.vstack([floor(rng), box])
    path = BackgroundModel.build([room[room[:, 2] > 0.1]], voxel=0.1).save(tmp_path / "background.npz")
    plain, cleaned = start(LidarNode, output_topic="plain"), start(LidarNode, background_file=str(path))
    received: dict[str, list] = {"plain": [], feature_topic("lidar"): []}
    for topic, messages in received.items():
        helper.create_subscription(PointCloud2, topic, messages.append, 10)
    publisher = helper.create_publisher(PointCloud2, SENSOR_TOPICS["lidar"], qos_profile_sensor_data)
    empty_room = _cloud("lidar", to_sensor(room, LIDAR_MOUNT), "lidar")
    _spin_until(executor, lambda: all(received.values()), lambda: publisher.publish(empty_room))
    assert features_present(received["plain"][0])  # the box
    assert not features_present(received[feature_topic("lidar")][0])
    body = person(3.0, 0.5, rng)
    with_person = _cloud("lidar", to_sensor(np.vstack([room, body]), LIDAR_MOUNT), "lidar", STAMP_NS + 100_000_000)
    found = received[feature_topic("lidar")]
    _spin_until(executor, lambda: any(features_present(m) for m in found), lambda: publisher.publish(with_person))
    points = read_features("lidar", next(m for m in found if features_present(m)), CONFIG)["lidar_points"]
    assert nearest_distance(points, body).max() < 1e-4
    assert plain.inputs[SENSOR_TOPICS["lidar"]].empty == 0 and cleaned.inputs[SENSOR_TOPICS["lidar"]].empty >= 1


def test_mmwave_node_reads_through_its_cloud_layout_and_merges_radar_frames(ros, start):
    """merge_frames 2, a driver with other axes (ours x = its y, ours y = -its x) and the opposite
    velocity sign: the second message's features are both clouds, in our axes, in the base frame."""
    helper, executor = ros
    node = start(MmwaveNode, merge_frames=2, axes="y -x z", velocity_scale=-1.0)
    received = []
    helper.create_subscription(PointCloud2, feature_topic("mmwave"), received.append, 10)
    publisher = helper.create_publisher(PointCloud2, SENSOR_TOPICS["mmwave"], qos_profile_sensor_data)
    rng = np.random.default_rng(11)
    clouds = []
    for _ in range(2):
        base = np.column_stack([rng.uniform(1, 5, 12), rng.uniform(-2, 2, 12), rng.uniform(0, 2, 12),
                                rng.normal(size=12), rng.uniform(1, 9, 12)])
        ours = to_sensor(base, RADAR_MOUNT)  # REP 103 radar frame
        driver = np.column_stack([-ours[:, 1], ours[:, 0], ours[:, 2], -ours[:, 3], ours[:, 4]])
        clouds.append((base, driver))
    monitor = node.inputs[SENSOR_TOPICS["mmwave"]].monitor
    _spin_until(executor, lambda: publisher.get_subscription_count() > 0)
    for k, (_, driver) in enumerate(clouds):
        msg = _cloud("mmwave", driver, "radar", STAMP_NS + k * 50_000_000)
        _spin_until(executor, lambda n=k + 1: monitor.count >= n, lambda m=msg: publisher.publish(m))
    _spin_until(executor, lambda: any(codecs.header_stamp_ns(m) == STAMP_NS + 50_000_000 for m in received))
    merged = next(m for m in received if codecs.header_stamp_ns(m) == STAMP_NS + 50_000_000)
    got = read_features("mmwave", merged, CONFIG)
    points = got["mmwave_points"][got["mmwave_valid"]]
    expected = np.vstack([base for base, _ in clouds])
    assert len(points) == 24
    np.testing.assert_allclose(points[np.lexsort(points.T)], expected[np.lexsort(expected.T)], atol=1e-4)


def _our_statuses(diagnostics: list, node) -> list:
    return [s for d in diagnostics for s in d.status if s.name.startswith(node.get_name() + ":")]


def test_a_frame_without_extrinsics_publishes_nothing_and_its_diagnostics_say_error_naming_it(ros, start):
    helper, executor = ros
    node = start(LidarNode)
    received, diagnostics = [], []
    helper.create_subscription(PointCloud2, feature_topic("lidar"), received.append, 10)
    helper.create_subscription(DiagnosticArray, TOPICS.diagnostics, diagnostics.append, 10)
    publisher = helper.create_publisher(PointCloud2, SENSOR_TOPICS["lidar"], qos_profile_sensor_data)
    rng = np.random.default_rng(2)
    scan = np.vstack([person(3.0, 0.0, rng), floor(rng)])
    counters = node.inputs[SENSOR_TOPICS["lidar"]]
    unknown = _cloud("lidar", scan, "velodyne")

    def error_reported():
        return any(s.level == DiagnosticStatus.ERROR for s in _our_statuses(diagnostics, node))

    _spin_until(executor, lambda: counters.dropped >= 2 and error_reported(), lambda: publisher.publish(unknown))
    _spin_for(executor, 0.2)
    assert received == [] and counters.published == 0
    status = next(s for s in _our_statuses(diagnostics, node) if s.level == DiagnosticStatus.ERROR)
    assert "'velodyne'" in status.message and "'base_link'" in status.message and "extrinsics.velodyne" in status.message
    # the frame known again (here: the calibrated one): published, the error gone
    known = _cloud("lidar", to_sensor(scan, LIDAR_MOUNT), "lidar")
    _spin_until(executor, lambda: received, lambda: publisher.publish(known))
    assert all(s.level != DiagnosticStatus.ERROR for s in node.statuses())


def test_a_node_without_any_calibration_refuses_sensor_frames(ros, start):
    helper, executor = ros
    node = start(MmwaveNode, calibration=False)
    publisher = helper.create_publisher(PointCloud2, SENSOR_TOPICS["mmwave"], qos_profile_sensor_data)
    counters = node.inputs[SENSOR_TOPICS["mmwave"]]
    msg = _cloud("mmwave", np.ones((5, 5)), "radar")
    _spin_until(executor, lambda: counters.dropped, lambda: publisher.publish(msg))
    (status,) = node.statuses()
    assert status.level == 2 and "no transform from frame 'radar' to 'base_link'" in status.message  # never identity
    assert counters.published == 0


def test_an_empty_scene_gives_an_empty_feature_message(ros, start):
    helper, executor = ros
    node = start(LidarNode)
    received = []
    helper.create_subscription(PointCloud2, feature_topic("lidar"), received.append, 10)
    publisher = helper.create_publisher(PointCloud2, SENSOR_TOPICS["lidar"], qos_profile_sensor_data)
    msg = _cloud("lidar", to_sensor(floor(np.random.default_rng(3)), LIDAR_MOUNT), "lidar")
    counters = node.inputs[SENSOR_TOPICS["lidar"]]
    _spin_until(executor, lambda: received, lambda: publisher.publish(msg))
    assert not features_present(received[0]) and received[0].header.frame_id == BASE
    assert codecs.header_stamp_ns(received[0]) == STAMP_NS
    assert counters.empty >= 1 and counters.published >= 1 and counters.dropped == 0
    assert not read_features("lidar", received[0], CONFIG)["lidar_points"].any()


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
    got = read_features("wifi", received[0], CONFIG)
    expected, _ = prepare_csi(csi, CONFIG)
    np.testing.assert_array_equal(got["wifi"], expected["wifi"])
    assert got["wifi_mask"].all()


def test_wifi_node_flushes_an_unfinished_window_while_sim_time_stands_still(ros, start):
    """7 of 10 packets, then silence, on sim time with no /clock: the window still goes out, the
    three missing packets masked."""
    node = start(WifiNode, use_sim_time=True, window_timeout_s=0.2)
    _, received = _feed_csi_packets(ros, node, seed=2, packets=7)
    assert not received and node.get_clock().now().nanoseconds == 0  # sim time, never advanced
    _spin_until(ros[1], lambda: received)
    got = read_features("wifi", received[0], CONFIG)
    assert codecs.header_stamp_ns(received[0]) == STAMP_NS and got["wifi"].shape == (2, 3, 114, 10)
    assert got["wifi_mask"].tolist() == [True] * 7 + [False] * 3
    assert node.processor.assembler.counters.incomplete == 1


def _expected_rays(uv: np.ndarray, fx=FX, fy=FY, cx=CX, cy=CY) -> np.ndarray:
    return pinhole_rays(uv, fx, fy, cx, cy) @ rpy_matrix(CAMERA_MOUNT[1]).T


def test_camera_node_publishes_rays_in_the_base_frame_and_diagnostics_under_sim_time(ros, start):
    helper, executor = ros
    node = start(CameraNode, use_sim_time=True)
    received, diagnostics = [], []
    helper.create_subscription(PointCloud2, feature_topic("rgb"), received.append, 10)
    helper.create_subscription(DiagnosticArray, TOPICS.diagnostics, diagnostics.append, 10)
    publisher = helper.create_publisher(PointCloud2, TOPICS.camera_keypoints, qos_profile_sensor_data)
    clock = helper.create_publisher(ClockMsg, "/clock", 10)
    types = _types()
    keypoints = np.random.default_rng(2).uniform(10, 470, size=(17, 2))
    msg = encode_points(types, codecs.make_header(types, STAMP_NS, "camera_optical"), "rgb", keypoints)
    sim_now = ClockMsg(clock=codecs.ns_to_stamp(types, STAMP_NS + 200_000_000))

    _spin_until(executor, lambda: received and _our_statuses(diagnostics, node),
                lambda: (clock.publish(sim_now), publisher.publish(msg)))
    assert received[0].header.frame_id == BASE
    got = read_features("rgb", received[0], CONFIG)
    np.testing.assert_allclose(got["rgb_rays"], _expected_rays(keypoints), atol=1e-6)
    np.testing.assert_allclose(got["rgb_origin"], CAMERA_MOUNT[0], atol=1e-6)
    status = _our_statuses(diagnostics, node)[0]
    values = {kv.key: kv.value for kv in status.values}
    assert {"rate_hz", "age_s", "dropped", "published", "empty"} <= set(values)
    assert 0.0 <= float(values["age_s"]) < 1.0  # age in simulated time: /clock is 0.2 s after the stamp


def test_camera_node_takes_its_intrinsics_from_camera_info(ros, start):
    """A 1280 x 960 CameraInfo of the calibrated 640 x 480 camera: keypoints in its pixels give the
    rays the same keypoints at half scale give with the calibration."""
    helper, executor = ros
    start(CameraNode)
    received = []
    helper.create_subscription(PointCloud2, feature_topic("rgb"), received.append, 10)
    keypoints_out = helper.create_publisher(PointCloud2, TOPICS.camera_keypoints, qos_profile_sensor_data)
    infos = helper.create_publisher(CameraInfo, TOPICS.camera_info, qos_profile_sensor_data)
    types = _types()
    header = codecs.make_header(types, STAMP_NS, "camera_optical")
    info = CameraInfo(header=header, width=1280, height=960, distortion_model="plumb_bob",
                      k=[2 * FX, 0.0, 2 * CX + 0.5, 0.0, 2 * FY, 2 * CY + 0.5, 0.0, 0.0, 1.0])
    keypoints = np.random.default_rng(4).uniform(10, 470, size=(17, 2))
    msg = encode_points(types, header, "rgb", 2 * keypoints + 0.5)
    _spin_until(executor, lambda: infos.get_subscription_count() and keypoints_out.get_subscription_count())
    infos.publish(info)
    _spin_for(executor, 0.2)  # the CameraInfo is in before the keypoints

    def with_info():
        return received and np.abs(read_features("rgb", received[-1], CONFIG)["rgb_rays"]
                                   - _expected_rays(keypoints)).max() < 1e-5

    _spin_until(executor, with_info, lambda: (infos.publish(info), keypoints_out.publish(msg)))


def test_transforms_come_from_tf_first_then_the_calibration(monkeypatch):
    """SensorTransforms with a stand-in tf2_ros (not on PyPI): a frame TF knows uses TF's transform
    (quaternion x, y, z, w), others the calibration, neither: MissingTransformError naming both."""
    import sys
    import types as pytypes

    from mmhpe_ros.geometry.calibration import MissingTransformError, calibration_from_parameters
    from mmhpe_ros.nodes.rig_parameters import SensorTransforms

    half = 0.6 / 2  # TF: 'velodyne' yawed 0.6 rad, 2 m up
    stamped = pytypes.SimpleNamespace(transform=pytypes.SimpleNamespace(
        translation=pytypes.SimpleNamespace(x=0.0, y=0.0, z=2.0),
        rotation=pytypes.SimpleNamespace(x=0.0, y=0.0, z=np.sin(half), w=np.cos(half))))
    lookups = []

    class Buffer:
        def lookup_transform(self, target, source, time):
            lookups.append((target, source))
            if source != "velodyne":
                raise LookupError(f"{source} unknown")  # as tf2's LookupException
            return stamped

    monkeypatch.setitem(sys.modules, "tf2_ros", pytypes.SimpleNamespace(
        Buffer=Buffer, TransformListener=lambda buffer, node: None))
    transforms = SensorTransforms(None, calibration_from_parameters(CALIBRATION))
    assert transforms.source == "TF"
    velodyne = transforms("velodyne", STAMP_NS)
    np.testing.assert_allclose(velodyne.rotation, rpy_matrix((0.0, 0.0, 0.6)), atol=1e-12)
    np.testing.assert_allclose(velodyne.translation, [0.0, 0.0, 2.0])
    np.testing.assert_allclose(transforms("lidar", STAMP_NS).rotation, rpy_matrix(LIDAR_MOUNT[1]), atol=1e-12)
    assert lookups == [(BASE, "velodyne"), (BASE, "lidar")]
    with pytest.raises(MissingTransformError, match="'ouster' to 'base_link' in TF or the calibration"):
        transforms("ouster", STAMP_NS)
    assert transforms(BASE, STAMP_NS).rotation.tolist() == np.eye(3).tolist()
    without = SensorTransforms(None, calibration_from_parameters(CALIBRATION), use_tf=False)
    assert without.source == "the calibration" and without.buffer is None


def test_an_unusable_camera_info_is_counted_and_the_previous_intrinsics_stay(start):
    node = start(CameraNode)
    (subscription,) = [s for s in node.subscriptions if s.topic_name.lstrip("/") == TOPICS.camera_info]
    good = CameraInfo(width=1280, height=960, k=[2 * FX, 0.0, 2 * CX + 0.5, 0.0, 2 * FY, 2 * CY + 0.5, 0.0, 0.0, 1.0])
    subscription.callback(good)
    for bad in (CameraInfo(width=640, height=480, k=[-1.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]),
                CameraInfo(width=0, height=0, k=[500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0])):
        subscription.callback(bad)  # must not raise (it would stop the node's executor)
    assert node.bad_camera_info == 2
    assert node.processor.camera_info.width == 1280 and node.processor.camera_info.k[0, 0] == 2 * FX


def test_a_model_without_the_modality_is_refused(ros, tmp_path):
    from mmhpe_ros.model.checkpoint import save_model
    from mmhpe_ros.model.pose_model import PoseModel

    path = save_model(tmp_path / "lidar_only.safetensors",
                      PoseModel(ModelConfig(modalities=("lidar",), feature_dim=8, hidden_dim=8)))
    with pytest.raises(ValueError, match="fuses \\['lidar'\\], not wifi"):
        WifiNode(parameter_overrides=[Parameter("model_path", value=str(path))])


def test_calibration_parameters_are_read_only_and_the_search_region_settable(start):
    node = start(LidarNode)
    for name in ("base_frame", "ground_height", "extrinsics.lidar.xyz", "extrinsics.radar.rpy"):
        assert node.describe_parameter(name).read_only, name
    result = node.set_parameters([Parameter("extrinsics.lidar.xyz", value=[0.0, 0.0, 0.0])])[0]
    assert not result.successful
    np.testing.assert_allclose(node.calibration.to_base("lidar").translation, LIDAR_MOUNT[0])
    rng = np.random.default_rng(13)
    scan = to_sensor(np.vstack([person(3.0, 0.5, rng), floor(rng)]), LIDAR_MOUNT)
    assert node.processor.process_points(scan, STAMP_NS, "lidar").present
    assert node.set_parameters([Parameter("search_x", value=[4.0, 10.0])])[0].successful
    assert not node.processor.process_points(scan, STAMP_NS, "lidar").present  # the person at x = 3 m is outside


NODES = {"camera_node": CameraNode, "lidar_node": LidarNode, "mmwave_node": MmwaveNode, "wifi_node": WifiNode}


@pytest.mark.parametrize("name", sorted(NODES))
def test_nodes_start_from_config_fusion_yaml_and_declare_every_parameter_it_sets(start, name):
    from mmhpe_ros.resources import SOURCE_ROOT
    from mmhpe_ros.runtime.params_file import load_parameter_file, parameters_for

    sections = load_parameter_file(SOURCE_ROOT / "config" / "fusion.yaml")
    own = sections.get(f"/**/{name}")
    assert own, f"config/fusion.yaml has no /**/{name} section"
    assert "/**" not in sections, "a /** section in the file would win over `-p` overrides (rcl merges them into it)"
    parameters = parameters_for(sections, name)
    parameters.pop("model_path")  # the shipped model may not exist yet; the fixture's model is used
    node = start(NODES[name], **parameters)
    assert node.get_name() == name
    declared = set(own) - {"model_path"}  # every parameter of its section
    for parameter in sorted(declared):
        value = parameters[parameter]
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
    _spin_for(executor, 0.5)
    assert not quiet.images_ignored


def test_a_replayed_bag_drives_all_four_nodes_frame_for_frame(ros, start, tmp_path):
    """replayer (looping) -> camera, lidar, mmwave, wifi nodes over DDS: every frame's features at
    its stamp, on each pass (stamps jump back at the loop), as stage 1 computes them offline."""
    from mmhpe_ros.data.bag_format import FIRST_SEQUENCE_NS, frame_stamp_ns
    from mmhpe_ros.data.bags import convert
    from mmhpe_ros.geometry.calibration import calibration_from_parameters
    from mmhpe_ros.model.observe import Rig, observe_modality
    from mmhpe_ros.nodes.replayer import Replayer

    helper, executor = ros
    rng = np.random.default_rng(8)
    key = SequenceKey("E01", "S02", "A03")
    frames = []
    for i in range(4):
        scan = np.vstack([person(2.0 + 0.2 * i, 0.5, rng, points=400), floor(rng, 500)])
        radar = np.column_stack([rng.uniform(1, 4, 20), rng.uniform(-1, 1, 20), rng.uniform(0, 2, 20),
                                 rng.normal(size=20), rng.uniform(1, 9, 20)])
        frames.append(Frame(key, i, rng.normal(size=(17, 3)), {
            "rgb": rng.uniform(0, 470, size=(17, 2)), "lidar": to_sensor(scan, LIDAR_MOUNT),
            "mmwave": to_sensor(radar, RADAR_MOUNT), "wifi": rng.normal(size=(2, 3, 114, 10)),
        }))
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
    rig = Rig(calibration_from_parameters(CALIBRATION))
    # CSI packets are best-effort at 100 Hz: on a starved machine one may be lost, and the wifi
    # node then reports the window incomplete; only such windows may differ from the bag's.
    incomplete = nodes[-1].processor.assembler.counters.incomplete
    frame_ids = {"rgb": "camera_optical", "lidar": "lidar", "mmwave": "radar", "wifi": "wifi"}
    for modality, messages in received.items():
        assert [codecs.header_stamp_ns(m) for m in messages[:passes * len(frames)]] == [
            frame_stamp_ns(FIRST_SEQUENCE_NS, f.index) for f in frames] * passes, modality
        differing = 0
        for frame, msg in zip(frames * passes, messages):
            raw = frame.data[modality]
            if modality == "rgb":
                raw = np.column_stack([raw, np.ones(17)])  # the bags carry score 1
            expected, present = observe_modality(modality, raw, rig, CONFIG, frame_ids[modality])
            assert present and features_present(msg), modality
            got = read_features(modality, msg, CONFIG)
            same = all(np.allclose(got[name], expected[name], atol=1e-6) for name in expected)
            if modality != "wifi":
                for name in expected:
                    np.testing.assert_allclose(got[name], expected[name], atol=1e-6,
                                               err_msg=f"{modality} frame {frame.index}")
            differing += not same
        assert differing <= (incomplete if modality == "wifi" else 0), f"{modality}: {differing} frames differ"
    assert all(counters.dropped == 0 for node in nodes for counters in node.inputs.values())
    assert nodes[-1].processor.assembler.counters.resets >= passes - 1


def test_camera_node_image_path_uses_the_detector_and_intrinsics(ros, start, monkeypatch):
    """The image wiring with stand-ins for runtime.images / pose2d (mediapipe-free): keypoints of a
    320 x 240 image of the calibrated 640 x 480 camera are scaled to its pixels (centres at integers)."""
    import types as pytypes

    detected = np.column_stack([np.linspace(10, 300, 17), np.linspace(20, 200, 17), np.full(17, 0.8)])

    class Detector:
        def detect(self, rgb):
            return None if rgb.mean() > 0 else detected.copy()  # a white image: nobody in view

    def image_to_rgb(msg):
        return np.full((msg.height, msg.width, 3), 255 if msg.encoding == "white" else 0, np.uint8)

    for name, attributes in (("images", {"image_to_rgb": image_to_rgb}), ("pose2d", {"KeypointDetector": Detector})):
        monkeypatch.setitem(__import__("sys").modules, f"mmhpe_ros.runtime.{name}", pytypes.SimpleNamespace(**attributes))
    helper, executor = ros
    node = start(CameraNode, use_images=True)
    received = []
    helper.create_subscription(PointCloud2, feature_topic("rgb"), received.append, 10)
    images = helper.create_publisher(Image, TOPICS.camera_image, qos_profile_sensor_data)
    types = _types()
    header = codecs.make_header(types, STAMP_NS, "camera_optical")
    person_image = Image(header=header, height=240, width=320, encoding="rgb8", step=960, data=bytes(240 * 960))
    empty_room = Image(header=header, height=240, width=320, encoding="white", step=960, data=bytes(240 * 960))
    counters = node.inputs[TOPICS.camera_image]
    sent = []  # one image at a time: the node keeps only the newest (IMAGE_QUEUE_DEPTH)
    _spin_until(executor, lambda: {features_present(m) for m in received} == {True, False},  # nobody: empty
                lambda: (sent.append(0), images.publish((empty_room, person_image)[len(sent) % 2])))
    assert counters.empty >= 1
    got = read_features("rgb", next(m for m in received if features_present(m)), CONFIG)
    np.testing.assert_allclose(got["rgb_rays"], _expected_rays((detected[:, :2] + 0.5) * 2.0 - 0.5), atol=1e-6)
    np.testing.assert_allclose(got["rgb_score"], 0.8, rtol=1e-6)
    assert counters.dropped == 0


def test_setup_py_entry_points_name_these_nodes():
    import importlib
    import re

    from mmhpe_ros.resources import SOURCE_ROOT

    entry_points = dict(re.findall(r'"(\w+_node)": "([\w.]+:main)"', (SOURCE_ROOT / "setup.py").read_text()))
    for executable, node_class in (("camera_node", CameraNode), ("lidar_node", LidarNode),
                                   ("mmwave_node", MmwaveNode), ("wifi_node", WifiNode)):
        module, _, function = entry_points[executable].partition(":")
        assert importlib.import_module(module).__dict__[function].__module__ == node_class.__module__
