"""Raw frame arrays (``Frame.data``) -> model-ready float32 arrays; shared by training and the nodes.

Every function is deterministic (the same input gives the same output) and vectorised.
:func:`prepare_inputs` returns, for each modality of ``config.modalities``:

- ``rgb`` (17, 2): keypoints in pixels mapped to [-1, 1] by the image size
  (``modalities.IMAGE_WIDTH`` x ``IMAGE_HEIGHT``); non-finite keypoints become 0.
- ``lidar`` (lidar_points, 3): finite points, evenly strided down to ``lidar_points`` when there
  are more, repeated cyclically when there are fewer, times ``point_scale``.
- ``mmwave`` (mmwave_points, 5) and ``mmwave_mask`` (mmwave_points,) bool: finite points
  (evenly strided when too many), zero padded; the mask marks real points. xyz times
  ``point_scale``, doppler and intensity times ``mmwave_feature_scale``.
- ``wifi`` (2, 3, 114, 10): [amplitude, phase], and ``wifi_mask`` (10,) bool: the packets that
  were measured. A missing packet (no finite amplitude) is filled from its neighbours in time
  (:func:`mmhpe_ros.model.csi.fill_csi_gaps`: linear interpolation, the nearest packet at the
  window's edges) and marked False in the mask, never left at 0. Amplitude as MM-Fi's official
  loader does it: inf -> NaN, NaN filled with the mean of the same packet (the (3, 114) slice of
  that packet), then min-max normalised to [0, 1] over the whole block. Phase sanitised:
  non-finite -> 0, unwrapped along the subcarriers, the least-squares line across subcarriers
  removed (per antenna and packet: removes the linear phase of timing offset and the constant of
  phase offset), times ``csi_phase_scale``; missing packets' phase is filled after this
  sanitisation (raw phases carry a random offset per packet, so only sanitised ones interpolate).

plus ``present`` (M,) bool. A modality missing from ``data`` (or with no usable value: no finite
point, all-NaN keypoints or CSI) gives zeros and ``present`` False.
"""
from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np

from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.csi import fill_csi_gaps
from mmhpe_ros.modalities import (
    CSI_ANTENNAS,
    CSI_PACKETS_PER_FRAME,
    CSI_SUBCARRIERS,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    LIDAR_FIELDS,
    MMWAVE_FIELDS,
)
from mmhpe_ros.skeleton import NUM_KEYPOINTS_2D

CSI_SHAPE = (2, CSI_ANTENNAS, CSI_SUBCARRIERS, CSI_PACKETS_PER_FRAME)
MMWAVE_MASK = "mmwave_mask"
WIFI_MASK = "wifi_mask"
MASK_KEYS = {"mmwave": MMWAVE_MASK, "wifi": WIFI_MASK}  # the mask array that goes with a modality
PRESENT = "present"


def input_shapes(config: ModelConfig) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array :func:`prepare_inputs` returns (one sample, no batch axis)."""
    f32, boolean = np.dtype(np.float32), np.dtype(bool)
    all_shapes = {
        "rgb": {"rgb": ((NUM_KEYPOINTS_2D, 2), f32)},
        "lidar": {"lidar": ((config.lidar_points, len(LIDAR_FIELDS)), f32)},
        "mmwave": {
            "mmwave": ((config.mmwave_points, len(MMWAVE_FIELDS)), f32),
            MMWAVE_MASK: ((config.mmwave_points,), boolean),
        },
        "wifi": {"wifi": (CSI_SHAPE, f32), WIFI_MASK: ((CSI_SHAPE[-1],), boolean)},
    }
    shapes = {k: v for m in config.modalities for k, v in all_shapes[m].items()}
    shapes[PRESENT] = ((config.num_modalities,), boolean)
    return shapes


def absent_modality(modality: str, config: ModelConfig) -> dict[str, np.ndarray]:
    """The zero arrays that stand in for a missing modality."""
    shapes = input_shapes(config)
    keys = [modality, MASK_KEYS[modality]] if modality in MASK_KEYS else [modality]
    return {k: np.zeros(*shapes[k]) for k in keys}


def prepare_modality(modality: str, raw: np.ndarray, config: ModelConfig) -> tuple[dict[str, np.ndarray], bool]:
    """One modality's raw array -> (its model-ready arrays, whether it carries any information)."""
    if modality == "rgb":
        arrays, present = _prepare_rgb(raw)
    elif modality == "lidar":
        arrays, present = _prepare_lidar(raw, config)
    elif modality == "mmwave":
        arrays, present = _prepare_mmwave(raw, config)
    elif modality == "wifi":
        arrays, present = _prepare_wifi(raw, config)
    else:
        raise ValueError(f"unknown modality {modality!r}; expected one of {config.modalities}")
    return (arrays if present else absent_modality(modality, config)), present


def prepare_inputs(data: Mapping[str, np.ndarray], config: ModelConfig) -> dict[str, np.ndarray]:
    """``Frame.data`` -> float32 model inputs for ``config.modalities`` plus ``present`` (M,) bool.

    Modalities of ``data`` that the model does not use are ignored.
    """
    inputs: dict[str, np.ndarray] = {}
    present = np.zeros(config.num_modalities, dtype=bool)
    for i, modality in enumerate(config.modalities):
        raw = data.get(modality)
        if raw is None:
            inputs.update(absent_modality(modality, config))
            continue
        arrays, present[i] = prepare_modality(modality, raw, config)
        inputs.update(arrays)
    inputs[PRESENT] = present
    return inputs


