"""A person seen by a rig whose sensors are away from the base origin, for the model, training
and evaluation tests (our own, independent of the generator).

Each frame's raw arrays are in each sensor's own frame, as drivers publish them (LiDAR and radar
points, camera keypoints in pixels, CSI), the ground truth in the base frame, and
:func:`rig_calibration` maps the sensors back. The person stands 2.2-3.2 m in front of the rig,
up to 0.6 m to either side, turned towards it give or take 30 degrees; the pose is a standing
template with every joint moved at random (so the targets vary and the points follow them).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from mmhpe_ros.data.frames import Frame, SequenceKey
from mmhpe_ros.data.mmfi import calibration_path
from mmhpe_ros.data.rigs import RigCatalogue
from mmhpe_ros.geometry.calibration import Calibration, write_calibration
from mmhpe_ros.geometry.camera import CameraIntrinsics
from mmhpe_ros.geometry.transforms import RigidTransform
from mmhpe_ros.skeleton import BONES, JOINT_INDEX, KEYPOINT_INDEX

sys.path.insert(0, str(Path(__file__).parent))
from mmfi_tree import write_sequence  # noqa: E402

CAMERA = CameraIntrinsics.pinhole(640, 480, 450.0, 450.0, 320.0, 240.0)
OPTICAL_FROM_BODY = RigidTransform.from_xyz_rpy([0, 0, 0], [-np.pi / 2, 0.0, -np.pi / 2])  # x forward -> z forward

# A standing person in their own frame (x forward, y left, z up; the floor at 0), JOINTS order.
STANDING = np.array([
    [0.0, 0.0, 0.95], [0.0, -0.1, 0.95], [0.02, -0.1, 0.5], [0.0, -0.1, 0.08],
    [0.0, 0.1, 0.95], [0.02, 0.1, 0.5], [0.0, 0.1, 0.08],
    [0.0, 0.0, 1.15], [0.0, 0.0, 1.4], [0.0, 0.0, 1.5], [0.02, 0.0, 1.62],
    [0.0, 0.18, 1.42], [0.0, 0.22, 1.15], [0.05, 0.22, 0.9],
    [0.0, -0.18, 1.42], [0.0, -0.22, 1.15], [0.05, -0.22, 0.9],
])
ANKLES = [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]]


def rig_calibration(environment: str = "E01") -> Calibration:
    """The rig of ``environment``: LiDAR, radar and camera at different heights, pitched and yawed
    (a little differently per environment), WiFi at the origin."""
    turn = 0.1 * (int(environment[1:]) - 1)
    identity = RigidTransform.identity()
    return Calibration(extrinsics={
        "lidar": RigidTransform.from_xyz_rpy([0.1, -0.2, 1.1], [0.0, 0.05, 0.1 + turn]),
        "radar": RigidTransform.from_xyz_rpy([0.0, 0.3, 0.8], [0.0, -0.05, -0.15 - turn]),
        "wifi": identity,
        "camera_optical": RigidTransform.from_xyz_rpy([0.0, 0.05, 1.2], [0.0, 0.12, turn / 2]) @ OPTICAL_FROM_BODY,
    }, intrinsics={"camera_optical": CAMERA})


def rigs() -> RigCatalogue:
    """The rig of each environment, as an MM-Fi tree written by :func:`write_rig_tree` has them."""
    from mmhpe_ros.model.observe import Rig

    return RigCatalogue({e: Rig(rig_calibration(e)) for e in ("E01", "E02", "E03", "E04")})


def person_joints(rng: np.random.Generator, jitter: float = 0.08) -> np.ndarray:
    """Joints (17, 3) in the base frame: the template with each joint moved (feet on the floor),
    turned and placed in front of the rig."""
    local = STANDING + rng.normal(0, jitter, STANDING.shape)
    local[ANKLES, 2] = STANDING[ANKLES, 2]
    root = np.array([rng.uniform(2.2, 3.2), rng.uniform(-0.6, 0.6), 0.0])
    facing = np.arctan2(-root[1], -root[0]) + rng.uniform(-0.5, 0.5)
    return RigidTransform.from_xyz_rpy(root, [0.0, 0.0, facing]).apply(local)


def keypoints_3d(joints: np.ndarray) -> np.ndarray:
    """The 17 COCO keypoints (17, 3) of joints (17, 3): body joints where they are, the face
    around the head."""
    points = np.empty((17, 3))
    for name in ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                 "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"):
        points[KEYPOINT_INDEX[name]] = joints[JOINT_INDEX[name]]
    head = joints[JOINT_INDEX["head"]]
    left = joints[JOINT_INDEX["left_shoulder"]] - joints[JOINT_INDEX["right_shoulder"]]
    left = left / np.linalg.norm(left)
    for name, offset in (("nose", 0.0), ("left_eye", 0.03), ("right_eye", -0.03), ("left_ear", 0.07),
                         ("right_ear", -0.07)):
        points[KEYPOINT_INDEX[name]] = head + offset * left
    return points


def sensor_data(joints: np.ndarray, calibration: Calibration, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Raw arrays of every modality seeing ``joints`` (base frame), each in its sensor's frame."""
    t = rng.uniform(0, 1, (len(BONES), 14, 1))
    parents, children = (joints[[b[i] for b in BONES]][:, None, :] for i in (0, 1))
    body = (parents + t * (children - parents)).reshape(-1, 3) + rng.normal(0, 0.03, (len(BONES) * 14, 3))
    floor = np.column_stack([rng.uniform(1.0, 5.0, 40), rng.uniform(-2.0, 2.0, 40), rng.normal(0, 0.01, 40)])
    lidar = calibration.to_base("lidar").inverse().apply(np.vstack([body, floor]))
    near = joints[rng.integers(0, 17, 12)] + rng.normal(0, 0.05, (12, 3))
    radar_xyz = calibration.to_base("radar").inverse().apply(near)
    doppler = rng.choice([-1.0, 1.0], 12) * rng.uniform(0.1, 0.5, 12)
    mmwave = np.column_stack([radar_xyz, doppler, rng.uniform(5, 15, 12)])
    optical = calibration.to_base("camera_optical").inverse().apply(keypoints_3d(joints))
    rgb, _ = CAMERA.project(optical)
    amplitude = rng.uniform(1, 30, (3, 114, 10)) + 5 * joints[JOINT_INDEX["left_wrist"], 2]
    wifi = np.stack([amplitude, rng.uniform(-np.pi, np.pi, (3, 114, 10))])
    return {"rgb": rgb + rng.normal(0, 1.0, rgb.shape), "lidar": lidar, "mmwave": mmwave, "wifi": wifi}


