"""Stage 2 of the model inputs: one root for the person, and every observation centred on it.

Batched numpy over a leading axis B (training batches; one set in the fusion node). The root is
the point on the floor under the person (:mod:`mmhpe_ros.geometry.localise`), fused from the
modalities' own estimates (``roots`` / ``localised`` of :func:`.observe.observe`). The model sees
(``input_shapes``):

- ``rgb`` (17, 3): where each keypoint's ray meets the vertical plane through the root that
  faces the camera, relative to the root (metres, base frame axes): the person's 2D pose at true
  size wherever they stand; ``rgb_score`` (17,), 0 where no ray (or a ray along the plane).
- ``lidar`` (lidar_points, 3): the person's points relative to the root, times ``point_scale``.
- ``mmwave`` (mmwave_points, 5) + ``mmwave_mask``: radar points within ``RADAR_RADIUS_M``
  (horizontal) of the root, relative to it; doppler and intensity scaled as the config says.
- ``wifi`` and ``wifi_mask`` as observed.

A rigid motion of the whole scene about the vertical axis (training augmentation) rotates these
inputs and the root-relative target alike; a translation changes neither.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from mmhpe_ros.geometry.localise import fuse_root_arrays
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.observe import LOCALISED, OBSERVED, ROOTS

RADAR_RADIUS_M = 1.0  # radar points this close (horizontally) to the root belong to the person
MIN_RAY_ANGLE = 0.05  # cosine between a ray and the plane's normal below which the ray is not used


def fuse(observations: Mapping[str, np.ndarray], config: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """(roots (B, 3), person (B,) bool) from batched ``roots`` (B, M, 3) and ``localised`` (B, M)."""
    return fuse_root_arrays(observations[ROOTS], observations[LOCALISED], config.modalities)


def centred_inputs(observations: Mapping[str, np.ndarray], root: np.ndarray, config: ModelConfig) -> dict[str, np.ndarray]:
    """Batched observations (B, ...) and roots (B, 3) -> model inputs (B, ...) with ``present``."""
    root = np.asarray(root, dtype=np.float64)
    observed = np.asarray(observations[OBSERVED], dtype=bool)
    present = observed.copy()
    out: dict[str, np.ndarray] = {}
    for i, modality in enumerate(config.modalities):
        if modality == "rgb":
            out["rgb"], out["rgb_score"] = _keypoint_offsets(observations, root)
            present[:, i] &= (out["rgb_score"] > 0).any(axis=1)
        elif modality == "lidar":
            points = observations["lidar_points"] - root[:, None, :].astype(np.float32)
            out["lidar"] = (points * np.float32(config.point_scale)).astype(np.float32)
        elif modality == "mmwave":
            out["mmwave"], out["mmwave_mask"] = _radar_near(observations, root, config)
            present[:, i] &= out["mmwave_mask"].any(axis=1)
        else:
            out["wifi"] = np.array(observations["wifi"], dtype=np.float32)
            out["wifi_mask"] = np.array(observations["wifi_mask"], dtype=bool)
    for i, modality in enumerate(config.modalities):  # absent modalities are exactly zero, as training saw
        if not present[:, i].all():
            for key in [k for k in out if k.split("_")[0] == modality]:
                out[key][~present[:, i]] = 0
    out["present"] = present
    return out


def model_inputs(observations: Mapping[str, np.ndarray], config: ModelConfig
                 ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """(model inputs, roots (B, 3), person (B,)) of batched observations. Rows without a person
    have their inputs all absent."""
    root, person = fuse(observations, config)
    inputs = centred_inputs(observations, root, config)
    inputs["present"] &= person[:, None]
    return inputs, root, person


def _keypoint_offsets(observations: Mapping[str, np.ndarray], root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    origin = np.asarray(observations["rgb_origin"], dtype=np.float64)  # (B, 3)
    rays = np.asarray(observations["rgb_rays"], dtype=np.float64)  # (B, 17, 3)
    score = np.asarray(observations["rgb_score"], dtype=np.float64)  # (B, 17)
    towards = root - origin
    normal = np.zeros_like(towards)
    normal[:, :2] = towards[:, :2]
    length = np.linalg.norm(normal, axis=1, keepdims=True)
    normal = normal / np.where(length > 1e-6, length, 1.0)
    along = np.einsum("bkc,bc->bk", rays, normal)  # cosine between each ray and the normal
    usable = (score > 0) & (along > MIN_RAY_ANGLE) & (length > 1e-6)
    distance = np.einsum("bc,bc->b", towards, normal)[:, None] / np.where(usable, along, 1.0)
    offsets = origin[:, None, :] + distance[..., None] * rays - root[:, None, :]
    offsets = np.where(usable[..., None], offsets, 0.0)
    return offsets.astype(np.float32), np.where(usable, score, 0.0).astype(np.float32)


def _radar_near(observations: Mapping[str, np.ndarray], root: np.ndarray,
                config: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    points = np.asarray(observations["mmwave_points"], dtype=np.float64)  # (B, K, 5)
    relative = points.copy()
    relative[..., :3] -= root[:, None, :]
    near = (np.asarray(observations["mmwave_valid"], dtype=bool)
            & (np.hypot(relative[..., 0], relative[..., 1]) <= RADAR_RADIUS_M))
    # the kept points first, in their order; then the model's first mmwave_points of them
    order = np.argsort(~near, axis=1, kind="stable")[:, :config.mmwave_points]
    chosen = np.take_along_axis(relative, order[..., None], axis=1)
    mask = np.take_along_axis(near, order, axis=1)
    scale = np.array([config.point_scale] * 3 + list(config.mmwave_feature_scale))
    padded = np.where(mask[..., None], chosen * scale, 0.0).astype(np.float32)
    return padded, mask


def window_observation_keys(config: ModelConfig) -> tuple[str, ...]:
    """Per-frame observations a dataset stacks into ``<key>_window`` for a temporal RGB model
    (``config.window`` > 1): what :func:`model_inputs` needs to centre each past frame's
    keypoints on that frame's own root."""
    if config.window <= 1:
        return ()
    return ("rgb_rays", "rgb_origin", "rgb_score", OBSERVED, ROOTS, LOCALISED)
