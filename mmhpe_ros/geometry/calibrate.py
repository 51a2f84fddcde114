"""Estimate a rig's calibration from recordings with ground truth: for datasets that publish no
extrinsics (real MM-Fi), each sensor's pose follows from where it saw the person.

- Base frame (:func:`base_from_ground_truth`): the ground truth's own frame, turned so that the
  person's up direction (pelvis to neck, averaged) is +z, and moved so the floor (the lowest
  ankles) is z = 0. Generated data is already in such a frame (the transform is ~identity).
- LiDAR and radar (:func:`fit_point_sensor`): the rigid transform that puts the sensor's person
  points on the body surface around the ground-truth joints (the body as spheres along the bones,
  :data:`mmhpe_ros.data.synth.surface.SURFACE`, a standard adult): robust point-to-surface ICP
  (Gauss-Newton with Cauchy weights) from the best of a grid of starting rotations.
  Points of the static scene (voxels occupied in most frames) are removed first, in the sensor's
  own frame, so no calibration is needed to find the person.
- Camera (:func:`fit_camera`): the direct linear transform between the ground-truth joints and
  the matching 2D keypoints (shoulders, elbows, wrists, hips, knees, ankles), decomposed into
  intrinsics and pose, then refined on the reprojection error (robust).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from mmhpe_ros.geometry.camera import CameraIntrinsics
from mmhpe_ros.geometry.localise import ANKLE_HEIGHT_M
from mmhpe_ros.geometry.transforms import RigidTransform
from mmhpe_ros.skeleton import JOINT_INDEX, KEYPOINT_INDEX

# 2D keypoint (COCO) -> 3D joint (H36M) pairs that name the same body point.
KEYPOINT_JOINTS: tuple[tuple[int, int], ...] = tuple(
    (KEYPOINT_INDEX[name], JOINT_INDEX[name]) for name in (
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"))


@dataclass(frozen=True)
class Fit:
    """An estimated sensor pose (``T_base_sensor``) and how well the data fit it."""

    transform: RigidTransform
    residual_m: float  # median absolute residual of the inliers (metres; pixels for a camera)
    points: int  # observations used
    inliers: float = 1.0  # fraction of them within 3 robust scales of the body surface


def base_from_ground_truth(joints: np.ndarray) -> RigidTransform:
    """``T_base_gt`` for ground-truth joints (F, 17, 3): +z up, the floor at z = 0.

    Up is the normal of the plane through the lower ankle of every frame when those spread over
    the floor (people standing in different places); otherwise the component-wise median of the
    pelvis-to-neck directions (people mostly upright). The floor is the 1st percentile of the
    ankle heights minus ``ANKLE_HEIGHT_M``; the horizontal axes stay as close to the ground
    truth's as the tilt allows."""
    joints = np.asarray(joints, dtype=np.float64)
    spine = joints[:, JOINT_INDEX["neck"]] - joints[:, JOINT_INDEX["pelvis"]]
    up = np.median(spine / np.linalg.norm(spine, axis=1, keepdims=True), axis=0)
    up /= np.linalg.norm(up)
    ankles = joints[:, [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]]]
    lower = ankles[np.arange(len(joints)), np.argmin(ankles @ up, axis=1)]  # (F, 3)
    centred = lower - lower.mean(axis=0)
    _, spread, axes = np.linalg.svd(centred, full_matrices=False)
    if len(lower) >= 10 and spread[1] / np.sqrt(len(lower)) > 0.3:  # the feet cover > ~0.6 m both ways
        normal = axes[2] if axes[2] @ up > 0 else -axes[2]
        up = normal
    rotation, _ = Rotation.align_vectors([[0.0, 0.0, 1.0]], [up])
    turned = joints @ rotation.as_matrix().T
    floor = np.percentile(turned[:, [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]], 2], 1) - ANKLE_HEIGHT_M
    return RigidTransform(rotation.as_matrix(), [0.0, 0.0, -floor])


def moving_points(clouds: Sequence[np.ndarray], voxel: float = 0.2, static_fraction: float = 0.5) -> list[np.ndarray]:
    """Each cloud (N, >= 3) without the points in voxels occupied in ``static_fraction`` or more of
    the clouds (the room, which stays; the person, who moves between recordings, stays less)."""
    clouds = [np.asarray(c, dtype=np.float64) for c in clouds]
    keys = [_voxel_keys(c[:, :3], voxel) for c in clouds]
    every = np.concatenate([np.unique(k) for k in keys]) if keys else np.zeros(0, np.int64)
    cells, counts = np.unique(every, return_counts=True)
    static = cells[counts >= static_fraction * len(clouds)]
    return [c[~np.isin(k, static)] for c, k in zip(clouds, keys)]


