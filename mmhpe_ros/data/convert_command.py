"""Convert an MM-Fi tree (real or from `mmhpe-ros synth`) into rosbag2 MCAP bags.

--per sequence writes one bag per sequence (OUT/E01_S01_A01); --per split writes one bag per
split of --protocol x --setting (OUT/train, OUT/val). Either way only --protocol's actions are
converted (default P3: all). A tree's calibration files (ROOT/calibration/E0x.yaml, as `mmhpe-ros
synth` writes them) go into the bags: their text in the metadata, the camera's intrinsics as a
CameraInfo with each frame's keypoints. Topics, message types and stamps: docs/bags.md; the
reader: docs/data.md.

Example: mmhpe-ros convert data/mmfi bags/p1s1 --per split --protocol P1 --setting S1
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from mmhpe_ros.data.splits import PROTOCOLS, SETTINGS
from mmhpe_ros.modalities import ACTIONS, ENVIRONMENTS, MODALITIES, SUBJECTS

HELP = "MM-Fi tree -> rosbag2 MCAP bags (one per sequence or per train/val split)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `mmhpe-ros convert`."""
    parser.add_argument("root", metavar="ROOT", help="MM-Fi tree root (holds E01..E04)")
    parser.add_argument("out", metavar="OUT", help="output folder for the bags (must not exist)")
    parser.add_argument("--per", choices=("sequence", "split"), default="sequence",
                        help="one bag per sequence, or one per train/val split")
    parser.add_argument("--protocol", choices=tuple(PROTOCOLS), type=str.upper, default="P3",
                        help="action subset: P1 daily, P2 rehabilitation, P3 all 27")
    parser.add_argument("--setting", choices=tuple(SETTINGS), type=str.upper, default="S1",
                        help="split for --per split: S1 random, S2 cross-subject, S3 cross-environment")
    parser.add_argument("--seed", type=int, default=0, help="S1 random-split seed (MM-Fi's default 0)")
    parser.add_argument("--modalities", nargs="+", choices=MODALITIES, default=list(MODALITIES),
                        metavar="MODALITY", help=f"modalities to convert ({', '.join(MODALITIES)})")
    parser.add_argument("--environments", nargs="+", choices=ENVIRONMENTS, metavar="ENV",
                        help="only these environments (E01..E04)")
    parser.add_argument("--subjects", nargs="+", choices=SUBJECTS, metavar="SUBJECT",
                        help="only these subjects (S01..S40)")
    parser.add_argument("--actions", nargs="+", choices=ACTIONS, metavar="ACTION",
                        help="only these actions (A01..A27)")
    parser.add_argument("--missing", choices=("skip", "absent"), default="skip",
                        help="frames with an empty modality file: skip them (MM-Fi toolbox) or keep "
                             "them without that modality")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it holds only bags")


def _error(message: str) -> int:
    print(f"mmhpe-ros convert: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Index ROOT, then write the bags with :func:`mmhpe_ros.data.bags.convert`."""
    from mmhpe_ros.data import bags, splits
    from mmhpe_ros.data.bag_format import BagFormatError
    from mmhpe_ros.data.mmfi import MmfiDataset, MmfiFormatError, PartialDatasetWarning, tree_calibrations

    if Path(args.out).exists() and not args.overwrite:  # say so before a long indexing pass
        return _error(f"{args.out} exists; pass --overwrite to replace it")
    protocol = args.protocol  # P1 | P2 | P3 (upper-cased by argparse)
    in_protocol = splits.protocol_actions(protocol)
    actions = [action for action in (args.actions or ACTIONS) if action in in_protocol]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PartialDatasetWarning)
            dataset = MmfiDataset(
                args.root, modalities=args.modalities, environments=args.environments,
                subjects=args.subjects, actions=actions, missing=args.missing, progress=True,
            )
    except (FileNotFoundError, NotADirectoryError, MmfiFormatError) as error:
        return _error(str(error))
    for warning in caught:
        print(f"mmhpe-ros convert: warning: {warning.message}", file=sys.stderr)
    if len(dataset) == 0:
        return _error(f"{args.root}: no frame matches the chosen sequences and modalities")
    split = splits.split_namer(protocol, args.setting, args.seed) if args.per == "split" else None
    try:
        calibrations = tree_calibrations(args.root, {key.environment for key in dataset.keys})
    except ValueError as error:
        return _error(f"calibration folder: {error}")
    try:
        written = bags.convert(dataset, args.out, per=args.per, split=split, modalities=args.modalities,
                               overwrite=args.overwrite, calibrations=calibrations)
    except (FileExistsError, MmfiFormatError, BagFormatError) as error:
        return _error(str(error))
    where = f"{protocol} x {args.setting}, seed {args.seed}" if args.per == "split" else "per sequence"
    plural = "" if len(written) == 1 else "s"
    print(f"wrote {len(written)} bag{plural} ({where}) from {len(dataset.keys)} sequences, "
          f"{len(dataset)} frames ({dataset.skipped_frames} skipped: empty files) to {args.out}")
    return 0
