"""Sensor messages -> what each modality observed, in the base frame (stage 1; no rclpy).

Each processor decodes its messages with :mod:`mmhpe_ros.runtime.codecs` (fields by name and
datatype), moves them into the base frame with the transform of the message's frame
(``transforms(frame_id, stamp_ns)``: TF or the calibration; a missing one raises
:class:`~mmhpe_ros.geometry.calibration.MissingTransformError`, never a silent identity) and
runs :mod:`mmhpe_ros.model.observe` with the model's :class:`ModelConfig`, so a node computes
exactly what training computed. Bad messages raise :class:`~mmhpe_ros.runtime.codecs.CodecError`
saying why; the node drops and counts them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mmhpe_ros.data.bag_format import POINT_FIELDS
from mmhpe_ros.geometry.camera import MMFI_CAMERA, CameraIntrinsics
from mmhpe_ros.geometry.localise import LidarCounts
from mmhpe_ros.geometry.transforms import RigidTransform
from mmhpe_ros.modalities import KEYPOINT_FIELDS
from mmhpe_ros.model.card import read_card
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.observe import Rig, observe_lidar, observe_mmwave, observe_rgb
from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.codecs import CodecError
from mmhpe_ros.runtime.csi_layout import CsiLayoutMapper
from mmhpe_ros.runtime.csi_window import CsiWindow, CsiWindowAssembler
from mmhpe_ros.skeleton import NUM_KEYPOINTS_2D

FLOAT32_MAX = float(np.finfo(np.float32).max)  # model inputs are float32: larger values count as non-finite
Transforms = Callable[[str, int], RigidTransform]  # (frame id, stamp ns) -> T_base_frame


@dataclass(frozen=True)
class Features:
    """What one modality observed at one source stamp (stage 1 of :mod:`mmhpe_ros.model.observe`).

    ``arrays`` are that modality's observation arrays (base frame) when ``present``; empty when
    the input carried nothing usable (no person-shaped cluster, no point in the search region, no
    keypoint). ``frame_id`` is the base frame's; ``non_finite`` counts the points dropped as such."""

    modality: str
    stamp_ns: int
    frame_id: str
    arrays: dict[str, np.ndarray] = field(repr=False)
    present: bool
    non_finite: int = 0


def model_config(model_path: str | Path) -> ModelConfig:
    """The :class:`ModelConfig` on the card of a model file (weights or card path)."""
    return ModelConfig.from_dict(read_card(model_path)["config"])


def calibration_transforms(rig: Rig) -> Transforms:
    """The rig's calibration as a ``transforms`` callable (where no TF is at hand)."""
    return lambda frame_id, stamp_ns: rig.calibration.to_base(frame_id)


def _features(modality: str, stamp_ns: int, rig: Rig, arrays: dict[str, np.ndarray], present: bool,
              non_finite: int = 0) -> Features:
    """Features of ``arrays``; CodecError if a float array is not finite (absurd input values)."""
    bad = [key for key, array in arrays.items() if array.dtype.kind == "f" and not np.isfinite(array).all()]
    if bad:
        raise CodecError(f"{modality}: values out of range (observations {bad} would not be finite in float32)")
    return Features(modality, stamp_ns, rig.calibration.base_frame, arrays if present else {}, present, non_finite)


def _unrepresentable_as_nan(values: np.ndarray) -> np.ndarray:
    """``values`` with every magnitude beyond float32's range set to NaN (a copy only if needed)."""
    too_large = np.abs(values) > FLOAT32_MAX  # False for NaN
    return np.where(too_large, np.nan, values) if too_large.any() else values


