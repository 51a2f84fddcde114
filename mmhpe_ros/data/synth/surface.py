"""The body's surface as chains of spheres along the bones (a cheap stand-in for capsules).

Every sphere centre is a fixed linear combination of the 17 joints (``SURFACE.weights``), so
centres and their velocities follow from joints and joint velocities by one matrix product.
The LiDAR casts rays at these spheres; the radar and the WiFi channel use them as scatterers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmhpe_ros.skeleton import JOINT_INDEX, NUM_JOINTS

# (from joint, to joint, radius in metres, spheres along the segment)
SEGMENTS: tuple[tuple[str, str, float, int], ...] = (
    ("pelvis", "spine", 0.14, 3), ("spine", "thorax", 0.15, 3), ("thorax", "neck", 0.06, 2),
    ("pelvis", "left_hip", 0.11, 2), ("pelvis", "right_hip", 0.11, 2),
    ("thorax", "left_shoulder", 0.08, 2), ("thorax", "right_shoulder", 0.08, 2),
    ("left_hip", "left_knee", 0.08, 6), ("right_hip", "right_knee", 0.08, 6),
    ("left_knee", "left_ankle", 0.055, 7), ("right_knee", "right_ankle", 0.055, 7),
    ("left_shoulder", "left_elbow", 0.05, 5), ("right_shoulder", "right_elbow", 0.05, 5),
    ("left_elbow", "left_wrist", 0.04, 6), ("right_elbow", "right_wrist", 0.04, 6),
)
HEAD_RADIUS = 0.1


@dataclass(frozen=True)
class Surface:
    """Spheres of the body: ``centres = weights @ joints``."""

    weights: np.ndarray  # (S, 17)
    radii: np.ndarray  # (S,)

    def centres(self, joints: np.ndarray) -> np.ndarray:
        """Sphere centres (..., S, 3) of joints (..., 17, 3) (also maps velocities)."""
        return np.einsum("sj,...jk->...sk", self.weights, joints)


def _build() -> Surface:
    rows, radii = [], []
    for start, end, radius, count in SEGMENTS:
        for fraction in np.linspace(0.0, 1.0, count):
            row = np.zeros(NUM_JOINTS)
            row[JOINT_INDEX[start]] += 1.0 - fraction
            row[JOINT_INDEX[end]] += fraction
            rows.append(row)
            radii.append(radius)
    head = np.zeros(NUM_JOINTS)
    head[JOINT_INDEX["neck"]] = head[JOINT_INDEX["head"]] = 0.5
    rows.append(head)
    radii.append(HEAD_RADIUS)
    weights, radii_array = np.array(rows), np.array(radii)
    weights.flags.writeable = radii_array.flags.writeable = False
    return Surface(weights, radii_array)


SURFACE = _build()
