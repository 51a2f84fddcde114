"""wifi_node: CSI packets (sensor_msgs/Image: amplitude/phase 64FC2 / 32FC2 or I/Q complex128 /
complex64) of any antenna x subcarrier layout and rate -> the WiFi encoder's input.

Each packet is mapped onto the model's 3 antennas x 114 subcarriers (``csi_layout``,
``subcarrier_mapping``, ``antenna_policy``, ``antenna_select``: :mod:`mmhpe_ros.runtime.csi_layout`),
the packets are resampled by stamp onto the 10 slots of each 100 ms frame window
(:mod:`mmhpe_ros.runtime.csi_window`, ``max_gap_s``), normalised as the model's card says and
published stamped with the frame's stamp. A window the stream leaves unfinished is published
(missing slots NaN, filled and marked by the model) after ``window_timeout_s`` of silence (steady
time, so also while a replay's sim time stands still).
"""
from __future__ import annotations

from typing import Any

from rclpy.duration import Duration
from sensor_msgs.msg import Image

from mmhpe_ros.modalities import CSI_PACKETS_PER_FRAME, SENSOR_TOPICS
from mmhpe_ros.nodes.sensor_node import SensorNode
from mmhpe_ros.nodes.spin import spin_node
from mmhpe_ros.runtime.csi_layout import LAYOUTS, MODEL_LAYOUT, CsiLayoutMapper
from mmhpe_ros.runtime.csi_window import CsiWindowAssembler
from mmhpe_ros.runtime.sensors import CsiProcessor


class WifiNode(SensorNode):
    """The WiFi CSI node; ``kwargs`` go to ``rclpy.node.Node`` (e.g. ``parameter_overrides``)."""

    def __init__(self, node_name: str = "wifi_node", **kwargs: Any) -> None:
        super().__init__(node_name, "wifi", **kwargs)
        self.topic = self.declare("input_topic", SENSOR_TOPICS["wifi"], "CSI packets, one sensor_msgs/Image each")
        anchor = self.declare("anchor_first_packet", False, "true: the first packet opens a frame window (live "
                              "sources); false: windows on whole multiples of 100 ms, as bags stamp them")
        lag = self.declare("lag_frames", 1, "frames a packet may arrive late and still join its window")
        min_packets = self.declare("min_packets", CSI_PACKETS_PER_FRAME // 2,
                                   "windows with fewer resampled slots are dropped (missing slots are NaN)")
        timeout = self.declare("window_timeout_s", 0.5, "publish an unfinished window after this much silence")
        depth = self.declare("packet_queue_depth", 5 * CSI_PACKETS_PER_FRAME,
                             "CSI packets the subscription keeps while the node is busy (sensor-data QoS "
                             "otherwise; its default depth of 5 is 5 ms of packets at x10 replay)")
        layout = self.declare("csi_layout", MODEL_LAYOUT, "subcarriers of the input packets' columns: a preset "
                              f"({', '.join(sorted(LAYOUTS))}); ignored when subcarrier_indices is set")
        indices = self.declare("subcarrier_indices", [0.0], "the input columns' subcarrier indices (ascending, "
                               "units of 312.5 kHz from the channel centre); [0.0]: use csi_layout")
        mapping = self.declare("subcarrier_mapping", "frequency", "frequency: interpolate at the model's "
                               "subcarrier indices (out-of-band ones NaN, filled by the model); stretch: map the "
                               "input's index range onto the model's first")
        antenna_policy = self.declare("antenna_policy", "repeat", "fewer than 3 antennas: repeat (cycle the "
                                      "rows) or fill (missing rows NaN, filled by the model)")
        antenna_select = self.declare("antenna_select", [0, 1, 2], "more than 3 antennas: the rows to use")
        max_gap = self.declare("max_gap_s", 0.05, "window slots between packets further apart than this are "
                               "missing (masked); closer ones are interpolated")
        mapper = CsiLayoutMapper(list(indices) if len(indices) > 1 else layout, mapping, antenna_policy,
                                 antenna_select)
        self.processor = CsiProcessor(self.config, CsiWindowAssembler(
            origin_ns=None if anchor else 0, lag_frames=lag, min_packets=min_packets,
            max_gap_ns=round(max_gap * 1e9)), mapper)
        self._timeout = Duration(seconds=timeout)
        self._last_packet = self._steady.now()  # steady: "quiet" also when sim time stands still
        self.subscribe(Image, self.topic, self._on_packet, depth=depth)
        self.create_timer(max(timeout / 2, 0.01), self._flush_when_quiet, clock=self._steady)
        self.get_logger().info(f"{self.topic} -> CSI windows -> features of {self.model_path}")

    def _on_packet(self, msg: Image):
        self._last_packet = self._steady.now()
        return self.processor.process(msg)

    def _flush_when_quiet(self) -> None:
        if self.processor.assembler.pending and self._steady.now() - self._last_packet > self._timeout:
            counters = self.inputs[self.topic]
            try:
                for features in self.processor.flush():
                    self.publish(features, counters)
            except Exception as error:  # noqa: BLE001 - a timer callback must never raise
                self.drop(counters, self.topic, error)

    def extra_counters(self, topic: str) -> dict[str, int]:
        c = self.processor.assembler.counters
        return {"packets": c.packets, "late_packets": c.late, "duplicate_packets": c.duplicates,
                "overflow_packets": c.overflow, "surplus_packets": c.surplus,
                "resets": c.resets, "windows": c.windows, "incomplete_windows": c.incomplete,
                "too_sparse_windows": c.too_sparse}


def main(args: list[str] | None = None) -> None:
    spin_node(WifiNode, args)


if __name__ == "__main__":
    main()
