"""Train the pose model: `mmhpe-ros train --config config/train.yaml [--resume] [key=value ...]`.

Reads a training config (config/train.yaml documents every key), applies ``key=value``
overrides (``model.key=value`` for the model), and trains from an MM-Fi tree or bags. Writes
``<output_dir>/log.csv``, ``best.safetensors`` / ``last.safetensors`` (+ JSON cards) and
per-epoch checkpoints; ``--resume`` continues from the newest complete checkpoint. Several
processes: ``torchrun --nproc_per_node N -m mmhpe_ros.train --config ...``.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

HELP = "train the balanced multi-modal pose model (naive, dropout, AWC, OGM-GE, G-Blending or unimodal)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="training config YAML (none: the built-in defaults)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest complete checkpoint in output_dir")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, values in YAML syntax, e.g. epochs=5 method=naive model.feature_dim=64")


def run(args: argparse.Namespace) -> int:
    from mmhpe_ros.model.card import CheckpointError
    from mmhpe_ros.train.config import load_train_config
    from mmhpe_ros.train.trainer import train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_train_config(args.config, args.overrides)
        result = train(config, resume=args.resume)
    except (ValueError, FileNotFoundError, FileExistsError, CheckpointError) as error:
        print(f"mmhpe-ros train: {error}", file=sys.stderr)
        return 2
    if result.history and int(os.environ.get("RANK", "0")) == 0:
        last = result.history[-1]
        print(f"done: {len(result.history)} epochs, held-out MPJPE {last['holdout_mpjpe_mm']:.2f} mm, "
              f"PA-MPJPE {last['holdout_pa_mpjpe_mm']:.2f} mm (held-out training sequences; `mmhpe-ros "
              f"evaluate` for the validation split); outputs in {result.output_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from mmhpe_ros.cli import HelpFormatter

    parser = argparse.ArgumentParser(prog="python -m mmhpe_ros.train", description=__doc__,
                                     formatter_class=HelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))
