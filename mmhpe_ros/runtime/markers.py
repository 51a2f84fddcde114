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
# Colour of a joint by its expected error: green at or below the low end, yellow midway, red at or
# above the high end (mm; the fusion node's confidence_range_mm).
ERROR_RAMP: tuple[RGBA, RGBA, RGBA] = (MODALITY_COUNT_COLORS[4], (0.95, 0.80, 0.10, 1.0), MODALITY_COUNT_COLORS[1])


@dataclass(frozen=True)
class SkeletonMarker:
    """Content of one marker: ``points`` (K, 3) in metres, ``color`` for the whole marker and,
    optionally, ``colors`` (K, 4) RGBA per point (RViz and Foxglove then use those)."""

    ns: str
    id: int
    kind: Literal["joints", "bones"]  # joints -> SPHERE_LIST, bones -> LINE_LIST
    points: np.ndarray
    color: RGBA
    scale: float  # sphere diameter (joints) or line width (bones), metres
    colors: np.ndarray | None = None


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


def error_colors(errors_mm: Sequence[float], low_mm: float, high_mm: float) -> np.ndarray:
    """(17,) expected joint errors (mm) -> (17, 4) RGBA along :data:`ERROR_RAMP` from ``low_mm``
    (green) to ``high_mm`` (red)."""
    if not 0 <= low_mm < high_mm:
        raise ValueError(f"need 0 <= low < high error (mm), got {low_mm}, {high_mm}")
    errors = np.asarray(errors_mm, dtype=np.float64)
    if errors.shape != (NUM_JOINTS,) or not np.isfinite(errors).all():
        raise ValueError(f"expected {NUM_JOINTS} finite joint errors, got shape {errors.shape}")
    position = 2.0 * np.clip((errors - low_mm) / (high_mm - low_mm), 0.0, 1.0)  # 0 green, 1 yellow, 2 red
    ramp = np.asarray(ERROR_RAMP)
    lower = np.minimum(position.astype(np.intp), 1)
    fraction = (position - lower)[:, None]
    return (1.0 - fraction) * ramp[lower] + fraction * ramp[lower + 1]


def skeleton_markers(
    joints: np.ndarray,
    *,
    color: RGBA,
    joint_colors: np.ndarray | None = None,
    ns_prefix: str = "person",
    joint_diameter: float = 0.06,
    bone_width: float = 0.025,
) -> list[SkeletonMarker]:
    """Markers for one or more skeletons: ``joints`` (17, 3) or (P, 17, 3) in metres.

    Person ``p`` gets namespace ``f"{ns_prefix}{p}"`` with a joints marker (id 0, 17 points) and a
    bones marker (id 1, two points per bone). ``joint_colors`` (17, 4) colours each joint, and each
    bone end as its joint (every person alike); ``color`` is then the markers' overall colour.
    """
    per_joint = None if joint_colors is None else np.asarray(joint_colors, dtype=np.float64)
    if per_joint is not None and per_joint.shape != (NUM_JOINTS, 4):
        raise ValueError(f"joint_colors must be ({NUM_JOINTS}, 4) RGBA, got {per_joint.shape}")
    per_bone_end = None if per_joint is None else per_joint[_BONE_INDEX]
    people = np.asarray(joints, dtype=np.float64)
    if people.ndim == 2:
        people = people[None]
    if people.ndim != 3:
        raise ValueError(f"expected joints of shape (17, 3) or (P, 17, 3), got {people.shape}")
    markers: list[SkeletonMarker] = []
    for person, skeleton in enumerate(people):
        ns = f"{ns_prefix}{person}"
        markers.append(SkeletonMarker(ns, JOINTS_ID, "joints", _check_joints(skeleton), color, joint_diameter,
                                      per_joint))
        markers.append(SkeletonMarker(ns, BONES_ID, "bones", bone_segments(skeleton), color, bone_width,
                                      per_bone_end))
    return markers


def _check_joints(joints: np.ndarray) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape != (NUM_JOINTS, 3):
        raise ValueError(f"expected one skeleton of shape ({NUM_JOINTS}, 3), got {joints.shape}")
    if not np.isfinite(joints).all():
        raise ValueError("skeleton joints contain NaN or inf")
    return joints