# -- one function per modality ------------------------------------------------------------------


def _checked(raw: np.ndarray, modality: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """``raw`` as float64, or a ValueError naming the modality and the expected shape."""
    array = np.asarray(raw)
    ok = array.ndim == len(shape) and all(s is None or s == n for s, n in zip(shape, array.shape))
    if not ok or not np.issubdtype(array.dtype, np.number):
        expected = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(
            f"Frame.data[{modality!r}]: expected a numeric array of shape {expected}, "
            f"got {array.dtype} {array.shape}"
        )
    return array.astype(np.float64, copy=False)


def _prepare_rgb(raw: np.ndarray) -> tuple[dict[str, np.ndarray], bool]:
    keypoints = np.asarray(raw)
    if keypoints.ndim == 2 and keypoints.shape[1] == 3:  # (u, v, score) from a detector
        keypoints = keypoints[:, :2]
    keypoints = _checked(keypoints, "rgb", (NUM_KEYPOINTS_2D, 2))
    finite = np.isfinite(keypoints)
    size = np.array([IMAGE_WIDTH, IMAGE_HEIGHT], dtype=np.float64)
    normalised = np.where(finite, keypoints / size * 2.0 - 1.0, 0.0)
    return {"rgb": normalised.astype(np.float32)}, bool(finite.any())


def _strided(count: int, wanted: int) -> np.ndarray:
    """``wanted`` indices spread evenly over ``range(count)`` (count >= wanted)."""
    return (np.arange(wanted, dtype=np.int64) * count) // wanted


def _finite_rows(points: np.ndarray) -> np.ndarray:
    return points[np.isfinite(points).all(axis=1)]


def _prepare_lidar(raw: np.ndarray, config: ModelConfig) -> tuple[dict[str, np.ndarray], bool]:
    points = _finite_rows(_checked(raw, "lidar", (None, len(LIDAR_FIELDS))))
    count, wanted = len(points), config.lidar_points
    if count == 0:
        return {}, False
    index = _strided(count, wanted) if count >= wanted else np.arange(wanted) % count
    return {"lidar": (points[index] * config.point_scale).astype(np.float32)}, True


def _prepare_mmwave(raw: np.ndarray, config: ModelConfig) -> tuple[dict[str, np.ndarray], bool]:
    points = _finite_rows(_checked(raw, "mmwave", (None, len(MMWAVE_FIELDS))))
    count, wanted = len(points), config.mmwave_points
    if count == 0:
        return {}, False
    if count > wanted:
        points, count = points[_strided(count, wanted)], wanted
    scale = np.array([config.point_scale] * 3 + list(config.mmwave_feature_scale))
    padded = np.zeros((wanted, len(MMWAVE_FIELDS)), dtype=np.float32)
    padded[:count] = points * scale
    mask = np.zeros(wanted, dtype=bool)
    mask[:count] = True
    return {"mmwave": padded, MMWAVE_MASK: mask}, True


def normalise_csi_amplitude(amplitude: np.ndarray) -> np.ndarray:
    """MM-Fi's official amplitude normalisation of a (3, 114, 10) block (see module docstring)."""
    amplitude = np.where(np.isinf(amplitude), np.nan, amplitude)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # packets that are entirely NaN
        packet_mean = np.nanmean(amplitude, axis=(0, 1), keepdims=True)
    amplitude = np.where(np.isnan(amplitude), packet_mean, amplitude)
    amplitude = np.nan_to_num(amplitude, nan=0.0)  # only where a whole packet was NaN
    low, high = amplitude.min(), amplitude.max()
    if high <= low:
        return np.zeros_like(amplitude)
    return (amplitude - low) / (high - low)


def sanitise_csi_phase(phase: np.ndarray) -> np.ndarray:
    """Unwrap a (3, 114, 10) phase block along subcarriers and remove its best-fit line."""
    phase = np.unwrap(np.where(np.isfinite(phase), phase, 0.0), axis=1)
    k = np.arange(phase.shape[1], dtype=np.float64)
    k -= k.mean()
    slope = np.einsum("s,asp->ap", k, phase) / (k @ k)
    intercept = phase.mean(axis=1)
    return phase - slope[:, None, :] * k[None, :, None] - intercept[:, None, :]


def _prepare_wifi(raw: np.ndarray, config: ModelConfig) -> tuple[dict[str, np.ndarray], bool]:
    csi = _checked(raw, "wifi", CSI_SHAPE)
    amplitude, phase = csi[0], csi[1]
    if not np.isfinite(amplitude).any():
        return {}, False
    (amplitude, phase), measured = fill_csi_gaps(np.stack([amplitude, sanitise_csi_phase(phase)]))
    prepared = np.stack([normalise_csi_amplitude(amplitude), phase * config.csi_phase_scale])
    return {"wifi": prepared.astype(np.float32), WIFI_MASK: measured}, True
