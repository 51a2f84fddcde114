"""Replay timing: rate, pause/resume, start offset, loop, without ROS."""
import threading
import time

import pytest

from mmhpe_ros.runtime.replay import BagPlayer, ReplayClock
from ros_domain import lease_domain  # noqa: E402

S = 1_000_000_000


def test_clock_maps_bag_to_wall_with_rate():
    clock = ReplayClock(rate=2.0)
    clock.start(bag_ns=10 * S, wall_ns=100 * S)
    assert clock.wall_time(12 * S) == 101 * S
    assert clock.bag_time(103 * S) == 16 * S


def test_rate_change_and_pause_keep_bag_time_continuous():
    clock = ReplayClock(rate=1.0)
    clock.start(0, 0)
    clock.set_rate(4.0, wall_ns=2 * S)  # bag time 2 s here
    assert clock.bag_time(3 * S) == 6 * S
    clock.pause(wall_ns=3 * S)
    assert clock.paused and clock.wall_time(7 * S) is None
    assert clock.bag_time(50 * S) == 6 * S  # frozen
    clock.resume(wall_ns=10 * S)
    assert clock.bag_time(11 * S) == 10 * S
    assert clock.wall_time(14 * S) == 12 * S
    with pytest.raises(ValueError, match="rate"):
        clock.set_rate(0.0, 0)


def _messages(n=20, period_ns=S // 10):
    return [("/topic/%d" % (i % 3), i * period_ns, bytes([i])) for i in range(n)]


def _player(messages, published, **kwargs):
    def read(from_ns):
        return iter([m for m in messages if m[1] >= from_ns])
    return BagPlayer(read, messages[0][1], messages[-1][1], lambda topic, data: published.append((topic, data)), **kwargs)


def test_plays_every_message_in_order_from_offset():
    messages, published = _messages(), []
    player = _player(messages, published, rate=100.0, start_offset_s=0.5)
    player.run()
    assert published == [(t, d) for t, s, d in messages if s >= S // 2]
    assert player.loops == 1 and player.published == 15


def test_loop_restarts_at_offset_until_stopped():
    messages, published = _messages(), []
    player = _player(messages, published, rate=200.0, start_offset_s=1.0, loop=True)
    thread = threading.Thread(target=player.run)
    thread.start()
    while player.loops < 3:
        time.sleep(0.01)
    player.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    first_pass = [(t, d) for t, s, d in messages if s >= S]
    assert published[: 3 * len(first_pass)] == first_pass * 3


def test_paused_player_waits_until_resumed():
    messages, published = _messages(5), []
    player = _player(messages, published, rate=100.0, paused=True)
    thread = threading.Thread(target=player.run)
    thread.start()
    thread.join(timeout=0.3)
    assert thread.is_alive() and published == []
    player.resume()
    thread.join(timeout=5)
    assert len(published) == 5


def test_offset_beyond_the_bag_is_refused():
    with pytest.raises(ValueError, match="start_offset"):
        _player(_messages(), [], start_offset_s=5.0)


def test_replayer_waits_for_the_subscribers_it_is_told_to(tmp_path):
    """wait_for_subscribers: nothing is played until the topic has a subscriber; a topic that is not
    in the bag (a driver-shaped bag has images, no keypoints) is not waited for, with a warning."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy not installed")
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import PointCloud2

    from ros_domain import ros_domain
    from mmhpe_ros.nodes.replayer import Replayer

    with ros_domain(lease_domain()):
        def replayer(**values):
            return Replayer(parameter_overrides=[Parameter(k, value=v) for k, v in
                                                 {"delay": 0.05, "clock_frequency": 0.0, **values}.items()])

        absent = replayer(wait_for_subscribers=["no/such/topic", "lidar/points"])
        assert [p.topic_name for p in absent._awaited] == ["/lidar/points"], "a topic the bag lacks is not waited for"
        absent.destroy_node()
        node = replayer(wait_for_subscribers=["lidar/points"])
        helper = rclpy.create_node("wait_helper")
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.add_node(helper)
        try:
            end = time.monotonic() + 0.6
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.02)
            assert node.player.published == 0, "played before lidar/points had a subscriber"
            received = []
            helper.create_subscription(PointCloud2, "lidar/points", received.append, qos_profile_sensor_data)
            end = time.monotonic() + 10
            while not received and time.monotonic() < end:
                executor.spin_once(timeout_sec=0.02)
            assert received, "playback started once the subscriber was there"
        finally:
            executor.shutdown()
            node.destroy_node()
            helper.destroy_node()
