"""csi_bridge: CSI from a WiFi CSI tool (a log file, a growing log, UDP, stdin) -> ``wifi/csi``.

One ``sensor_msgs/Image`` per packet (encoding ``complex64``: rows = receive antennas, columns =
the tool's subcarriers in ascending index, channels I/Q; docs/nodes.md, WiFi CSI), frame id
``frame_id``. Stamps: a whole log (``mode: file``) keeps its own packet timing: the tool's packet
times mapped to ROS time as ``now at start + (packet time - first packet time)``, published at
that pace x ``rate`` (``rate`` 0: as fast as possible, same stamps); a packet without a time in
the log gets the time it is published. Live input (``follow``: a log that a running tool appends
to, read from its end; ``udp``: one record per datagram, as the tools' UDP senders send them;
``stdin``) is stamped with its receive time. The wifi node needs the layout the bridge logs at
start (``csi_layout``).
"""
from __future__ import annotations

import os
import select
import socket
import sys
import time
from typing import Any, Iterable

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from mmhpe_ros.modalities import FRAME_IDS, SENSOR_TOPICS
from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.csi_bridge import (
    TOOLS,
    CsiLogError,
    CsiPacket,
    LogClock,
    RecordSplitter,
    StreamParser,
    default_layout,
    read_log,
)

MODES: tuple[str, ...] = ("file", "follow", "udp", "stdin")
POLL_S = 0.01  # how often live sources are polled for new data


class CsiBridgeNode(Node):
    """Publishes the packets of one CSI source; :meth:`run` reads it until it ends or ``duration``."""

    def __init__(self, node_name: str = "csi_bridge", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)

        def declare(name: str, default: Any, description: str) -> Any:
            return self.declare_parameter(name, default, ParameterDescriptor(description=description)).value

        self.source = declare("source", "", "log file (mode file / follow); for udp: the port to bind")
        self.tool = declare("tool", "atheros", f"the CSI tool that wrote it: {', '.join(TOOLS)}")
        self.mode = declare("mode", "file", "file: a whole log at its own timing; follow: a log being written "
                            "(from its end); udp: datagrams on port `source`; stdin")
        self.rate = declare("rate", 1.0, "file: replay speed (0: as fast as possible)")
        self.loop = declare("loop", False, "file: start again at the end")
        self.tones = declare("tones", 114, "atheros: subcarriers per packet (56: HT20, 114: HT40)")
        self.tx_stream = declare("tx_stream", 0, "the transmit stream whose receive antennas are the rows")
        self.udp_host = declare("udp_host", "0.0.0.0", "udp: the address to bind")
        self.frame_id = declare("frame_id", FRAME_IDS["wifi"], "frame id of the published packets")
        topic = declare("output_topic", SENSOR_TOPICS["wifi"], "topic of the CSI packets")
        if self.tool not in TOOLS or self.mode not in MODES:
            raise ValueError(f"tool must be one of {TOOLS} and mode one of {MODES}, got {self.tool!r}, {self.mode!r}")
        self.types = codecs.rclpy_types()
        self.publisher = self.create_publisher(Image, topic, qos_profile_sensor_data)
        self.published = 0
        self.layout = default_layout(self.tool, self.tones)
        self.get_logger().info(f"{self.mode} {self.source or ''} ({self.tool}) -> {self.publisher.topic_name}; "
                               f"set the wifi node's csi_layout to {self.layout}")

    def publish_packet(self, packet: CsiPacket, stamp_ns: int) -> None:
        header = codecs.make_header(self.types, stamp_ns, self.frame_id)
        self.publisher.publish(codecs.create_csi_packet(self.types, header, iq=packet.iq.astype("complex64")))
        self.published += 1

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def run(self, duration: float | None = None) -> int:
        """Read and publish until the source ends (file without loop) or ``duration`` seconds pass."""
        deadline = None if duration is None else time.monotonic() + duration
        if self.mode == "file":
            self._replay(deadline)
        else:
            self._live(deadline)
        return self.published

    def _replay(self, deadline: float | None) -> None:
        packets = read_log(self.source, self.tool, self.tones, self.tx_stream)
        if not packets:
            self.get_logger().warning(f"{self.source}: no CSI packet")
            return
        times = [p.time_us for p in packets if p.time_us is not None]
        span_us = (max(times) - min(times)) if times else 0
        period_us = span_us // max(len(times) - 1, 1)
        clock = LogClock(self.now_ns())
        start_wall, first_us = time.monotonic(), None
        while True:
            for packet in packets:
                if deadline is not None and time.monotonic() >= deadline:
                    return
                if packet.time_us is None:
                    self.publish_packet(packet, self.now_ns())
                    continue
                first_us = packet.time_us if first_us is None else first_us
                if self.rate > 0:
                    delay = start_wall + (packet.time_us - first_us) / 1e6 / self.rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                self.publish_packet(packet, clock.stamp_ns(packet.time_us))
            if not self.loop:
                return
            # the next pass goes on where this one ended: one mean packet period later
            clock.base_ns += (span_us + period_us) * 1000
            start_wall += (span_us + period_us) / 1e6 / max(self.rate, 1e-9) if self.rate > 0 else 0.0

    def _live(self, deadline: float | None) -> None:
        parser = StreamParser(self.tool, self.tones, self.tx_stream)
        for record in self._records(deadline):
            try:
                packet = parser.parse(record)
            except (CsiLogError, ValueError) as error:
                self.get_logger().warning(f"skipped a record: {error}", throttle_duration_sec=5.0)
                continue
            if packet is not None:
                self.publish_packet(packet, self.now_ns())

    def _records(self, deadline: float | None) -> Iterable[bytes]:
        """The records of the live source, as they come, until ``deadline``."""
        def expired() -> bool:
            return deadline is not None and time.monotonic() >= deadline

        if self.mode == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind((self.udp_host, int(self.source)))
                sock.settimeout(POLL_S)
                while not expired():
                    try:
                        yield sock.recv(65536)
                    except socket.timeout:
                        continue
            return
        splitter = RecordSplitter(self.tool)
        if self.mode == "stdin":
            stream = sys.stdin.buffer
            while not expired():
                ready, _, _ = select.select([stream], [], [], POLL_S)
                if not ready:
                    continue
                data = os.read(stream.fileno(), 65536)
                if not data:
                    return
                yield from splitter.feed(data)
            return
        with open(self.source, "rb") as file:  # follow: a log that is being written
            file.seek(0, os.SEEK_END)
            while not expired():
                data = file.read()
                if data:
                    yield from splitter.feed(data)
                else:
                    time.sleep(POLL_S)


def main(args: list[str] | None = None) -> None:
    import rclpy

    rclpy.init(args=args)
    node = CsiBridgeNode()
    try:
        node.run()
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
