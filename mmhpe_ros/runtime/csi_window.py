"""CSI packets at any rate and timing -> the model's (2, antennas, subcarriers, packets) frame windows.

Windows are on the bags' grid (:mod:`mmhpe_ros.data.bag_format`): the window of the frame stamped
``t`` has its ``packets`` slots at ``t + k * PACKET_PERIOD_NS``, frames every ``FRAME_PERIOD_NS``
from ``origin_ns`` (0: frames on whole multiples of 100 ms, as our bags and the replayer stamp
them; ``None``: the first packet after a reset opens a frame, for live sources with their own
clock). A packet belongs to the window whose slot span ``[t - P/2, t + 10 P - P/2)`` holds its
stamp (``P`` the packet period).

Each slot is resampled from the packets by stamp (:func:`resample_slots`), whatever the source's
rate: a packet stamped exactly on the slot is taken unchanged; otherwise the slot is linearly
interpolated between the packets just before and just after it when they are at most
``max_gap_ns`` apart (amplitude as is; phase after removing each packet's linear phase across
subcarriers, the per-packet offsets that the model's sanitiser removes anyway, so they do not
blend); otherwise the slot is missing (NaN), which the model fills from the neighbouring slots
and marks in ``wifi_mask`` (:mod:`mmhpe_ros.model.csi`). So a 1 kHz stream is read at the slots' times (not as duplicates),
a 30 Hz stream is interpolated (not holes), and only a silence longer than ``max_gap_ns`` is
missing. The packets next to the window (the previous window's last, the next window's first)
take part, so slots at the window's edges interpolate too.

Windows are emitted in stamp order (and only once every older window is out): as soon as every
slot has a packet stamped exactly on it, or a packet of a later window has arrived and every slot
can be resampled; otherwise once a packet
more than ``lag_frames`` frames newer arrives (so packets reordered by up to that much still find
their window), or on :meth:`CsiWindowAssembler.flush` (the node calls it when the stream goes
quiet). Windows with fewer than ``min_packets`` resampled slots are dropped and counted. A stamp
more than ``reset_after_frames`` frames behind the newest (default ``lag_frames + 1``; a bag loop,
a restarted sensor) resets the assembler, after emitting what it held; packets for a window
already emitted are dropped as late. A jump back of fewer frames (a bag shorter than that looping)
reads as late packets. At most ``lag_frames + 1`` windows of at most ``max_packets_per_window``
packets are held, so memory is bounded whatever the stamps do.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mmhpe_ros.data.bag_format import PACKET_PERIOD_NS
from mmhpe_ros.modalities import CSI_ANTENNAS, CSI_PACKETS_PER_FRAME, CSI_SUBCARRIERS
from mmhpe_ros.model.inputs import sanitise_csi_phase
from mmhpe_ros.runtime.codecs import CodecError


@dataclass(frozen=True)
class CsiWindow:
    """One frame's CSI: ``csi`` (2, antennas, subcarriers, packets) float64, NaN where missing."""

    stamp_ns: int
    csi: np.ndarray
    packets: int  # how many slots were resampled from packets (the rest are NaN)
    received: int = 0  # packets received within the window's span


@dataclass
class CsiCounters:
    """What the assembler did with its input, for diagnostics."""

    packets: int = 0  # packets accepted into a window
    late: int = 0  # packets for a window already emitted (or older)
    surplus: int = 0  # packets after the last slot of a window that had left complete (not needed)
    duplicates: int = 0  # a second packet with the same stamp (the newer one is kept)
    overflow: int = 0  # packets beyond max_packets_per_window, dropped
    resets: int = 0  # stamps jumped back (bag loop, restarted source)
    windows: int = 0  # windows emitted
    incomplete: int = 0  # emitted windows with missing slots
    too_sparse: int = 0  # windows dropped for having fewer than min_packets resampled slots


@dataclass
class _Pending:
    packets: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # stamp -> (amp, phase)


