"""Generation speed of `mmhpe-ros synth`: simulation alone, and simulation + writing the MM-Fi files.

Prints one line per figure:
  synth_simulate_frames_per_s     all four sensor models + motion, in memory
  synth_camera/lidar/mmwave/wifi_frames_per_s   one sensor model alone
  synth_write_frames_per_s        simulation + the MM-Fi files on disk (one process)
  synth_write_bytes_per_frame     size of the written tree per frame
  synth_x_realtime                write speed against MM-Fi's 10 Hz frame rate

Usage: .venv/bin/python bench/bench_synth.py [--frames N] [--sequences N]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from mmhpe_ros.data.synth.camera import camera_keypoints
from mmhpe_ros.data.synth.lidar import lidar_points, room_distances, scan_grid
from mmhpe_ros.data.synth.mmwave import mmwave_points
from mmhpe_ros.data.synth.motion import sequence_motion, subject_body
from mmhpe_ros.data.synth.scene import environment_scene
from mmhpe_ros.data.synth.sequence import simulate_sequence
from mmhpe_ros.data.synth.wifi import csi_frames
from mmhpe_ros.data.synth.writer import write_tree
from mmhpe_ros.modalities import ACTIONS, CSI_PACKET_RATE_HZ, CSI_PACKETS_PER_FRAME, FRAME_RATE_HZ, SUBJECTS


def best_of(function, repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls, seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def bench_sensors(frames: int) -> None:
    scene = environment_scene("E01", 0)
    motion = sequence_motion(subject_body(1, 0), "A17", np.random.default_rng(0))
    times = np.arange(frames) / FRAME_RATE_HZ
    joints, velocities = motion.joints(times), motion.velocities(times)
    packets = motion.joints(np.arange(frames * CSI_PACKETS_PER_FRAME) / CSI_PACKET_RATE_HZ)
    grid = scan_grid(scene)
    room = room_distances(scene, grid)
    rng = np.random.default_rng(0)
    models = {
        "camera": lambda: camera_keypoints(scene, joints, velocities, rng),
        "lidar": lambda: [lidar_points(scene, j, rng, grid, room) for j in joints],
        "mmwave": lambda: [mmwave_points(scene, j, v, rng) for j, v in zip(joints, velocities)],
        "wifi": lambda: csi_frames(scene, packets, rng),
    }
    for name, model in models.items():
        print(f"synth_{name}_frames_per_s {frames / best_of(model):.1f}")


def bench_simulate(frames: int) -> None:
    seconds = best_of(lambda: simulate_sequence("S01", "A17", frames, 0))
    print(f"synth_simulate_frames_per_s {frames / seconds:.1f}")


def bench_write(frames: int, sequences: int) -> None:
    subjects = SUBJECTS[:: max(1, len(SUBJECTS) // sequences)][:sequences]
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "tree"
        seconds = best_of(lambda: write_tree(out, subjects, ACTIONS[:1], frames, 0, overwrite=True,
                                             progress=False), repeat=2)
        summary = write_tree(out, subjects, ACTIONS[:1], frames, 0, overwrite=True, progress=False)
    rate = summary.frames / seconds
    print(f"synth_write_frames_per_s {rate:.1f}")
    print(f"synth_write_bytes_per_frame {summary.bytes / summary.frames:.0f}")
    print(f"synth_x_realtime {rate / FRAME_RATE_HZ:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50, help="frames per sequence")
    parser.add_argument("--sequences", type=int, default=4, help="sequences written by the write figure")
    args = parser.parse_args()
    bench_sensors(args.frames)
    bench_simulate(args.frames)
    bench_write(args.frames, args.sequences)


if __name__ == "__main__":
    main()
