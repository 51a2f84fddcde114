"""Soak: the demo graph replaying the sample bag in a loop at a fast rate for minutes; memory and drops.

    .venv/bin/python bench/bench_soak.py [--minutes 10] [--rate 10] [--executor events|single] [--model PATH]

Reports resident memory (RSS) after warm-up and at the end (goal: flat within 5 %), fused frames,
the synchroniser's and the inference worker's drops, sync resets (one per bag loop) and the
largest queue seen. test/test_graph.py runs a few seconds of it (:func:`soak`). One line per figure.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mmhpe_ros.nodes.spin import EXECUTOR_ENV, EXECUTORS, executor_kind  # noqa: E402 (no rclpy import)

WARM_UP_S = 5.0


def rss_mb() -> float:
    """Resident set size of this process (Linux /proc), MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


@dataclass
class SoakResult:
    seconds: float
    rss_start_mb: float
    rss_end_mb: float
    fused: int
    partial: int
    loops: int
    sync_resets: int
    sync_dropped: dict[str, int]
    max_queued: int
    queue_size: int
    rss_samples_mb: list[float] = field(default_factory=list)

    @property
    def rss_growth(self) -> float:
        return self.rss_end_mb / self.rss_start_mb - 1.0


def soak(seconds: float, rate: float, model_path: str | None = None, warm_up_s: float = WARM_UP_S) -> SoakResult:
    """Run the graph (rclpy initialised by the caller) for ``warm_up_s`` + ``seconds``."""
    from mmhpe_ros.nodes.run_command import GraphSpinner, build_graph

    nodes = build_graph(model_path=model_path, rate=rate, loop=True, extra={"replayer": {"delay": 0.5}})
    replayer, fusion = nodes[0], nodes[-1]
    spinner = GraphSpinner(nodes)
    max_queued, samples = 0, []
    try:
        time.sleep(warm_up_s)
        start_rss, start_fused, start_partial, start = rss_mb(), fusion.fused, fusion.partial, time.monotonic()
        while time.monotonic() - start < seconds:
            time.sleep(0.2)
            max_queued = max(max_queued, max(fusion.sync.pending.values()))
            if len(samples) < 10_000:
                samples.append(rss_mb())
        result = SoakResult(
            seconds=time.monotonic() - start, rss_start_mb=start_rss, rss_end_mb=rss_mb(),
            fused=fusion.fused - start_fused, partial=fusion.partial - start_partial, loops=replayer.player.loops,
            sync_resets=fusion.sync.resets, sync_dropped={m: c.dropped for m, c in fusion.sync.counters.items()},
            max_queued=max_queued, queue_size=fusion.sync.queue_size,
            rss_samples_mb=samples)
    finally:
        spinner.stop()
        for node in nodes:
            node.destroy_node()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=10.0, help="replay rate (x real time)")
    parser.add_argument("--model", default=None, help="model weights (default: the shipped model)")
    parser.add_argument("--executor", choices=EXECUTORS, default=None,
                        help="the nodes' rclpy executor (default: as mmhpe-ros run chooses)")
    parser.add_argument("--domain", default="98", help="ROS_DOMAIN_ID for the soak (0-101 are safe on Linux)")
    args = parser.parse_args()
    os.environ["ROS_DOMAIN_ID"] = args.domain

    import rclpy
    import torch

    from mmhpe_ros.nodes.run_command import init_composed_process

    os.environ[EXECUTOR_ENV] = executor_kind(args.executor)  # the soak's nodes
    print(f"executor {os.environ[EXECUTOR_ENV]}")
    torch.set_num_threads(1)
    init_composed_process()  # as `mmhpe-ros run` does
    try:
        result = soak(args.minutes * 60.0, args.rate, args.model)
    finally:
        rclpy.try_shutdown()
    print(f"soak_minutes {result.seconds / 60:.2f}")
    print(f"soak_replay_rate {args.rate:g}")
    print(f"soak_rss_start_mb {result.rss_start_mb:.1f}")
    print(f"soak_rss_end_mb {result.rss_end_mb:.1f}")
    print(f"soak_rss_growth_percent {100 * result.rss_growth:.2f}")
    print(f"soak_fused_frames {result.fused}")
    print(f"soak_fused_frames_per_s {result.fused / result.seconds:.1f}")
    print(f"soak_partial_sets {result.partial}")
    print(f"soak_bag_loops {result.loops}")
    print(f"soak_sync_resets {result.sync_resets}")
    print(f"soak_sync_dropped {sum(result.sync_dropped.values())}")
    print(f"soak_max_queued {result.max_queued}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
