"""CSI window assembly: packets on the bags' grid -> (2, 3, 114, 10) windows, whatever the stamps do."""
from __future__ import annotations

import numpy as np
import pytest

from mmhpe_ros.data.bag_format import FIRST_SEQUENCE_NS, FRAME_PERIOD_NS, PACKET_PERIOD_NS, frame_stamp_ns
from mmhpe_ros.runtime.codecs import CodecError
from mmhpe_ros.runtime.csi_window import CsiWindowAssembler

START = FIRST_SEQUENCE_NS


def _frame_csi(frame: int) -> np.ndarray:
    """A recognisable (2, 3, 114, 10) block: every value encodes frame, channel and packet."""
    csi = np.random.default_rng(frame).normal(size=(2, 3, 114, 10))
    csi[:, 0, 0, :] = frame * 100 + np.arange(10)  # a marker per packet
    return csi


def _packets(frame: int, csi: np.ndarray | None = None, start: int = START):
    """(stamp, amplitude, phase) of the 10 packets of ``frame``, as the bags lay them out."""
    csi = _frame_csi(frame) if csi is None else csi
    stamp = frame_stamp_ns(start, frame)
    return [(stamp + k * PACKET_PERIOD_NS, csi[0, :, :, k], csi[1, :, :, k]) for k in range(10)]


def _detrended(phase: np.ndarray) -> np.ndarray:
    """(antennas, subcarriers) phase unwrapped and minus its least-squares line per antenna (polyfit)."""
    unwrapped = np.unwrap(phase, axis=1)
    k = np.arange(phase.shape[1])
    return np.stack([row - np.polyval(np.polyfit(k, row, 1), k) for row in unwrapped])


def _feed(assembler: CsiWindowAssembler, packets):
    return [window for packet in packets for window in assembler.add(*packet)]


def test_complete_frames_come_out_at_their_frame_stamps_unchanged():
    assembler = CsiWindowAssembler()
    windows = _feed(assembler, [p for frame in range(3) for p in _packets(frame)])
    assert [w.stamp_ns for w in windows] == [frame_stamp_ns(START, f) for f in range(3)]
    for frame, window in enumerate(windows):
        np.testing.assert_array_equal(window.csi, _frame_csi(frame))
        assert window.packets == 10
    assert assembler.pending == 0 and assembler.counters.windows == 3 and assembler.counters.incomplete == 0


def test_a_lost_packet_is_interpolated_an_uncovered_slot_is_nan_and_the_window_waits_for_the_lag():
    assembler = CsiWindowAssembler(lag_frames=1)
    first = [p for k, p in enumerate(_packets(0)) if k not in (0, 7)]
    assert _feed(assembler, first) == []  # slot 0 has no packet before it: the window is not ready
    assert _feed(assembler, _packets(1)[:3]) == []  # one frame of lag: still waiting for packet 0
    out = _feed(assembler, _packets(2)[:1])
    assert len(out) == 1 and out[0].stamp_ns == frame_stamp_ns(START, 0) and out[0].packets == 9
    csi = _frame_csi(0)
    assert np.isnan(out[0].csi[..., 0]).all()  # nothing before slot 0: missing, for the model to fill
    np.testing.assert_array_equal(out[0].csi[..., [1, 2, 3, 4, 5, 6, 8, 9]], csi[..., [1, 2, 3, 4, 5, 6, 8, 9]])
    np.testing.assert_allclose(out[0].csi[0, ..., 7], (csi[0, ..., 6] + csi[0, ..., 8]) / 2)  # 10 ms each side
    np.testing.assert_allclose(out[0].csi[1, ..., 7], (_detrended(csi[1, ..., 6]) + _detrended(csi[1, ..., 8])) / 2,
                               atol=1e-9)
    assert assembler.counters.incomplete == 1 and out[0].received == 8

def test_reordered_packets_find_their_window_while_it_waits_and_windows_leave_in_order():
    assembler = CsiWindowAssembler(lag_frames=1)
    packets = _packets(0) + _packets(1)
    order = [9, 0, 2, 1, 4, 3, 6, 5, 8, 7] + list(range(10, 20))[::-1]  # reordered within each frame
    windows = _feed(assembler, [packets[i] for i in order])
    assert [w.stamp_ns for w in windows] == [frame_stamp_ns(START, 0), frame_stamp_ns(START, 1)]
    for frame, window in enumerate(windows):
        np.testing.assert_array_equal(window.csi, _frame_csi(frame))
    assert assembler.counters.late == 0

