"""100 Hz WiFi CSI packets -> the model's (2, antennas, subcarriers, packets) frame windows.

Packets are placed on the bags' grid (:mod:`mmhpe_ros.data.bag_format`): packet ``k`` of the
frame stamped ``t`` is stamped ``t + k * PACKET_PERIOD_NS``, frames every ``FRAME_PERIOD_NS``
from ``origin_ns`` (0: frames on whole multiples of 100 ms, as our bags and the replayer stamp
them; ``None``: the first packet after a reset opens a frame, for live sources with their own
clock). Stamps are rounded to the nearest packet slot, so jitter below half a packet period
(5 ms) is harmless.

Windows are emitted in stamp order: as soon as a window's ``packets`` slots are all filled (and
every older window is out); otherwise once a packet more than ``lag_frames`` frames newer
arrives (so packets reordered by up to that much still find their window), or on
:meth:`CsiWindowAssembler.flush` (the node calls it when the stream goes quiet).
Missing packets are NaN, which the model's CSI normalisation (``model.inputs``) treats as
MM-Fi's loader treats missing values. Windows with fewer than ``min_packets`` packets are
dropped and counted. A stamp more than ``reset_after_frames`` frames behind the newest (default
``lag_frames + 1``: further back than any window still waiting; a bag loop, a restarted sensor)
resets the assembler, after emitting what it held; packets for a window already emitted are
dropped as late. A jump back of fewer frames (a bag shorter than that looping) reads as late
packets. At most ``lag_frames + 1`` windows are held, so memory is bounded whatever
the stamps do.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mmhpe_ros.data.bag_format import PACKET_PERIOD_NS
from mmhpe_ros.modalities import CSI_ANTENNAS, CSI_PACKETS_PER_FRAME, CSI_SUBCARRIERS
from mmhpe_ros.runtime.codecs import CodecError


@dataclass(frozen=True)
class CsiWindow:
    """One frame's CSI: ``csi`` (2, antennas, subcarriers, packets) float64, NaN where missing."""

    stamp_ns: int
    csi: np.ndarray
    packets: int  # how many packet slots were filled


@dataclass
class CsiCounters:
    """What the assembler did with its input, for diagnostics."""

    packets: int = 0  # packets accepted into a window
    late: int = 0  # packets for a window already emitted (or older)
    duplicates: int = 0  # a second packet for a filled slot (the newer one is kept)
    resets: int = 0  # stamps jumped back (bag loop, restarted source)
    windows: int = 0  # windows emitted
    incomplete: int = 0  # emitted windows with missing packets
    too_sparse: int = 0  # windows dropped for having fewer than min_packets packets


@dataclass
class _Pending:
    csi: np.ndarray
    filled: np.ndarray  # (packets,) bool


