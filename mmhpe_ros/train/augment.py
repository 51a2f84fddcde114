"""Rigid augmentation: the whole scene (sensors, person, ground truth) turned about the vertical
axis and shifted on the floor, consistently for every modality (issue: body-centric model).

Batched numpy on the stage-1 observations of :mod:`mmhpe_ros.model.observe` (base frame) and the
ground-truth joints. Each sensor sees exactly what it saw before (its own frame moved with the
scene), so this is a real scene, not an approximation: the rotation changes the base-frame
directions the model sees; the shift changes nothing after centring on the root (it checks
translation invariance).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from mmhpe_ros.model.observe import ROOTS

# observation key -> which of its columns are x, y, z and whether it is a point (moves) or a direction
_POINTS = ("lidar_points", "mmwave_points", "rgb_origin", ROOTS)
_DIRECTIONS = ("rgb_rays",)


def rotation_about_z(angle: np.ndarray) -> np.ndarray:
    """(B,) angles -> (B, 3, 3) rotations about z."""
    c, s = np.cos(angle), np.sin(angle)
    zero, one = np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([c, -s, zero], -1), np.stack([s, c, zero], -1), np.stack([zero, zero, one], -1)], -2)


def rigid_motion(observations: Mapping[str, np.ndarray], joints: np.ndarray, angle: np.ndarray,
                 shift: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Turn each sample's scene by ``angle`` (B,) about the base frame's z axis, then shift it by
    ``shift`` (B, 2) on the floor. Returns new arrays (the inputs are not changed)."""
    rotation = rotation_about_z(np.asarray(angle, dtype=np.float64))
    offset = np.zeros((len(rotation), 3))
    offset[:, :2] = shift

    def move(array: np.ndarray, translate: bool) -> np.ndarray:
        array = np.array(array, copy=True)
        xyz = array[..., :3].astype(np.float64)
        lead = (len(rotation),) + (1,) * (xyz.ndim - 2)
        moved = np.einsum("bij,b...j->b...i", rotation, xyz)
        if translate:
            moved = moved + offset.reshape(lead + (3,))
        array[..., :3] = moved
        return array

    out = dict(observations)
    for key in _POINTS:
        if key in out:
            out[key] = move(out[key], translate=True)
    for key in _DIRECTIONS:
        if key in out:
            out[key] = move(out[key], translate=False)
    return out, move(joints, translate=True)


def random_rigid_motion(observations: Mapping[str, np.ndarray], joints: np.ndarray, rng: np.random.Generator,
                        max_shift_m: float = 1.0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """:func:`rigid_motion` with a uniform angle and a uniform shift of up to ``max_shift_m`` per axis."""
    batch = len(joints)
    return rigid_motion(observations, joints, rng.uniform(-np.pi, np.pi, batch),
                        rng.uniform(-max_shift_m, max_shift_m, (batch, 2)))
