"""The fusion node over real DDS, fed feature messages directly: markers, joints, bad input, diagnostics."""
from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed")
torch = pytest.importorskip("torch")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import PointCloud2  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from ros_domain import lease_domain, ros_domain  # noqa: E402
from mmhpe_ros.modalities import TOPICS  # noqa: E402
from mmhpe_ros.model.checkpoint import load_model, save_model  # noqa: E402
from mmhpe_ros.model.config import ModelConfig  # noqa: E402
from mmhpe_ros.model.inputs import prepare_inputs, prepare_modality  # noqa: E402
from mmhpe_ros.model.pose_model import PoseModel  # noqa: E402
from mmhpe_ros.nodes.fusion import FusionNode  # noqa: E402
from mmhpe_ros.resources import SOURCE_ROOT  # noqa: E402
from mmhpe_ros.runtime import codecs  # noqa: E402
from mmhpe_ros.runtime.features import feature_topic, features_message  # noqa: E402
from mmhpe_ros.runtime.markers import MODALITY_COUNT_COLORS  # noqa: E402
from mmhpe_ros.runtime.params_file import load_parameter_file, parameters_for  # noqa: E402
from mmhpe_ros.nodes.messages import FEATURES_QOS  # noqa: E402

ROS_DOMAIN_ID = lease_domain()
CONFIG = ModelConfig(feature_dim=8, hidden_dim=16, lidar_points=64, mmwave_points=16)
TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    return save_model(tmp_path_factory.mktemp("model") / "m.safetensors", PoseModel(CONFIG))


@pytest.fixture(scope="module")
def ros():
    with ros_domain(ROS_DOMAIN_ID):
        yield


@pytest.fixture
def graph(ros, model_path):
    executor = SingleThreadedExecutor()
    helper = rclpy.create_node("fusion_test_helper")
    executor.add_node(helper)
    nodes = []

    def start(**parameters):
        overrides = [Parameter("model_path", value=str(model_path))]
        overrides += [Parameter(k, value=v) for k, v in parameters.items()]
        node = FusionNode(parameter_overrides=overrides)
        executor.add_node(node)
        nodes.append(node)
        return node

    yield helper, executor, start
    for node in nodes:
        executor.remove_node(node)
        node.destroy_node()
    executor.remove_node(helper)
    helper.destroy_node()
    executor.shutdown()


def spin_until(executor, condition, publish=lambda: None) -> None:
    """Spin (publishing at most every 10 ms) until ``condition()``; a loop that publishes without
    pause would keep the GIL from the node's inference thread."""
    end = time.monotonic() + TIMEOUT_S
    while not condition() and time.monotonic() < end:
        publish()
        executor.spin_once(timeout_sec=0.05)
        time.sleep(0.01)
    assert condition(), "timed out waiting over DDS"


def raw_frame(rng) -> dict[str, np.ndarray]:
    return {"lidar": rng.normal(size=(200, 3)), "mmwave": rng.normal(size=(30, 5))}


def test_parameters_are_described_and_match_the_parameter_file(graph):
    _, _, start = graph
    node = start()
    defaults = parameters_for(load_parameter_file(SOURCE_ROOT / "config" / "fusion.yaml"), "fusion_node")
    for name, value in defaults.items():
        descriptor = node.describe_parameter(name)
        assert descriptor.description, f"{name} has no description"
        if name != "model_path":
            assert node.get_parameter(name).value == value, f"{name}: node default differs from config/fusion.yaml"


