"""A driver's PointCloud2 -> our point columns (x, y, z, velocity, intensity): field names, axes.

Point-cloud drivers name their fields differently and a few publish axes other than REP 103's
(x forward, y left, z up). A :class:`CloudLayout` says which of the driver's fields is each of
our columns and, for a driver whose frame breaks REP 103, how its axes map onto ours. Presets
(:data:`PRESETS`, docs/bags.md "Drivers" cites where each comes from):

* ``auto`` (default): our names, plus the spellings of ``codecs.FIELD_ALIASES`` (``doppler`` /
  ``v_r`` for ``velocity``, ``snr`` / ``power`` for ``intensity``); REP 103 axes.
* ``ti_mmwave``: TI's mmWave ROS 2 driver (``ti_mmwave_rospkg``, ``/ti_mmwave/radar_scan_pcl``):
  FLOAT32 ``x``, ``y``, ``z``, ``intensity`` (SNR, dB), ``velocity`` (radial velocity, m/s); the
  driver already turns the sensor's axes (x right, y boresight) into REP 103.
* ``ouster``: ouster-ros (``/ouster/points``, point type ``original``): ``x``, ``y``, ``z``,
  ``intensity`` (signal photons), ``t``, ``reflectivity``, ``ring``, ``ambient``, ``range``.
* ``velodyne``: velodyne_pointcloud (``velodyne_points``): ``x``, ``y``, ``z``, ``intensity``,
  ``ring``, ``time``.
* ``provizio``: Provizio's radar driver: ``radar_relative_radial_velocity`` and
  ``signal_to_noise_ratio`` for velocity and intensity.

The normal way to say where a sensor is and how it is turned is the calibration (TF or the
calibration file, docs/geometry.md); ``axes`` is only for a driver whose published axes are not a
REP 103 frame at all (e.g. a bridge publishing TI's raw sensor coordinates, x right, y boresight,
z up: ``axes = "y -x z"``; a left-handed x forward, y right, z up: ``"x -y z"``).
``velocity_scale`` multiplies the velocity column (``-1`` for a driver whose Doppler is positive
towards the sensor: ours is positive away; ``1/3.6`` for km/h).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from mmhpe_ros.modalities import MMWAVE_FIELDS
from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.codecs import CodecError

OUR_FIELDS: tuple[str, ...] = MMWAVE_FIELDS  # x, y, z, velocity, intensity: every column a cloud node reads
AXIS_NAMES: tuple[str, ...] = ("x", "y", "z")


@dataclass(frozen=True)
class CloudLayout:
    """Which driver field is each of our columns (``fields``: ours -> the driver's; a column not
    listed keeps its own name), how the driver's axes map onto ours (``axes``: our x, y, z are
    these signed driver axes, e.g. ``("y", "-x", "z")``) and a factor for the velocity column."""

    name: str = "auto"
    fields: Mapping[str, str] = field(default_factory=dict)
    axes: tuple[str, str, str] = AXIS_NAMES  # type: ignore[assignment]
    velocity_scale: float = 1.0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.fields) - set(OUR_FIELDS))
        if unknown:
            raise ValueError(f"cloud layout {self.name!r}: unknown columns {unknown}; ours are {list(OUR_FIELDS)}")
        empty = [ours for ours, theirs in self.fields.items() if not isinstance(theirs, str) or not theirs]
        if empty:
            raise ValueError(f"cloud layout {self.name!r}: columns {empty} need a driver field name")
        object.__setattr__(self, "fields", dict(self.fields))
        object.__setattr__(self, "axes", tuple(self.axes))
        signs_and_axes = [_signed_axis(axis) for axis in self.axes]
        if len(self.axes) != 3 or sorted(axis for _, axis in signs_and_axes) != list(range(3)):
            raise ValueError(f"cloud layout {self.name!r}: axes must name x, y and z once each (with an "
                             f"optional sign, e.g. 'y -x z'), got {' '.join(self.axes)!r}")
        if not np.isfinite(self.velocity_scale) or self.velocity_scale == 0:
            raise ValueError(f"cloud layout {self.name!r}: velocity_scale must be finite and non-zero, "
                             f"got {self.velocity_scale}")
        rotation = np.zeros((3, 3))
        for ours, (sign, theirs) in enumerate(signs_and_axes):
            rotation[ours, theirs] = sign
        rotation.flags.writeable = False
        object.__setattr__(self, "_rotation", rotation)

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) signed permutation: our xyz = ``rotation @`` the driver's xyz."""
        return self._rotation  # type: ignore[attr-defined]

    @property
    def identity_axes(self) -> bool:
        return self.axes == AXIS_NAMES

    def field_name(self, column: str) -> str:
        """The driver's field read for one of our columns."""
        return self.fields.get(column, column)

    def read(self, msg: Any, columns: Sequence[str] = OUR_FIELDS) -> np.ndarray:
        """(N, len(columns)) float64 of our ``columns`` from a PointCloud2, N = height * width (an
        organised cloud row by row; NaN points kept, as the driver sent them); a read-only view of
        the message's buffer where no conversion is needed.

        Raises :class:`~mmhpe_ros.runtime.codecs.CodecError` for a missing field (naming this
        layout and its parameters), or as :func:`codecs.read_point_columns` does.
        """
        unknown = [c for c in columns if c not in OUR_FIELDS]
        if unknown:
            raise ValueError(f"columns {unknown} are not ours; ours are {list(OUR_FIELDS)}")
        names = [self.field_name(c) for c in columns]
        try:
            values = codecs.read_point_columns(msg, names, dtype=np.float64)
        except CodecError as error:
            if "no field" not in str(error):
                raise
            raise CodecError(f"{error} (cloud_layout {self.name!r} reads {dict(zip(columns, names))}; set "
                             "cloud_layout or field_map to the driver's names)") from None
        return self._convert(values, columns)

    def _convert(self, values: np.ndarray, columns: Sequence[str]) -> np.ndarray:
        columns = list(columns)
        xyz = [columns.index(a) if a in columns else -1 for a in AXIS_NAMES]
        turn = not self.identity_axes
        if turn and min(xyz) < 0:
            raise ValueError(f"cloud layout {self.name!r} maps axes ({' '.join(self.axes)}): read x, y and z together")
        scale = "velocity" in columns and self.velocity_scale != 1.0
        if not (turn or scale):
            return values
        out = np.array(values, dtype=np.float64, copy=True)
        if turn:
            out[:, xyz] = values[:, xyz] @ self.rotation.T
        if scale:
            out[:, columns.index("velocity")] *= self.velocity_scale
        return out


