"""The fusion node over real DDS, fed feature messages directly: joints in base_frame at the
person's root, no person -> markers deleted and empty joints, bad input, diagnostics."""
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
from sensor_msgs.msg import Image, PointCloud2  # noqa: E402
from std_msgs.msg import Float64  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from ros_domain import lease_domain, ros_domain  # noqa: E402
from mmhpe_ros.geometry.calibration import Calibration  # noqa: E402
from mmhpe_ros.geometry.transforms import RigidTransform  # noqa: E402
from mmhpe_ros.modalities import TOPICS  # noqa: E402
from mmhpe_ros.model.checkpoint import load_model, save_model  # noqa: E402
from mmhpe_ros.model.config import ModelConfig  # noqa: E402
from mmhpe_ros.model.inputs import prepare_inputs  # noqa: E402
from mmhpe_ros.model.observe import Rig, observe_modality  # noqa: E402
from mmhpe_ros.model.pose_model import PoseModel  # noqa: E402
from mmhpe_ros.nodes.fusion import FusionNode  # noqa: E402
from mmhpe_ros.nodes.messages import FEATURES_QOS  # noqa: E402
from mmhpe_ros.resources import SOURCE_ROOT  # noqa: E402
from mmhpe_ros.runtime import codecs  # noqa: E402
from mmhpe_ros.runtime.features import feature_topic, features_message  # noqa: E402
from mmhpe_ros.runtime.markers import MODALITY_COUNT_COLORS  # noqa: E402
from mmhpe_ros.runtime.params_file import load_parameter_file, parameters_for  # noqa: E402

from hand_geometry import LIDAR_MOUNT, RADAR_MOUNT, floor, person, rpy_matrix, to_sensor  # noqa: E402

