"""Where each sensor frame is: frame id -> 4x4 pose in a base frame, read from a calibration file.

The calibration file is the rig's (:mod:`mmhpe_ros.geometry.calibration`)::

    /**:
      ros__parameters:
        base_frame: base_link
        extrinsics:      # pose of each sensor frame in base_frame: xyz metres, rpy radians (fixed axes X, Y, Z)
          lidar: {xyz: [0.0, 0.0, 1.1], rpy: [0.0, 0.0, 0.0]}

Frames the file does not name sit at the base frame's origin (identity, with a warning), which
is also where everything is without a file.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

def pose_matrix(xyz: object, rpy: object) -> np.ndarray:
    """4x4 pose from a translation (m) and roll, pitch, yaw (rad) about the fixed X, Y, Z axes."""
    from mmhpe_ros.geometry.transforms import RigidTransform

    try:
        return RigidTransform.from_xyz_rpy(np.asarray(xyz, dtype=np.float64), np.asarray(rpy, dtype=np.float64)).matrix
    except ValueError:
        raise ValueError(f"a pose needs 3 finite xyz and 3 finite rpy values, got xyz={xyz!r}, rpy={rpy!r}") from None


def transform_points(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 3+) points -> their x, y, z mapped by a 4x4 ``transform`` (extra columns dropped)."""
    xyz = np.asarray(points, dtype=np.float64)[:, :3]
    return xyz @ transform[:3, :3].T + transform[:3, 3]


@dataclass(frozen=True)
class FrameTransforms:
    """Poses of named frames in ``base_frame``; a frame not listed is the base frame itself."""

    base_frame: str = ""
    poses: Mapping[str, np.ndarray] = field(default_factory=dict)
    _warned: set = field(default_factory=set, compare=False, repr=False)

    def pose(self, frame: str) -> np.ndarray:
        """4x4 pose of ``frame`` in the base frame (identity for the base frame and unknown frames;
        an unknown frame is warned about once when any pose is given)."""
        if frame in self.poses:
            return self.poses[frame]
        if self.poses and frame != self.base_frame and frame not in self._warned:
            self._warned.add(frame)
            warnings.warn(f"no extrinsics for frame {frame!r} (known: {sorted(self.poses)}): taken to be "
                          f"{self.base_frame or 'the base frame'} itself", stacklevel=2)
        return np.eye(4)

    def between(self, target: str, source: str) -> np.ndarray:
        """4x4 mapping points in ``source`` to ``target``."""
        if target == source:
            return np.eye(4)
        return np.linalg.inv(self.pose(target)) @ self.pose(source)


def read_calibration(path: str | Path) -> FrameTransforms:
    """The sensor poses of a calibration file (:mod:`mmhpe_ros.geometry.calibration`); a clear
    ValueError naming the file for a bad one."""
    from mmhpe_ros.geometry.calibration import load_calibration

    calibration = load_calibration(path)
    if not calibration.extrinsics:
        raise ValueError(f"{path}: no 'extrinsics' under '/**: ros__parameters:'")
    return frames_of(calibration)


def frames_of(calibration: Any) -> FrameTransforms:
    """The sensor poses of a :class:`~mmhpe_ros.geometry.calibration.Calibration`."""
    return FrameTransforms(calibration.base_frame, {f: t.matrix for f, t in calibration.extrinsics.items()})
