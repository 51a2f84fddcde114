"""The skeletons of MM-Fi: 17 3D joints (Human3.6M order) and 17 2D keypoints (COCO order).

This module is the one place that knows joint names, their order, bones and parents.
MM-Fi's ``ground_truth.npy`` holds the 3D joints in :data:`JOINTS` order, in metres;
its ``rgb``/``infra`` frames hold 2D keypoints in :data:`KEYPOINTS_2D` order, in pixels.
"""
from __future__ import annotations

JOINTS: tuple[str, ...] = (
    "pelvis",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "spine",
    "thorax",
    "neck",
    "head",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
)
NUM_JOINTS = len(JOINTS)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINTS)}

# Parent of each joint in JOINTS order; the pelvis is the root (-1).
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

# Bones as (parent, child) index pairs, one per non-root joint.
BONES: tuple[tuple[int, int], ...] = tuple((p, c) for c, p in enumerate(PARENTS) if p >= 0)

LEFT_JOINTS: tuple[int, ...] = tuple(i for i, n in enumerate(JOINTS) if n.startswith("left_"))
RIGHT_JOINTS: tuple[int, ...] = tuple(i for i, n in enumerate(JOINTS) if n.startswith("right_"))

KEYPOINTS_2D: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
NUM_KEYPOINTS_2D = len(KEYPOINTS_2D)
KEYPOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(KEYPOINTS_2D)}

# 2D keypoint bones (COCO convention) for drawing.
BONES_2D: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10),
    (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
)
