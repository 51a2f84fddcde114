"""Capture the static scene for the LiDAR node's background removal from a bag of the empty room:
every LiDAR scan, moved into the base frame with the calibration, voxelised; cells hit in enough
scans become background (mmhpe_ros/geometry/background.py). Give the file to the lidar node as
``background_file`` (docs/geometry.md, "Calibrating your rig").

Example: ros2 bag record -o empty_room /lidar/points   (30 s, nobody in view), then
         mmhpe-ros background empty_room --calibration config/calibration.yaml --out config/background.npz
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmhpe_ros.modalities import SENSOR_TOPICS

HELP = "build the LiDAR background model (static scene voxels) from a bag recorded in the empty room"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `mmhpe-ros background`."""
    parser.add_argument("bag", metavar="BAG", type=Path, help="rosbag2 bag (directory or .mcap) of the empty scene")
    parser.add_argument("--out", type=Path, required=True, help="background model file to write (.npz)")
    parser.add_argument("--calibration", type=Path, default=None,
                        help="calibration file (default: the package's config/calibration.yaml)")
    parser.add_argument("--topic", default="/" + SENSOR_TOPICS["lidar"], help="the LiDAR's PointCloud2 topic")
    parser.add_argument("--voxel", type=float, default=0.1, help="cell size (m)")
    parser.add_argument("--min-fraction", type=float, default=0.1,
                        help="a cell is background when hit in at least this fraction of the scans")
    parser.add_argument("--max-scans", type=int, default=600, help="scans read, spread over the bag")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from mmhpe_ros.geometry.background import BackgroundModel
    from mmhpe_ros.geometry.calibration import MissingTransformError, load_calibration
    from mmhpe_ros.geometry.localise import LidarSettings

    if args.out.exists() and not args.overwrite:
        return _error(f"{args.out} exists; pass --overwrite to replace it")
    if not args.voxel > 0 or not 0 < args.min_fraction <= 1:
        return _error("--voxel must be > 0 and --min-fraction in (0, 1]")
    try:
        calibration = load_calibration(args.calibration or _default_calibration())
        clouds = read_scans(args.bag, args.topic, args.max_scans)
        clearance = calibration.ground_height + LidarSettings().ground_clearance
        moved = [calibration.to_base(frame).apply(points) for frame, points in clouds]
        above = [points[points[:, 2] > clearance] for points in moved]  # the floor is removed by height
        model = BackgroundModel.build(above, voxel=args.voxel, min_fraction=args.min_fraction)
    except (FileNotFoundError, ValueError, MissingTransformError) as error:
        return _error(str(error))
    model.save(args.out)
    points = sum(len(p) for p in above)
    print(f"{len(clouds)} scans ({points} points above the floor) -> {model.cells} background cells of "
          f"{args.voxel} m, grid {list(model.occupied.shape)}, written to {args.out}")
    return 0


def read_scans(bag: Path, topic: str, max_scans: int) -> list[tuple[str, "np.ndarray"]]:
    """(frame id, (N, 3) points) of up to ``max_scans`` PointCloud2 messages of ``topic``, evenly spread."""
    import numpy as np
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    from mmhpe_ros.runtime import codecs

    if not bag.exists():
        raise FileNotFoundError(f"bag {bag} does not exist")
    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        connections = [c for c in reader.connections if c.topic == topic]
        if not connections:
            raise ValueError(f"{bag}: no topic {topic} (it has {sorted({c.topic for c in reader.connections})})")
        count = sum(c.msgcount for c in connections)
        wanted = set(np.linspace(0, count - 1, min(max_scans, count)).astype(int).tolist())
        scans = []
        for number, (connection, _, data) in enumerate(reader.messages(connections=connections)):
            if number in wanted:
                msg = reader.deserialize(data, connection.msgtype)
                points = codecs.read_point_columns(msg, ("x", "y", "z"), dtype=np.float64)
                scans.append((msg.header.frame_id, points[np.isfinite(points).all(axis=1)]))
    return scans


def _default_calibration() -> Path:
    from mmhpe_ros.resources import share_file

    return share_file("config/calibration.yaml")


def _error(message: str) -> int:
    print(f"mmhpe-ros background: error: {message}", file=sys.stderr)
    return 2