ROS_DOMAIN_ID = lease_domain()
CONFIG = ModelConfig(feature_dim=8, hidden_dim=16, lidar_points=64, mmwave_points=16)
TIMEOUT_S = 10.0
BASE = "rig_base"  # not the default base_link: the outputs must use the parameter
RIG = Rig(Calibration(BASE, 0.0, {"lidar": RigidTransform.from_xyz_rpy(*LIDAR_MOUNT),
                                  "radar": RigidTransform.from_xyz_rpy(*RADAR_MOUNT)}))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = PoseModel(CONFIG)
    with torch.no_grad():  # weights away from their initial values: outputs that differ per input
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return save_model(tmp_path_factory.mktemp("model") / "m.safetensors", model)


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
        values = {"model_path": str(model_path), "base_frame": BASE, **parameters}
        node = FusionNode(parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
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


def raw_frame(rng, x: float = 3.0, y: float = -0.5) -> dict[str, np.ndarray]:
    """A person at (x, y) as the LiDAR and the radar see it, in their own frames."""
    scan = np.vstack([person(x, y, rng, points=600), floor(rng, 800)])
    radar = np.column_stack([rng.normal(x, 0.15, 20), rng.normal(y, 0.15, 20), rng.uniform(0.2, 1.6, 20),
                             rng.normal(0.5, 0.2, 20), rng.uniform(5, 10, 20)])
    return {"lidar": to_sensor(scan, LIDAR_MOUNT), "mmwave": to_sensor(radar, RADAR_MOUNT)}


FRAMES = {"lidar": "lidar", "mmwave": "radar"}


def feature_msg(modality: str, arrays: dict, stamp: int, frame_id: str = BASE):
    types = codecs.rclpy_types()
    return features_message(types, codecs.make_header(types, stamp, frame_id), modality, arrays)


def publishers(helper, executor, modalities=("lidar", "mmwave")) -> dict:
    classes = {"rgb": PointCloud2, "lidar": PointCloud2, "mmwave": PointCloud2, "wifi": Image}
    out = {m: helper.create_publisher(classes[m], feature_topic(m), FEATURES_QOS) for m in modalities}
    spin_until(executor, lambda: all(p.get_subscription_count() for p in out.values()))
    return out


def publish_set(executor, node, pubs: dict, arrays: dict, stamp: int) -> None:
    """One message per modality at ``stamp`` (reliable and matched: sent once, each waited for),
    then until the set is fused."""
    fused = node.fused
    for modality, publisher in pubs.items():
        count = node.monitors[modality].count
        publisher.publish(feature_msg(modality, arrays[modality], stamp))
        spin_until(executor, lambda m=modality, n=count: node.monitors[m].count > n)
    spin_until(executor, lambda: node.fused > fused)


def listen(helper) -> tuple[list, list]:
    markers, joints = [], []
    helper.create_subscription(MarkerArray, TOPICS.markers, markers.append, 10)
    helper.create_subscription(PoseArray, TOPICS.joints, joints.append, 10)
    return markers, joints


def test_parameters_are_described_and_match_the_parameter_file(graph):
    _, _, start = graph
    node = start()
    defaults = parameters_for(load_parameter_file(SOURCE_ROOT / "config" / "fusion.yaml"), "fusion_node")
    assert defaults
    for name, value in defaults.items():
        assert node.describe_parameter(name).description, f"{name} has no description"
        if name != "model_path":
            assert node.get_parameter(name).value == value, f"{name}: node default differs from config/fusion.yaml"


def test_two_modalities_fused_as_the_model_does_offline(graph, model_path):
    helper, executor, start = graph
    node = start(modalities=["lidar", "mmwave"], deadline=0.3, slop=0.01)
    markers, joints = listen(helper)
    pubs = publishers(helper, executor)
    rng = np.random.default_rng(0)
    frames = [raw_frame(rng, 2.5 + 0.5 * k, 0.3 * k) for k in range(3)]
    stamps = [5_000_000_000 + k * 100_000_000 for k in range(3)]
    for stamp, raw in zip(stamps, frames):
        arrays = {m: observe_modality(m, raw[m], RIG, CONFIG, FRAMES[m])[0] for m in pubs}
        publish_set(executor, node, pubs, arrays, stamp)
    spin_until(executor, lambda: len(joints) >= 3)

    model, _ = load_model(model_path)
    got = {codecs.header_stamp_ns(msg): codecs.read_pose_array(msg) for msg in joints}
    assert sorted(got) == stamps
    for stamp, raw in zip(stamps, frames):
        inputs, body = prepare_inputs(raw, RIG, CONFIG)
        assert body.person[0]
        with torch.inference_mode():
            predicted = model({k: torch.from_numpy(v[None]) for k, v in inputs.items()}).double().numpy()
        np.testing.assert_allclose(got[stamp], body.to_base(predicted)[0], atol=1e-5)
    two = MODALITY_COUNT_COLORS[2]
    for array in markers:
        assert [m.header.frame_id for m in array.markers] == [BASE, BASE]
        assert (array.markers[0].color.r, array.markers[0].color.g) == pytest.approx(two[:2])
    assert all(msg.header.frame_id == BASE for msg in joints)


def test_joints_are_placed_at_the_person_in_base_frame(graph):
    """The same person at two spots on one line of sight: the joints move by exactly the spots'
    offset, and each skeleton is near its own spot."""
    helper, executor, start = graph
    node = start(modalities=["lidar"])
    _, joints = listen(helper)
    pubs = publishers(helper, executor, ("lidar",))
    points = person(2.0, 0.5, np.random.default_rng(1), points=CONFIG.lidar_points).astype(np.float32)
    root = np.median(points[:, :2], axis=0)
    offset = 2.0 * np.array([*root, 0.0]) / np.hypot(*root)
    spots = {6_000_000_000: points, 6_100_000_000: (points + offset).astype(np.float32)}
    for stamp, cloud in spots.items():
        publish_set(executor, node, pubs, {"lidar": {"lidar_points": cloud}}, stamp)
    spin_until(executor, lambda: len(joints) >= 2)
    got = {codecs.header_stamp_ns(msg): codecs.read_pose_array(msg) for msg in joints}
    assert all(msg.header.frame_id == BASE for msg in joints)
    near, far = got[6_000_000_000], got[6_100_000_000]
    np.testing.assert_allclose(far - near, np.tile(offset, (17, 1)), atol=1e-4)
    for skeleton, (x, y) in ((near, root), (far, root + offset[:2])):
        assert np.hypot(*(skeleton[:, :2].mean(axis=0) - [x, y])) < 1.0  # spots are 2 m apart


def test_nobody_found_deletes_the_skeleton_and_publishes_empty_joints(graph):
    helper, executor, start = graph
    node = start(modalities=["lidar", "mmwave"], slop=0.01, deadline=0.3)
    markers, joints = listen(helper)
    diagnostics = []
    helper.create_subscription(DiagnosticArray, TOPICS.diagnostics, diagnostics.append, 10)
    pubs = publishers(helper, executor)
    raw = raw_frame(np.random.default_rng(2))
    arrays = {m: observe_modality(m, raw[m], RIG, CONFIG, FRAMES[m])[0] for m in pubs}
    publish_set(executor, node, pubs, arrays, 7_000_000_000)  # somebody
    publish_set(executor, node, pubs, {"lidar": {}, "mmwave": {}}, 7_100_000_000)  # both sensors: nobody
    spin_until(executor, lambda: len(joints) >= 2 and len(markers) >= 2)
    person_joints, nobody_joints = sorted(joints, key=codecs.header_stamp_ns)
    assert len(person_joints.poses) == 17 and len(nobody_joints.poses) == 0
    assert codecs.header_stamp_ns(nobody_joints) == 7_100_000_000 and nobody_joints.header.frame_id == BASE
    skeleton, deleted = sorted(markers, key=lambda a: codecs.header_stamp_ns(a.markers[0]))
    assert [m.action for m in skeleton.markers] == [Marker.ADD, Marker.ADD]
    assert [m.action for m in deleted.markers] == [Marker.DELETEALL]  # one marker, no skeleton
    assert deleted.markers[0].header.frame_id == BASE
    assert node.no_person == 1 and node.fused == 2 and node.empty == {"lidar": 1, "mmwave": 1}
    assert len(node.forward_ms) == 1  # no forward pass for nobody: not counted in the forward times
    spin_until(executor, lambda: any("no person" in s.message for d in diagnostics for s in d.status))
    fusion = next(s for d in reversed(diagnostics) for s in d.status if s.name.endswith("fusion"))
    values = {kv.key: kv.value for kv in fusion.values}
    assert values["no_person"] == "1" and values["base_frame"] == BASE


def test_features_in_another_frame_than_base_frame_are_refused(graph):
    helper, executor, start = graph
    node = start(modalities=["lidar"])
    pubs = publishers(helper, executor, ("lidar",))
    points = person(3.0, 0.0, np.random.default_rng(3), points=CONFIG.lidar_points)
    wrong = feature_msg("lidar", {"lidar_points": points}, 1_000_000_000, frame_id="base_link")
    spin_until(executor, lambda: node.decode_errors["lidar"] >= 1, lambda: pubs["lidar"].publish(wrong))
    assert node.fused == 0 and not node.sync.pending["lidar"]


def test_ground_truth_is_moved_into_base_frame(graph):
    """Ground truth in the dataset's 'mmfi' frame with extrinsics.mmfi given: scored in base_frame."""
    helper, executor, start = graph
    mmfi_xyz, mmfi_rpy = (0.5, -0.3, 0.1), (0.0, 0.0, 0.7)
    node = start(modalities=["lidar"], **{"extrinsics.mmfi.xyz": list(mmfi_xyz), "extrinsics.mmfi.rpy": list(mmfi_rpy)})
    _, joints = listen(helper)
    mpjpe = []
    helper.create_subscription(Float64, TOPICS.mpjpe, mpjpe.append, 10)
    pubs = publishers(helper, executor, ("lidar",))
    points = person(3.0, 0.0, np.random.default_rng(4), points=CONFIG.lidar_points)
    publish_set(executor, node, pubs, {"lidar": {"lidar_points": points}}, 9_000_000_000)
    spin_until(executor, lambda: joints)
    predicted = codecs.read_pose_array(joints[0])
    in_mmfi = (predicted - mmfi_xyz) @ rpy_matrix(mmfi_rpy)  # R^T (p - t): the same joints in 'mmfi'
    types = codecs.rclpy_types()
    truth = codecs.create_pose_array(types, codecs.make_header(types, 9_000_000_000, "mmfi"), in_mmfi)
    truth_publisher = helper.create_publisher(PoseArray, TOPICS.ground_truth, 10)
    spin_until(executor, lambda: mpjpe, lambda: truth_publisher.publish(truth))
    assert mpjpe[-1].data < 1e-3  # mm: the same joints once moved back (unmoved they are ~0.5 m off)


def test_the_shipped_model_puts_the_skeleton_on_the_person(graph):
    from mmhpe_ros.model.card import CheckpointError
    from mmhpe_ros.resources import default_model_path

    try:
        config = ModelConfig.from_dict(load_model(default_model_path())[1]["config"])
    except (CheckpointError, FileNotFoundError) as error:
        pytest.skip(f"the shipped model does not load with this code: {error}")
    helper, executor, start = graph
    node = start(model_path="", modalities=["lidar"])
    _, joints = listen(helper)
    pubs = publishers(helper, executor, ("lidar",))
    for k, (x, y) in enumerate(((2.0, -1.0), (3.5, 1.0))):
        scan = np.vstack([person(x, y, np.random.default_rng(5), points=1500), floor(np.random.default_rng(6))])
        arrays, present = observe_modality("lidar", to_sensor(scan, LIDAR_MOUNT), RIG, config, "lidar")
        assert present
        publish_set(executor, node, pubs, {"lidar": arrays}, 10_000_000_000 + k * 100_000_000)
        spin_until(executor, lambda n=k + 1: len(joints) >= n)
        skeleton = codecs.read_pose_array(joints[k])
        assert np.hypot(*(skeleton[:, :2].mean(axis=0) - [x, y])) < 0.3  # measured 0.08-0.09 m (retrained model)
        assert -0.1 < skeleton[:, 2].min() < 0.5 and 1.2 < skeleton[:, 2].max() < 2.1  # feet down, head up


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
    markers, _ = listen(helper)
    pubs = publishers(helper, executor)
    raw = raw_frame(np.random.default_rng(1))
    publish_set(executor, node, pubs, {m: observe_modality(m, raw[m], RIG, CONFIG, FRAMES[m])[0] for m in pubs},
                7_000_000_000)
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
    markers, _ = listen(helper)
    pubs = publishers(helper, executor)
    raw = raw_frame(np.random.default_rng(1))
    publish_set(executor, node, pubs, {m: observe_modality(m, raw[m], RIG, CONFIG, FRAMES[m])[0] for m in pubs},
                8_000_000_000)
    spin_until(executor, lambda: markers)
    joints_marker = markers[0].markers[0]
    assert list(joints_marker.colors) == []
    assert (joints_marker.color.r, joints_marker.color.g) == pytest.approx(MODALITY_COUNT_COLORS[2][:2])


def test_bad_messages_are_counted_and_the_node_goes_on(graph):
    helper, executor, start = graph
    node = start(modalities=["lidar"])
    diagnostics = []
    helper.create_subscription(DiagnosticArray, TOPICS.diagnostics, diagnostics.append, 10)
    pubs = publishers(helper, executor, ("lidar",))
    types = codecs.rclpy_types()
    wrong = codecs.create_points(types, codecs.make_header(types, 1_000_000_000, BASE),
                                 np.zeros((7, 3), np.float32), ("x", "y", "z"))  # 7 points, the model takes 64
    good = feature_msg("lidar", {"lidar_points": person(3.0, 0.0, np.random.default_rng(7), points=64)}, 2_000_000_000)
    spin_until(executor, lambda: node.decode_errors["lidar"] >= 1, lambda: pubs["lidar"].publish(wrong))
    spin_until(executor, lambda: node.fused >= 1, lambda: pubs["lidar"].publish(good))
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
    with pytest.raises(ValueError, match="search_x"):
        start(search_x=[3.0, 1.0])
