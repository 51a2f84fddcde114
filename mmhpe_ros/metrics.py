"""Pose error metrics of the MM-Fi benchmark, as pure functions on arrays in metres.

Both take predictions and ground truth of shape (..., J, 3) and return millimetres.
"""
from __future__ import annotations

import numpy as np

MM_PER_M = 1000.0


def mpjpe(predicted: np.ndarray, target: np.ndarray) -> float:
    """Mean per-joint position error: mean Euclidean distance over frames and joints, in mm."""
    predicted, target = _check(predicted, target)
    return float(np.linalg.norm(predicted - target, axis=-1).mean() * MM_PER_M)


def procrustes_align(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Align each frame of ``predicted`` onto ``target`` by a similarity transform.

    Rotation, translation and uniform scale are solved in closed form (Umeyama); reflections are
    excluded. Shapes (..., J, 3); returns the aligned prediction with the same shape.
    """
    predicted, target = _check(predicted, target)
    mu_p = predicted.mean(axis=-2, keepdims=True)
    mu_t = target.mean(axis=-2, keepdims=True)
    p = predicted - mu_p
    t = target - mu_t
    cov = np.swapaxes(p, -1, -2) @ t  # (..., 3, 3)
    u, s, vt = np.linalg.svd(cov)
    # Flip the last singular direction where the best orthogonal map would be a reflection.
    sign = np.sign(np.linalg.det(u @ vt))
    sign = np.where(sign == 0, 1.0, sign)
    s = s.copy()
    s[..., -1] *= sign
    u = u.copy()
    u[..., :, -1] *= sign[..., None]
    rotation = u @ vt  # maps row vectors: p @ rotation ~ t
    variance = (p**2).sum(axis=(-2, -1))
    scale = s.sum(axis=-1) / np.where(variance > 0, variance, 1.0)
    return scale[..., None, None] * (p @ rotation) + mu_t


def pa_mpjpe(predicted: np.ndarray, target: np.ndarray) -> float:
    """MPJPE after per-frame Procrustes alignment (rotation, translation, scale), in mm."""
    return mpjpe(procrustes_align(predicted, target), target)


def joint_errors(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Position error of each joint (..., J, 3) -> (..., J), in mm."""
    predicted, target = _check(predicted, target)
    return np.linalg.norm(predicted - target, axis=-1) * MM_PER_M


def frame_mpjpe(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """MPJPE of each frame (..., J, 3) -> (...), in mm: what :func:`mpjpe` averages over frames."""
    return joint_errors(predicted, target).mean(axis=-1)


def frame_pa_mpjpe(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """PA-MPJPE of each frame (..., J, 3) -> (...), in mm."""
    return frame_mpjpe(procrustes_align(predicted, target), target)


def _check(predicted: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predicted = np.asarray(predicted, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if predicted.shape != target.shape or predicted.ndim < 2 or predicted.shape[-1] != 3:
        raise ValueError(
            f"expected two arrays of the same shape (..., J, 3), got {predicted.shape} and {target.shape}"
        )
    return predicted, target
