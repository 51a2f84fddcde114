"""Evaluate a pose model: `mmhpe-ros evaluate [--model PATH] [--data-root ROOT | --bags PATH ...]`.

MPJPE and PA-MPJPE (mm) of every non-empty subset of the model's modalities (15 for four),
overall and per action, on one split of an MM-Fi tree or of rosbag2 bags. Writes subsets.md,
subsets.csv, actions.md and actions.csv into --out and prints the subset table; predictions.npz
holds each frame's fused prediction and ground truth (`mmhpe-ros render` draws them).

Which data: --data-root / --bags / --protocol / --setting / --split-seed on the command line win;
otherwise the values of --config (a training YAML); without --config, the training data recorded
in the model's card (so a trained model is evaluated on its own validation split by default).
Frames: the MM-Fi toolbox's policy by default (--missing skip: a frame with an empty modality
file is left out); --missing absent keeps it, evaluated with the modalities it has and counted as
"partial" (--complete-only leaves such frames out); see mmhpe_ros/train/evaluate.py.
--update-card writes per-joint errors into the card from the held-out TRAINING sequences
(--split holdout, its default), never from the validation split.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HELP = "MPJPE / PA-MPJPE of a model for every modality subset, overall and per action"
SPLIT_CHOICES = ("val", "holdout", "train", "all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help="model weights (.safetensors with its .json card); none: the shipped model")
    parser.add_argument("--config", default=None,
                        help="training config YAML whose data keys to use (none: the model card's training data)")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--data-root", default=None, help="MM-Fi tree root (real or generated)")
    data.add_argument("--bags", nargs="+", default=None, help="rosbag2 bags written by `mmhpe-ros convert`")
    parser.add_argument("--protocol", choices=("P1", "P2", "P3"), default=None, help="MM-Fi protocol (none: from --config or the card)")
    parser.add_argument("--setting", choices=("S1", "S2", "S3"), default=None, help="MM-Fi setting (none: from --config or the card)")
    parser.add_argument("--split-seed", type=int, default=None, help="seed of the S1 random split")
    parser.add_argument("--split", choices=SPLIT_CHOICES, default=None,
                        help="which frames: the protocol/setting's val split (default), the held-out training "
                             "sequences (holdout; default with --update-card), the train split, or all of the protocol")
    parser.add_argument("--missing", choices=("skip", "absent"), default=None,
                        help="frames with an empty modality file: skip them (the MM-Fi toolbox; default) or keep "
                             "them with that modality absent (default for --split holdout: as the model was trained)")
    parser.add_argument("--max-frames", type=int, default=None, help="evaluate an evenly strided subset of this many frames")
    parser.add_argument("--complete-only", action="store_true",
                        help="leave out frames missing any of a subset's modalities (else: evaluated with the rest, counted as partial)")
    parser.add_argument("--out", default="runs/evaluate", help="output folder of the tables")
    parser.add_argument("--update-card", action="store_true",
                        help="also write each subset's per-joint errors into the model's card (the fusion "
                             "node colours joints by them: color_mode confidence); only from --split holdout")
    parser.add_argument("--batch-size", type=int, default=256, help="frames per forward pass")
    parser.add_argument("--cache-dir", default=None,
                        help="disk cache of prepared inputs (default: the --config's, else ~/.cache/mmhpe_ros/prepared; "
                             "'none': in memory)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from mmhpe_ros.model.card import CheckpointError

    try:
        return _run(args)
    except (ValueError, FileNotFoundError, CheckpointError) as error:
        print(f"mmhpe-ros evaluate: {error}", file=sys.stderr)
        return 2


def _data_config(args: argparse.Namespace, card: dict[str, Any], modalities: tuple[str, ...]) -> Any:
    """The :class:`TrainConfig` naming the data: flags > --config > the card's training data."""
    import dataclasses

    from mmhpe_ros.train.config import TrainConfig, load_train_config

    if args.config is not None:
        base = load_train_config(args.config)
    else:
        recorded = card.get("training_data") or {}
        source = recorded.get("source")
        keys = ("protocol", "setting", "split_seed", "holdout_fraction", "holdout_seed", "missing")
        values = {k: recorded[k] for k in keys if recorded.get(k) is not None}
        if isinstance(source, str):
            values["data_root"] = source
        elif isinstance(source, list):
            values["bags"] = source
        base = TrainConfig(**values)
    flags = {"data_root": args.data_root, "protocol": args.protocol, "setting": args.setting,
             "split_seed": args.split_seed}
    changes: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    if args.data_root is not None:
        changes["bags"] = ()
    if args.bags is not None:
        changes.update(bags=tuple(args.bags), data_root=None)
    if args.cache_dir is not None:
        changes["cache_dir"] = None if args.cache_dir.lower() in ("none", "null") else args.cache_dir
    limit = args.max_frames
    return dataclasses.replace(base, **changes, method="naive", modality=None, modalities=modalities, model={},
                               modality_dropout=None, max_train_frames=None, max_val_frames=limit,
                               max_holdout_frames=limit, progress=args.progress)


