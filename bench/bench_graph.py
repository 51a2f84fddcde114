"""End-to-end latency and throughput of the node graph, over real DDS, beside the model's forward time.

    .venv/bin/python bench/bench_graph.py [--frames 200] [--rates 10 20] [--seconds 8] [--processes] [--executor events|single] [--model PATH]

Latency: the bench publishes the sample bag's frames as raw sensor messages at MM-Fi's 10 Hz
(camera keypoints, LiDAR, radar, then the ten CSI packets) to the four sensor nodes.
``graph_in_out_latency``: from the last message of a frame leaving the bench (last input in) to
the fusion node's MarkerArray ``publish()`` returning (markers out) — sensor node, two DDS hops,
sync, inference, marker building. ``graph_latency``: until the MarkerArray has reached a
subscriber in the bench (one more hop and its deserialisation). The fusion node's own latency
(its last input in -> markers out) and the model's forward time come from the same run.
Throughput: the replayer plays the sample bag in a loop at each ``--rates`` factor; fused frames/s
and the share of complete (all-modality) sets are counted over ``--seconds``.
``--processes``: every node in a process of its own, as `ros2 launch` and `mmhpe-ros run
--processes` run them; figures then come from the fusion node's /diagnostics (no in/out probe).
With ``--processes`` each node's CPU use over the throughput window is printed too
(``cpu_percent_<node>_x<rate>``: user + system time of its process, % of one core).
Goals (issue 13): latency p99 <= 2 x forward at x1; via ``--processes`` at x10 >= 99% complete sets.
One line per figure: ``name value``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mmhpe_ros.nodes.spin import EXECUTOR_ENV, EXECUTORS, executor_kind  # noqa: E402 (no rclpy import)

FRAME_MESSAGES = 14  # messages of a sample frame: ground truth, 3 clouds, 10 CSI packets


def _percentiles(name: str, values_ms: list[float]) -> None:
    values = np.asarray(values_ms)
    print(f"{name}_p50_ms {np.percentile(values, 50):.2f}")
    print(f"{name}_p99_ms {np.percentile(values, 99):.2f}")


class Bench:
    """The bench's own node: raw sensor publishers, a MarkerArray subscriber, the fusion's diagnostics."""

    def __init__(self) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image, PointCloud2
        from visualization_msgs.msg import MarkerArray

        from mmhpe_ros.modalities import MODALITIES, SENSOR_TOPICS, TOPICS
        from mmhpe_ros.runtime import codecs

        self.node = rclpy.create_node("bench_graph")
        self.publishers = {m: self.node.create_publisher(Image if m == "wifi" else PointCloud2, SENSOR_TOPICS[m],
                                                         qos_profile_sensor_data) for m in MODALITIES}
        self.received: dict[int, int] = {}  # stamp -> perf_counter_ns of the MarkerArray's arrival
        self.node.create_subscription(MarkerArray, TOPICS.markers, lambda msg: self.received.setdefault(
            codecs.header_stamp_ns(msg.markers[0]), time.perf_counter_ns()), 100)
        self.reporting: set[str] = set()  # nodes seen in /diagnostics
        self.fusion: list[tuple[float, dict[str, str]]] = []  # (monotonic, values) of each fusion status
        self.node.create_subscription(DiagnosticArray, TOPICS.diagnostics, self._on_diagnostics, 100)

    def _on_diagnostics(self, msg: Any) -> None:
        for status in msg.status:
            node_name, _, what = status.name.partition(": ")
            self.reporting.add(node_name)
            if what == "fusion":
                self.fusion.append((time.monotonic(), {kv.key: kv.value for kv in status.values}))

    def publish_frames(self, frames: int) -> dict[int, int]:
        """Publish ``frames`` sample frames at 10 Hz; stamp -> perf_counter_ns of each frame's last message."""
        from mmhpe_ros.data import bag_format as fmt
        from mmhpe_ros.data.bags import BagDataset
        from mmhpe_ros.modalities import MODALITIES
        from mmhpe_ros.resources import SAMPLE_BAG
        from mmhpe_ros.runtime import codecs

        types = codecs.rclpy_types()
        source = list(BagDataset(SAMPLE_BAG.parent))
        _wait(lambda: all(p.get_subscription_count() for p in self.publishers.values()), 30.0)
        sent: dict[int, int] = {}
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
                    self.publishers[modality].publish(msg)
            sent[stamp] = time.perf_counter_ns()  # the frame's last message (its last CSI packet) is out
            time.sleep(max(0.0, due - time.monotonic()))
        time.sleep(1.5)
        return sent


