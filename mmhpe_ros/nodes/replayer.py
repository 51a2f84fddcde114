"""replayer: plays an MM-Fi bag as live topics with its original timing, and publishes /clock.

Every topic of the bag is published (sensor streams with the sensor-data QoS, ground truth
reliable) under the node's namespace, as raw serialized bytes: nothing is deserialised on the way.
The timing logic is :class:`mmhpe_ros.runtime.replay.BagPlayer`; this node only wires it to rclpy.
``rate`` and ``paused`` can be changed at run time (``ros2 param set /replayer paused true``).
"""
from __future__ import annotations

import importlib
import threading

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock as ClockMsg

from mmhpe_ros.modalities import SENSOR_TOPICS, TOPICS
from mmhpe_ros.nodes.messages import to_stamp
from mmhpe_ros.nodes.spin import spin_node
from mmhpe_ros.resources import SAMPLE_BAG
from mmhpe_ros.runtime.bag_source import BagSource
from mmhpe_ros.runtime.replay import BagPlayer

SENSOR_DATA_TOPICS = frozenset(SENSOR_TOPICS.values()) | {TOPICS.camera_image, TOPICS.camera_info}
WAIT_POLL_S = 0.05  # how often the replayer looks for the subscribers it waits for
RUNTIME_PARAMETERS = ("rate", "paused")  # applied when set (ros2 param set); the others are read-only
LATCHED_QOS = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)  # /tf_static, as tf2 offers it
CLOCK_QOS = QoSProfile(depth=1)  # reliable: matches best-effort time sources (rclpy, rclcpp) and reliable ones