def person_frame(key: SequenceKey, index: int) -> Frame:
    """Frame ``index`` of ``key``, deterministic from both."""
    rng = np.random.default_rng([int(key.environment[1:]), int(key.subject[1:]), int(key.action[1:]), index])
    joints = person_joints(rng)
    return Frame(key, index, joints, sensor_data(joints, rig_calibration(key.environment), rng))


class RigFrames(list):
    """An in-memory frame source (a list of frames) that carries the calibration of each
    environment, as bags do (``calibration(environment)``)."""

    def calibration(self, environment: str) -> Calibration:
        return rig_calibration(environment)


def frames_of(keys: Iterable[SequenceKey], count: int) -> RigFrames:
    """``count`` frames of each sequence of ``keys``."""
    return RigFrames(person_frame(key, i) for key in keys for i in range(count))


def write_rig_tree(root: Path, keys: Sequence[SequenceKey], frames: int) -> Path:
    """``keys`` in the MM-Fi layout (``frames`` frames of :func:`person_frame` each) with the
    calibration file of each environment beside them."""
    for key in keys:
        sequence = [person_frame(key, i) for i in range(frames)]
        write_sequence(root, key, np.stack([f.joints for f in sequence]), [f.data for f in sequence])
    for environment in sorted({k.environment for k in keys}):
        write_calibration(calibration_path(root, environment), rig_calibration(environment))
    return root
