"""Scenes of known geometry for the node and runtime tests, written out by hand: a person-shaped
cloud, sensor mounts as hand-written rotation matrices (independent of scipy and of
geometry.transforms), and the calibration a node receives as parameters.

Conventions (REP 103 base frame: x forward, y left, z up; camera optical frame: z forward, x
right, y down). A mount maps sensor-frame points into the base frame: ``p_base = R @ p + t``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

BASE = "base_link"


def rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rpy_matrix(rpy) -> np.ndarray:
    """Fixed-axis roll, pitch, yaw (as URDF and static_transform_publisher take them): Rz Ry Rx."""
    roll, pitch, yaw = rpy
    return rot_z(yaw) @ rot_y(pitch) @ rot_x(roll)


# The optical frame of a camera looking along base +x: optical z -> base x, x -> -y, y -> -z.
OPTICAL_LOOKING_FORWARD = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
OPTICAL_RPY = (-np.pi / 2, 0.0, -np.pi / 2)  # the same rotation as roll, pitch, yaw

# Mounts used across the tests: (xyz, rpy), chosen to be far from the identity.
LIDAR_MOUNT = ((0.3, -0.2, 1.2), (0.05, 0.12, 0.6))
RADAR_MOUNT = ((0.1, 0.25, 0.9), (0.0, 0.08, -0.4))
CAMERA_MOUNT = ((0.05, 0.1, 1.4), (OPTICAL_RPY[0] - 0.1, 0.0, OPTICAL_RPY[2] + 0.3))  # pitched down, yawed left


def to_sensor(points_base: np.ndarray, mount) -> np.ndarray:
    """Base-frame points (N, >= 3) as the sensor at ``mount`` sees them (other columns kept)."""
    xyz, rpy = mount
    out = np.array(points_base, dtype=np.float64, copy=True)
    out[:, :3] = (out[:, :3] - np.asarray(xyz)) @ rpy_matrix(rpy)  # R^T (p - t), row-wise
    return out


def to_base(points_sensor: np.ndarray, mount) -> np.ndarray:
    xyz, rpy = mount
    out = np.array(points_sensor, dtype=np.float64, copy=True)
    out[:, :3] = out[:, :3] @ rpy_matrix(rpy).T + np.asarray(xyz)
    return out


def person(x: float, y: float, rng: np.random.Generator, points: int = 1500, height: float = 1.75,
           ground: float = 0.0) -> np.ndarray:
    """The surface of a 0.2 m radius, ``height`` tall cylinder standing at (x, y) (base frame)."""
    angle = rng.uniform(0, 2 * np.pi, points)
    return np.column_stack([x + 0.2 * np.cos(angle), y + 0.2 * np.sin(angle),
                            ground + rng.uniform(0.15, height, points)])


def floor(rng: np.random.Generator, points: int = 3000, ground: float = 0.0) -> np.ndarray:
    """Floor returns (z = ground +- 1 cm) over 0.5..6 m ahead, +-3 m sideways."""
    return np.column_stack([rng.uniform(0.5, 6, points), rng.uniform(-3, 3, points),
                            ground + rng.normal(0, 0.01, points)])


def calibration_parameters(**mounts) -> dict[str, Any]:
    """The flattened parameters a node gets from a calibration file: ``extrinsics.<frame>.xyz`` ...
    for each ``frame=(xyz, rpy)`` given (spelled out, not via geometry.calibration)."""
    params: dict[str, Any] = {"base_frame": BASE, "ground_height": 0.0}
    for frame, (xyz, rpy) in mounts.items():
        params[f"extrinsics.{frame}.xyz"] = [float(v) for v in xyz]
        params[f"extrinsics.{frame}.rpy"] = [float(v) for v in rpy]
    return params


def intrinsics_parameters(frame: str, width: int, height: int, fx: float, fy: float, cx: float,
                          cy: float) -> dict[str, Any]:
    return {f"intrinsics.{frame}.width": width, f"intrinsics.{frame}.height": height,
            f"intrinsics.{frame}.k": [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]}


def pinhole_rays(uv: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """Unit rays (N, 3) in the optical frame through pixels (N, 2) of an undistorted pinhole camera."""
    uv = np.asarray(uv, dtype=np.float64)
    rays = np.column_stack([(uv[:, 0] - cx) / fx, (uv[:, 1] - cy) / fy, np.ones(len(uv))])
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def nearest_distance(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """For each of ``points`` (N, 3), the distance to the closest row of ``reference`` (M, 3)."""
    from scipy.spatial import cKDTree

    return cKDTree(np.asarray(reference, dtype=np.float64)).query(np.asarray(points, dtype=np.float64))[0]
