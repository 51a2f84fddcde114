"""Bag conversion speed against MM-Fi's real-time rate, and PointCloud2 decoding against memcpy.

Prints one line per figure:
  convert_frames_per_s / convert_x_realtime   in-memory MM-Fi-shaped frames -> MCAP bags
  bag_read_frames_per_s                       BagDataset iteration of those bags
  convert_tree_frames_per_s / _x_realtime     MM-Fi tree on disk -> bags (reader included; needs
                                              mmhpe_ros.data.mmfi and the generator)
  pointcloud2_*                               decode of one cloud vs a memcpy of its bytes

Usage: .venv/bin/python bench/bench_convert.py [--frames N] [--points N]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from mmhpe_ros.data.bags import BagDataset, convert
from mmhpe_ros.data.frames import Frame, SequenceKey
from mmhpe_ros.modalities import ACTIONS, FRAME_RATE_HZ
from mmhpe_ros.runtime import codecs

# Sizes of an MM-Fi frame: LiDAR and radar point counts vary per frame; these are typical.
LIDAR_POINTS = (300, 1200)
RADAR_POINTS = (10, 60)


def mmfi_like_frames(count: int, seed: int = 0) -> list[Frame]:
    """``count`` frames shaped and typed like MM-Fi's files, 297 per sequence."""
    rng = np.random.default_rng(seed)
    frames = []
    for n in range(count):
        key = SequenceKey("E01", "S01", ACTIONS[(n // 297) % len(ACTIONS)])
        wifi = np.stack([rng.uniform(0, 40, (3, 114, 10)), rng.uniform(-np.pi, np.pi, (3, 114, 10))])
        frames.append(Frame(key, n % 297, rng.normal(size=(17, 3)), {
            "rgb": rng.uniform(0, 640, (17, 2)),
            "lidar": rng.normal(size=(int(rng.integers(*LIDAR_POINTS)), 3)),
            "mmwave": rng.normal(size=(int(rng.integers(*RADAR_POINTS)), 5)),
            "wifi": wifi,
        }))
    return frames


def timed(function, repeat: int) -> float:
    """Best wall time of ``repeat`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def bench_conversion(frames: list[Frame], work: Path) -> None:
    seconds = timed(lambda: convert(frames, work / "bags", per="split", split=lambda key: "all",
                                    overwrite=True, progress=False), repeat=3)
    rate = len(frames) / seconds
    print(f"convert_frames_per_s {rate:.1f}")
    print(f"convert_x_realtime {rate / FRAME_RATE_HZ:.1f}")
    seconds = timed(lambda: sum(1 for _ in BagDataset(work / "bags")), repeat=3)
    print(f"bag_read_frames_per_s {len(frames) / seconds:.1f}")


def bench_tree_conversion(work: Path) -> None:
    """MM-Fi tree written by the generator -> bags, reader included (skipped if not built yet)."""
    missing = [m for m in ("mmhpe_ros.data.mmfi", "mmhpe_ros.data.synth") if not find_spec(m)]
    if missing:
        print(f"# tree conversion skipped: {', '.join(missing)} not built yet")
        return
    from mmhpe_ros.cli import main as cli
    from mmhpe_ros.data.mmfi import MmfiDataset

    tree = work / "tree"
    if cli(["synth", str(tree)]) != 0:
        print("# tree conversion skipped: mmhpe-ros synth failed")
        return
    dataset = MmfiDataset(tree)
    seconds = timed(lambda: convert(dataset, work / "tree_bags", overwrite=True, progress=False), 2)
    rate = len(dataset) / seconds
    print(f"convert_tree_frames_per_s {rate:.1f}")
    print(f"convert_tree_x_realtime {rate / FRAME_RATE_HZ:.1f}")


def bench_decode(points: int) -> None:
    """Decode one cloud into an owned (N, k) array vs np.copyto of the same bytes."""
    rng = np.random.default_rng(1)
    types = codecs.rosbags_types()
    ours = codecs.create_points(types, None, rng.normal(size=(points, 3)), ["x", "y", "z"])
    # A typical driver layout: x y z intensity float32, ring uint16, padded to 32-byte points.
    names, datatypes = ("x", "y", "z", "intensity", "ring"), (7, 7, 7, 7, 4)
    layout = np.dtype({"names": names, "formats": ["<f4"] * 4 + ["<u2"],
                       "offsets": [0, 4, 8, 12, 16], "itemsize": 32})
    cloud = np.zeros(points, dtype=layout)
    for name in names:
        cloud[name] = rng.uniform(0, 50, points)
    driver = types.PointCloud2(
        header=None, height=1, width=points, is_bigendian=False, point_step=32,
        row_step=32 * points, data=cloud.view(np.uint8), is_dense=True,
        fields=[types.PointField(name=n, offset=layout.fields[n][1], datatype=d, count=1)
                for n, d in zip(names, datatypes)],
    )
    for name, msg in (("bag_xyz_f64", ours), ("driver_xyzi_f32_pad", driver)):
        target = np.empty_like(msg.data)
        memcpy = timed(lambda: np.copyto(target, msg.data), repeat=50)
        view = timed(lambda: codecs.read_points_array(msg, ["x", "y", "z"]), repeat=50)
        owned = timed(lambda: np.array(codecs.read_points_array(msg, ["x", "y", "z"])), repeat=50)
        print(f"pointcloud2_{name}_points {points}")
        print(f"pointcloud2_{name}_memcpy_us {memcpy * 1e6:.1f}")
        print(f"pointcloud2_{name}_decode_view_us {view * 1e6:.1f}")
        print(f"pointcloud2_{name}_decode_copy_us {owned * 1e6:.1f}")
        print(f"pointcloud2_{name}_decode_copy_over_memcpy {owned / memcpy:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=594, help="frames to convert (297 per sequence)")
    parser.add_argument("--points", type=int, default=100_000, help="points in the decoded cloud")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        bench_conversion(mmfi_like_frames(args.frames), Path(work))
        bench_tree_conversion(Path(work))
    bench_decode(args.points)


if __name__ == "__main__":
    main()
