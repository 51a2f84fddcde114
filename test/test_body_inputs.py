"""Body-centred model inputs: calibration in, the same inputs out; rigid motions; keypoint planes."""
from __future__ import annotations

import numpy as np
import pytest

from mmhpe_ros.geometry.calibration import Calibration
from mmhpe_ros.geometry.camera import CameraIntrinsics
from mmhpe_ros.geometry.transforms import RigidTransform
from mmhpe_ros.model.body import RADAR_RADIUS_M, centred_inputs, model_inputs
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.inputs import prepare_inputs
from mmhpe_ros.model.observe import Rig, observe
from mmhpe_ros.train.augment import rigid_motion

RNG = np.random.default_rng(11)
CONFIG = ModelConfig(lidar_points=256, mmwave_points=32)
CAMERA = CameraIntrinsics.pinhole(640, 480, 600.0, 600.0, 320.0, 240.0)
OPTICAL_FROM_BODY = RigidTransform.from_xyz_rpy([0, 0, 0], [-np.pi / 2, 0.0, -np.pi / 2])  # x fwd -> z fwd


def scene():
    """A person (cylinder of points, 17 keypoints on it) 3 m in front of the rig, in the base frame."""
    angle = RNG.uniform(np.pi / 2, 3 * np.pi / 2, 1500)
    lidar = np.column_stack([3 + 0.2 * np.cos(angle), 0.3 + 0.2 * np.sin(angle), RNG.uniform(0.05, 1.75, 1500)])
    radar = np.column_stack([RNG.normal(2.85, 0.05, 10), RNG.normal(0.3, 0.05, 10), RNG.uniform(0.4, 1.5, 10),
                             RNG.choice([-0.3, 0.3], 10), RNG.uniform(5, 15, 10)])
    keypoints = np.column_stack([np.full(17, 2.9), RNG.uniform(0.1, 0.5, 17), RNG.uniform(0.08, 1.7, 17)])
    return lidar, radar, keypoints


def base_calibration(camera_pose: RigidTransform) -> Calibration:
    identity = RigidTransform.identity()
    return Calibration(extrinsics={"lidar": identity, "radar": identity, "wifi": identity,
                                   "camera_optical": camera_pose}, intrinsics={"camera_optical": CAMERA})


def pixels(points_base: np.ndarray, camera_pose: RigidTransform) -> np.ndarray:
    uv, _ = CAMERA.project(camera_pose.inverse().apply(points_base))
    return uv


def test_a_moved_sensor_with_its_calibration_gives_the_same_inputs():
    lidar, radar, keypoints = scene()
    camera_pose = RigidTransform.from_xyz_rpy([0, 0.1, 1.2], [0, 0.05, 0]) @ OPTICAL_FROM_BODY
    csi = RNG.normal(size=(2, 3, 114, 10))
    reference = {"rgb": pixels(keypoints, camera_pose), "lidar": lidar, "mmwave": radar, "wifi": csi}
    expected, expected_body = prepare_inputs(reference, Rig(base_calibration(camera_pose)), CONFIG)
    lidar_pose = RigidTransform.from_xyz_rpy([0.2, -0.3, 1.4], [0.02, 0.2, 0.5])
    radar_pose = RigidTransform.from_xyz_rpy([0.0, 0.4, 0.6], [0.0, -0.1, -0.4])
    moved = {"rgb": reference["rgb"], "lidar": lidar_pose.inverse().apply(lidar),
             "mmwave": radar_pose.inverse().apply(radar), "wifi": csi}
    calibration = base_calibration(camera_pose).with_extrinsics(lidar=lidar_pose, radar=radar_pose)
    got, body = prepare_inputs(moved, Rig(calibration), CONFIG)
    np.testing.assert_allclose(body.root, expected_body.root, atol=1e-4)
    np.testing.assert_allclose(body.yaw, expected_body.yaw, atol=1e-6)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], atol=1e-3, err_msg=key)  # 1 mm
    assert got["present"].all()
    # the same data read with the wrong (identity) calibration does not give these inputs
    wrong, _ = prepare_inputs(moved, Rig(base_calibration(camera_pose)), CONFIG)
    assert not np.allclose(wrong["lidar"], expected["lidar"], atol=0.05)


