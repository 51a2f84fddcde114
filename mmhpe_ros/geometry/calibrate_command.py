"""Estimate each environment's calibration from an MM-Fi tree with ground truth (real MM-Fi has
no published extrinsics): writes ROOT/calibration/E0x.yaml, which training, `convert` and the
nodes then use like any calibration (docs/geometry.md, "Calibrating your rig").

Per environment: the base frame from the ground truth (z up, floor at 0), the LiDAR's and the
radar's pose by fitting their person points to the body surface around the ground truth, the
camera's pose and intrinsics from the 2D keypoints (mmhpe_ros/geometry/calibrate.py).

Example: mmhpe-ros calibrate /data/MMFi --environments E01 E02
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from mmhpe_ros.modalities import ENVIRONMENTS, FRAME_IDS, IMAGE_HEIGHT, IMAGE_WIDTH

HELP = "estimate sensor extrinsics (and camera intrinsics) per environment from a tree with ground truth"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `mmhpe-ros calibrate`."""
    parser.add_argument("root", metavar="ROOT", type=Path, help="MM-Fi tree root (holds E01..E04)")
    parser.add_argument("--environments", nargs="+", choices=ENVIRONMENTS, default=None, metavar="ENV",
                        help="environments to calibrate (default: every one in the tree)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder of the calibration files (default: ROOT/calibration)")
    parser.add_argument("--frames", type=int, default=3000,
                        help="frames read per environment, spread evenly over its sequences")
    parser.add_argument("--overwrite", action="store_true", help="replace existing calibration files")
    parser.add_argument("--compare", type=Path, default=None, metavar="DIR",
                        help="also print the error against the calibration files in DIR (e.g. a generated tree's)")


def run(args: argparse.Namespace) -> int:
    from mmhpe_ros.data.mmfi import MmfiDataset
    from mmhpe_ros.geometry.calibration import load_calibration, write_calibration

    out = args.out or args.root / "calibration"
    try:
        dataset = MmfiDataset(args.root, modalities=["rgb", "lidar", "mmwave"], environments=args.environments,
                              missing="absent", progress=True)
    except (FileNotFoundError, ValueError) as error:
        return _error(str(error))
    environments = sorted({key.environment for key, _ in dataset.index})
    for environment in environments:
        path = out / f"{environment}.yaml"
        if path.exists() and not args.overwrite:
            return _error(f"{path} exists; pass --overwrite to replace it")
        positions = [i for i, (key, _) in enumerate(dataset.index) if key.environment == environment]
        picks = [positions[i] for i in np.linspace(0, len(positions) - 1, min(args.frames, len(positions))).astype(int)]
        try:
            calibration, report = calibrate_frames([dataset[i] for i in picks])
        except ValueError as error:
            return _error(f"{environment}: {error}")
        write_calibration(path, calibration, f"estimated by mmhpe-ros calibrate from {len(picks)} frames of "
                          f"{args.root} ({environment})\n" + report)
        print(f"{environment}: {len(picks)} frames -> {path}\n" + "\n".join("  " + line for line in report.splitlines()))
        if args.compare is not None:
            print(compare(calibration, load_calibration(args.compare / f"{environment}.yaml")))
    return 0


def calibrate_frames(frames: list):
    """(Calibration, report text) from frames (``Frame``) of one environment."""
    from mmhpe_ros.geometry.calibrate import base_from_ground_truth, fit_camera, fit_point_sensor, moving_points
    from mmhpe_ros.geometry.calibration import GROUND_TRUTH_FRAME, Calibration

    ground_truth = np.array([f.joints for f in frames], dtype=np.float64)
    base_from_gt = base_from_ground_truth(ground_truth)
    joints = base_from_gt.apply(ground_truth)
    extrinsics, intrinsics, lines = {GROUND_TRUTH_FRAME: base_from_gt}, {}, []
    for modality, scale in (("lidar", 0.03), ("mmwave", 0.2)):
        clouds = [f.data.get(modality, np.zeros((0, 3)))[:, :3] for f in frames]
        if sum(len(c) > 0 for c in clouds) < 10:
            lines.append(f"{FRAME_IDS[modality]}: not enough frames with points; not calibrated")
            continue
        fit = fit_point_sensor(moving_points(clouds), joints, scale_m=scale)
        extrinsics[FRAME_IDS[modality]] = fit.transform
        lines.append(f"{FRAME_IDS[modality]}: xyz {_rounded(fit.transform.xyz)} rpy {_rounded(fit.transform.rpy)}, "
                     f"{fit.inliers:.0%} of {fit.points} points on the body (median distance {fit.residual_m * 100:.1f} cm)")
    keypoints = np.array([f.data["rgb"][:, :2] if "rgb" in f.data else np.full((17, 2), np.nan) for f in frames])
    try:
        fit, camera = fit_camera(keypoints, joints, IMAGE_WIDTH, IMAGE_HEIGHT)
        extrinsics[FRAME_IDS["rgb"]], intrinsics[FRAME_IDS["rgb"]] = fit.transform, camera
        lines.append(f"{FRAME_IDS['rgb']}: xyz {_rounded(fit.transform.xyz)} rpy {_rounded(fit.transform.rpy)}, "
                     f"focal {camera.k[0, 0]:.1f} px, median reprojection error {fit.residual_m:.1f} px")
    except ValueError as error:
        lines.append(f"{FRAME_IDS['rgb']}: not calibrated ({error})")
    return Calibration(extrinsics=extrinsics, intrinsics=intrinsics), "\n".join(lines)


def compare(estimated, reference) -> str:
    """Rotation (deg) and translation (cm) errors of every frame both calibrations have."""
    lines = []
    for frame in sorted(set(estimated.extrinsics) & set(reference.extrinsics)):
        a, b = estimated.extrinsics[frame], reference.extrinsics[frame]
        lines.append(f"  {frame}: rotation error {np.rad2deg(a.angle_to(b)):.2f} deg, "
                     f"translation error {100 * np.linalg.norm(a.translation - b.translation):.1f} cm")
    return "\n".join(lines)


def _rounded(values) -> list[float]:
    return [round(float(v), 3) for v in values]


def _error(message: str) -> int:
    print(f"mmhpe-ros calibrate: error: {message}", file=sys.stderr)
    return 2
