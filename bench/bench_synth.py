"""`mmhpe-ros synth`: generation speed, file sizes, points per frame and how often each sensor sees
the person.

Prints one line per figure:
  synth_camera/lidar/mmwave/wifi_frames_per_s   one sensor model alone (LiDAR: the recorded sector)
  synth_lidar_full_scan_frames_per_s            the LiDAR model with a full 360-degree scan
  synth_simulate_frames_per_s     all four sensor models + motion, in memory
  synth_write_frames_per_s        simulation + the MM-Fi files on disk (one process)
  synth_write_bytes_per_frame     size of the written tree per frame (and _rgb/_lidar/_mmwave/_wifi)
  synth_x_realtime                write speed against MM-Fi's 10 Hz frame rate
  synth_lidar_person_points_p50 / _room_points_p50    points per frame on the person / the room
      (sector scan; the person's median over frames where it is seen), and _full_scan_points_p50
  synth_mmwave_person_points_p50 / _other_points_p50  radar detections of the person / clutter and ghosts
  synth_visible_camera / _lidar / _radar / _lidar_or_camera   fraction of frames in which the
      sensor sees the person (camera: keypoints reported; LiDAR: >= 10 points; radar: >= 1 detection)

Usage: .venv/bin/python bench/bench_synth.py [--frames N] [--sequences N] [--seed N]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from mmhpe_ros.data.synth.camera import camera_keypoints
from mmhpe_ros.data.synth.lidar import FULL_SCAN, lidar_points, room_distances, scan_grid
from mmhpe_ros.data.synth.mmwave import mmwave_points
from mmhpe_ros.data.synth.motion import NOMINAL_PLACEMENT, sequence_motion, subject_body
from mmhpe_ros.data.synth.scene import environment_scene
from mmhpe_ros.data.synth.sequence import simulate_sequence
from mmhpe_ros.data.synth.wifi import csi_frames
from mmhpe_ros.data.synth.writer import write_tree
from mmhpe_ros.modalities import (
    ACTIONS, CSI_PACKET_RATE_HZ, CSI_PACKETS_PER_FRAME, FRAME_RATE_HZ, MMFI_FORMATS, SUBJECTS,
)


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
    motion = sequence_motion(subject_body(1, 0), "A17", np.random.default_rng(0), NOMINAL_PLACEMENT)
    times = np.arange(frames) / FRAME_RATE_HZ
    joints, velocities = motion.joints(times), motion.velocities(times)
    packets = motion.joints(np.arange(frames * CSI_PACKETS_PER_FRAME) / CSI_PACKET_RATE_HZ)
    grid, full = scan_grid(scene.lidar), scan_grid(scene.lidar, FULL_SCAN)
    room, full_room = room_distances(scene, grid), room_distances(scene, full)
    rng = np.random.default_rng(0)
    models = {
        "camera": lambda: camera_keypoints(scene, joints, velocities, rng),
        "lidar": lambda: [lidar_points(scene, j, rng, grid, room) for j in joints],
        "lidar_full_scan": lambda: [lidar_points(scene, j, rng, full, full_room, FULL_SCAN) for j in joints],
        "mmwave": lambda: [mmwave_points(scene, j, v, rng) for j, v in zip(joints, velocities)],
        "wifi": lambda: csi_frames(scene, packets, rng),
    }
    for name, model in models.items():
        print(f"synth_{name}_frames_per_s {frames / best_of(model):.1f}")


def bench_points(seed: int) -> None:
    """Points per frame and visible fractions over 40 subjects x 9 actions x 4 frames (1,440 frames)."""
    counts: dict[str, list[int]] = {k: [] for k in ("lidar_person", "lidar_room", "mmwave_person", "mmwave_other")}
    seen: dict[str, list[bool]] = {"camera": [], "lidar": [], "radar": []}
    for subject in SUBJECTS:
        for action in ACTIONS[::3]:
            data = simulate_sequence(subject, action, 4, seed)
            for modality, masks in (("lidar", data.lidar_on_person), ("mmwave", data.mmwave_on_person)):
                counts[f"{modality}_person"] += [int(m.sum()) for m in masks]
                counts[f"{modality}_room" if modality == "lidar" else "mmwave_other"] += [int((~m).sum()) for m in masks]
            seen["camera"] += list(~np.isnan(data.rgb).all(axis=(1, 2)))
            seen["lidar"] += [n >= 10 for n in counts["lidar_person"][-data.num_frames:]]
            seen["radar"] += [n >= 1 for n in counts["mmwave_person"][-data.num_frames:]]
    person = np.array(counts["lidar_person"])
    print(f"synth_lidar_person_points_p50 {np.median(person[person >= 10]):.0f}")
    print(f"synth_lidar_room_points_p50 {np.median(counts['lidar_room']):.0f}")
    full = simulate_sequence("S01", "A17", 4, seed, lidar=FULL_SCAN)
    print(f"synth_lidar_full_scan_points_p50 {np.median([len(p) for p in full.lidar]):.0f}")
    for kind in ("person", "other"):
        print(f"synth_mmwave_{kind}_points_p50 {np.median(counts['mmwave_' + kind]):.0f}")
    for sensor, flags in seen.items():
        print(f"synth_visible_{sensor} {np.mean(flags):.3f}")
    print(f"synth_visible_lidar_or_camera {np.mean(np.array(seen['camera']) | np.array(seen['lidar'])):.3f}")


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
        sizes = {m: sum(p.stat().st_size for p in out.glob(f"E0*/S*/A*/{MMFI_FORMATS[m].folder}/*"))
                 for m in ("rgb", "lidar", "mmwave", "wifi")}
    rate = summary.frames / seconds
    print(f"synth_write_frames_per_s {rate:.1f}")
    print(f"synth_write_bytes_per_frame {summary.bytes / summary.frames:.0f}")
    for modality, size in sizes.items():
        print(f"synth_write_bytes_per_frame_{modality} {size / summary.frames:.0f}")
    print(f"synth_x_realtime {rate / FRAME_RATE_HZ:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50, help="frames per sequence")
    parser.add_argument("--sequences", type=int, default=4, help="sequences written by the write figure")
    parser.add_argument("--seed", type=int, default=0, help="seed of the points and visibility figures")
    args = parser.parse_args()
    bench_sensors(args.frames)
    bench_simulate(args.frames)
    bench_write(args.frames, args.sequences)
    bench_points(args.seed)


if __name__ == "__main__":
    main()
