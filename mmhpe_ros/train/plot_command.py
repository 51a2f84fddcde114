"""Plot training and evaluation results: `mmhpe-ros plot --log LOG.csv --subsets SUBSETS.csv --out DIR`.

--log (repeatable): a `mmhpe-ros train` log.csv -> shapley.png, each modality's Shapley value
per epoch (and the validation MPJPE, fused and per modality alone), one column per log.
--subsets (repeatable): a `mmhpe-ros evaluate` subsets.csv -> subsets.png, MPJPE and PA-MPJPE of
every modality subset as grouped bars, one colour per file. Runs are labelled by their folder
names (e.g. runs/awc/log.csv -> awc) unless --labels are given.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "draw Shapley values per epoch and the modality-subset error table as PNG"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log", action="append", default=[], metavar="LOG_CSV",
                        help="training log.csv (repeat to compare runs)")
    parser.add_argument("--subsets", action="append", default=[], metavar="SUBSETS_CSV",
                        help="subsets.csv of `mmhpe-ros evaluate` (repeat to compare runs)")
    parser.add_argument("--labels", nargs="+", default=None,
                        help="run labels, one per file of each kind given (none: folder names)")
    parser.add_argument("--out", default=None, help="output folder (none: the folder of the first input)")


def run(args: argparse.Namespace) -> int:
    from mmhpe_ros.train.plot import SHAPLEY_PNG, SUBSETS_PNG, plot_shapley, plot_subsets

    inputs = args.log + args.subsets
    if not inputs:
        print("mmhpe-ros plot: give --log and/or --subsets", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out is not None else Path(inputs[0]).parent
    try:
        written = []
        for files, draw, name in ((args.log, plot_shapley, SHAPLEY_PNG), (args.subsets, plot_subsets, SUBSETS_PNG)):
            if not files:
                continue
            if args.labels is not None and len(args.labels) != len(files):
                raise ValueError(f"--labels: {len(args.labels)} labels for {len(files)} files of {name}")
            written.append(draw(files, out / name, args.labels))
    except (ValueError, FileNotFoundError) as error:
        print(f"mmhpe-ros plot: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0
