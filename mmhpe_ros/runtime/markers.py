"""Skeleton -> RViz marker content, as plain data: joints as one sphere list, bones as one line list.

A :class:`SkeletonMarker` says everything a visualization_msgs/Marker needs except the message
class itself: the node (``nodes/messages.py``) copies it into a Marker. Each person gets its own
namespace (``<prefix><person>``) and within it id 0 for joints and id 1 for bones, so ``(ns, id)``
is unique for every marker of every person.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from mmhpe_ros.modalities import NUM_MODALITIES
from mmhpe_ros.skeleton import BONES, NUM_JOINTS

JOINTS_ID = 0
BONES_ID = 1
_BONE_INDEX = np.asarray(BONES, dtype=np.intp).reshape(-1)  # parent, child, parent, child, ...

RGBA = tuple[float, float, float, float]

# Colour of a skeleton by how many modalities were fused: all present is green, one is red.
MODALITY_COUNT_COLORS: dict[int, RGBA] = {
    4: (0.10, 0.85, 0.20, 1.0),
    3: (0.75, 0.85, 0.10, 1.0),
    2: (1.00, 0.55, 0.05, 1.0),
    1: (0.95, 0.15, 0.10, 1.0),
}
GROUND_TRUTH_COLOR: RGBA = (0.20, 0.50, 1.00, 0.8)


@dataclass(frozen=True)
class SkeletonMarker:
    """Content of one marker: ``points`` (K, 3) in metres, one ``color`` for all points."""

    ns: str
    id: int
    kind: Literal["joints", "bones"]  # joints -> SPHERE_LIST, bones -> LINE_LIST
    points: np.ndarray
    color: RGBA
    scale: float  # sphere diameter (joints) or line width (bones), metres


def bone_segments(joints: np.ndarray) -> np.ndarray:
    """(17, 3) joints -> (2 * len(BONES), 3) line-list points: parent, child for each bone."""
    joints = _check_joints(joints)
    return joints[_BONE_INDEX]


def color_for_modalities(present: Sequence[bool]) -> RGBA:
    """Skeleton colour for the set of fused modalities (by how many of the four were present)."""
    if len(present) != NUM_MODALITIES:
        raise ValueError(f"expected {NUM_MODALITIES} presence flags, got {len(present)}")
    count = int(np.count_nonzero(present))
    if count == 0:
        raise ValueError("a fused skeleton needs at least one modality present")
    return MODALITY_COUNT_COLORS[count]


def skeleton_markers(
    joints: np.ndarray,
    *,
    color: RGBA,
    ns_prefix: str = "person",
    joint_diameter: float = 0.06,
    bone_width: float = 0.025,
) -> list[SkeletonMarker]:
    """Markers for one or more skeletons: ``joints`` (17, 3) or (P, 17, 3) in metres.

    Person ``p`` gets namespace ``f"{ns_prefix}{p}"`` with a joints marker (id 0, 17 points) and a
    bones marker (id 1, two points per bone).
    """
    people = np.asarray(joints, dtype=np.float64)
    if people.ndim == 2:
        people = people[None]
    if people.ndim != 3:
        raise ValueError(f"expected joints of shape (17, 3) or (P, 17, 3), got {people.shape}")
    markers: list[SkeletonMarker] = []
    for person, skeleton in enumerate(people):
        ns = f"{ns_prefix}{person}"
        markers.append(SkeletonMarker(ns, JOINTS_ID, "joints", _check_joints(skeleton), color, joint_diameter))
        markers.append(SkeletonMarker(ns, BONES_ID, "bones", bone_segments(skeleton), color, bone_width))
    return markers


def _check_joints(joints: np.ndarray) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape != (NUM_JOINTS, 3):
        raise ValueError(f"expected one skeleton of shape ({NUM_JOINTS}, 3), got {joints.shape}")
    if not np.isfinite(joints).all():
        raise ValueError("skeleton joints contain NaN or inf")
    return joints