def _voxel_keys(xyz: np.ndarray, voxel: float) -> np.ndarray:
    cells = np.floor(xyz / voxel).astype(np.int64) + (1 << 20)
    return (cells[:, 0] << 42) | (cells[:, 1] << 21) | cells[:, 2]


def _surface(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from mmhpe_ros.data.synth.surface import SURFACE

    return SURFACE.centres(joints), SURFACE.radii


def _nearest_surface(points: np.ndarray, frame_of: np.ndarray, centres: np.ndarray,
                     radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance (N,) of each point to the body surface of its frame (spheres: min |p - c| - r)
    and the unit normal (N, 3) there (from the nearest sphere's centre to the point)."""
    offsets = points[:, None, :] - centres[frame_of]  # (N, S, 3)
    lengths = np.linalg.norm(offsets, axis=-1)
    nearest = np.argmin(lengths - radii, axis=1)
    rows = np.arange(len(points))
    length = np.maximum(lengths[rows, nearest], 1e-9)
    return length - radii[nearest], offsets[rows, nearest] / length[:, None]


def _robust_cost(residual: np.ndarray, scale_m: float) -> float:
    return float(np.mean(np.log1p((residual / scale_m) ** 2)))  # Cauchy


def _robust_icp(points: np.ndarray, frame_of: np.ndarray, centres: np.ndarray, radii: np.ndarray,
                rotation: np.ndarray, translation: np.ndarray, scale_m: float,
                iterations: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gauss-Newton on the point-to-surface distances with Cauchy weights (iteratively reweighted).
    The pose is updated by a small rotation w on the left and a shift dt: a point q = R p + t moves
    by w x (R p) + dt, so its distance changes by (R p x n) . w + n . dt for the surface normal n."""
    for _ in range(iterations):
        moved = points @ rotation.T
        residual, normal = _nearest_surface(moved + translation, frame_of, centres, radii)
        weight = 1.0 / (1.0 + (residual / scale_m) ** 2)
        jacobian = np.concatenate([np.cross(moved, normal), normal], axis=1)  # (N, 6)
        weighted = jacobian * weight[:, None]
        step = -np.linalg.solve(weighted.T @ jacobian + 1e-9 * np.eye(6), weighted.T @ residual)
        turn = Rotation.from_rotvec(step[:3]).as_matrix()
        rotation, translation = turn @ rotation, translation + step[3:]
        if np.abs(step).max() < 1e-6:
            break
    residual, _ = _nearest_surface(points @ rotation.T + translation, frame_of, centres, radii)
    return rotation, translation, residual


def fit_point_sensor(clouds: Sequence[np.ndarray], joints: np.ndarray, *, max_points: int = 15_000,
                     points_per_frame: int = 100, scale_m: float = 0.03, seed: int = 0) -> Fit:
    """``T_base_sensor`` from the person's points of each frame (sensor frame; already without the
    static scene, :func:`moving_points`) and that frame's ground-truth joints (F, 17, 3, base frame).

    Starts from a grid of yaw and pitch angles (translation from the centroids), keeps the four
    best by the robust cost and refines each (:func:`_robust_icp`)."""
    rng = np.random.default_rng(seed)
    joints = np.asarray(joints, dtype=np.float64)
    usable = [i for i, c in enumerate(clouds) if len(c) >= 3]
    if len(usable) < 10:
        raise ValueError(f"calibration needs at least 10 frames in which the sensor sees the person, got {len(usable)}")
    per_frame = min(points_per_frame, float(np.mean([len(clouds[i]) for i in usable])))
    frames = int(np.clip(max_points / per_frame, 10, len(usable)))  # sparse sensors (radar): more frames
    chosen = [usable[i] for i in np.linspace(0, len(usable) - 1, frames).astype(int)]
    points, frame_of = [], []
    for number, index in enumerate(chosen):
        cloud = np.asarray(clouds[index], dtype=np.float64)[:, :3]
        if len(cloud) > points_per_frame:
            cloud = cloud[rng.choice(len(cloud), points_per_frame, replace=False)]
        points.append(cloud)
        frame_of.append(np.full(len(cloud), number))
    points, frame_of = np.concatenate(points), np.concatenate(frame_of)
    centres, radii = _surface(joints[chosen])
    sensor_centroid = np.array([np.median(np.asarray(clouds[i])[:, :3], axis=0) for i in chosen])
    body_centroid = joints[chosen].mean(axis=1)

    starts = []
    for yaw in np.deg2rad(np.arange(-180, 180, 30)):
        for pitch in np.deg2rad([-30.0, 0.0, 30.0]):
            rotation = Rotation.from_euler("xyz", [0.0, pitch, yaw]).as_matrix()
            translation = np.median(body_centroid - sensor_centroid @ rotation.T, axis=0)
            residual, _ = _nearest_surface(points @ rotation.T + translation, frame_of, centres, radii)
            starts.append((_robust_cost(residual, scale_m), rotation, translation))
    starts.sort(key=lambda item: item[0])
    best = None
    for _, rotation, translation in starts[:4]:
        rotation, translation, residual = _robust_icp(points, frame_of, centres, radii, rotation, translation, scale_m)
        cost = _robust_cost(residual, scale_m)
        if best is None or cost < best[0]:
            best = (cost, rotation, translation, residual)
    _, rotation, translation, residual = best
    inliers = np.abs(residual) <= 3 * scale_m
    return Fit(RigidTransform(rotation, translation), float(np.median(np.abs(residual[inliers]))) if inliers.any()
               else float("nan"), len(points), float(inliers.mean()))


def _dlt(points: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """The 3 x 4 projection matrix that best maps ``points`` (N, 3) to ``pixels`` (N, 2) (normalised DLT)."""
    def normaliser(x: np.ndarray) -> np.ndarray:
        mean, spread = x.mean(axis=0), np.sqrt(((x - x.mean(axis=0)) ** 2).sum(axis=1).mean())
        scale = np.sqrt(x.shape[1]) / spread
        matrix = np.eye(x.shape[1] + 1)
        matrix[:-1, :-1] *= scale
        matrix[:-1, -1] = -scale * mean
        return matrix

    t3, t2 = normaliser(points), normaliser(pixels)
    p = (np.column_stack([points, np.ones(len(points))]) @ t3.T)
    q = (np.column_stack([pixels, np.ones(len(pixels))]) @ t2.T)
    rows = np.zeros((2 * len(p), 12))
    rows[0::2, 0:4], rows[0::2, 8:12] = p, -q[:, :1] * p
    rows[1::2, 4:8], rows[1::2, 8:12] = p, -q[:, 1:2] * p
    projection = np.linalg.svd(rows)[2][-1].reshape(3, 4)
    return np.linalg.inv(t2) @ projection @ t3


def _decompose(projection: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P = K [R | t] -> (K with positive diagonal, R (det +1), t)."""
    from scipy.linalg import rq

    k, r = rq(projection[:, :3])
    signs = np.diag(np.sign(np.diag(k)))
    k, r = k @ signs, signs @ r
    t = np.linalg.solve(k, projection[:, 3])
    if np.linalg.det(r) < 0:
        r, t = -r, -t
    return k / k[2, 2], r, t


def fit_camera(keypoints: np.ndarray, joints: np.ndarray, width: int, height: int) -> tuple[Fit, CameraIntrinsics]:
    """(``T_base_optical`` fit, intrinsics) from keypoints (F, 17, 2) pixels and joints (F, 17, 3)
    in the base frame. Frames or keypoints that are NaN are skipped."""
    keypoints, joints = np.asarray(keypoints, dtype=np.float64), np.asarray(joints, dtype=np.float64)
    two_d = keypoints[:, [k for k, _ in KEYPOINT_JOINTS], :2].reshape(-1, 2)
    three_d = joints[:, [j for _, j in KEYPOINT_JOINTS]].reshape(-1, 3)
    keep = np.isfinite(two_d).all(axis=1) & np.isfinite(three_d).all(axis=1)
    two_d, three_d = two_d[keep], three_d[keep]
    if len(two_d) < 50:
        raise ValueError(f"camera calibration needs at least 50 visible keypoints, got {len(two_d)}")
    k, r, t = _decompose(_dlt(three_d, two_d))
    focal = 0.5 * (k[0, 0] + k[1, 1])

    def residuals(x: np.ndarray) -> np.ndarray:
        rotation = Rotation.from_rotvec(x[:3]).as_matrix()
        camera = three_d @ rotation.T + x[3:6]
        projected = camera[:, :2] / camera[:, 2:3] * x[6] + x[7:9]
        return (projected - two_d).ravel()

    start = np.concatenate([Rotation.from_matrix(r).as_rotvec(), t, [focal], k[:2, 2]])
    result = least_squares(residuals, start, loss="soft_l1", f_scale=5.0, x_scale="jac")
    rotation, translation = Rotation.from_rotvec(result.x[:3]).as_matrix(), result.x[3:6]
    optical_from_base = RigidTransform(rotation, translation)
    intrinsics = CameraIntrinsics.pinhole(width, height, result.x[6], result.x[6], result.x[7], result.x[8])
    residual = float(np.median(np.abs(result.fun)))
    return Fit(optical_from_base.inverse(), residual, len(two_d)), intrinsics