def test_a_full_window_waits_for_an_older_unfinished_one():
    assembler = CsiWindowAssembler(lag_frames=1)
    assert _feed(assembler, _packets(0)[1:] + _packets(1)) == []  # frame 0 has no packet 0 yet
    out = _feed(assembler, _packets(0)[:1])
    assert [w.stamp_ns for w in out] == [frame_stamp_ns(START, 0), frame_stamp_ns(START, 1)]
    np.testing.assert_array_equal(out[0].csi, _frame_csi(0))

def test_packets_later_than_the_lag_are_dropped_as_late():
    assembler = CsiWindowAssembler(lag_frames=0)
    _feed(assembler, _packets(0)[:5])
    out = _feed(assembler, _packets(1)[:1])  # lag 0: frame 0 leaves now, with 5 packets
    assert len(out) == 1 and out[0].packets == 5
    assert _feed(assembler, _packets(0)[5:]) == []
    assert assembler.counters.late == 5


def test_jittered_stamps_are_interpolated_at_the_slot_times():
    assembler = CsiWindowAssembler()
    jitter = np.random.default_rng(5).integers(-4_000_000, 4_000_000, size=20)
    jitter = np.random.default_rng(5).integers(-4_000_000, 4_000_000, size=30)
    packets = [(stamp + int(j), a, p) for (stamp, a, p), j in zip(_packets(2) + _packets(3) + _packets(4), jitter)]
    window = _feed(assembler, packets)[1]
    assert window.stamp_ns == frame_stamp_ns(START, 3) and window.packets == 10
    stamps = np.array([p[0] for p in packets], dtype=np.float64)
    amplitude = np.stack([p[1] for p in packets], axis=-1)
    slots = (window.stamp_ns + np.arange(10) * PACKET_PERIOD_NS).astype(np.float64)
    expected = np.apply_along_axis(lambda series: np.interp(slots, stamps, series), -1, amplitude)
    np.testing.assert_allclose(window.csi[0], expected, rtol=1e-12, atol=1e-9)

def test_bag_loop_resets_and_keeps_working():
    assembler = CsiWindowAssembler()
    _feed(assembler, [p for frame in range(20, 30) for p in _packets(frame)])
    partial = _feed(assembler, _packets(30)[:4])  # the bag loops in the middle of frame 30
    assert partial == []
    out = _feed(assembler, _packets(0))
    assert [w.stamp_ns for w in out] == [frame_stamp_ns(START, 30), frame_stamp_ns(START, 0)]
    assert out[0].packets == 4 and assembler.counters.resets == 1
    np.testing.assert_array_equal(out[1].csi, _frame_csi(0))


def test_far_forward_jump_flushes_the_old_windows():
    assembler = CsiWindowAssembler(min_packets=1)
    _feed(assembler, _packets(0)[:6])
    out = _feed(assembler, _packets(10_000)[:1])
    assert [w.stamp_ns for w in out] == [frame_stamp_ns(START, 0)] and assembler.pending == 1


def test_memory_is_bounded_whatever_the_stamps():
    assembler = CsiWindowAssembler(lag_frames=2)
    rng = np.random.default_rng(6)
    amplitude = np.zeros((3, 114))
    for stamp in rng.integers(0, 10**12, size=2000):
        assembler.add(int(stamp), amplitude, amplitude)
        assert assembler.pending <= 3


def test_windows_with_too_few_packets_are_dropped_and_counted():
    assembler = CsiWindowAssembler(min_packets=5)
    _feed(assembler, _packets(0)[:4])
    assert _feed(assembler, _packets(2)[:1]) == []
    assert assembler.counters.too_sparse == 1


def test_duplicates_keep_the_newest_packet():
    assembler = CsiWindowAssembler()
    stamp, amplitude, phase = _packets(0)[3]
    assembler.add(stamp, amplitude + 1.0, phase)
    (window,) = _feed(assembler, _packets(0))
    np.testing.assert_array_equal(window.csi, _frame_csi(0))
    assert assembler.counters.duplicates == 1


def test_anchor_on_the_first_packet_for_live_sources():
    assembler = CsiWindowAssembler(origin_ns=None)
    offset = 37_000_000  # a live clock: frames are not on multiples of 100 ms
    (window,) = _feed(assembler, _packets(0, start=START + offset))
    assert window.stamp_ns == START + offset
    np.testing.assert_array_equal(window.csi, _frame_csi(0))
    assert len(_feed(assembler, _packets(0, start=START + offset + FRAME_PERIOD_NS))) == 1


def test_flush_hands_out_what_is_held():
    assembler = CsiWindowAssembler()
    _feed(assembler, _packets(0)[:3])
    (window,) = assembler.flush()
    assert window.packets == 3 and np.isnan(window.csi[..., 3:]).all() and assembler.pending == 0