def test_two_modalities_fused_as_the_model_does_offline(graph, model_path):
    helper, executor, start = graph
    node = start(modalities=["lidar", "mmwave"], deadline=0.3, slop=0.01)
    markers, joints = [], []
    helper.create_subscription(MarkerArray, TOPICS.markers, markers.append, 10)
    helper.create_subscription(PoseArray, TOPICS.joints, joints.append, 10)
    publishers = {m: helper.create_publisher(PointCloud2, feature_topic(m), FEATURES_QOS)
                  for m in ("lidar", "mmwave")}
    types = codecs.rclpy_types()
    rng = np.random.default_rng(0)
    frames = [raw_frame(rng) for _ in range(3)]
    stamps = [5_000_000_000 + k * 100_000_000 for k in range(3)]
    spin_until(executor, lambda: all(p.get_subscription_count() for p in publishers.values()))
    for stamp, raw in zip(stamps, frames):
        for modality, publisher in publishers.items():
            arrays, _ = prepare_modality(modality, raw[modality], CONFIG)
            publisher.publish(features_message(types, codecs.make_header(types, stamp, "sensor"), modality, arrays))
            spin_until(executor, lambda m=modality, n=stamps.index(stamp) + 1: node.monitors[m].count >= n)
    node.worker.join_idle(5.0)
    spin_until(executor, lambda: len(joints) >= 3)

    model, _ = load_model(model_path)
    got = {codecs.header_stamp_ns(msg): codecs.read_pose_array(msg) for msg in joints}
    assert sorted(got) == stamps
    for stamp, raw in zip(stamps, frames):
        inputs = prepare_inputs(raw, CONFIG)
        with torch.inference_mode():
            expected = model({k: torch.from_numpy(v[None]) for k, v in inputs.items()})[0].numpy()
        np.testing.assert_allclose(got[stamp], expected, atol=1e-5)
    two = MODALITY_COUNT_COLORS[2]
    for array in markers:
        assert [m.header.frame_id for m in array.markers] == ["mmfi", "mmfi"]
        assert (array.markers[0].color.r, array.markers[0].color.g) == pytest.approx(two[:2])


def publish_lidar_mmwave_frame(helper, executor, node, stamp: int) -> None:
    """One lidar + mmwave feature set at ``stamp``; waits until it is fused."""
    types = codecs.rclpy_types()
    raw = raw_frame(np.random.default_rng(1))
    publishers = {m: helper.create_publisher(PointCloud2, feature_topic(m), FEATURES_QOS)
                  for m in ("lidar", "mmwave")}
    spin_until(executor, lambda: all(p.get_subscription_count() for p in publishers.values()))
    fused = node.fused
    for modality, publisher in publishers.items():
        arrays, _ = prepare_modality(modality, raw[modality], CONFIG)
        publisher.publish(features_message(types, codecs.make_header(types, stamp, "sensor"), modality, arrays))
    spin_until(executor, lambda: node.fused > fused)


def test_confidence_colours_each_joint_by_the_cards_expected_error(graph, model_path, tmp_path):
    import shutil

    from mmhpe_ros.model.card import EXPECTED_ERRORS_KEY, card_path, update_card
    from mmhpe_ros.runtime.markers import ERROR_RAMP
    from mmhpe_ros.skeleton import BONES, NUM_JOINTS

    weights = tmp_path / "m.safetensors"
    shutil.copy(model_path, weights)
    shutil.copy(card_path(model_path), card_path(weights))
    errors = np.linspace(20.0, 200.0, NUM_JOINTS)  # joint 0 well below green's 40 mm, the last above red's 160
    update_card(weights, {EXPECTED_ERRORS_KEY: {"note": "test", "subsets": {
        "lidar+mmwave": errors.tolist(), "lidar": [500.0] * NUM_JOINTS}}})
    helper, executor, start = graph
    node = start(model_path=str(weights), modalities=["lidar", "mmwave"], slop=0.01, deadline=0.3)
    markers = []
    helper.create_subscription(MarkerArray, TOPICS.markers, markers.append, 10)
    publish_lidar_mmwave_frame(helper, executor, node, 7_000_000_000)
    spin_until(executor, lambda: markers)
    joints_marker, bones_marker = markers[0].markers
    colors = np.array([(c.r, c.g, c.b, c.a) for c in joints_marker.colors])
    assert colors.shape == (NUM_JOINTS, 4)
    np.testing.assert_allclose(colors[0], ERROR_RAMP[0], atol=1e-6)  # 20 mm: green
    np.testing.assert_allclose(colors[-1], ERROR_RAMP[2], atol=1e-6)  # 200 mm: red
    middle = int(np.argmin(np.abs(errors - 100.0)))  # about midway between 40 and 160 mm: about yellow
    assert np.abs(colors[middle] - np.array(ERROR_RAMP[1])).max() < 0.1
    assert np.all(np.diff(colors[:, 0]) >= -1e-6), "red rises with the expected error"
    bone_colors = np.array([(c.r, c.g, c.b, c.a) for c in bones_marker.colors])
    np.testing.assert_allclose(bone_colors, colors[np.asarray(BONES).reshape(-1)], atol=1e-6)