class Replayer(Node):
    """Publishes a bag's messages at their recorded times (scaled by ``rate``) and /clock."""

    def __init__(self, **kwargs) -> None:
        super().__init__("replayer", **kwargs)
        bag = self._declare("bag", "", "bag directory or .mcap file to play; empty: the bundled sample bag")
        rate = self._declare("rate", 1.0, "playback speed factor (2.0 = twice real time); settable at run time")
        loop = self._declare("loop", False, "restart from start_offset after the last message")
        offset = self._declare("start_offset", 0.0, "seconds into the bag where playback starts")
        paused = self._declare("paused", False, "pause/resume playback; settable at run time")
        delay = self._declare("delay", 1.0, "seconds to wait before the first message (lets subscribers match)")
        wait_for = self.declare_parameter("wait_for_subscribers", Parameter.Type.STRING_ARRAY, ParameterDescriptor(
            read_only=True, description="after the delay, also wait until each of these topics has a matched subscriber (unset: "
                        "don't wait)")).value or []
        self._wait_timeout_s = self._declare("wait_timeout", 30.0, "seconds to wait for wait_for_subscribers; "
                                             "then playback starts anyway, with a warning")
        clock_hz = self._declare("clock_frequency", 20.0, "/clock messages per wall second; 0 disables /clock "
                                 "(every node on use_sim_time takes each one: 20 Hz, not 100, kept x10 replay whole)")

        self.source = BagSource(bag or SAMPLE_BAG)
        self._bag_publishers = {}
        unavailable = []
        for topic, msgtype in self.source.topics.items():
            try:
                message_class = _message_class(msgtype)
            except (ImportError, AttributeError):  # e.g. tf2_msgs, not on PyPI: the rest still plays
                unavailable.append(f"{topic} ({msgtype})")
                continue
            name = topic.lstrip("/")
            qos = (qos_profile_sensor_data if name in SENSOR_DATA_TOPICS
                   else LATCHED_QOS if name == "tf_static" else 10)
            self._bag_publishers[topic] = self.create_publisher(message_class, name, qos)
        if unavailable:
            self.get_logger().warning(f"not replayed, their message types are not installed: {', '.join(unavailable)}")
        self.player = BagPlayer(
            self.source.read, self.source.start_ns, self.source.end_ns,
            self._publish_recorded,
            rate=rate, start_offset_s=offset, loop=loop, paused=paused,
        )
        self.add_on_set_parameters_callback(self._on_set_parameters)
        steady = Clock(clock_type=ClockType.STEADY_TIME)  # independent of use_sim_time and of our own /clock
        if clock_hz > 0:
            self._clock_publisher = self.create_publisher(ClockMsg, "/clock", CLOCK_QOS)
            self.create_timer(1.0 / clock_hz, self._publish_clock, clock=steady)
        unknown = [t for t in wait_for if "/" + t.lstrip("/") not in self._bag_publishers]
        if unknown:  # e.g. a driver-shaped bag with camera images and no keypoints: nothing to wait for
            self.get_logger().warning(f"wait_for_subscribers: {unknown} are not replayed from {self.source.path} "
                                      f"(its topics: {sorted(self._bag_publishers)}); not waited for")
        self._awaited = [self._bag_publishers["/" + t.lstrip("/")] for t in wait_for if t not in unknown]
        self._steady = steady
        self._thread = threading.Thread(target=self._play, name="bag_player", daemon=True)
        self._start_timer = self.create_timer(max(delay, 1e-3), self._start, clock=steady)
        self._waiting_since: int | None = None
        self.get_logger().info(
            f"playing {self.source.path} ({self.source.message_count} messages, "
            f"{(self.source.end_ns - self.source.start_ns) / 1e9:.1f} s, {len(self._bag_publishers)} topics) at x{rate}")

    def destroy_node(self) -> None:
        if hasattr(self, "_thread"):  # else __init__ failed part-way (a bad parameter)
            self.player.stop()
            if self._thread.is_alive():
                self._thread.join(timeout=2.0)
        if hasattr(self, "source"):
            self.source.close()
        super().destroy_node()

    def _declare(self, name: str, default, description: str):
        """Declare a parameter; read-only except ``rate`` and ``paused``, which apply when set."""
        return self.declare_parameter(name, default, ParameterDescriptor(
            description=description, read_only=name not in RUNTIME_PARAMETERS)).value

    def _start(self) -> None:
        """After ``delay``: start playing once every awaited topic has a subscriber (or on timeout)."""
        now = self._steady.now().nanoseconds
        if self._waiting_since is None:
            self._waiting_since = now
            self._start_timer.cancel()
            self._start_timer = self.create_timer(WAIT_POLL_S, self._start, clock=self._steady)
        missing = [p.topic_name for p in self._awaited if not p.get_subscription_count()]
        if missing and now - self._waiting_since < self._wait_timeout_s * 1e9:
            return
        if missing:
            self.get_logger().warning(f"no subscriber on {missing} after {self._wait_timeout_s} s; playing anyway")
        self._start_timer.cancel()
        self._thread.start()

    def _play(self) -> None:
        try:
            self.player.run()
        except Exception as error:  # the thread must not die silently
            if self.context.ok():  # else: shutting down (Ctrl-C), publishing stopped working first
                self.get_logger().error(f"replay of {self.source.path} failed: {error}")
            return
        if not self.player.stopped:
            self.player.pause()  # freeze /clock at the end of the bag
            self.get_logger().info(f"finished: {self.player.published} messages published")

    def _publish_recorded(self, topic: str, data: bytes) -> None:
        publisher = self._bag_publishers.get(topic)
        if publisher is not None:
            publisher.publish(data)

    def _publish_clock(self) -> None:
        self._clock_publisher.publish(ClockMsg(clock=to_stamp(self.player.bag_now())))

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        for parameter in parameters:
            if parameter.name == "rate":
                if not parameter.value > 0:
                    return SetParametersResult(successful=False, reason="rate must be > 0")
                self.player.set_rate(parameter.value)
            elif parameter.name == "paused":
                self.player.pause() if parameter.value else self.player.resume()
        return SetParametersResult(successful=True)


def _message_class(msgtype: str) -> type:
    """'sensor_msgs/msg/PointCloud2' -> the rclpy message class."""
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def main(args: list[str] | None = None) -> None:
    spin_node(Replayer, args)


if __name__ == "__main__":
    main()