def test_bad_packets_and_settings_are_refused():
    assembler = CsiWindowAssembler()
    with pytest.raises(CodecError, match=r"expected \(3, 114\)"):
        assembler.add(0, np.zeros((3, 113)), np.zeros((3, 113)))
    with pytest.raises(ValueError, match="min_packets"):
        CsiWindowAssembler(min_packets=11)
    with pytest.raises(ValueError, match="lag_frames"):
        CsiWindowAssembler(lag_frames=10, reset_after_frames=10)


def test_a_short_bag_looping_is_a_reset_not_late_packets():
    """A 4-frame bag played in a loop: every pass gives its 4 windows."""
    assembler = CsiWindowAssembler()
    one_pass = [p for frame in range(4) for p in _packets(frame)]
    windows = _feed(assembler, one_pass * 3)
    assert [w.stamp_ns for w in windows] == [frame_stamp_ns(START, f) for f in range(4)] * 3
    assert all(w.packets == 10 for w in windows)
    assert assembler.counters.resets == 2 and assembler.counters.late == 0


def _stream(rate_hz: float, seconds: float, rng: np.random.Generator, irregular: bool = False):
    """Packets of a smooth signal (amplitude = a known function of time; phase 0) at ``rate_hz``."""
    period = 1e9 / rate_hz
    gaps = rng.uniform(0.5 * period, 1.5 * period, size=int(seconds * rate_hz) + 2) if irregular \
        else np.full(int(seconds * rate_hz) + 2, period)
    stamps = START + np.cumsum(gaps).astype(np.int64)
    stamps = stamps[stamps < START + seconds * 1e9]
    base = rng.normal(size=(3, 114))
    return [(int(t), base + _signal(t), np.zeros((3, 114))) for t in stamps], base


def _signal(stamp_ns: float) -> float:
    return 3.0 * np.sin(2 * np.pi * 0.7 * (stamp_ns - START) / 1e9)


@pytest.mark.parametrize("rate_hz, irregular", [(1000.0, False), (30.0, False), (100.0, True), (60.0, True)])
def test_any_packet_rate_is_read_at_the_slot_times(rate_hz, irregular):
    """1 kHz is not read as duplicates, 30 Hz not as holes: every slot holds the signal at its time."""
    assembler = CsiWindowAssembler()
    packets, base = _stream(rate_hz, 2.0, np.random.default_rng(int(rate_hz)), irregular)
    windows = _feed(assembler, packets)
    assert len(windows) >= 17 and all(w.packets == 10 for w in windows[1:])
    assert assembler.counters.duplicates == 0 and assembler.counters.late == 0
    for window in windows[1:]:
        slots = window.stamp_ns + np.arange(10) * PACKET_PERIOD_NS
        truth = base[..., None] + np.array([_signal(t) for t in slots])
        # linear interpolation of a 0.7 Hz sine between packets at most 1/rate apart
        bound = 3.0 * (2 * np.pi * 0.7) ** 2 * (1.5 / rate_hz) ** 2 / 8 + 1e-9
        np.testing.assert_allclose(window.csi[0], truth, atol=bound)
        np.testing.assert_allclose(window.csi[1], 0.0, atol=1e-9)


def test_a_silence_longer_than_max_gap_leaves_its_slots_missing():
    assembler = CsiWindowAssembler(max_gap_ns=50_000_000)
    packets = [p for frame in range(3) for p in _packets(frame)]
    kept = [p for p in packets if not (frame_stamp_ns(START, 1) + 20_000_000 <= p[0] <= frame_stamp_ns(START, 1)
                                       + 80_000_000)]  # 70 ms of silence in frame 1
    windows = _feed(assembler, kept) + assembler.flush()
    frame1 = windows[1]
    assert frame1.packets == 3 and np.isnan(frame1.csi[..., 2:9]).all()
    np.testing.assert_array_equal(frame1.csi[..., [0, 1, 9]], _frame_csi(1)[..., [0, 1, 9]])
    bridged = CsiWindowAssembler(max_gap_ns=80_000_000)
    assert [w.packets for w in _feed(bridged, kept) + bridged.flush()][1] == 10


def test_too_many_packets_in_a_window_overflow():
    assembler = CsiWindowAssembler(max_packets_per_window=20)
    amplitude = np.zeros((3, 114))
    for k in range(30):
        assembler.add(START + k * 1_000_000, amplitude, amplitude)
    assert assembler.counters.overflow == 10 and assembler.counters.packets == 20
