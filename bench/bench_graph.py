"""End-to-end latency and throughput of the node graph, over real DDS, beside the model's forward time.

    .venv/bin/python bench/bench_graph.py [--frames 200] [--rates 10 20 40] [--seconds 8] [--model PATH]

Latency: the bench publishes the sample bag's frames as raw sensor messages at MM-Fi's 10 Hz
(camera keypoints, LiDAR, radar, then the ten CSI packets) to the four sensor nodes; latency is
from the last message of a frame leaving the bench to its MarkerArray arriving back (sensor node,
sync, inference, publish, two DDS hops). The fusion node's own latency (its last input in ->
markers out) and the model's forward time come from the same run. Throughput: the replayer plays
the sample bag in a loop at each ``--rates`` factor; fused frames/s is counted over ``--seconds``.
Goals (issue 4): p99 <= 20 ms and <= 2 x forward; >= 100 fused frames/s.
One line per figure: ``name value``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _percentiles(name: str, values_ms: list[float]) -> None:
    values = np.asarray(values_ms)
    print(f"{name}_p50_ms {np.percentile(values, 50):.2f}")
    print(f"{name}_p99_ms {np.percentile(values, 99):.2f}")


def latency(model_path: str | None, frames: int) -> tuple[dict[int, int], dict[int, int]]:
    """Publish ``frames`` frames; print the figures; return (sent, received) perf_counter_ns by stamp."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image, PointCloud2
    from visualization_msgs.msg import MarkerArray

    from mmhpe_ros.data import bag_format as fmt
    from mmhpe_ros.data.bags import BagDataset
    from mmhpe_ros.modalities import MODALITIES, SENSOR_TOPICS, TOPICS
    from mmhpe_ros.nodes.run_command import GraphSpinner, build_graph
    from mmhpe_ros.resources import SAMPLE_BAG
    from mmhpe_ros.runtime import codecs

    nodes = build_graph(model_path=model_path, replay=False)
    fusion = nodes[-1]
    bench = rclpy.create_node("bench_graph")
    types = codecs.rclpy_types()
    publishers = {m: bench.create_publisher(Image if m == "wifi" else PointCloud2, SENSOR_TOPICS[m],
                                            qos_profile_sensor_data) for m in MODALITIES}
    published: dict[int, int] = {}  # stamp -> when the fusion node's markers publish() returned
    publish_markers = fusion._markers.publish

    def publish_and_note(msg: MarkerArray) -> None:
        publish_markers(msg)
        published.setdefault(codecs.header_stamp_ns(msg.markers[0]), time.perf_counter_ns())

    fusion._markers.publish = publish_and_note  # a probe on the fusion node's output
    received: dict[int, int] = {}
    bench.create_subscription(MarkerArray, TOPICS.markers, lambda msg: received.setdefault(
        codecs.header_stamp_ns(msg.markers[0]), time.perf_counter_ns()), 100)
    sent: dict[int, int] = {}
    source = [f for f in BagDataset(SAMPLE_BAG.parent)]
    spinner = GraphSpinner([*nodes, bench])
    try:
        end = time.monotonic() + 10
        while not all(p.get_subscription_count() for p in publishers.values()) and time.monotonic() < end:
            time.sleep(0.05)
        start_ns = 10**9 * 1000
        for k in range(frames):
            frame = source[k % len(source)]
            frame = type(frame)(frame.key, 0, frame.joints, frame.data)
            stamp = start_ns + k * fmt.FRAME_PERIOD_NS
            due = time.monotonic() + fmt.FRAME_PERIOD_NS / 1e9
            packets = 0
            for stream, _, msg in fmt.frame_messages(types, frame, stamp, MODALITIES):
                modality = next((m for m, s in fmt.SENSOR_STREAMS.items() if s == stream), None)
                if modality == "wifi":
                    if packets:
                        time.sleep(0.004)  # 100 Hz packets, compressed into the frame period
                    packets += 1
                if modality is not None:
                    publishers[modality].publish(msg)
            sent[stamp] = time.perf_counter_ns()  # the frame's last message (its last CSI packet) is out
            time.sleep(max(0.0, due - time.monotonic()))
        time.sleep(1.0)
    finally:
        spinner.stop()
        for node in [*nodes, bench]:
            node.destroy_node()
    latencies = [(received[s] - sent[s]) / 1e6 for s in sent if s in received]
    print(f"graph_frames_sent {frames}")
    print(f"graph_frames_fused {len(latencies)}")
    _percentiles("graph_latency", latencies)
    _percentiles("graph_in_out_latency", [(published[s] - sent[s]) / 1e6 for s in sent if s in published])
    _percentiles("fusion_node_latency", list(fusion.latencies_ms))
    _percentiles("model_forward", list(fusion.forward_ms))
    return sent, received


def throughput(model_path: str | None, rate: float, seconds: float) -> None:
    from mmhpe_ros.nodes.run_command import GraphSpinner, build_graph

    nodes = build_graph(model_path=model_path, rate=rate, loop=True, extra={"replayer": {"delay": 0.5}})
    replayer, fusion = nodes[0], nodes[-1]
    spinner = GraphSpinner(nodes)
    try:
        time.sleep(2.0)  # start-up and the first pass's warm-up
        fused0, complete0, published0, t0 = fusion.fused, fusion.fused - fusion.partial, replayer.player.published, time.monotonic()
        time.sleep(seconds)
        fused, complete, published, t1 = fusion.fused, fusion.fused - fusion.partial, replayer.player.published, time.monotonic()
    finally:
        spinner.stop()
        for node in nodes:
            node.destroy_node()
    frames_offered = (published - published0) / 14.0  # a sample frame is 14 messages (GT, 3 clouds, 10 CSI)
    tag = f"x{rate:g}"
    print(f"replay_frames_per_s_{tag} {frames_offered / (t1 - t0):.1f}")
    print(f"fused_frames_per_s_{tag} {(fused - fused0) / (t1 - t0):.1f}")
    print(f"complete_fraction_{tag} {(complete - complete0) / max(fused - fused0, 1):.3f}")
    print(f"inference_dropped_{tag} {fusion.worker.dropped}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200, help="frames for the latency run (10 Hz)")
    parser.add_argument("--rates", type=float, nargs="+", default=[10.0, 20.0, 40.0], help="replay rates for throughput")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds counted per throughput rate")
    parser.add_argument("--model", default=None, help="model weights (default: the shipped model)")
    parser.add_argument("--domain", default="199", help="ROS_DOMAIN_ID for the bench")
    args = parser.parse_args()
    os.environ["ROS_DOMAIN_ID"] = args.domain

    import rclpy
    import torch

    from mmhpe_ros.nodes.run_command import init_composed_process

    torch.set_num_threads(1)
    init_composed_process()  # as `mmhpe-ros run` does
    try:
        latency(args.model, args.frames)
        for rate in args.rates:
            throughput(args.model, rate, args.seconds)
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