def test_confidence_without_expected_errors_falls_back_to_modality_count(graph):
    helper, executor, start = graph
    node = start(modalities=["lidar", "mmwave"], slop=0.01, deadline=0.3)  # its card has no expected errors
    assert node.color_mode == "modalities"
    markers = []
    helper.create_subscription(MarkerArray, TOPICS.markers, markers.append, 10)
    publish_lidar_mmwave_frame(helper, executor, node, 8_000_000_000)
    spin_until(executor, lambda: markers)
    joints_marker = markers[0].markers[0]
    assert list(joints_marker.colors) == []
    assert (joints_marker.color.r, joints_marker.color.g) == pytest.approx(MODALITY_COUNT_COLORS[2][:2])


def test_bad_messages_are_counted_and_the_node_goes_on(graph):
    helper, executor, start = graph
    node = start(modalities=["lidar"])
    diagnostics = []
    helper.create_subscription(DiagnosticArray, TOPICS.diagnostics, diagnostics.append, 10)
    publisher = helper.create_publisher(PointCloud2, feature_topic("lidar"), FEATURES_QOS)
    types = codecs.rclpy_types()
    wrong = codecs.create_points(types, codecs.make_header(types, 1_000_000_000, "l"),
                                 np.zeros((7, 3), np.float32), ("x", "y", "z"))  # 7 points, the model takes 64
    arrays, _ = prepare_modality("lidar", np.ones((100, 3)), CONFIG)
    good = features_message(types, codecs.make_header(types, 2_000_000_000, "l"), "lidar", arrays)
    spin_until(executor, lambda: node.decode_errors["lidar"] >= 1, lambda: publisher.publish(wrong))
    spin_until(executor, lambda: node.fused >= 1, lambda: publisher.publish(good))
    spin_until(executor, lambda: any(s.name.endswith("fusion") for d in diagnostics for s in d.status))
    statuses = {s.name: {kv.key: kv.value for kv in s.values} for d in diagnostics for s in d.status}
    lidar = next(v for k, v in statuses.items() if k.endswith(feature_topic("lidar")))
    assert int(lidar["decode_errors"]) >= 1 and "rate_hz" in lidar and "age_s" in lidar
    fusion = next(v for k, v in statuses.items() if k.endswith("fusion"))
    assert fusion["last_fused"] == "lidar"


def test_bad_parameters_are_refused(graph):
    _, _, start = graph
    with pytest.raises(ValueError, match="modalities"):
        start(modalities=["thermal"])
    with pytest.raises(ValueError, match="color_mode"):
        start(color_mode="rainbow")
    with pytest.raises(ValueError, match="confidence_range_mm"):
        start(confidence_range_mm=[40.0])


def test_inference_backlog_is_taken_as_one_batch():
    import threading

    from mmhpe_ros.runtime.worker import LatestBatchWorker

    gate, calls = threading.Event(), []

    def work(batch):
        gate.wait(5)
        calls.append(list(batch))

    worker = LatestBatchWorker(work, max_pending=3)
    worker.submit(0)
    while not worker._busy:  # item 0 is being worked on
        time.sleep(0.001)
    for item in range(1, 6):  # 1 and 2 are dropped: at most 3 wait
        worker.submit(item)
    gate.set()
    assert worker.join_idle(5)
    worker.close()
    assert calls == [[0], [3, 4, 5]] and worker.dropped == 2
