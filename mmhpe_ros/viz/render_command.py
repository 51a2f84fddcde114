"""Draw skeleton pictures: `mmhpe-ros render BAG_OR_RUN --out DIR`.

BAG_OR_RUN is a bag recorded by `mmhpe-ros run --record OUT` (the predicted skeleton beside the
ground truth, the LiDAR and radar points and the camera keypoints), a bag of `mmhpe-ros convert`
(ground truth and sensors only), or an evaluation (`mmhpe-ros evaluate --out DIR`: DIR or its
predictions.npz; predicted and ground-truth skeletons). Writes DIR/<name>_NNNN.png for each of
--frames frames spread evenly over the recording and, for more than one, an animated DIR/<name>.gif,
each with the frame's MPJPE in the caption. Points are drawn in the skeleton's frame: --calibration
gives each sensor frame's pose (a ROS 2 parameter file with `extrinsics`, docs/viewing.md); without
it, the calibration the bag stores (`run --record` and `convert` store it), else sensor frames
coincide with the skeleton's.

Example: mmhpe-ros render out/demo/bag --out out/demo --frames 1
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HELP = "draw the predicted and ground-truth skeletons (and sensor points) of a recorded run or evaluation as PNG/GIF"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, metavar="BAG_OR_RUN",
                        help="bag of `mmhpe-ros run --record` or `convert`, or an evaluation folder / predictions.npz")
    parser.add_argument("--out", type=Path, required=True, help="folder for the pictures")
    parser.add_argument("--frames", type=int, default=100,
                        help="how many frames, spread evenly over the source (0: all; 1: the middle one, no GIF)")
    parser.add_argument("--name", default="skeleton", help="file names: NAME_NNNN.png and NAME.gif")
    parser.add_argument("--fps", type=float, default=10.0, help="frames per second of the GIF")
    parser.add_argument("--no-gif", dest="gif", action="store_false", help="PNG frames only")
    parser.add_argument("--calibration", type=Path, default=None,
                        help="ROS 2 parameter file with each sensor frame's pose (extrinsics); none: the one "
                             "the bag stores (`run --record`, `convert` of a tree with calibration), else identity")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"mmhpe-ros render: error: {error}", file=sys.stderr)
        return 2


def _stored(source: Path) -> Any:
    """The sensor poses of the calibration a bag stores (None: none stored, or not a bag)."""
    from mmhpe_ros.data.bags import bag_calibration
    from mmhpe_ros.viz.frames import frames_of

    if source.suffix == ".npz" or (source.is_dir() and (source / "predictions.npz").exists()):
        return None
    calibration = bag_calibration(source)
    if calibration is None:
        return None
    return frames_of(calibration)


def _run(args: argparse.Namespace) -> int:
    from mmhpe_ros.viz.frames import read_calibration
    from mmhpe_ros.viz.render import render

    try:
        import matplotlib  # noqa: F401  (Pillow comes with it)
    except ImportError:
        raise ValueError("pictures need matplotlib: pip install matplotlib  (or pip install .[plot])") from None
    from mmhpe_ros.viz.sources import read_frames

    if args.frames < 0:
        raise ValueError(f"--frames must be >= 0, got {args.frames}")
    transforms = read_calibration(args.calibration) if args.calibration is not None else _stored(args.source)
    frames = read_frames(args.source, args.frames or None, transforms)
    if not frames:
        raise ValueError(f"{args.source}: no frames to draw")
    done = render(frames, args.out, name=args.name, fps=args.fps, gif=args.gif, progress=args.progress)
    errors, pictures = done.mpjpe_mm, done.pictures
    mpjpe = "" if not errors else f", MPJPE {sum(errors) / len(errors):.1f} mm" + (
        f" (mean of {len(errors)} frames)" if len(errors) > 1 else "")
    print(f"drew {len(pictures)} frame{'s' * (len(pictures) > 1)} into {args.out} in {done.seconds:.1f} s{mpjpe}")
    if done.gif is not None:
        print(f"animation: {done.gif}")
    print(f"picture: {pictures[len(pictures) // 2]}")
    return 0
