"""Rigid transforms, camera rays and the calibration file (mmhpe_ros.geometry)."""
from __future__ import annotations

import numpy as np
import pytest

from mmhpe_ros.geometry.calibration import (
    Calibration, MissingTransformError, calibration_from_parameters, load_calibration, write_calibration,
)
from mmhpe_ros.geometry.camera import CameraIntrinsics
from mmhpe_ros.geometry.transforms import RigidTransform


def test_xyz_rpy_matches_hand_built_rotations_and_round_trips():
    roll, pitch, yaw = 0.1, -0.4, 2.0
    rx = np.array([[1, 0, 0], [0, np.cos(roll), -np.sin(roll)], [0, np.sin(roll), np.cos(roll)]])
    ry = np.array([[np.cos(pitch), 0, np.sin(pitch)], [0, 1, 0], [-np.sin(pitch), 0, np.cos(pitch)]])
    rz = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    t = RigidTransform.from_xyz_rpy([1.0, -2.0, 0.5], [roll, pitch, yaw])
    np.testing.assert_allclose(t.rotation, rz @ ry @ rx, atol=1e-12)  # fixed axes X then Y then Z
    np.testing.assert_allclose(t.rpy, (roll, pitch, yaw), atol=1e-12)
    points = np.random.default_rng(0).normal(size=(50, 5))
    moved = t.apply(points)
    np.testing.assert_allclose(moved[:, :3], points[:, :3] @ (rz @ ry @ rx).T + [1.0, -2.0, 0.5], atol=1e-12)
    np.testing.assert_array_equal(moved[:, 3:], points[:, 3:])  # extra columns untouched
    np.testing.assert_allclose(t.inverse().apply(moved), points, atol=1e-12)
    np.testing.assert_allclose((t @ t.inverse()).matrix, np.eye(4), atol=1e-12)


def test_transform_keeps_float32_and_rejects_non_rotations():
    cloud = np.ones((4, 3), dtype=np.float32)
    assert RigidTransform.about_z(0.3, (1, 0, 0)).apply(cloud).dtype == np.float32
    with pytest.raises(ValueError, match="rotation"):
        RigidTransform(np.diag([1.0, 1.0, -1.0]), np.zeros(3))
    with pytest.raises(ValueError, match="3 values"):
        RigidTransform.from_xyz_rpy([1, 2], [0, 0, 0])


def test_camera_rays_project_back_to_their_pixels_with_distortion():
    camera = CameraIntrinsics(800, 600, np.array([[500.0, 0, 410], [0, 505.0, 290], [0, 0, 1]]),
                              np.array([-0.2, 0.05, 0.001, -0.002, 0.0]))
    uv = np.random.default_rng(1).uniform([0, 0], [799, 599], size=(100, 2))
    rays = camera.rays(uv)
    np.testing.assert_allclose(np.linalg.norm(rays, axis=1), 1.0)
    back, depth = camera.project(rays * 3.0)
    np.testing.assert_allclose(back, uv, atol=1e-6)
    assert (depth > 0).all() and camera.inside(back).all()
    assert not camera.inside(np.array([[-1.0, 10.0], [np.nan, 1.0]])).any()


def test_calibration_file_round_trip_and_flattened_parameters(tmp_path):
    calibration = Calibration(
        ground_height=-0.05,
        extrinsics={"lidar": RigidTransform.from_xyz_rpy([0.1, 0.2, 1.3], [0.0, 0.1, -0.5]),
                    "camera_optical": RigidTransform.from_xyz_rpy([0.0, 0.0, 1.2], [-1.6, 0.0, -1.5])},
        intrinsics={"camera_optical": CameraIntrinsics.pinhole(640, 480, 600, 600, 320, 240)})
    path = write_calibration(tmp_path / "c.yaml", calibration, "a test rig")
    loaded = load_calibration(path)
    assert loaded.base_frame == "base_link" and loaded.ground_height == -0.05
    for frame in calibration.extrinsics:
        np.testing.assert_allclose(loaded.to_base(frame).matrix, calibration.to_base(frame).matrix, atol=1e-5)
    np.testing.assert_allclose(loaded.camera("camera_optical").k, calibration.intrinsics["camera_optical"].k)
    flat = {"base_frame": "base_link", "ground_height": -0.05, "extrinsics.lidar.xyz": [0.1, 0.2, 1.3],
            "extrinsics.lidar.rpy": [0.0, 0.1, -0.5], "other_parameter": 3}
    from_params = calibration_from_parameters(flat)
    np.testing.assert_allclose(from_params.to_base("lidar").matrix, calibration.to_base("lidar").matrix, atol=1e-12)


def test_missing_transform_names_the_frames_and_base_is_identity():
    calibration = Calibration(extrinsics={"lidar": RigidTransform.identity()}, source="rig.yaml")
    np.testing.assert_array_equal(calibration.to_base("base_link").matrix, np.eye(4))
    with pytest.raises(MissingTransformError, match="'radar' to 'base_link' in rig.yaml.*lidar"):
        calibration.to_base("radar")


@pytest.mark.parametrize("text, message", [
    ("/**:\n  ros__parameters:\n    extrinsics: {lidar: {xyz: [1, 2]}}\n", "3 values"),
    ("/**:\n  ros__parameters:\n    extrinsics: {lidar: [1, 2, 3]}\n", "expected"),
    ("/**:\n  ros__parameters:\n    extrinsic: {}\n", "unknown calibration keys"),
    ("- 1\n", "expected a mapping"),
])
def test_bad_calibration_files_are_refused_with_the_reason(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_calibration(path)