def test_keypoints_on_the_plane_through_the_root_come_back_at_true_size():
    from mmhpe_ros.model.body import BodyFrame

    camera_pose = RigidTransform.from_xyz_rpy([0.3, -0.2, 1.5], [0, 0.1, 0.2]) @ OPTICAL_FROM_BODY
    root = np.array([3.5, 0.6, 0.0])
    normal = np.array([*(root - camera_pose.translation)[:2], 0.0])
    normal /= np.linalg.norm(normal)
    along = np.array([-normal[1], normal[0], 0.0])
    offsets = RNG.uniform(-0.4, 0.4, (17, 1)) * along + np.column_stack([np.zeros((17, 2)), RNG.uniform(0.1, 1.7, 17)])
    rig = Rig(base_calibration(camera_pose))
    observation = observe({"rgb": pixels(root + offsets, camera_pose)}, rig, ModelConfig(modalities=("rgb", "lidar")))
    batch = {k: v[None] for k, v in observation.items()}
    body = BodyFrame.at(root[None])
    inputs = centred_inputs(batch, body, ModelConfig(modalities=("rgb", "lidar")))
    np.testing.assert_allclose(body.to_base(inputs["rgb"][:1])[0], root + offsets, atol=1e-4)
    along_x = inputs["rgb"][0][:, 0]  # the plane faces the camera: seen from the rig it is x = const
    assert np.ptp(along_x) < 0.3
    assert (inputs["rgb_score"][0] == 1).all() and inputs["present"][0].tolist() == [True, False]


def test_turning_the_scene_changes_no_input_and_the_target_turns_with_the_frame():
    lidar, radar, keypoints = scene()
    camera_pose = RigidTransform.from_xyz_rpy([0, 0, 1.2], [0, 0.05, 0]) @ OPTICAL_FROM_BODY
    rig = Rig(base_calibration(camera_pose))
    data = {"rgb": pixels(keypoints, camera_pose), "lidar": lidar, "mmwave": radar}
    config = ModelConfig(modalities=("rgb", "lidar", "mmwave"), lidar_points=256, mmwave_points=32)
    batch = {k: v[None] for k, v in observe(data, rig, config).items()}
    joints = RNG.normal(size=(1, 17, 3)) + [3.0, 0.3, 1.0]
    before, body = model_inputs(batch, config)
    angle = 0.7
    turned, turned_joints = rigid_motion(batch, joints, np.array([angle]), np.zeros((1, 2)))
    after, turned_body = model_inputs(turned, config)
    for key in before:  # the body frame turned with the scene: the model sees the same
        np.testing.assert_allclose(after[key], before[key], atol=1e-4, err_msg=key)
    np.testing.assert_allclose(turned_body.to_body(turned_joints), body.to_body(joints), atol=1e-6)
    np.testing.assert_allclose(turned_body.yaw - body.yaw, angle, atol=1e-9)
    # a person straight ahead and one to the side look alike to the model, and come back in place
    assert abs(body.yaw[0] - np.arctan2(body.root[0, 1], body.root[0, 0])) < 1e-12
    np.testing.assert_allclose(body.to_base(body.to_body(joints)), joints, atol=1e-9)
    shifted, _ = rigid_motion(batch, joints, np.zeros(1), np.array([[2.0, -3.0]]))
    _, moved = model_inputs(shifted, config)
    np.testing.assert_allclose(moved.root[0], body.root[0] + [2.0, -3.0, 0.0], atol=1e-6)


def test_radar_points_beyond_the_radius_and_frames_without_a_person():
    config = ModelConfig(modalities=("lidar", "mmwave"), lidar_points=64, mmwave_points=8)
    near = [[3.0, 0.0, 1.0, 0.5, 10.0]] * 3
    far = [[3.0, RADAR_RADIUS_M + 0.5, 1.0, 0.5, 10.0]] * 3
    points = np.zeros((1, 128, 5), np.float32)
    points[0, :6] = near + far
    valid = np.zeros((1, 128), bool)
    valid[0, :6] = True
    batch = {"lidar_points": np.zeros((1, 64, 3), np.float32), "mmwave_points": points, "mmwave_valid": valid,
             "observed": np.array([[False, True]]), "roots": np.array([[[0, 0, 0], [3.0, 0.0, 0.0]]], np.float32),
             "localised": np.array([[False, True]])}
    inputs, body = model_inputs(batch, config)
    assert body.person.tolist() == [True] and inputs["mmwave_mask"][0].sum() == 3
    np.testing.assert_allclose(inputs["mmwave"][0, :3, :3], [[0.0, 0.0, 1.0]] * 3, atol=1e-6)
    batch["localised"][:] = False
    inputs, body = model_inputs(batch, config)
    assert body.person.tolist() == [False] and not inputs["present"].any() and not inputs["mmwave"].any()


def test_bad_raw_arrays_are_refused_naming_the_modality():
    rig = Rig(base_calibration(OPTICAL_FROM_BODY))
    with pytest.raises(ValueError, match=r"Frame.data\['lidar'\]"):
        observe({"lidar": np.zeros((5, 4))}, rig, CONFIG)
