"""Stage 2 of the model inputs: one root for the person, every observation in the person's frame.

Batched numpy over a leading axis B (training batches; one set in the fusion node). The root is
the point on the floor under the person (:mod:`mmhpe_ros.geometry.localise`), fused from the
modalities' own estimates (``roots`` / ``localised`` of :func:`.observe.observe`). The **body
frame** (:class:`BodyFrame`) has its origin at the root, z up, and x along the horizontal line of
sight from the base frame's origin (the rig) to the person: inputs and the model's output are
expressed in it, so a person seen 1.5 m to the side looks to the model as one seen straight
ahead, and where the rig faces does not matter. The model sees (``input_shapes``):

- ``rgb`` (17, 3): where each keypoint's ray meets the vertical plane through the root that
  faces the camera, in the body frame (metres): the person's 2D pose at true size wherever they
  stand; ``rgb_score`` (17,), 0 where no ray (or a ray along the plane).
- ``lidar`` (lidar_points, 3): the person's points in the body frame, times ``point_scale``.
- ``mmwave`` (mmwave_points, 5) + ``mmwave_mask``: radar points within ``RADAR_RADIUS_M``
  (horizontally) of the root, in the body frame; doppler and intensity scaled as the config says.
- ``wifi`` and ``wifi_mask`` as observed.

The model predicts the joints in the body frame; :meth:`BodyFrame.to_base` puts them back in the
base frame. A rigid motion of the whole scene about the base frame's vertical axis (training
augmentation) changes none of these; a shift of the scene against the base origin turns the body
frame a little, as a base_link away from the sensors does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from mmhpe_ros.geometry.localise import fuse_root_arrays
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.observe import LOCALISED, OBSERVED, ROOTS

RADAR_RADIUS_M = 1.0  # radar points this close (horizontally) to the root belong to the person
MIN_RAY_ANGLE = 0.05  # cosine between a ray and the plane's normal below which the ray is not used


@dataclass(frozen=True)
class BodyFrame:
    """Each row's body frame: origin ``root`` (B, 3) in the base frame, turned by ``yaw`` (B,) about z
    (x towards the person as seen from the base origin); ``person`` (B,) False where nobody was
    found (then root and yaw are 0)."""

    root: np.ndarray
    yaw: np.ndarray
    person: np.ndarray

    @classmethod
    def at(cls, root: np.ndarray, person: np.ndarray | None = None) -> "BodyFrame":
        root = np.asarray(root, dtype=np.float64)
        person = np.ones(len(root), dtype=bool) if person is None else np.asarray(person, dtype=bool)
        return cls(root, np.where(person, np.arctan2(root[:, 1], root[:, 0]), 0.0), person)

    def _rotation(self, sign: float) -> np.ndarray:
        c, s = np.cos(self.yaw), sign * np.sin(self.yaw)
        zero, one = np.zeros_like(c), np.ones_like(c)
        return np.stack([np.stack([c, -s, zero], -1), np.stack([s, c, zero], -1), np.stack([zero, zero, one], -1)], -2)

    def to_body(self, points: np.ndarray) -> np.ndarray:
        """Base-frame points (B, ..., 3) -> the body frame."""
        lead = (len(self.root),) + (1,) * (np.ndim(points) - 2)
        relative = np.asarray(points, dtype=np.float64) - self.root.reshape(lead + (3,))
        return np.einsum("bij,b...j->b...i", self._rotation(-1.0), relative)

    def to_base(self, points: np.ndarray) -> np.ndarray:
        """Body-frame points (B, ..., 3) (e.g. the model's joints) -> the base frame."""
        lead = (len(self.root),) + (1,) * (np.ndim(points) - 2)
        turned = np.einsum("bij,b...j->b...i", self._rotation(1.0), np.asarray(points, dtype=np.float64))
        return turned + self.root.reshape(lead + (3,))


def fuse(observations: Mapping[str, np.ndarray], config: ModelConfig) -> BodyFrame:
    """The body frame of each row from batched ``roots`` (B, M, 3) and ``localised`` (B, M)."""
    root, person = fuse_root_arrays(observations[ROOTS], observations[LOCALISED], config.modalities)
    return BodyFrame.at(root, person)


def centred_inputs(observations: Mapping[str, np.ndarray], body: BodyFrame, config: ModelConfig) -> dict[str, np.ndarray]:
    """Batched observations (B, ...) -> model inputs (B, ...) in ``body``'s frames, with ``present``."""
    observed = np.asarray(observations[OBSERVED], dtype=bool)
    present = observed.copy()
    out: dict[str, np.ndarray] = {}
    for i, modality in enumerate(config.modalities):
        if modality == "rgb":
            out["rgb"], out["rgb_score"] = _keypoint_offsets(observations, body)
            present[:, i] &= (out["rgb_score"] > 0).any(axis=1)
        elif modality == "lidar":
            out["lidar"] = (body.to_body(observations["lidar_points"]) * config.point_scale).astype(np.float32)
        elif modality == "mmwave":
            out["mmwave"], out["mmwave_mask"] = _radar_near(observations, body, config)
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
                 ) -> tuple[dict[str, np.ndarray], BodyFrame]:
    """(model inputs, body frames) of batched observations. Rows without a person have their
    inputs all absent."""
    body = fuse(observations, config)
    inputs = centred_inputs(observations, body, config)
    inputs["present"] &= body.person[:, None]
    for key, array in inputs.items():  # nobody found: every input exactly as absent (zeros)
        if key != "present":
            array[~body.person] = 0
    return inputs, body


def _keypoint_offsets(observations: Mapping[str, np.ndarray], body: BodyFrame) -> tuple[np.ndarray, np.ndarray]:
    origin = np.asarray(observations["rgb_origin"], dtype=np.float64)  # (B, 3)
    rays = np.asarray(observations["rgb_rays"], dtype=np.float64)  # (B, 17, 3)
    score = np.asarray(observations["rgb_score"], dtype=np.float64)  # (B, 17)
    towards = body.root - origin
    normal = np.zeros_like(towards)
    normal[:, :2] = towards[:, :2]
    length = np.linalg.norm(normal, axis=1, keepdims=True)
    normal = normal / np.where(length > 1e-6, length, 1.0)
    along = np.einsum("bkc,bc->bk", rays, normal)  # cosine between each ray and the normal
    usable = (score > 0) & (along > MIN_RAY_ANGLE) & (length > 1e-6)
    distance = np.einsum("bc,bc->b", towards, normal)[:, None] / np.where(usable, along, 1.0)
    offsets = body.to_body(origin[:, None, :] + distance[..., None] * rays)
    offsets = np.where(usable[..., None], offsets, 0.0)
    return offsets.astype(np.float32), np.where(usable, score, 0.0).astype(np.float32)


def _radar_near(observations: Mapping[str, np.ndarray], body: BodyFrame,
                config: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    points = np.asarray(observations["mmwave_points"], dtype=np.float64)  # (B, K, 5)
    relative = points.copy()
    relative[..., :3] = body.to_body(points[..., :3])
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
