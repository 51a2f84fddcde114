"""PointCloud2 decode against a memcpy of the same bytes (issue 4 goal: decode <= 3x memcpy).

For each layout and point count, prints one line per figure:
  decode_<layout>_<N>_memcpy_us        np.copyto of the message's bytes into a preallocated buffer
  decode_<layout>_<N>_view_us          codecs.read_point_columns(msg, fields): validated (N, k)
                                       array in the fields' own dtype (a view where the layout allows)
  decode_<layout>_<N>_owned_us         the same, copied into an owned writable array
  decode_<layout>_<N>_float64_us       read_point_columns(..., dtype=float64), the sensor nodes' call
  decode_<layout>_<N>_ratio            view_us / memcpy_us (the goal's figure: the decode itself)
  decode_<layout>_<N>_owned_ratio      owned_us / memcpy_us (decode + numpy's copy of the result)
  decode_<layout>_<N>_float64_ratio    float64_us / memcpy_us (writes twice the bytes for float32)

Layouts: xyz_f32 (packed LiDAR x, y, z float32), radar_f32 (x, y, z, velocity, intensity
float32, the mmWave layout), driver_f32_pad (x, y, z, intensity float32 + ring uint16 in 32-byte
points; x, y, z are read). Messages are rclpy's (array.array data, what a node receives) when
the rclpy message packages import, rosbags' otherwise. Times are the best of several repeats.

Usage: .venv/bin/python bench/bench_decode.py [--points 1000 20000 100000] [--repeat 20]
"""
from __future__ import annotations

import argparse
import timeit
from typing import Any, Callable

import numpy as np

from mmhpe_ros.runtime import codecs

FLOAT32, UINT16 = 7, 4
XYZ = ["x", "y", "z"]
RADAR = ["x", "y", "z", "velocity", "intensity"]


def message_types() -> tuple[str, codecs.MessageTypes]:
    try:
        return "rclpy", codecs.rclpy_types()
    except ImportError:
        return "rosbags", codecs.rosbags_types()


def packed_cloud(types: codecs.MessageTypes, names: list[str], points: int, rng: np.random.Generator) -> Any:
    values = rng.uniform(-20, 20, (points, len(names))).astype(np.float32)
    return codecs.create_points(types, None, values, names)


def padded_driver_cloud(types: codecs.MessageTypes, points: int, rng: np.random.Generator) -> Any:
    """x y z intensity float32, ring uint16, padded to 32-byte points (a common driver layout)."""
    names = ("x", "y", "z", "intensity", "ring")
    layout = np.dtype({"names": names, "formats": ["<f4"] * 4 + ["<u2"],
                       "offsets": [0, 4, 8, 12, 16], "itemsize": 32})
    cloud = np.zeros(points, dtype=layout)
    for name in names:
        cloud[name] = rng.uniform(0, 50, points)
    return types.PointCloud2(
        header=None, height=1, width=points, is_bigendian=False, point_step=32,
        row_step=32 * points, data=types.uint8_sequence(cloud.view(np.uint8)), is_dense=True,
        fields=[types.PointField(name=n, offset=layout.fields[n][1], datatype=d, count=1)
                for n, d in zip(names, (FLOAT32,) * 4 + (UINT16,))],
    )


def best_us(function: Callable[[], Any], repeat: int) -> float:
    """Best time of one call in microseconds (each sample loops enough calls to last ~2 ms)."""
    timer = timeit.Timer(function)
    number, _ = timer.autorange()
    number = max(1, number // 100)
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def bench(layout: str, msg: Any, fields: list[str], repeat: int) -> None:
    source = np.frombuffer(msg.data, dtype=np.uint8)
    target = np.empty_like(source)
    figures = {
        "memcpy_us": best_us(lambda: np.copyto(target, source), repeat),
        "view_us": best_us(lambda: codecs.read_point_columns(msg, fields), repeat),
        "owned_us": best_us(lambda: np.array(codecs.read_point_columns(msg, fields)), repeat),
        "float64_us": best_us(lambda: codecs.read_point_columns(msg, fields, dtype=np.float64), repeat),
    }
    figures["ratio"] = figures["view_us"] / figures["memcpy_us"]
    figures["owned_ratio"] = figures["owned_us"] / figures["memcpy_us"]
    figures["float64_ratio"] = figures["float64_us"] / figures["memcpy_us"]
    prefix = f"decode_{layout}_{msg.width}"
    for name, value in figures.items():
        print(f"{prefix}_{name} {value:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[1000, 20_000, 100_000],
                        help="point counts of the decoded clouds")
    parser.add_argument("--repeat", type=int, default=20, help="timing samples per figure (best is kept)")
    args = parser.parse_args()
    kind, types = message_types()
    print(f"# messages: {kind}; numpy {np.__version__}")
    rng = np.random.default_rng(0)
    for points in args.points:
        bench("xyz_f32", packed_cloud(types, XYZ, points, rng), XYZ, args.repeat)
        bench("radar_f32", packed_cloud(types, RADAR, points, rng), RADAR, args.repeat)
        bench("driver_f32_pad", padded_driver_cloud(types, points, rng), XYZ, args.repeat)


if __name__ == "__main__":
    main()