def _wait(condition: Callable[[], bool], timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the graph did not come up")
        time.sleep(0.05)


def _print_latency(frames: int, sent: dict[int, int], received: dict[int, int]) -> None:
    latencies = [(received[s] - sent[s]) / 1e6 for s in sent if s in received]
    print(f"graph_frames_sent {frames}")
    print(f"graph_frames_fused {len(latencies)}")
    _percentiles("graph_latency", latencies)


def latency(model_path: str | None, frames: int) -> None:
    """The graph composed in this process (as `mmhpe-ros run`)."""
    from mmhpe_ros.nodes.run_command import GraphSpinner, build_graph
    from mmhpe_ros.runtime import codecs

    nodes = build_graph(model_path=model_path, replay=False)
    fusion = nodes[-1]
    bench = Bench()
    published: dict[int, int] = {}  # stamp -> when the fusion node's markers publish() returned
    publish_markers = fusion._markers.publish

    def publish_and_note(msg: Any) -> None:
        publish_markers(msg)
        published.setdefault(codecs.header_stamp_ns(msg.markers[0]), time.perf_counter_ns())

    fusion._markers.publish = publish_and_note  # a probe on the fusion node's output
    spinner = GraphSpinner([*nodes, bench.node])
    try:
        sent = bench.publish_frames(frames)
    finally:
        spinner.stop()
        for node in [*nodes, bench.node]:
            node.destroy_node()
    _print_latency(frames, sent, bench.received)
    _percentiles("graph_in_out_latency", [(published[s] - sent[s]) / 1e6 for s in sent if s in published])
    _percentiles("fusion_node_latency", list(fusion.latencies_ms))
    _percentiles("model_forward", list(fusion.forward_ms))


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
    tag = f"x{rate:g}"
    print(f"replay_frames_per_s_{tag} {(published - published0) / FRAME_MESSAGES / (t1 - t0):.1f}")
    _print_throughput(tag, fused - fused0, complete - complete0, t1 - t0)


def _print_throughput(tag: str, fused: int, complete: int, seconds: float) -> None:
    print(f"fused_frames_per_s_{tag} {fused / seconds:.1f}")
    print(f"complete_fraction_{tag} {complete / max(fused, 1):.3f}")


def _processes(model_path: str | None, bench: Bench, **options: Any) -> Any:
    """The graph's nodes as processes (`mmhpe-ros run --processes`), up and reporting."""
    from mmhpe_ros.nodes.processes import GraphProcesses, graph_commands
    from mmhpe_ros.nodes.run_command import graph_overrides
    from mmhpe_ros.resources import default_params_path
    from mmhpe_ros.runtime.params_file import load_parameter_file

    params_path = default_params_path()
    commands = graph_commands(params_path, graph_overrides(load_parameter_file(params_path), model_path=model_path,
                                                           **options))
    return GraphProcesses(commands, ready=lambda: set(commands) - {"replayer"} <= bench.reporting)


def latency_processes(model_path: str | None, frames: int) -> None:
    from mmhpe_ros.nodes.run_command import GraphSpinner

    bench = Bench()
    spinner = GraphSpinner([bench.node])
    graph = None
    try:
        graph = _processes(model_path, bench, replay=False)
        graph.wait_until(lambda: bench.reporting >= {"fusion_node"})
        sent = bench.publish_frames(frames)
        time.sleep(1.2)  # the fusion's next diagnostics, with every frame in
    finally:
        if graph is not None:
            graph.stop()
        spinner.stop()
        bench.node.destroy_node()
    _print_latency(frames, sent, bench.received)
    last = bench.fusion[-1][1]
    for name, key in (("fusion_node_latency", "latency_ms"), ("model_forward", "forward_ms")):
        for p in ("p50", "p99"):
            print(f"{name}_{p}_ms {last[f'{key}_{p}']}")


def throughput_processes(model_path: str | None, rate: float, seconds: float) -> None:
    from mmhpe_ros.nodes.run_command import GraphSpinner

    bench = Bench()
    spinner = GraphSpinner([bench.node])
    graph = None
    try:
        graph = _processes(model_path, bench, rate=rate, loop=True, extra={"replayer": {"delay": 0.5}})
        time.sleep(3.0)  # the replayer's start-up and the first pass's warm-up
        cpu0, t0 = {name: _cpu_seconds(p.pid) for name, p in graph.processes.items()}, time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = {name: _cpu_seconds(p.pid) for name, p in graph.processes.items()}, time.monotonic()
    finally:
        if graph is not None:
            graph.stop()
        spinner.stop()
        bench.node.destroy_node()
    end_t, end = bench.fusion[-1]
    start_t, start = next((t, v) for t, v in bench.fusion if t >= end_t - seconds)
    fused = int(end["fused"]) - int(start["fused"])
    partial = int(end["partial"]) - int(start["partial"])
    _print_throughput(f"x{rate:g}", fused, fused - partial, end_t - start_t)
    for name in cpu0:
        print(f"cpu_percent_{name}_x{rate:g} {100.0 * (cpu1[name] - cpu0[name]) / (t1 - t0):.0f}")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200, help="frames for the latency run (10 Hz)")
    parser.add_argument("--rates", type=float, nargs="+", default=[10.0, 20.0], help="replay rates for throughput")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds counted per throughput rate")
    parser.add_argument("--processes", action="store_true", help="one process per node (as ros2 launch)")
    parser.add_argument("--model", default=None, help="model weights (default: the shipped model)")
    parser.add_argument("--executor", choices=EXECUTORS, default=None,
                        help="the nodes' rclpy executor (default: as mmhpe-ros run chooses)")
    parser.add_argument("--domain", default="99", help="ROS_DOMAIN_ID for the bench (0-101 are safe on Linux)")
    args = parser.parse_args()
    os.environ["ROS_DOMAIN_ID"] = args.domain

    import rclpy
    import torch

    from mmhpe_ros.nodes.run_command import init_composed_process

    os.environ[EXECUTOR_ENV] = executor_kind(args.executor)  # this process's nodes and --processes' alike
    print(f"executor {os.environ[EXECUTOR_ENV]}")
    torch.set_num_threads(1)
    init_composed_process()  # as `mmhpe-ros run` does
    try:
        if args.processes:
            latency_processes(args.model, args.frames)
        else:
            latency(args.model, args.frames)
        for rate in args.rates:
            (throughput_processes if args.processes else throughput)(args.model, rate, args.seconds)
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