class KeypointProcessor:
    """rgb: a PointCloud2 of 17 keypoints (``u``, ``v`` in pixels, optional ``score``) or a
    detector's (17, 3) array -> rays in the base frame.

    Intrinsics: the latest ``sensor_msgs/CameraInfo`` given to :meth:`set_camera_info`, else the
    calibration's ``intrinsics`` for the keypoints' frame, else MM-Fi's nominal camera
    (:attr:`nominal_intrinsics` tells the node to warn)."""

    modality = "rgb"

    def __init__(self, config: ModelConfig, rig: Rig, transforms: Transforms | None = None) -> None:
        self.config, self.rig = config, rig
        self.transforms = transforms or calibration_transforms(rig)
        self.camera_info: CameraIntrinsics | None = None
        self.nominal_intrinsics = False

    def set_camera_info(self, msg: Any) -> None:
        """Use this CameraInfo's intrinsics from now on (an uncalibrated one, K all zero, is ignored)."""
        camera = CameraIntrinsics.from_camera_info(msg)
        if camera is not None:
            self.camera_info = camera

    def intrinsics(self, frame_id: str) -> CameraIntrinsics:
        camera = self.camera_info or self.rig.calibration.camera(frame_id)
        self.nominal_intrinsics = camera is None
        return camera or MMFI_CAMERA

    def process(self, msg: Any) -> Features:
        """Decode the keypoints message (any float or integer datatype of ``u``, ``v``, ``score``)."""
        names = {f.name for f in msg.fields}
        columns = KEYPOINT_FIELDS if KEYPOINT_FIELDS[2] in names else KEYPOINT_FIELDS[:2]
        keypoints = codecs.read_point_columns(msg, columns, dtype=np.float64)
        return self.from_keypoints(keypoints, codecs.header_stamp_ns(msg), msg.header.frame_id)

    def from_keypoints(self, keypoints: np.ndarray, stamp_ns: int, frame_id: str) -> Features:
        """(17, 2) or (17, 3) keypoints (u, v[, score]) in pixels of the camera of ``frame_id``."""
        keypoints = _unrepresentable_as_nan(np.asarray(keypoints, dtype=np.float64))
        if keypoints.ndim != 2 or keypoints.shape[0] != NUM_KEYPOINTS_2D or keypoints.shape[1] not in (2, 3):
            raise CodecError(
                f"keypoints: expected {NUM_KEYPOINTS_2D} points of (u, v[, score]), got shape {keypoints.shape}")
        to_base = self.transforms(frame_id, stamp_ns)
        arrays, present = observe_rgb(keypoints, self.intrinsics(frame_id), to_base)
        return _features("rgb", stamp_ns, self.rig, arrays, present)


class CloudProcessor:
    """lidar / mmwave: a PointCloud2 -> the base frame -> the person's points (LiDAR: ground and
    background removed, clustered; radar: the points in the search region).

    Fields are read by name (``x``, ``y``, ``z`` and for radar ``velocity`` / ``intensity``,
    aliases such as ``doppler`` / ``snr`` accepted) in any numeric datatype."""

    def __init__(self, modality: str, config: ModelConfig, rig: Rig, transforms: Transforms | None = None) -> None:
        if modality not in POINT_FIELDS:
            raise ValueError(f"CloudProcessor handles {list(POINT_FIELDS)}, not {modality!r}")
        self.modality, self.config, self.rig = modality, config, rig
        self.transforms = transforms or calibration_transforms(rig)

    @property
    def counts(self) -> LidarCounts:
        """What the LiDAR localiser saw in the last scan (diagnostics)."""
        return self.rig.localiser.counts

    def process(self, msg: Any) -> Features:
        """Decode one PointCloud2 (fields by name, the driver's own axes) and process its points."""
        points = codecs.read_point_columns(msg, POINT_FIELDS[self.modality], dtype=np.float64)
        return self.process_points(points, codecs.header_stamp_ns(msg), msg.header.frame_id)

    def process_points(self, points: np.ndarray, stamp: int, frame_id: str) -> Features:
        """(N, columns) points in the sensor frame ``frame_id`` (NaN rows allowed) -> features."""
        points = _unrepresentable_as_nan(np.asarray(points, dtype=np.float64))
        finite = np.isfinite(points).all(axis=1)
        to_base = self.transforms(frame_id, stamp)
        with np.errstate(over="ignore"):  # coordinates near float32's limit turn inf: outside the search region
            if self.modality == "lidar":
                arrays, present = observe_lidar(points[finite], to_base, self.rig.localiser, self.config)
            else:
                arrays, present = observe_mmwave(points[finite], to_base, self.rig.region, self.rig.ground_height)
        return _features(self.modality, stamp, self.rig, arrays, present, int(len(points) - finite.sum()))


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
        from mmhpe_ros.model.inputs import prepare_csi

        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            arrays, present = prepare_csi(window.csi, self.config)
        bad = [key for key, array in arrays.items() if array.dtype.kind == "f" and not np.isfinite(array).all()]
        if bad:
            raise CodecError(f"wifi: values out of range (observations {bad} would not be finite in float32)")
        return Features("wifi", window.stamp_ns, self._frame_id, arrays if present else {}, present)
