"""PoseEstimator: observation sets -> joints in the base frame, placed at the person's root.

Checked by what the geometry demands, not by re-running the estimator's own steps: the root is the
median of the person's LiDAR points on the floor; moving the person (along the line of sight, a
quarter turn about the base's vertical axis, a higher floor) moves the joints the same way; a set
where nobody was found gives no joints; a batch gives what each set gives alone."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mmhpe_ros.model.checkpoint import save_model  # noqa: E402
from mmhpe_ros.model.config import ModelConfig  # noqa: E402
from mmhpe_ros.model.observe import RADAR_POINTS, empty_observation  # noqa: E402
from mmhpe_ros.model.pose_model import PoseModel  # noqa: E402
from mmhpe_ros.runtime.estimator import PoseEstimator  # noqa: E402

from hand_geometry import person, rot_z  # noqa: E402

CONFIG = ModelConfig(feature_dim=8, hidden_dim=16, lidar_points=32, mmwave_points=8, csi_width=8)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = PoseModel(CONFIG)
    with torch.no_grad():  # a model whose weights are not at their initial values
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return save_model(tmp_path_factory.mktemp("model") / "m.safetensors", model)


def lidar(points: np.ndarray) -> dict[str, np.ndarray]:
    return {"lidar_points": np.asarray(points, dtype=np.float32)}


def person_points(x: float, y: float, seed: int = 0, ground: float = 0.0) -> np.ndarray:
    return person(x, y, np.random.default_rng(seed), points=CONFIG.lidar_points, ground=ground)


def radar(points: np.ndarray) -> dict[str, np.ndarray]:
    padded = np.zeros((RADAR_POINTS, 5), np.float32)
    padded[:len(points)] = points
    return {"mmwave_points": padded, "mmwave_valid": np.arange(RADAR_POINTS) < len(points)}


def test_the_root_is_the_median_of_the_persons_points_on_the_floor(model_path):
    points = person_points(3.0, -1.0)
    estimate = PoseEstimator(model_path, ground_height=0.2).predict({"lidar": lidar(points)})
    assert estimate.person.tolist() == [True] and estimate.joints.shape == (1, 17, 3)
    np.testing.assert_allclose(estimate.root[0], [*np.median(points[:, :2].astype(np.float32), axis=0), 0.2], atol=1e-6)
    joints = estimate.joints[0]
    assert np.isfinite(joints).all() and np.abs(joints - estimate.root[0]).max() > 1e-3


def test_joints_follow_the_person_along_the_line_of_sight(model_path):
    estimator = PoseEstimator(model_path)
    points = person_points(2.0, 1.0)
    root = np.median(points[:, :2].astype(np.float32), axis=0)  # along the line of sight to the root
    direction = np.array([*root, 0.0]) / np.hypot(*root)
    near, far = estimator.predict_batch([{"lidar": lidar(points)}, {"lidar": lidar(points + 1.5 * direction)}]).joints
    np.testing.assert_allclose(far - near, np.tile(1.5 * direction, (17, 1)), atol=1e-4)


def test_joints_turn_with_the_person_about_the_base_vertical(model_path):
    """A quarter turn of the scene about the base's z axis (coordinate medians turn with it exactly)."""
    estimator = PoseEstimator(model_path)
    points = person_points(3.0, 0.5).astype(np.float32).astype(np.float64)
    turn = rot_z(np.pi / 2)
    ahead, aside = estimator.predict_batch([{"lidar": lidar(points)}, {"lidar": lidar(points @ turn.T)}]).joints
    np.testing.assert_allclose(aside, ahead @ turn.T, atol=1e-4)


def test_a_higher_floor_lifts_the_joints(model_path):
    points = person_points(2.5, -0.5)
    low = PoseEstimator(model_path).predict({"lidar": lidar(points)}).joints[0]
    high = PoseEstimator(model_path, ground_height=0.4).predict({"lidar": lidar(points + [0, 0, 0.4])}).joints[0]
    np.testing.assert_allclose(high - low, np.tile([0.0, 0.0, 0.4], (17, 1)), atol=1e-4)