def resample_slots(slots_ns: np.ndarray, stamps_ns: np.ndarray, amplitude: np.ndarray, phase: np.ndarray,
                   max_gap_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Packets (N,) stamps (ascending, distinct) with (N, A, S) amplitude / phase -> values at the slots.

    Returns amplitude and phase (A, S, K) for the K slots, NaN where a slot is missing, and the
    (K,) bool of resampled slots; the rule is the module docstring's.
    """
    count, slots = len(stamps_ns), len(slots_ns)
    shape = amplitude.shape[1:] + (slots,)
    out_amplitude, out_phase = np.full(shape, np.nan), np.full(shape, np.nan)
    resampled = np.zeros(slots, dtype=bool)
    if count == 0:
        return out_amplitude, out_phase, resampled
    after = np.searchsorted(stamps_ns, slots_ns, side="left")  # first packet at or after the slot
    detrended: list[np.ndarray] = []

    def flat_phase(i: int) -> np.ndarray:
        if not detrended:  # every packet's at once, the first time a slot interpolates
            detrended.append(sanitise_csi_phase(np.moveaxis(phase, 0, -1)))  # (A, S, N)
        return detrended[0][..., i]

    for k, (slot, a) in enumerate(zip(slots_ns.tolist(), after.tolist())):
        b = a - 1  # last packet before the slot
        if a < count and stamps_ns[a] == slot:
            out_amplitude[..., k], out_phase[..., k] = amplitude[a], phase[a]
        elif 0 <= b and a < count and stamps_ns[a] - stamps_ns[b] <= max_gap_ns:
            weight = (slot - stamps_ns[b]) / (stamps_ns[a] - stamps_ns[b])
            with np.errstate(invalid="ignore"):
                out_amplitude[..., k] = amplitude[b] * (1.0 - weight) + amplitude[a] * weight
                out_phase[..., k] = flat_phase(b) * (1.0 - weight) + flat_phase(a) * weight
        else:
            continue
        resampled[k] = True
    return out_amplitude, out_phase, resampled


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
    max_gap_ns: int = 50_000_000  # slots between packets further apart than this are missing
    max_packets_per_window: int = 1000
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
        if self.max_gap_ns < 0 or self.max_packets_per_window < 1:
            raise ValueError(f"need max_gap_ns >= 0 and max_packets_per_window >= 1, got {self.max_gap_ns}, "
                             f"{self.max_packets_per_window}")
        self._configured_origin = self.origin_ns
        self._pending: dict[int, _Pending] = {}
        self._newest: int | None = None  # newest frame number seen
        self._emitted: int | None = None  # newest frame number emitted (or dropped)
        self._tail: tuple[int, int, np.ndarray, np.ndarray] | None = None  # (frame, stamp, amp, phase)

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
        stamp_ns = int(stamp_ns)
        if self.origin_ns is None:
            self.origin_ns = stamp_ns
        frame = self._frame_of(stamp_ns)
        out: list[CsiWindow] = []
        if self._newest is not None and frame < self._newest - self.reset_after_frames:
            out += self._restart()  # windows of before the jump are finished, not lost
            if self.origin_ns is None:
                self.origin_ns = stamp_ns
                frame = self._frame_of(stamp_ns)
        if self._emitted is not None and frame <= self._emitted:
            if frame == self._emitted and stamp_ns > self.slot_stamps(frame)[-1]:
                # after the last slot of a window that left complete (a fast stream): no slot needs
                # it, but it is the newest packet before the next window's first slot
                self.counters.surplus += 1
                if self._tail is not None and self._tail[0] == frame and stamp_ns > self._tail[1]:
                    self._tail = (frame, stamp_ns, np.array(amplitude, dtype=np.float64),
                                  np.array(phase, dtype=np.float64))
            else:
                self.counters.late += 1
            return out
        self._newest = frame if self._newest is None else max(self._newest, frame)
        window = self._pending.setdefault(frame, _Pending())
        if stamp_ns in window.packets:
            self.counters.duplicates += 1
        elif len(window.packets) >= self.max_packets_per_window:
            self.counters.overflow += 1
            return out + self._emit_ready()
        else:
            self.counters.packets += 1
        with np.errstate(invalid="ignore"):  # signalling NaNs off the wire become quiet NaNs
            window.packets[stamp_ns] = (np.array(amplitude, dtype=np.float64), np.array(phase, dtype=np.float64))
        return out + self._emit_ready()

    def flush(self) -> list[CsiWindow]:
        """Emit every window being filled (e.g. the stream went quiet), oldest first."""
        return [w for w in map(self._finish, sorted(self._pending)) if w is not None]

    def reset(self) -> None:
        """Forget everything held (the counters stay)."""
        self._pending.clear()
        self._newest = self._emitted = None
        self._tail = None
        self.origin_ns = self._configured_origin

    def slot_stamps(self, frame: int) -> np.ndarray:
        """(packets,) int64 stamps of the slots of window ``frame``."""
        assert self.origin_ns is not None
        start = self.origin_ns + frame * self.frame_period_ns
        return start + np.arange(self.packets, dtype=np.int64) * self.packet_period_ns

    def _frame_of(self, stamp_ns: int) -> int:
        """Frame number whose slot span holds ``stamp_ns``."""
        assert self.origin_ns is not None
        return (stamp_ns - self.origin_ns + self.packet_period_ns // 2) // self.frame_period_ns

    def _emit_ready(self) -> list[CsiWindow]:
        out: list[CsiWindow] = []
        for frame in sorted(self._pending):  # in stamp order: a ready window waits for older ones
            if frame >= self._newest - self.lag_frames and not self._ready(frame):
                break
            finished = self._finish(frame)
            if finished is not None:
                out.append(finished)
        return out

    def _context(self, frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Stamps (ascending) and packets that resample window ``frame``: the previous window's last
        packet, the window's own and the next window's first; and how many are the window's own."""
        own = self._pending.get(frame, _Pending()).packets
        items = sorted(own.items())
        if self._tail is not None and self._tail[0] == frame - 1:
            items.insert(0, self._tail[1:2] + (self._tail[2:],))
        following = self._pending.get(frame + 1)
        if following is not None and following.packets:
            first = min(following.packets)
            items.append((first, following.packets[first]))
        stamps = np.array([s for s, _ in items], dtype=np.int64)
        if not items:
            empty = np.empty((0, self.antennas, self.subcarriers))
            return stamps, empty, empty, 0
        amplitude = np.stack([p[0] for _, p in items])
        phase = np.stack([p[1] for _, p in items])
        return stamps, amplitude, phase, len(own)

    def _ready(self, frame: int) -> bool:
        """True when every slot has a packet stamped on it, or when a packet of a later window is
        there (packets of this window reordered among themselves are all in) and every slot resamples."""
        slots = self.slot_stamps(frame)
        own = self._pending[frame].packets
        if len(own) >= len(slots) and all(int(slot) in own for slot in slots):
            return True
        if self._newest is None or self._newest <= frame:
            return False
        stamps = self._stamps_around(frame)
        after = np.searchsorted(stamps, slots, side="left")
        next_stamp = stamps[np.minimum(after, stamps.size - 1)]
        exact = (after < stamps.size) & (next_stamp == slots)
        bracketed = (after > 0) & (after < stamps.size) & (next_stamp - stamps[np.maximum(after - 1, 0)]
                                                            <= self.max_gap_ns)
        return bool((exact | bracketed).all())

    def _stamps_around(self, frame: int) -> np.ndarray:
        stamps = sorted(self._pending[frame].packets)
        if self._tail is not None and self._tail[0] == frame - 1:
            stamps.insert(0, self._tail[1])
        following = self._pending.get(frame + 1)
        if following is not None and following.packets:
            stamps.append(min(following.packets))
        return np.array(stamps, dtype=np.int64)

    def _restart(self) -> list[CsiWindow]:
        windows = self.flush()
        self.counters.resets += 1
        self.reset()
        return windows

    def _finish(self, frame: int) -> CsiWindow | None:
        stamps, amplitude, phase, received = self._context(frame)
        window = self._pending.pop(frame)
        self._emitted = frame if self._emitted is None else max(self._emitted, frame)
        if window.packets:
            last = max(window.packets)
            self._tail = (frame, last) + window.packets[last]
        slots = self.slot_stamps(frame)
        amp, pha, resampled = resample_slots(slots, stamps, amplitude, phase, self.max_gap_ns)
        count = int(resampled.sum())
        if count < self.min_packets:
            self.counters.too_sparse += 1
            return None
        self.counters.windows += 1
        self.counters.incomplete += int(count < self.packets)
        return CsiWindow(int(slots[0]), np.stack([amp, pha]), count, received)
