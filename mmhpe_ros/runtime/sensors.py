"""Sensor messages -> model-ready features, one processor per modality (no rclpy).

Each processor decodes its messages with :mod:`mmhpe_ros.runtime.codecs` (fields by name and
datatype), cleans them (non-finite points, region of interest: :mod:`mmhpe_ros.runtime.roi`) and
calls :func:`mmhpe_ros.model.inputs.prepare_modality` with the model's :class:`ModelConfig`, so a
node feeds the model exactly what training saw. Bad messages raise
:class:`~mmhpe_ros.runtime.codecs.CodecError` saying why; the node drops and counts them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmhpe_ros.data.bag_format import POINT_FIELDS
from mmhpe_ros.modalities import KEYPOINT_FIELDS
from mmhpe_ros.model.card import read_card
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.inputs import prepare_modality
from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.codecs import CodecError
from mmhpe_ros.runtime.csi_layout import CsiLayoutMapper
from mmhpe_ros.runtime.csi_window import CsiWindow, CsiWindowAssembler
from mmhpe_ros.runtime.features import SCORE_KEY
from mmhpe_ros.runtime.roi import RegionOfInterest, clean_points
from mmhpe_ros.skeleton import NUM_KEYPOINTS_2D

FLOAT32_MAX = float(np.finfo(np.float32).max)  # model inputs are float32: larger values count as non-finite


@dataclass(frozen=True)
class Features:
    """One modality's model input for one source stamp.

    ``arrays`` is ``prepare_modality``'s output (plus ``rgb_score`` for keypoints) when
    ``present``; empty when the input carried nothing usable (no finite point left, all
    keypoints NaN). ``non_finite`` / ``outside`` count the points the clean-up removed.
    """

    modality: str
    stamp_ns: int
    frame_id: str
    arrays: dict[str, np.ndarray] = field(repr=False)
    present: bool
    non_finite: int = 0
    outside: int = 0


def model_config(model_path: str | Path) -> ModelConfig:
    """The :class:`ModelConfig` on the card of a model file (weights or card path)."""
    return ModelConfig.from_dict(read_card(model_path)["config"])


def _features(modality: str, stamp_ns: int, frame_id: str, raw: np.ndarray, config: ModelConfig,
              **counts: int) -> Features:
    """``prepare_modality`` of ``raw``; CodecError if its float32 output is not finite (absurd input)."""
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        arrays, present = prepare_modality(modality, raw, config)
    bad = [key for key, array in arrays.items() if array.dtype.kind == "f" and not np.isfinite(array).all()]
    if bad:
        raise CodecError(f"{modality}: values out of range (model inputs {bad} would not be finite in float32)")
    return Features(modality, stamp_ns, frame_id, arrays if present else {}, present, **counts)


def _unrepresentable_as_nan(values: np.ndarray) -> np.ndarray:
    """``values`` with every magnitude beyond float32's range set to NaN (a copy only if needed)."""
    too_large = np.abs(values) > FLOAT32_MAX  # False for NaN
    return np.where(too_large, np.nan, values) if too_large.any() else values


class KeypointProcessor:
    """rgb: a PointCloud2 of 17 keypoints (``u``, ``v`` in pixels of the 640 x 480 MM-Fi image,
    optional ``score``) or a detector's (17, 3) array -> normalised keypoints."""

    modality = "rgb"

    def __init__(self, config: ModelConfig) -> None:
        self.config = config

    def process(self, msg: Any) -> Features:
        """Decode the keypoints message (any float or integer datatype of ``u``, ``v``, ``score``)."""
        names = {f.name for f in msg.fields}
        columns = KEYPOINT_FIELDS if KEYPOINT_FIELDS[2] in names else KEYPOINT_FIELDS[:2]
        keypoints = codecs.read_point_columns(msg, columns, dtype=np.float64)
        return self.from_keypoints(keypoints, codecs.header_stamp_ns(msg), msg.header.frame_id)

    def from_keypoints(self, keypoints: np.ndarray, stamp_ns: int, frame_id: str) -> Features:
        """(17, 2) or (17, 3) keypoints (u, v[, score]) in model pixels -> features."""
        keypoints = _unrepresentable_as_nan(np.asarray(keypoints, dtype=np.float64))
        if keypoints.ndim != 2 or keypoints.shape[0] != NUM_KEYPOINTS_2D or keypoints.shape[1] not in (2, 3):
            raise CodecError(
                f"keypoints: expected {NUM_KEYPOINTS_2D} points of (u, v[, score]), got shape {keypoints.shape}")
        result = _features("rgb", stamp_ns, frame_id, keypoints[:, :2], self.config)
        if result.present:
            score = keypoints[:, 2] if keypoints.shape[1] == 3 else np.ones(NUM_KEYPOINTS_2D)
            usable = np.isfinite(keypoints).all(axis=1)
            result.arrays[SCORE_KEY] = np.where(usable, score, 0.0).astype(np.float32)
        return result


class CloudProcessor:
    """lidar / mmwave: a PointCloud2 -> finite points inside the region of interest -> model points.

    Fields are read by name (``x``, ``y``, ``z`` and for radar ``velocity`` / ``intensity``,
    aliases such as ``doppler`` / ``snr`` accepted) in any numeric datatype.
    """

    def __init__(self, modality: str, config: ModelConfig, roi: RegionOfInterest | None = None) -> None:
        if modality not in POINT_FIELDS:
            raise ValueError(f"CloudProcessor handles {list(POINT_FIELDS)}, not {modality!r}")
        self.modality, self.config = modality, config
        self.roi = roi or RegionOfInterest()

    def process(self, msg: Any) -> Features:
        points = _unrepresentable_as_nan(codecs.read_point_columns(msg, POINT_FIELDS[self.modality], dtype=np.float64))
        cleaned = clean_points(points, self.roi)
        return _features(self.modality, codecs.header_stamp_ns(msg), msg.header.frame_id, cleaned.points,
                         self.config, non_finite=cleaned.non_finite, outside=cleaned.outside)


class CsiProcessor:
    """wifi: CSI packet Images of any layout and rate -> (2, 3, 114, 10) windows -> CSI features.

    Each packet (amplitude/phase or complex I/Q, :func:`codecs.read_csi_packet`) is mapped onto
    the model's 3 antennas x 114 subcarriers (:class:`CsiLayoutMapper`, default: already on it)
    and the assembler resamples the packets of each frame onto its 10 slots by stamp.
    """

    modality = "wifi"

    def __init__(self, config: ModelConfig, assembler: CsiWindowAssembler | None = None,
                 layout: CsiLayoutMapper | None = None) -> None:
        self.config = config
        self.assembler = assembler or CsiWindowAssembler()
        self.layout = layout or CsiLayoutMapper()
        self._frame_id = ""

    def process(self, msg: Any) -> list[Features]:
        """Add one packet; returns the features of the windows it completes (often none)."""
        amplitude, phase = map(_unrepresentable_as_nan, codecs.read_csi_packet(msg))
        amplitude, phase = self.layout(amplitude, phase)
        self._frame_id = msg.header.frame_id
        windows = self.assembler.add(codecs.header_stamp_ns(msg), amplitude, phase)
        return [self._window_features(window) for window in windows]

    def flush(self) -> list[Features]:
        """Features of the windows still being filled (missing packets are NaN)."""
        return [self._window_features(window) for window in self.assembler.flush()]

    def _window_features(self, window: CsiWindow) -> Features:
        return _features("wifi", window.stamp_ns, self._frame_id, window.csi, self.config)
