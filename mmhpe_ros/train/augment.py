"""Rigid augmentation: the whole scene (sensors, person, ground truth) turned about the vertical
axis and shifted on the floor, consistently for every modality (issue 12: body-centric model).

Batched numpy on the stage-1 observations of :mod:`mmhpe_ros.model.observe` (base frame) and the
ground truth. Each sensor sees exactly what it saw before (its own frame moved with the scene), so
this is a real scene, not an approximation. The model works in the person's body frame
(:mod:`mmhpe_ros.model.body`: x along the line of sight from the base origin), which absorbs a
turn about the base origin exactly (tested): what changes the inputs is the shift, which moves the
sensors away from the base origin, as on a robot whose base_link is not where its sensors are.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from mmhpe_ros.model.observe import ROOTS

# observation key -> which of its columns are x, y, z and whether it is a point (moves) or a direction
_POINTS = ("lidar_points", "mmwave_points", "rgb_origin", ROOTS)
_DIRECTIONS = ("rgb_rays",)


def rotation_about_z(angle: np.ndarray) -> np.ndarray:
    """(B,) angles -> (B, 3, 3) rotations about z."""
    c, s = np.cos(angle), np.sin(angle)
    zero, one = np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([c, -s, zero], -1), np.stack([s, c, zero], -1), np.stack([zero, zero, one], -1)], -2)


def rigid_motion(observations: Mapping[str, np.ndarray], joints: np.ndarray, angle: np.ndarray,
                 shift: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Turn each sample's scene by ``angle`` (B,) about the base frame's z axis, then shift it by
    ``shift`` (B, 2) on the floor. Returns new arrays (the inputs are not changed)."""
    rotation = rotation_about_z(np.asarray(angle, dtype=np.float64))
    offset = np.zeros((len(rotation), 3))
    offset[:, :2] = shift

    def move(array: np.ndarray, translate: bool) -> np.ndarray:
        array = np.array(array, copy=True)
        xyz = array[..., :3].astype(np.float64)
        lead = (len(rotation),) + (1,) * (xyz.ndim - 2)
        moved = np.einsum("bij,b...j->b...i", rotation, xyz)
        if translate:
            moved = moved + offset.reshape(lead + (3,))
        array[..., :3] = moved
        return array

    out = dict(observations)
    for key in _POINTS:
        if key in out:
            out[key] = move(out[key], translate=True)
    for key in _DIRECTIONS:
        if key in out:
            out[key] = move(out[key], translate=False)
    return out, move(joints, translate=True)


def random_rigid_motion(observations: Mapping[str, np.ndarray], joints: np.ndarray, rng: np.random.Generator,
                        max_shift_m: float = 1.0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """:func:`rigid_motion` with a uniform angle and a uniform shift of up to ``max_shift_m`` per axis."""
    batch = len(joints)
    return rigid_motion(observations, joints, rng.uniform(-np.pi, np.pi, batch),
                        rng.uniform(-max_shift_m, max_shift_m, (batch, 2)))


ROOT, YAW = "root", "yaw"  # batch keys: each sample's body frame (model/body.py BodyFrame)


class BodyFrameBatches:
    """The batch transform of training and evaluation: cached observations (base frame) ->
    model inputs in each sample's body frame (:func:`mmhpe_ros.model.body.model_inputs`), the
    ground truth in that frame too (what the model predicts), and the frame itself under ``root``
    and ``yaw`` (:meth:`BodyFrame.to_base` of the prediction is the skeleton). With ``augment``,
    each sample's scene is first turned about the vertical axis and shifted
    (:func:`random_rigid_motion`); a temporal model's window of past frames moves with it.
    Picklable (DataLoader workers); the random stream is seeded by ``seed`` and numpy's global
    state in a worker (re-seeded per epoch by the trainer)."""

    def __init__(self, config, augment: bool = False, seed: int = 0, max_shift_m: float = 1.0,
                 target: str = "joints") -> None:
        self.config, self.augment, self.max_shift_m, self.target = config, augment, max_shift_m, target
        self.seed = seed

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        from mmhpe_ros.model.body import model_inputs
        from mmhpe_ros.model.encoders import WINDOW_SUFFIX
        from mmhpe_ros.model.observe import observation_shapes

        keys = [k for k in observation_shapes(self.config) if k in batch]
        observations = {k: batch[k] for k in keys}
        joints = np.asarray(batch[self.target], dtype=np.float64)
        windows = {k[: -len(WINDOW_SUFFIX)]: batch[k] for k in batch if k.endswith(WINDOW_SUFFIX)}
        if self.augment:
            rng = np.random.default_rng(np.random.randint(2**31) ^ self.seed)
            angle = rng.uniform(-np.pi, np.pi, len(joints))
            shift = rng.uniform(-self.max_shift_m, self.max_shift_m, (len(joints), 2))
            observations, joints = rigid_motion(observations, joints, angle, shift)
            if windows:
                frames = next(iter(windows.values())).shape[1]
                flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in windows.items()}
                flat, _ = rigid_motion(flat, np.zeros((len(angle) * frames, 1, 3)), np.repeat(angle, frames),
                                       np.repeat(shift, frames, axis=0))
                windows = {k: v.reshape(len(angle), frames, *v.shape[1:]) for k, v in flat.items()}
        inputs, body = model_inputs(observations, self.config)
        out = {k: v for k, v in batch.items() if k not in keys and not k.endswith(WINDOW_SUFFIX)}
        out.update(inputs)
        if windows:
            out.update(self._window_inputs(windows))
        out[self.target] = body.to_body(joints).astype(np.float32)
        out[ROOT], out[YAW] = body.root, body.yaw
        return out

    def _window_inputs(self, windows: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``rgb_window`` / ``rgb_score_window`` (B, T, ...): each past frame in its own body frame."""
        from mmhpe_ros.model.body import model_inputs
        from mmhpe_ros.model.encoders import WINDOW_SUFFIX

        batch, frames = next(iter(windows.values())).shape[:2]
        flat = {k: v.reshape(batch * frames, *v.shape[2:]) for k, v in windows.items()}
        inputs, _ = model_inputs(_with_missing(flat, self.config), self.config)
        return {k + WINDOW_SUFFIX: inputs[k].reshape(batch, frames, *inputs[k].shape[1:]) for k in ("rgb", "rgb_score")}


def _with_missing(observations: Mapping[str, np.ndarray], config) -> dict[str, np.ndarray]:
    """``observations`` with zeros for the modalities' arrays a window does not carry."""
    from mmhpe_ros.model.observe import observation_shapes

    count = len(next(iter(observations.values())))
    out = dict(observations)
    for key, (shape, dtype) in observation_shapes(config).items():
        if key not in out:
            out[key] = np.zeros((count, *shape), dtype=dtype)
    return out