def _check_data(config: Any) -> None:
    """A clear error when the data named by ``config`` is not there."""
    if not config.data_root and not config.bags:
        raise ValueError("no data: pass --data-root (an MM-Fi tree) or --bags (the model card names none)")
    missing = [p for p in ([config.data_root] if config.data_root else list(config.bags)) if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"data not found: {', '.join(missing)}; pass --data-root or --bags")


def _run(args: argparse.Namespace) -> int:
    import torch

    from mmhpe_ros.model.checkpoint import load_model
    from mmhpe_ros.progress import progress_bar
    from mmhpe_ros.resources import default_model_path
    from mmhpe_ros.train.data import batch_loader, source_index
    from mmhpe_ros.train.distributed import resolve_device
    from mmhpe_ros.train.evaluate import ActionColumn, frame_errors, split_dataset, summarise
    from mmhpe_ros.viz.sources import EVALUATION_FRAMES, write_evaluation_frames

    split = args.split or ("holdout" if args.update_card else "val")
    if args.update_card and split != "holdout":
        raise ValueError("--update-card writes expected errors from the held-out training sequences only "
                         f"(--split holdout), not from --split {split}: no training decision may use the validation split")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    model_path = Path(args.model) if args.model is not None else default_model_path()
    if not model_path.exists():
        raise FileNotFoundError(f"{model_path}: model weights not found")
    device = resolve_device(args.device)
    model, card = load_model(model_path, device)
    config = _data_config(args, card, tuple(model.modalities))
    _check_data(config)
    missing = args.missing or (config.missing if split == "holdout" else "skip")

    dataset = split_dataset(config, model.config, split, missing, args.progress)
    if len(dataset) == 0:
        raise ValueError(f"none of the {split} frames has any of the model's modalities {list(model.modalities)}")
    loader = batch_loader(dataset, args.batch_size, extra=ActionColumn(dataset))
    batches = progress_bar(loader, enabled=args.progress, desc="evaluate", unit="batch", leave=False)
    with torch.inference_mode():
        errors = frame_errors(model, batches, device)
    result = summarise(errors, args.complete_only)

    data_name = config.data_root or ", ".join(config.bags)
    title = (f"{model_path.name} on {data_name}: {config.protocol} {config.setting} {split}, "
             f"{result.frames} frames, missing={missing}")
    paths = result.write(args.out, title)
    index = source_index(dataset.frames)
    paths[EVALUATION_FRAMES] = write_evaluation_frames(
        Path(args.out) / EVALUATION_FRAMES, errors.predicted, errors.target,
        [index[int(p)] for p in dataset.positions], model.modalities)
    print(f"# {title}" + (f" ({dataset.dropped} frames without any model modality dropped)" if dataset.dropped else ""))
    print(result.markdown(), end="")
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    if args.update_card:
        from mmhpe_ros.model.card import EXPECTED_ERRORS_KEY, update_card

        note = (f"mean error of each joint (in the card's joint order), mm, per fused modality subset: "
                f"`mmhpe-ros evaluate` on {title}" + (", complete frames only" if args.complete_only else ""))
        subsets = {name: [round(v, 2) for v in errors] for name, errors in result.joint_mpjpe_mm.items()
                   if all(v == v for v in errors)}  # NaN: no frame had the subset
        print(f"updated {update_card(model_path, {EXPECTED_ERRORS_KEY: {'note': note, 'subsets': subsets}})}")
    return 0
