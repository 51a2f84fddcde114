"""A node's rig parameters: the calibration from parameter overrides (read-only), TF first where
tf2_ros exists (here a stand-in module), never a silent identity."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed")
from rclpy.parameter import Parameter  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

from ros_domain import lease_domain, ros_domain  # noqa: E402
from mmhpe_ros.geometry.calibration import MissingTransformError  # noqa: E402
from mmhpe_ros.nodes.rig_parameters import SensorTransforms, declare_calibration, declare_search_region  # noqa: E402

ROS_DOMAIN_ID = lease_domain()
LIDAR_XYZ, LIDAR_RPY = [0.5, -0.2, 1.3], [0.0, 0.2, 0.4]


@pytest.fixture(scope="module")
def ros():
    with ros_domain(ROS_DOMAIN_ID):
        yield


def _node(name: str, **values):
    return rclpy.create_node(name, parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])


def _rotation(rpy) -> np.ndarray:
    roll, pitch, yaw = rpy  # fixed-axis X, then Y, then Z (tf2 / URDF): R = Rz @ Ry @ Rx
    rx = np.array([[1, 0, 0], [0, np.cos(roll), -np.sin(roll)], [0, np.sin(roll), np.cos(roll)]])
    ry = np.array([[np.cos(pitch), 0, np.sin(pitch)], [0, 1, 0], [-np.sin(pitch), 0, np.cos(pitch)]])
    rz = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    return rz @ ry @ rx


def test_the_calibration_comes_from_the_given_frames_and_is_read_only(ros):
    node = _node("rig_a", base_frame="robot", ground_height=-0.1, **{
        "extrinsics.os_sensor.xyz": LIDAR_XYZ, "extrinsics.os_sensor.rpy": LIDAR_RPY})
    try:
        calibration = declare_calibration(node)
        assert calibration.base_frame == "robot" and calibration.ground_height == pytest.approx(-0.1)
        point = np.array([[2.0, 0.5, -0.3]])
        expected = point @ _rotation(LIDAR_RPY).T + LIDAR_XYZ
        np.testing.assert_allclose(calibration.to_base("os_sensor").apply(point), expected, atol=1e-9)
        result = node.set_parameters([Parameter("extrinsics.os_sensor.xyz", value=[0.0, 0.0, 0.0])])[0]
        assert not result.successful, "a calibration parameter is read-only: restart the node to change it"
    finally:
        node.destroy_node()


def test_a_frame_without_extrinsics_raises_naming_both_frames(ros):
    node = _node("rig_b", **{"extrinsics.lidar.xyz": [0.0, 0.0, 1.0]})
    try:
        transforms = SensorTransforms(node, declare_calibration(node), use_tf=False)
        np.testing.assert_allclose(transforms("base_link", 0).matrix, np.eye(4))
        with pytest.raises(MissingTransformError, match="'radar_link'.*'base_link'.*lidar"):
            transforms("radar_link", 0)
    finally:
        node.destroy_node()


def test_search_region_parameters_are_checked(ros):
    node = _node("rig_c", search_x=[1.0, 3.0])
    try:
        region = declare_search_region(node)
        assert region.x == (1.0, 3.0) and region.y == (-6.0, 6.0)
    finally:
        node.destroy_node()
    node = _node("rig_d", search_height=[2.0, 1.0])
    try:
        with pytest.raises(ValueError, match="search_height"):
            declare_search_region(node)
    finally:
        node.destroy_node()


class _FakeBuffer:
    """tf2_ros.Buffer's lookup_transform for one known frame (what a static_transform_publisher gives)."""

    def __init__(self) -> None:
        self.asked = []

    def lookup_transform(self, target, source, time):
        self.asked.append((target, source))
        if source != "camera_optical":
            raise LookupError(f"{source} unknown to TF")
        q = Rotation.from_euler("xyz", [0.1, -0.2, 0.3]).as_quat()
        transform = types.SimpleNamespace(
            translation=types.SimpleNamespace(x=1.0, y=2.0, z=3.0),
            rotation=types.SimpleNamespace(x=q[0], y=q[1], z=q[2], w=q[3]))
        return types.SimpleNamespace(transform=transform)


def test_tf_is_asked_first_and_the_calibration_covers_what_it_does_not_know(ros, monkeypatch):
    fake = types.ModuleType("tf2_ros")
    fake.Buffer = _FakeBuffer
    fake.TransformListener = lambda buffer, node: object()
    monkeypatch.setitem(sys.modules, "tf2_ros", fake)
    node = _node("rig_e", **{"extrinsics.lidar.xyz": LIDAR_XYZ, "extrinsics.lidar.rpy": LIDAR_RPY,
                             "extrinsics.camera_optical.xyz": [9.0, 9.0, 9.0]})
    try:
        transforms = SensorTransforms(node, declare_calibration(node))
        assert transforms.source == "TF"
        camera = transforms("camera_optical", 0)  # TF wins over the calibration's (different) values
        np.testing.assert_allclose(camera.translation, [1.0, 2.0, 3.0])
        np.testing.assert_allclose(camera.rotation, _rotation([0.1, -0.2, 0.3]), atol=1e-9)
        lidar = transforms("lidar", 0)  # unknown to TF: the calibration's
        np.testing.assert_allclose(lidar.translation, LIDAR_XYZ)
        with pytest.raises(MissingTransformError, match="TF or the calibration"):
            transforms("nowhere", 0)
        assert ("base_link", "camera_optical") in transforms.buffer.asked
    finally:
        node.destroy_node()
