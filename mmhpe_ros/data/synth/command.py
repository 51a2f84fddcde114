"""Write an MM-Fi-format tree from a simulated person (the same files, dtypes and shapes as MM-Fi).

Each subject (fixed body size and tempo) performs each action procedurally, standing anywhere
1-4 m in front of the rig and facing any way (drawn per sequence); per-environment scenes mount
each sensor at its own height, yaw and pitch in a furnished room and add clutter and noise;
sensor models produce 2D keypoints (camera pixels), LiDAR points, mmWave points with Doppler (each
in its sensor's own frame), and WiFi CSI amplitude/phase; the ground truth is in the rig's
base_link, and OUT/calibration/E0x.yaml gives each environment's true rig. The output reads like
the real dataset (`mmhpe-ros convert`, `MmfiDataset`). Same --seed, same bytes; a subset of
subjects or actions gives exactly those sequences of a larger run. Models and sizes: docs/synth.md.

Example: mmhpe-ros synth data/mmfi --preset benchmark --workers 2
"""
from __future__ import annotations

import argparse
import sys
import time

from mmhpe_ros.modalities import ACTIONS, SUBJECTS

HELP = "simulate a person and write an MM-Fi-format tree (rgb, lidar, mmwave, wifi-csi, ground truth)"
# preset -> (subjects, actions, frames per sequence); flags given explicitly override a preset.
PRESETS: dict[str, tuple[str, str, int]] = {
    "default": ("S01,S11,S21,S31", "all", 10),
    "benchmark": ("all", "all", 10),
}
PROTOCOL_ACTIONS = ("P1", "P2", "P3")


def _expand(text: str, names: tuple[str, ...], kind: str) -> list[str]:
    """``"S01,S05-S07"`` / ``"all"`` -> names in dataset order; ValueError naming the bad part."""
    if text.strip().lower() == "all":
        return list(names)
    chosen: set[str] = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if kind == "actions" and part.upper() in PROTOCOL_ACTIONS:
            from mmhpe_ros.data.splits import protocol_actions

            chosen.update(protocol_actions(part.upper()))
            continue
        first, _, last = part.upper().partition("-")
        last = last or first
        if first not in names or last not in names or names.index(first) > names.index(last):
            raise ValueError(f"--{kind}: {part!r} is not a name or range of {names[0]}..{names[-1]}")
        chosen.update(names[names.index(first):names.index(last) + 1])
    if not chosen:
        raise ValueError(f"--{kind}: no {kind} given")
    return [name for name in names if name in chosen]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `mmhpe-ros synth`."""
    parser.add_argument("out", metavar="OUT",
                        help="output folder (created; must be empty unless --overwrite)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default",
                        help="sizes: default = S01,S11,S21,S31 x all actions x 10 frames (seconds); "
                             "benchmark = all 40 subjects x all actions x 10 frames "
                             "(about 1.5 min with --workers 2, 0.9 GB)")
    parser.add_argument("--subjects", default=None,
                        help="subjects, e.g. S01,S11 or S01-S10 or all (overrides the preset)")
    parser.add_argument("--actions", default=None,
                        help="actions, e.g. A01,A13 or A01-A05, a protocol P1/P2/P3, or all "
                             "(overrides the preset)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per sequence at 10 Hz, at most 297 as in MM-Fi (overrides the preset)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (>= 0): same seed, identical files")
    parser.add_argument("--workers", type=int, default=1, help="processes generating sequences in parallel")
    parser.add_argument("--lidar-scan", choices=("sector", "full"), default="sector",
                        help="sector: the +-30 degrees MM-Fi records, a sparse room (default); full: 360 "
                             "degrees with every room return (about 32k points and 0.8 MB per frame)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace OUT if it holds a generated MM-Fi tree (E0x folders, calibration/E0x.yaml; "
                             "never deletes anything else)")


def run(args: argparse.Namespace) -> int:
    """Resolve the preset and flags, then write the tree with :func:`writer.write_tree`."""
    from mmhpe_ros.data.synth.writer import write_tree
    from mmhpe_ros.modalities import FRAMES_PER_SEQUENCE

    subjects_text, actions_text, frames = PRESETS[args.preset]
    try:
        subjects = _expand(args.subjects or subjects_text, SUBJECTS, "subjects")
        actions = _expand(args.actions or actions_text, ACTIONS, "actions")
    except ValueError as error:
        return _error(str(error))
    frames = frames if args.frames is None else args.frames
    if not 1 <= frames <= FRAMES_PER_SEQUENCE:
        return _error(f"--frames must be in 1..{FRAMES_PER_SEQUENCE}, got {frames}")
    if args.seed < 0:
        return _error(f"--seed must be a non-negative integer, got {args.seed}")
    if args.workers < 1:
        return _error(f"--workers must be at least 1, got {args.workers}")
    start = time.perf_counter()
    try:
        summary = write_tree(args.out, subjects, actions, frames, args.seed,
                             workers=args.workers, overwrite=args.overwrite, lidar_scan=args.lidar_scan)
    except FileExistsError as error:
        return _error(str(error))
    seconds = time.perf_counter() - start
    print(f"wrote {summary.sequences} sequences ({len(subjects)} subjects x {len(actions)} actions), "
          f"{summary.frames} frames, {summary.bytes / 1e6:.1f} MB to {args.out} in {seconds:.1f} s "
          f"(seed {args.seed})")
    return 0


def _error(message: str) -> int:
    print(f"mmhpe-ros synth: error: {message}", file=sys.stderr)
    return 2
