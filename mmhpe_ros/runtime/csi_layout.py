"""CSI packets of any antenna x subcarrier layout -> the model's 3 antennas x 114 subcarriers.

A CSI tool reports one complex value per receive antenna and OFDM subcarrier; which subcarriers
depends on the hardware and the channel width. A layout names them by subcarrier index (multiples
of the 312.5 kHz subcarrier spacing from the channel centre, ascending, as the columns of a
``wifi/csi`` packet are ordered). :data:`LAYOUTS` has the common tools' presets; the model's grid
is MM-Fi's, ``atheros_40mhz`` (Atheros CSI Tool, 40 MHz HT: -58..-2, 2..58).

:class:`CsiLayoutMapper` maps one packet (amplitude in dB, phase in radians) onto the model grid:

* **subcarriers** (``subcarrier_mapping``): ``frequency`` interpolates amplitude and unwrapped
  phase linearly at the model's indices, so each column keeps its frequency; model subcarriers
  outside the source's band (a 20 MHz source covers only -28..28 of -58..58) are NaN, which the
  model fills as MM-Fi's loader fills missing values (the packet's mean amplitude; phase 0 after
  sanitising); source subcarriers outside the model's band (Nexmon 80 MHz beyond +-58) are unused.
  ``stretch`` maps the source's index range linearly onto -58..58 before interpolating, so every
  model column gets data (its frequency scale then differs from MM-Fi's by the bandwidth ratio).
  A source already on the model grid is passed through unchanged.
* **antennas** (``antenna_policy``): more antennas than 3: the rows ``antenna_select`` (default
  the first 3). Fewer: ``repeat`` cycles the rows (1 antenna -> rows 0, 0, 0; 2 -> 0, 1, 0);
  ``fill`` leaves the missing rows NaN (filled by the model as above).

Interpolation never invents phase wraps: phases are unwrapped along the source's subcarriers
first (non-finite values as 0, as the model's sanitiser does), then interpolated; the result is
left unwrapped (the model unwraps and detrends again, a no-op on it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mmhpe_ros.modalities import CSI_ANTENNAS, CSI_SUBCARRIERS
from mmhpe_ros.runtime.codecs import CodecError


def _indices(*ranges: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.concatenate(ranges))


# Occupied (data + pilot) subcarrier indices of each preset, ascending. Intel 5300 reports 30
# grouped subcarriers (802.11n Ng = 2 at 20 MHz, Ng = 4 at 40 MHz); ESP32 HT20 is the L-LTF's 52;
# Nexmon reports every FFT bin, of which csi-bridge keeps the occupied ones listed here.
LAYOUTS: dict[str, tuple[int, ...]] = {
    "atheros_40mhz": _indices(np.arange(-58, -1), np.arange(2, 59)),  # 114, MM-Fi's and the model's
    "atheros_20mhz": _indices(np.arange(-28, 0), np.arange(1, 29)),  # 56
    "intel5300": _indices(np.arange(-28, -1, 2), [-1, 1], np.arange(3, 28, 2), [28]),  # 30
    "intel5300_40mhz": _indices(np.arange(-58, -2, 4), [-2, 2], np.arange(6, 58, 4), [58]),  # 30
    "esp32_ht20": _indices(np.arange(-26, 0), np.arange(1, 27)),  # 52
    "nexmon_20mhz": _indices(np.arange(-28, 0), np.arange(1, 29)),  # 56 of 64 bins
    "nexmon_40mhz": _indices(np.arange(-58, -1), np.arange(2, 59)),  # 114 of 128 bins
    "nexmon_80mhz": _indices(np.arange(-122, -1), np.arange(2, 123)),  # 242 of 256 bins
}
MODEL_LAYOUT = "atheros_40mhz"
MODEL_SUBCARRIERS = np.array(LAYOUTS[MODEL_LAYOUT], dtype=np.float64)
SUBCARRIER_MAPPINGS = ("frequency", "stretch")
ANTENNA_POLICIES = ("repeat", "fill")
assert len(MODEL_SUBCARRIERS) == CSI_SUBCARRIERS


def layout_indices(layout: str | Sequence[float]) -> np.ndarray:
    """Subcarrier indices of a preset name or an explicit ascending list; ValueError otherwise."""
    if isinstance(layout, str):
        if layout not in LAYOUTS:
            raise ValueError(f"unknown CSI layout {layout!r}; presets: {sorted(LAYOUTS)}, or a list of indices")
        return np.array(LAYOUTS[layout], dtype=np.float64)
    indices = np.asarray(layout, dtype=np.float64)
    if indices.ndim != 1 or indices.size < 2 or not np.isfinite(indices).all() or (np.diff(indices) <= 0).any():
        raise ValueError(f"CSI subcarrier indices must be at least 2 finite, strictly ascending values, got {layout}")
    return indices


@dataclass(frozen=True)
class _Interpolation:
    """Columns ``left`` / ``left + 1`` of the source and the weight of the right one, per model column."""

    left: np.ndarray
    weight: np.ndarray
    outside: np.ndarray  # model columns with no source data (NaN)


class CsiLayoutMapper:
    """Maps (antennas, subcarriers) packets of one source layout onto the model's (3, 114)."""

    def __init__(self, layout: str | Sequence[float] = MODEL_LAYOUT, subcarrier_mapping: str = "frequency",
                 antenna_policy: str = "repeat", antenna_select: Sequence[int] | None = None) -> None:
        if subcarrier_mapping not in SUBCARRIER_MAPPINGS:
            raise ValueError(f"subcarrier_mapping must be one of {SUBCARRIER_MAPPINGS}, got {subcarrier_mapping!r}")
        if antenna_policy not in ANTENNA_POLICIES:
            raise ValueError(f"antenna_policy must be one of {ANTENNA_POLICIES}, got {antenna_policy!r}")
        select = tuple(range(CSI_ANTENNAS)) if not antenna_select else tuple(int(a) for a in antenna_select)
        if len(select) != CSI_ANTENNAS or min(select) < 0:
            raise ValueError(f"antenna_select needs {CSI_ANTENNAS} row numbers >= 0, got {antenna_select}")
        self.source = layout_indices(layout)
        self.subcarrier_mapping, self.antenna_policy, self.antenna_select = subcarrier_mapping, antenna_policy, select
        self.identity = len(self.source) == CSI_SUBCARRIERS and bool(np.array_equal(self.source, MODEL_SUBCARRIERS))
        self._interpolation = None if self.identity else self._plan()

    @property
    def subcarriers(self) -> int:
        """Columns a packet of the source layout has."""
        return len(self.source)

    def _plan(self) -> _Interpolation:
        source = self.source
        if self.subcarrier_mapping == "stretch":  # source range -> model range, linearly
            low, high = MODEL_SUBCARRIERS[0], MODEL_SUBCARRIERS[-1]
            source = low + (source - source[0]) * (high - low) / (source[-1] - source[0])
        target = MODEL_SUBCARRIERS
        outside = (target < source[0] - 1e-9) | (target > source[-1] + 1e-9)
        left = np.clip(np.searchsorted(source, target, side="right") - 1, 0, len(source) - 2)
        weight = np.clip((target - source[left]) / (source[left + 1] - source[left]), 0.0, 1.0)
        return _Interpolation(left, weight, outside)

    def __call__(self, amplitude: np.ndarray, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(antennas, source subcarriers) amplitude and phase -> (3, 114) each, float64.

        Raises :class:`CodecError` when the packet's column count is not the layout's.
        """
        amplitude, phase = np.asarray(amplitude), np.asarray(phase)
        if amplitude.ndim != 2 or amplitude.shape != phase.shape or amplitude.shape[1] != self.subcarriers \
                or amplitude.shape[0] < 1:
            raise CodecError(
                f"CSI packet: amplitude {amplitude.shape} and phase {phase.shape}, expected (antennas >= 1, "
                f"{self.subcarriers}) for the configured layout (csi_layout / subcarrier_indices)")
        rows = self._rows(amplitude.shape[0])
        with np.errstate(invalid="ignore"):  # signalling NaNs off the wire become quiet NaNs
            amplitude, phase = amplitude.astype(np.float64), phase.astype(np.float64)
            if rows is not None:
                amplitude, phase = amplitude[rows], phase[rows]
            if not self.identity:
                amplitude, phase = self._resample(amplitude, phase)
        if rows is None:  # fewer antennas than the model's, policy "fill"
            missing = CSI_ANTENNAS - amplitude.shape[0]
            pad = np.full((missing, amplitude.shape[1]), np.nan)
            amplitude, phase = np.vstack([amplitude, pad]), np.vstack([phase, pad])
        return amplitude, phase

    def _rows(self, antennas: int) -> np.ndarray | None:
        """Source rows for the model's 3 antennas (None: keep all and pad, policy "fill")."""
        if antennas >= CSI_ANTENNAS:
            if max(self.antenna_select) >= antennas:
                raise CodecError(f"CSI packet has {antennas} antennas; antenna_select {self.antenna_select} "
                                 "names a row it does not have")
            return np.array(self.antenna_select)
        if self.antenna_policy == "repeat":
            return np.arange(CSI_ANTENNAS) % antennas
        return None

    def _resample(self, amplitude: np.ndarray, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        plan = self._interpolation
        assert plan is not None
        phase = np.where(np.isfinite(phase), phase, 0.0)
        step = np.diff(phase, axis=1)  # unwrap: each step between neighbours taken into [-pi, pi)
        step -= 2 * np.pi * np.floor((step + np.pi) / (2 * np.pi))
        unwrapped = np.concatenate([phase[:, :1], phase[:, :1] + np.cumsum(step, axis=1)], axis=1)
        values = np.stack([np.where(np.isinf(amplitude), np.nan, amplitude), unwrapped])  # (2, A, S)
        left, right = values[..., plan.left], values[..., plan.left + 1]
        resampled = left * (1.0 - plan.weight) + right * plan.weight
        # A weight of exactly 0 or 1 takes one column, so a missing neighbour does not spread.
        resampled = np.where(plan.weight == 0.0, left, np.where(plan.weight == 1.0, right, resampled))
        resampled[..., plan.outside] = np.nan
        return resampled[0], resampled[1]
