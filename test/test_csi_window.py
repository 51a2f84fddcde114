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


def test_missing_packets_are_nan_and_the_window_leaves_when_a_later_frame_arrives():
    assembler = CsiWindowAssembler(lag_frames=1)
    first = [p for k, p in enumerate(_packets(0)) if k not in (0, 7)]
    assert _feed(assembler, first) == []
    assert _feed(assembler, _packets(1)[:3]) == []  # one frame of lag: still waiting for packets 0, 7
    out = _feed(assembler, _packets(2)[:1])
    assert len(out) == 1 and out[0].stamp_ns == frame_stamp_ns(START, 0) and out[0].packets == 8
    expected = _frame_csi(0)
    expected[..., [0, 7]] = np.nan
    np.testing.assert_array_equal(out[0].csi, expected)
    assert assembler.counters.incomplete == 1


def test_reordered_packets_find_their_window_and_windows_leave_in_order():
    assembler = CsiWindowAssembler(lag_frames=1)
    packets = _packets(0) + _packets(1)
    order = np.random.default_rng(4).permutation(len(packets))
    windows = _feed(assembler, [packets[i] for i in order])
    assert [w.stamp_ns for w in windows] == [frame_stamp_ns(START, 0), frame_stamp_ns(START, 1)]
    for frame, window in enumerate(windows):
        np.testing.assert_array_equal(window.csi, _frame_csi(frame))


def test_a_full_window_waits_for_an_older_unfinished_one():
    assembler = CsiWindowAssembler(lag_frames=1)
    assert _feed(assembler, _packets(0)[:9] + _packets(1)) == []
    out = _feed(assembler, _packets(0)[9:])
    assert [w.stamp_ns for w in out] == [frame_stamp_ns(START, 0), frame_stamp_ns(START, 1)]


def test_packets_later_than_the_lag_are_dropped_as_late():
    assembler = CsiWindowAssembler(lag_frames=0)
    _feed(assembler, _packets(0)[:5])
    out = _feed(assembler, _packets(1)[:1])  # lag 0: frame 0 leaves now, with 5 packets
    assert len(out) == 1 and out[0].packets == 5
    assert _feed(assembler, _packets(0)[5:]) == []
    assert assembler.counters.late == 5


def test_stamp_jitter_below_half_a_packet_is_absorbed():
    assembler = CsiWindowAssembler()
    jitter = np.random.default_rng(5).integers(-4_000_000, 4_000_000, size=10)
    packets = [(stamp + int(j), a, p) for (stamp, a, p), j in zip(_packets(3), jitter)]
    (window,) = _feed(assembler, packets)
    assert window.stamp_ns == frame_stamp_ns(START, 3)
    np.testing.assert_array_equal(window.csi, _frame_csi(3))


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