def test_nobody_found_gives_no_joints_and_a_batch_gives_what_each_set_gives(model_path):
    estimator = PoseEstimator(model_path)
    rng = np.random.default_rng(1)
    moving = np.column_stack([rng.normal(4.0, 0.1, 12), rng.normal(0.0, 0.1, 12), rng.uniform(0.2, 1.6, 12),
                              np.full(12, 0.5), rng.uniform(5, 10, 12)])
    csi = {"wifi": rng.uniform(size=(2, 3, 114, 10)).astype(np.float32), "wifi_mask": np.ones(10, bool)}
    sets = [
        {"lidar": lidar(person_points(3.0, 1.0))},
        {"lidar": empty_observation("lidar", CONFIG)},  # the sensor saw the frame, nobody there
        {},  # no message at all
        {"mmwave": radar(moving), "wifi": csi},  # the radar finds the person; WiFi cannot locate
        {"wifi": csi},  # WiFi alone has no geometry: nobody can be placed
    ]
    batch = estimator.predict_batch(sets)
    assert batch.person.tolist() == [True, False, False, True, False]
    assert np.isnan(batch.joints[[1, 2, 4]]).all() and np.isfinite(batch.joints[[0, 3]]).all()
    np.testing.assert_allclose(batch.root[3, :2], np.median(moving[:, :2].astype(np.float32), axis=0), atol=1e-6)
    for i in (0, 3):
        np.testing.assert_allclose(batch.joints[i], estimator.predict(sets[i]).joints[0], atol=1e-5)


def test_unknown_modalities_are_refused(model_path, tmp_path):
    from mmhpe_ros.model.checkpoint import CheckpointError

    with pytest.raises(ValueError, match="thermal"):
        PoseEstimator(model_path).predict({"thermal": {}})
    lidar_only = save_model(tmp_path / "lidar.safetensors", PoseModel(ModelConfig(modalities=("lidar",), feature_dim=8,
                                                                                 hidden_dim=8, lidar_points=32)))
    with pytest.raises(CheckpointError, match="cannot take \\['wifi'\\]"):
        PoseEstimator(lidar_only, modalities=("lidar", "wifi"))
    with pytest.raises(ValueError, match="fuses only \\['lidar'\\]"):
        PoseEstimator(lidar_only).predict({"wifi": {"wifi": np.zeros((2, 3, 114, 10)), "wifi_mask": np.ones(10, bool)}})


def test_moved_sensors_with_their_calibration_give_the_joints_of_unmoved_ones(model_path):
    """Issue 12's check: clouds in mounted sensors' frames plus the matching extrinsics give the
    joints of the same clouds in the base frame with identity extrinsics (within 1 mm)."""
    from mmhpe_ros.geometry.calibration import Calibration
    from mmhpe_ros.geometry.transforms import RigidTransform
    from mmhpe_ros.model.observe import Rig
    from mmhpe_ros.runtime.sensors import CloudProcessor

    from hand_geometry import LIDAR_MOUNT, RADAR_MOUNT, floor, to_sensor

    rng = np.random.default_rng(3)
    scan = np.vstack([person(2.8, -0.6, rng, points=800), floor(rng, 1000)])
    radar = np.column_stack([rng.normal(2.8, 0.15, 25), rng.normal(-0.6, 0.15, 25), rng.uniform(0.2, 1.6, 25),
                             rng.normal(0.6, 0.2, 25), rng.uniform(5, 10, 25)])
    mounted = Rig(Calibration(extrinsics={"lidar": RigidTransform.from_xyz_rpy(*LIDAR_MOUNT),
                                          "radar": RigidTransform.from_xyz_rpy(*RADAR_MOUNT)}))
    identity = Rig(Calibration(extrinsics={"lidar": RigidTransform.identity(), "radar": RigidTransform.identity()}))
    estimator = PoseEstimator(model_path)
    joints = []
    for rig, lidar_cloud, radar_cloud in ((mounted, to_sensor(scan, LIDAR_MOUNT), to_sensor(radar, RADAR_MOUNT)),
                                          (identity, scan, radar)):
        observations = {
            "lidar": CloudProcessor("lidar", CONFIG, rig).process_points(lidar_cloud, 0, "lidar").arrays,
            "mmwave": CloudProcessor("mmwave", CONFIG, rig).process_points(radar_cloud, 0, "radar").arrays,
        }
        estimate = estimator.predict(observations)
        assert estimate.person[0]
        joints.append(estimate.joints[0])
    assert np.abs(joints[0] - joints[1]).max() < 1e-3