def _signed_axis(text: str) -> tuple[float, int]:
    """``"-x"`` -> (-1.0, 0); ValueError for anything but an optionally signed x, y or z."""
    if not isinstance(text, str):
        raise ValueError(f"axis {text!r} is not a string")
    sign = -1.0 if text.startswith("-") else 1.0
    name = text.lstrip("+-")
    if name not in AXIS_NAMES or len(text) - len(name) > 1:
        raise ValueError(f"axis {text!r}: expected x, y or z with an optional sign")
    return sign, AXIS_NAMES.index(name)


PRESETS: dict[str, CloudLayout] = {
    "auto": CloudLayout("auto"),
    "ti_mmwave": CloudLayout("ti_mmwave", {"velocity": "velocity", "intensity": "intensity"}),
    "ouster": CloudLayout("ouster", {"intensity": "intensity"}),
    "velodyne": CloudLayout("velodyne", {"intensity": "intensity"}),
    "provizio": CloudLayout("provizio", {"velocity": "radar_relative_radial_velocity",
                                         "intensity": "signal_to_noise_ratio"}),
}

# Node parameters of a cloud layout: name, default, description (the cloud nodes declare them).
LAYOUT_PARAMETERS: tuple[tuple[str, Any, str], ...] = (
    ("cloud_layout", "auto", f"field names of the driver's PointCloud2: one of {sorted(PRESETS)}"),
    ("field_map", "", "overrides of the preset, 'ours=theirs' pairs separated by spaces or commas "
                      "(ours: x y z velocity intensity), e.g. 'velocity=doppler intensity=snr'"),
    ("axes", "x y z", "our x, y, z as signed driver axes, only for drivers whose frame is not REP 103 "
                      "(the calibration/TF is the normal way), e.g. 'y -x z'"),
    ("velocity_scale", 1.0, "factor on the driver's velocity (ours: radial, m/s, positive away from "
                            "the sensor); -1 flips the sign"),
)


def layout_from_parameters(cloud_layout: str = "auto", field_map: str = "", axes: str = "x y z",
                           velocity_scale: float = 1.0) -> CloudLayout:
    """The layout a node's parameters (:data:`LAYOUT_PARAMETERS`) describe; ValueError saying what
    is wrong otherwise."""
    if cloud_layout not in PRESETS:
        raise ValueError(f"unknown cloud_layout {cloud_layout!r}; presets: {sorted(PRESETS)}")
    preset = PRESETS[cloud_layout]
    fields = dict(preset.fields)
    for pair in field_map.replace(",", " ").split():
        ours, sep, theirs = pair.partition("=")
        if not sep or not ours or not theirs:
            raise ValueError(f"field_map entry {pair!r}: expected ours=theirs, e.g. velocity=doppler")
        fields[ours] = theirs
    axis_list = axes.replace(",", " ").split()
    if len(axis_list) != 3:
        raise ValueError(f"axes must be three signed axis names, e.g. 'y -x z', got {axes!r}")
    name = cloud_layout if (fields, axis_list, velocity_scale) == (dict(preset.fields), list(AXIS_NAMES), 1.0) \
        else f"{cloud_layout} (changed)"
    return CloudLayout(name, fields, tuple(axis_list), float(velocity_scale))  # type: ignore[arg-type]