@dataclass
class CsiWindowAssembler:
    """Collects CSI packets into frame windows; see the module docstring for the rules."""

    origin_ns: int | None = 0
    antennas: int = CSI_ANTENNAS
    subcarriers: int = CSI_SUBCARRIERS
    packets: int = CSI_PACKETS_PER_FRAME
    packet_period_ns: int = PACKET_PERIOD_NS
    lag_frames: int = 1
    min_packets: int = 1
    reset_after_frames: int | None = None  # None: lag_frames + 1
    counters: CsiCounters = field(default_factory=CsiCounters)

    def __post_init__(self) -> None:
        if self.packets < 1 or self.packet_period_ns <= 0:
            raise ValueError(f"need packets >= 1 and packet_period_ns > 0, got {self.packets}, {self.packet_period_ns}")
        if not 1 <= self.min_packets <= self.packets:
            raise ValueError(f"min_packets must be in 1..{self.packets}, got {self.min_packets}")
        if self.reset_after_frames is None:
            self.reset_after_frames = self.lag_frames + 1
        if self.lag_frames < 0 or self.reset_after_frames <= self.lag_frames:
            raise ValueError(
                f"need 0 <= lag_frames < reset_after_frames, got {self.lag_frames}, {self.reset_after_frames}")
        self._configured_origin = self.origin_ns
        self._pending: dict[int, _Pending] = {}
        self._newest: int | None = None  # newest frame number seen
        self._emitted: int | None = None  # newest frame number emitted (or dropped)

    @property
    def frame_period_ns(self) -> int:
        return self.packets * self.packet_period_ns

    @property
    def pending(self) -> int:
        """Windows being filled (never more than ``lag_frames + 1``)."""
        return len(self._pending)

    def add(self, stamp_ns: int, amplitude: np.ndarray, phase: np.ndarray) -> list[CsiWindow]:
        """Place one packet; returns the windows this completes or pushes out, oldest first.

        Raises :class:`CodecError` for a packet of another (antennas, subcarriers) shape.
        """
        shape = (self.antennas, self.subcarriers)
        if np.shape(amplitude) != shape or np.shape(phase) != shape:
            raise CodecError(
                f"CSI packet: amplitude {np.shape(amplitude)} and phase {np.shape(phase)}, expected {shape} "
                "(antennas, subcarriers)")
        if self.origin_ns is None:
            self.origin_ns = int(stamp_ns)
        frame, slot = self._locate(int(stamp_ns))
        out: list[CsiWindow] = []
        if self._newest is not None and frame < self._newest - self.reset_after_frames:
            out += self._restart()  # windows of before the jump are finished, not lost
            if self.origin_ns is None:
                self.origin_ns = int(stamp_ns)
                frame, slot = self._locate(int(stamp_ns))
        if self._emitted is not None and frame <= self._emitted:
            self.counters.late += 1
            return out
        self._newest = frame if self._newest is None else max(self._newest, frame)
        window = self._pending.get(frame)
        if window is None:
            csi = np.full((2, self.antennas, self.subcarriers, self.packets), np.nan)
            window = self._pending[frame] = _Pending(csi, np.zeros(self.packets, dtype=bool))
        if window.filled[slot]:
            self.counters.duplicates += 1
        else:
            self.counters.packets += 1
        with np.errstate(invalid="ignore"):  # signalling NaNs off the wire become quiet NaNs
            window.csi[0, :, :, slot] = amplitude
            window.csi[1, :, :, slot] = phase
        window.filled[slot] = True
        for pending in sorted(self._pending):  # in stamp order: a full window waits for older ones
            if pending >= self._newest - self.lag_frames and not self._pending[pending].filled.all():
                break
            finished = self._finish(pending)
            if finished is not None:
                out.append(finished)
        return out

    def flush(self) -> list[CsiWindow]:
        """Emit every window being filled (e.g. the stream went quiet), oldest first."""
        return [w for w in map(self._finish, sorted(self._pending)) if w is not None]

    def reset(self) -> None:
        """Forget everything held (the counters stay)."""
        self._pending.clear()
        self._newest = self._emitted = None
        self.origin_ns = self._configured_origin

    def _locate(self, stamp_ns: int) -> tuple[int, int]:
        """(frame number, packet slot) of a stamp: the nearest packet slot on the grid."""
        origin = stamp_ns if self.origin_ns is None else self.origin_ns
        nearest = (stamp_ns - origin + self.packet_period_ns // 2) // self.packet_period_ns
        return divmod(nearest, self.packets)

    def _restart(self) -> list[CsiWindow]:
        windows = self.flush()
        self.counters.resets += 1
        self.reset()
        return windows

    def _finish(self, frame: int) -> CsiWindow | None:
        window = self._pending.pop(frame)
        self._emitted = frame if self._emitted is None else max(self._emitted, frame)
        count = int(window.filled.sum())
        if count < self.min_packets:
            self.counters.too_sparse += 1
            return None
        self.counters.windows += 1
        self.counters.incomplete += int(count < self.packets)
        return CsiWindow(self.origin_ns + frame * self.frame_period_ns, window.csi, count)
