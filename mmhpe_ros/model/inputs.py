"""The model's inputs: shapes, absent stand-ins, CSI normalisation, and the whole path for one frame.

The path from ``Frame.data`` (raw arrays in each sensor's frame) to the model has two stages,
shared by training and the nodes: :mod:`.observe` (each modality alone: into the base frame, the
person found, a root estimate per modality; the sensor nodes run it) and :mod:`.body` (one fused
root, every observation centred on it; the fusion node runs it). :func:`prepare_inputs` runs
both for one frame. The model predicts joints in the person's body frame (origin at the root);
:meth:`.body.BodyFrame.to_base` gives the skeleton in the base frame.

:func:`input_shapes` lists the model's arrays (docs/architecture.md, "Model API"); a missing
modality is zeros with ``present`` False (:func:`absent_modality`).

WiFi (:func:`prepare_csi`): [amplitude, phase] (2, 3, 114, 10) and ``wifi_mask`` (10,) bool, the
packets that were measured. A missing packet (no finite amplitude) is filled from its neighbours
in time (:func:`mmhpe_ros.model.csi.fill_csi_gaps`: linear interpolation, the nearest packet at
the window's edges) and marked False in the mask, never left at 0. Amplitude as MM-Fi's official
loader does it: inf -> NaN, NaN filled with the mean of the same packet (the (3, 114) slice of
that packet), then min-max normalised to [0, 1] over the whole block. Phase sanitised: non-finite
-> 0, unwrapped along the subcarriers, the least-squares line across subcarriers removed (per
antenna and packet: removes the linear phase of timing offset and the constant of phase
offset), times ``csi_phase_scale``; missing packets' phase is filled after this sanitisation
(raw phases carry a random offset per packet, so only sanitised ones interpolate).
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
    LIDAR_FIELDS,
    MMWAVE_FIELDS,
)
from mmhpe_ros.skeleton import NUM_KEYPOINTS_2D

CSI_SHAPE = (2, CSI_ANTENNAS, CSI_SUBCARRIERS, CSI_PACKETS_PER_FRAME)
MMWAVE_MASK = "mmwave_mask"
RGB_SCORE = "rgb_score"
WIFI_MASK = "wifi_mask"
PRESENT = "present"


def input_shapes(config: ModelConfig) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every model input array (one sample, no batch axis)."""
    f32, boolean = np.dtype(np.float32), np.dtype(bool)
    all_shapes = {
        "rgb": {"rgb": ((NUM_KEYPOINTS_2D, 3), f32), RGB_SCORE: ((NUM_KEYPOINTS_2D,), f32)},
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


def modality_keys(modality: str, config: ModelConfig) -> list[str]:
    """The input arrays that belong to ``modality``."""
    return [k for k in input_shapes(config) if k != PRESENT and k.split("_")[0] == modality]


def absent_modality(modality: str, config: ModelConfig) -> dict[str, np.ndarray]:
    """The zero arrays that stand in for a missing modality."""
    shapes = input_shapes(config)
    return {k: np.zeros(*shapes[k]) for k in modality_keys(modality, config)}


def prepare_inputs(data: Mapping[str, np.ndarray], rig, config: ModelConfig):
    """One frame's raw ``data`` (sensor frames) -> (model inputs, its :class:`.body.BodyFrame`, one
    row: ``person[0]`` False and the inputs all absent when no modality found the person).
    ``rig``: :class:`.observe.Rig`. The model's joints ``j`` (17, 3) are ``body.to_base(j[None])[0]``
    in the base frame."""
    from mmhpe_ros.model.body import model_inputs
    from mmhpe_ros.model.observe import observe

    observation = observe(data, rig, config)
    inputs, body = model_inputs({k: v[None] for k, v in observation.items()}, config)
    return {k: v[0] for k, v in inputs.items()}, body


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


def prepare_csi(raw: np.ndarray, config: ModelConfig) -> tuple[dict[str, np.ndarray], bool]:
    """A (2, 3, 114, 10) [amplitude, phase] block -> ({"wifi": normalised float32, "wifi_mask": measured
    packets}, any amplitude finite)."""
    csi = np.asarray(raw)
    if csi.shape != CSI_SHAPE or not np.issubdtype(csi.dtype, np.number):
        raise ValueError(f"Frame.data['wifi']: expected a numeric array of shape {CSI_SHAPE}, got {csi.dtype} {csi.shape}")
    csi = csi.astype(np.float64, copy=False)
    amplitude, phase = csi[0], csi[1]
    if not np.isfinite(amplitude).any():
        return {}, False
    (amplitude, phase), measured = fill_csi_gaps(np.stack([amplitude, sanitise_csi_phase(phase)]))
    prepared = np.stack([normalise_csi_amplitude(amplitude), phase * config.csi_phase_scale])
    return {"wifi": prepared.astype(np.float32), WIFI_MASK: measured}, True
