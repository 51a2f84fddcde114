"""Calibration end to end (no ROS): a sensor mounted elsewhere, its cloud in its own frame and the
matching extrinsics, gives the skeleton the untransformed cloud gives with the identity (issue 12)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mmhpe_ros.data.bags import BagDataset  # noqa: E402
from mmhpe_ros.geometry.calibration import Calibration  # noqa: E402
from mmhpe_ros.geometry.transforms import RigidTransform  # noqa: E402
from mmhpe_ros.model.observe import Rig  # noqa: E402
from mmhpe_ros.resources import SAMPLE_BAG, default_model_path  # noqa: E402
from mmhpe_ros.runtime.estimator import PoseEstimator  # noqa: E402
from mmhpe_ros.runtime.features import read_features, features_message  # noqa: E402
from mmhpe_ros.runtime import codecs  # noqa: E402
from mmhpe_ros.runtime.sensors import CloudProcessor, KeypointProcessor  # noqa: E402

FRAMES = (5, 25, 45)
STAMP = 1_000_000_000


@pytest.fixture(scope="module")
def sample():
    torch.set_num_threads(1)
    bags = BagDataset(SAMPLE_BAG.parent)
    calibration = bags.calibration(bags[0].key.environment)
    return [bags[i] for i in FRAMES], calibration


@pytest.fixture(scope="module")
def estimator():
    return PoseEstimator(default_model_path())


def _observe(frame, calibration: Calibration, frames: dict[str, str], clouds: dict[str, np.ndarray], config):
    """Features of every modality through the processors the nodes run, and back through the
    messages they publish (as the fusion node reads them)."""
    rig = Rig(calibration)
    types = codecs.rosbags_types()
    out = {}
    keypoints = KeypointProcessor(config, rig).from_keypoints(frame.data["rgb"], STAMP, "camera_optical")
    for modality, features in [("rgb", keypoints)] + [
            (m, CloudProcessor(m, config, rig).process_points(clouds[m], STAMP, frames[m])) for m in ("lidar", "mmwave")]:
        assert features.present, modality
        header = codecs.make_header(types, STAMP, features.frame_id)
        out[modality] = read_features(modality, features_message(types, header, modality, features.arrays), config)
    return out


def test_a_moved_sensor_with_matching_extrinsics_gives_the_same_skeleton(sample, estimator):
    frames, calibration = sample
    rng = np.random.default_rng(3)
    config = estimator.config
    for frame in frames:
        # Reference: the clouds moved into the base frame beforehand, stamped base_link (identity).
        base = {m: np.column_stack([calibration.to_base(f).apply(frame.data[m][:, :3]), frame.data[m][:, 3:]])
                for m, f in (("lidar", "lidar"), ("mmwave", "radar"))}
        identity = Calibration(calibration.base_frame, calibration.ground_height,
                               {"camera_optical": calibration.to_base("camera_optical")}, calibration.intrinsics)
        reference = _observe(frame, identity, {"lidar": "base_link", "mmwave": "base_link"}, base, config)
        # The same scene from sensors mounted elsewhere: each cloud in a new sensor frame, with its extrinsics.
        moved_extrinsics, moved = {}, {}
        for modality, name in (("lidar", "lidar_moved"), ("mmwave", "radar_moved")):
            mount = RigidTransform.from_xyz_rpy(rng.uniform(-1, 1, 3) + [0, 0, 1.0], rng.uniform(-0.5, 0.5, 3))
            moved_extrinsics[name] = mount
            points = base[modality].copy()
            points[:, :3] = mount.inverse().apply(points[:, :3])
            moved[modality] = points
        rig = Calibration(calibration.base_frame, calibration.ground_height,
                          {**moved_extrinsics, "camera_optical": calibration.to_base("camera_optical")},
                          calibration.intrinsics)
        observed = _observe(frame, rig, {"lidar": "lidar_moved", "mmwave": "radar_moved"}, moved, config)
        for modality in reference:
            for key, array in reference[modality].items():
                np.testing.assert_allclose(observed[modality][key], array, atol=1e-4, err_msg=f"{modality} {key}")
        a, b = estimator.predict(reference), estimator.predict(observed)
        assert a.person[0] and b.person[0]
        assert np.abs(a.joints - b.joints).max() < 1e-3, "within 1 mm"
        # and the skeleton stands where the person is (not a shape at the origin)
        truth = calibration.ground_truth_to_base().apply(frame.joints)
        assert np.linalg.norm(a.joints[0].mean(axis=0) - truth.mean(axis=0)) < 0.3


def test_a_wrong_extrinsic_moves_the_skeleton(sample, estimator):
    """The check above can fail: the same clouds with a LiDAR/radar extrinsic 0.5 m off give another skeleton."""
    frames, calibration = sample
    frame = frames[1]
    clouds = {"lidar": frame.data["lidar"], "mmwave": frame.data["mmwave"]}
    names = {"lidar": "lidar", "mmwave": "radar"}
    right = _observe(frame, calibration, names, clouds, estimator.config)
    shifted = RigidTransform(np.eye(3), [0.0, 0.5, 0.0])
    wrong = calibration.with_extrinsics(lidar=shifted @ calibration.to_base("lidar"),
                                        radar=shifted @ calibration.to_base("radar"))
    moved = _observe(frame, wrong, names, clouds, estimator.config)
    a, b = estimator.predict(right), estimator.predict(moved)
    assert np.abs(a.joints - b.joints).max() > 0.05
