"""Rigid transforms (rotation + translation) between frames, and applying them to point arrays.

Convention (tf2's): ``T_parent_child`` maps points given in ``child`` into ``parent``:
``p_parent = R @ p_child + t``; its translation is the child frame's origin in ``parent`` and its
``rpy`` are fixed-axis X, Y, Z angles (roll, then pitch, then yaw, about the parent's axes), as
``static_transform_publisher --roll --pitch --yaw`` and URDF ``<origin rpy>`` take them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.spatial.transform import Rotation


@dataclass(frozen=True)
class RigidTransform:
    """``p_parent = rotation @ p_child + translation`` (rotation (3, 3) orthonormal, det +1)."""

    rotation: np.ndarray
    translation: np.ndarray

    def __post_init__(self) -> None:
        rotation = np.array(self.rotation, dtype=np.float64).reshape(3, 3)
        translation = np.array(self.translation, dtype=np.float64).reshape(3)
        if not (np.isfinite(rotation).all() and np.isfinite(translation).all()):
            raise ValueError("a rigid transform needs finite values")
        if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6) or np.linalg.det(rotation) < 0:
            raise ValueError(f"not a rotation matrix: {rotation.tolist()}")
        rotation.flags.writeable = translation.flags.writeable = False
        object.__setattr__(self, "rotation", rotation)
        object.__setattr__(self, "translation", translation)

    @classmethod
    def identity(cls) -> "RigidTransform":
        return cls(np.eye(3), np.zeros(3))

    @classmethod
    def from_xyz_rpy(cls, xyz: Sequence[float], rpy: Sequence[float]) -> "RigidTransform":
        """From a translation (m) and fixed-axis roll, pitch, yaw (rad)."""
        xyz, rpy = np.asarray(xyz, dtype=np.float64), np.asarray(rpy, dtype=np.float64)
        if xyz.shape != (3,) or rpy.shape != (3,):
            raise ValueError(f"need xyz and rpy of 3 values each, got {xyz.tolist()} and {rpy.tolist()}")
        return cls(Rotation.from_euler("xyz", rpy).as_matrix(), xyz)

    @classmethod
    def from_matrix(cls, matrix: np.ndarray) -> "RigidTransform":
        """From a 4 x 4 homogeneous matrix."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.shape != (4, 4) or not np.allclose(matrix[3], (0, 0, 0, 1)):
            raise ValueError(f"need a 4 x 4 homogeneous matrix, got {matrix.tolist()}")
        return cls(matrix[:3, :3], matrix[:3, 3])

    @classmethod
    def about_z(cls, angle: float, translation: Sequence[float] = (0.0, 0.0, 0.0)) -> "RigidTransform":
        """A rotation by ``angle`` (rad) about the vertical axis, then ``translation``."""
        c, s = np.cos(angle), np.sin(angle)
        return cls(np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]), translation)

    @property
    def xyz(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in self.translation)  # type: ignore[return-value]

    @property
    def rpy(self) -> tuple[float, float, float]:
        """Fixed-axis roll, pitch, yaw (rad) of the rotation."""
        return tuple(float(v) for v in Rotation.from_matrix(self.rotation).as_euler("xyz"))  # type: ignore[return-value]

    @property
    def matrix(self) -> np.ndarray:
        """The 4 x 4 homogeneous matrix."""
        out = np.eye(4)
        out[:3, :3], out[:3, 3] = self.rotation, self.translation
        return out

    def inverse(self) -> "RigidTransform":
        return RigidTransform(self.rotation.T, -self.rotation.T @ self.translation)

    def __matmul__(self, other: "RigidTransform") -> "RigidTransform":
        """``T_a_b @ T_b_c = T_a_c``."""
        return RigidTransform(self.rotation @ other.rotation, self.rotation @ other.translation + self.translation)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Points (..., C >= 3) with x, y, z first -> a new array, xyz transformed, other columns kept.

        The result has the input's float dtype (float64 for other dtypes).
        """
        points = np.asarray(points)
        if points.shape[-1] < 3:
            raise ValueError(f"points need x, y, z in their last axis, got shape {points.shape}")
        dtype = points.dtype if points.dtype.kind == "f" else np.dtype(np.float64)
        out = np.array(points, dtype=dtype, copy=True)
        out[..., :3] = points[..., :3] @ self.rotation.T.astype(dtype) + self.translation.astype(dtype)
        return out

    def rotate(self, vectors: np.ndarray) -> np.ndarray:
        """Directions (..., 3) rotated (no translation)."""
        vectors = np.asarray(vectors)
        dtype = vectors.dtype if vectors.dtype.kind == "f" else np.dtype(np.float64)
        return vectors @ self.rotation.T.astype(dtype)

    def angle_to(self, other: "RigidTransform") -> float:
        """Rotation angle (rad) between this transform's rotation and ``other``'s."""
        relative = self.rotation.T @ other.rotation
        return float(np.arccos(np.clip((np.trace(relative) - 1.0) / 2.0, -1.0, 1.0)))
