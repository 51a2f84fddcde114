"""RGB camera model: the 17 COCO keypoints a 2D pose detector would report on MM-Fi's 640 x 480 image.

The face points (nose, eyes, ears) are placed on the head from the neck/head joints and the body's
facing direction; the others are joints of the 3D skeleton. Each point goes from base_link into
the camera's optical frame (z forward, x right, y down: ``Scene.camera_optical``) and through the
camera's intrinsics (``Scene.intrinsics``), then detector errors are added: Gaussian noise that
grows with distance and with image-plane speed (motion blur), the odd outlier (a keypoint placed
anywhere on the person's box), occasional left/right confusion of a limb pair. A detector reports
nothing outside the image: such keypoints are NaN, and a frame with fewer than
``MIN_VISIBLE_KEYPOINTS`` keypoints in the image, or with the person behind the camera, is all NaN.
"""
from __future__ import annotations

import numpy as np

from mmhpe_ros.data.synth.scene import Scene
from mmhpe_ros.skeleton import JOINT_INDEX, KEYPOINT_INDEX, KEYPOINTS_2D

# Joint of each body keypoint; face keypoints are built in coco_points().
BODY_KEYPOINTS = {name: JOINT_INDEX[name] for name in KEYPOINTS_2D if name in JOINT_INDEX}
LEFT_RIGHT_PAIRS = tuple(
    (KEYPOINT_INDEX[name], KEYPOINT_INDEX["right_" + name[5:]])
    for name in KEYPOINTS_2D if name.startswith("left_")
)
# Detector noise relative to the scene's level, per keypoint (faces are sharp, extremities blur).
NOISE_SCALE = np.array([0.6 if n in ("nose", "left_eye", "right_eye") else
                        1.5 if n.endswith(("wrist", "ankle")) else 1.0 for n in KEYPOINTS_2D])
EXPOSURE_S = 0.02
REFERENCE_DISTANCE_M = 3.0
MIN_DEPTH_M = 0.1
MIN_VISIBLE_KEYPOINTS = 5


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def coco_points(joints: np.ndarray) -> np.ndarray:
    """The 17 COCO keypoints in 3D (..., 17, 3) from H36M joints (..., 17, 3)."""
    j = lambda name: joints[..., JOINT_INDEX[name], :]  # noqa: E731
    up = _unit(j("head") - j("neck"))
    left = _unit(j("left_shoulder") - j("right_shoulder"))
    forward = _unit(np.cross(left, up))
    face = 0.5 * (j("neck") + j("head"))
    size = np.linalg.norm(j("head") - j("neck"), axis=-1, keepdims=True)  # ~0.12 m
    points = np.empty(joints.shape[:-2] + (len(KEYPOINTS_2D), 3))
    for name, index in BODY_KEYPOINTS.items():
        points[..., KEYPOINT_INDEX[name], :] = joints[..., index, :]
    points[..., KEYPOINT_INDEX["nose"], :] = face + size * 0.8 * forward
    for side, sign in (("left", 1.0), ("right", -1.0)):
        eye = 0.6 * forward + 0.3 * up + 0.3 * sign * left
        points[..., KEYPOINT_INDEX[f"{side}_eye"], :] = face + size * eye
        points[..., KEYPOINT_INDEX[f"{side}_ear"], :] = face + size * (0.1 * up + 0.65 * sign * left)
    return points


def project(scene: Scene, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (..., 2) and depth (...,) of base-frame points (..., 3) through the scene's camera:
    into the optical frame (z forward, x right, y down), then the intrinsics. Points behind the
    camera get NaN pixels."""
    optical = scene.camera_optical().inverse().apply(points)
    flat = optical.reshape(-1, 3)
    pixels, depth = scene.intrinsics.project(flat)
    return pixels.reshape(optical.shape[:-1] + (2,)), depth.reshape(optical.shape[:-1])


def _person_box(pixels: np.ndarray, front: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F, 2) corners of the box around the keypoints in front of the camera (0 where none)."""
    low = np.where(front[..., None], pixels, np.inf).min(axis=1)
    high = np.where(front[..., None], pixels, -np.inf).max(axis=1)
    seen = front.any(axis=1)[:, None]
    return np.where(seen, low, 0.0), np.where(seen, high, 0.0)


def _detector_noise(scene: Scene, pixels: np.ndarray, depth: np.ndarray, moved: np.ndarray,
                    front: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Keypoints (F, 17, 2): pixels plus distance- and blur-dependent noise, swaps and outliers
    (``front``: keypoints in front of the camera, the only ones whose pixels are used)."""
    pixels, moved = (np.where(front[..., None], p, 0.0) for p in (pixels, moved))
    blur = np.linalg.norm(moved - pixels, axis=-1)
    sigma = scene.keypoint_noise_px * NOISE_SCALE * REFERENCE_DISTANCE_M / np.maximum(depth, MIN_DEPTH_M) + 0.5 * blur
    keypoints = pixels + rng.normal(size=pixels.shape) * sigma[..., None]
    frames = len(keypoints)
    swapped = np.flatnonzero(rng.random(frames) < scene.keypoint_swap_rate)
    pairs = np.array(LEFT_RIGHT_PAIRS)[rng.integers(0, len(LEFT_RIGHT_PAIRS), len(swapped))]
    keypoints[swapped, pairs[:, 0]], keypoints[swapped, pairs[:, 1]] = \
        keypoints[swapped, pairs[:, 1]], keypoints[swapped, pairs[:, 0]].copy()
    low, high = _person_box(pixels, front)
    margin = 0.2 * (high - low)
    outlier = rng.random(keypoints.shape[:2]) < scene.keypoint_outlier_rate
    anywhere = rng.uniform(low - margin, high + margin, size=(len(KEYPOINTS_2D),) + low.shape).swapaxes(0, 1)
    return np.where(outlier[..., None], anywhere, keypoints)


def camera_keypoints(scene: Scene, joints: np.ndarray | None, velocities: np.ndarray | None,
                     rng: np.random.Generator, frames: int = 0) -> np.ndarray:
    """Detector-like keypoints (F, 17, 2) float64 pixels for joints and joint velocities (F, 17, 3)
    in base_link; NaN where the detector reports nothing. ``joints`` None: an empty room of
    ``frames`` frames (all NaN)."""
    if joints is None:
        return np.full((frames, len(KEYPOINTS_2D), 2), np.nan)
    pixels, depth = project(scene, coco_points(joints))
    moved, moved_depth = project(scene, coco_points(joints + velocities * EXPOSURE_S))
    front = (depth > MIN_DEPTH_M) & (moved_depth > MIN_DEPTH_M)
    keypoints = _detector_noise(scene, pixels, depth, moved, front, rng)
    visible = front & scene.intrinsics.inside(keypoints.reshape(-1, 2)).reshape(front.shape)
    reported = visible & (visible.sum(axis=1, keepdims=True) >= MIN_VISIBLE_KEYPOINTS)
    return np.where(reported[..., None], keypoints, np.nan)
