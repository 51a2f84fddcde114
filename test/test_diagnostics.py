"""Stream monitors (rate, age, clock jumping back) and the statuses built from them."""
import pytest

from mmhpe_ros.runtime.diagnostics import Level, StreamMonitor, stream_status

S = 1_000_000_000


def test_rate_and_age_of_a_10hz_stream():
    monitor = StreamMonitor(window_s=2.0)
    for i in range(50):  # 5 s at 10 Hz
        monitor.arrived(now_ns=i * S // 10 + 3_000_000, stamp_ns=i * S // 10)
    now = 49 * S // 10 + 20_000_000
    assert monitor.rate_hz(now) == pytest.approx(10.0)
    assert monitor.age_s(now) == pytest.approx(0.020)
    assert monitor.count == 50


def test_silent_stream_rate_falls_to_zero_and_goes_stale():
    monitor = StreamMonitor(window_s=1.0)
    assert stream_status("x", monitor, 0, stale_after_s=0.5).level == Level.STALE
    for i in range(10):
        monitor.arrived(i * S // 10, i * S // 10)
    assert stream_status("x", monitor, S, stale_after_s=0.5).level == Level.OK
    late = 5 * S
    assert monitor.rate_hz(late) == 0.0
    status = stream_status("x", monitor, late, stale_after_s=0.5, counters={"dropped": 3, "mean": 1.5})
    assert status.level == Level.STALE
    assert status.values["dropped"] == "3" and status.values["mean"] == "1.500"
    assert status.values["received"] == "10"


def test_clock_jumping_back_restarts_the_history():
    monitor = StreamMonitor(window_s=2.0)
    for i in range(20):
        monitor.arrived(10 * S + i * S // 10, 10 * S + i * S // 10)
    for i in range(5):  # bag looped: simulated time starts again near 0
        monitor.arrived(i * S // 20, i * S // 20)
    assert monitor.rate_hz(4 * S // 20) == pytest.approx(20.0)
    assert monitor.age_s(4 * S // 20) == 0.0


def test_levels_match_diagnostic_msgs_when_available():
    msgs = pytest.importorskip("diagnostic_msgs.msg", reason="diagnostic_msgs (ROS) not installed")
    status = msgs.DiagnosticStatus
    assert [ord(status.OK), ord(status.WARN), ord(status.ERROR), ord(status.STALE)] == [
        Level.OK, Level.WARN, Level.ERROR, Level.STALE]
