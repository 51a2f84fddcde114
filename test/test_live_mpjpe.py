"""Live MPJPE: predictions and ground truth matched by nearest stamp, in either order."""
import numpy as np
import pytest

from mmhpe_ros.runtime.live_mpjpe import LiveMpjpe

MS = 1_000_000


def _pose(offset_m: float) -> np.ndarray:
    return np.zeros((17, 3)) + [offset_m, 0.0, 0.0]


def test_matches_in_either_order_and_averages():
    live = LiveMpjpe(tolerance_ns=5 * MS)
    assert live.mean_mm is None
    assert live.add_truth(100 * MS, _pose(0.0)) is None
    assert live.add_prediction(101 * MS, _pose(0.010)) == pytest.approx(10.0)  # truth first
    assert live.add_prediction(200 * MS, _pose(0.030)) is None
    assert live.add_truth(198 * MS, _pose(0.0)) == pytest.approx(30.0)  # prediction first
    assert live.count == 2 and live.mean_mm == pytest.approx(20.0) and live.last_mm == pytest.approx(30.0)


def test_outside_tolerance_does_not_match_and_nearest_wins():
    live = LiveMpjpe(tolerance_ns=5 * MS)
    live.add_truth(0, _pose(0.0))
    live.add_truth(100 * MS, _pose(1.0))
    assert live.add_prediction(50 * MS, _pose(0.0)) is None
    assert live.add_prediction(97 * MS, _pose(1.002)) == pytest.approx(2.0)


def test_pending_buffers_are_bounded():
    live = LiveMpjpe(tolerance_ns=0, max_pending=8)
    for i in range(100):
        live.add_prediction(i * 100 * MS, _pose(0.0))
    assert live.add_truth(0, _pose(0.0)) is None  # evicted long ago
    assert live.add_truth(99 * 100 * MS, _pose(0.0)) == 0.0
