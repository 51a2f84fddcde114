"""Run the benchmark grid: `mmhpe-ros benchmark --config config/train.yaml --methods naive,awc --seeds 0,1,2`.

Trains one run per (method x seed) - plus, when asked, each modality alone and fused subsets
(Table 3) and AWC's alpha sweep (Table 4) - evaluates every run once on the validation split
and writes ``results.md`` (tables shaped like the paper's: mean +- sd over seeds, the paired
difference of each method to naive with a 95 % confidence interval, each modality's error alone)
and ``runs.csv`` into --out. Resumable: rerun the same command after an interruption; finished
runs (``runs/<name>/result.json``) are kept, a run killed mid-training continues from its last
checkpoint. ``key=value`` overrides apply to every run (e.g. ``epochs=20 model.feature_dim=64``).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

HELP = "train and evaluate the benchmark grid (methods x seeds, modalities alone, alpha sweep): paper-shaped tables"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="training config YAML shared by every run")
    parser.add_argument("--methods", default="naive,dropout,ogm,gblend,awc",
                        help="Table 1 methods, comma-separated: naive, dropout, ogm, gblend, awc")
    parser.add_argument("--seeds", default="0,1,2", help="seeds, comma-separated (paired across methods)")
    parser.add_argument("--alone", default="",
                        help="Table 3: modalities trained alone, comma-separated (e.g. rgb,lidar,mmwave,wifi)")
    parser.add_argument("--subsets", default="",
                        help="Table 3: modality subsets fused by naive training, comma-separated, + within (e.g. rgb+lidar)")
    parser.add_argument("--alphas", default="",
                        help="Table 4: AWC alpha_S:alpha_I pairs, comma-separated (e.g. 0:0,10000:10000,20000:10000,20000:20000)")
    parser.add_argument("--out", default="runs/benchmark", help="folder of the runs and the tables")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs trained at once (processes with one thread each; e.g. 2 on 2 cores)")
    parser.add_argument("--missing", choices=("skip", "absent"), default="skip",
                        help="validation frames with an empty modality: skip (the MM-Fi toolbox) or keep them absent")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="which model of each run is evaluated (best: lowest held-out MPJPE)")
    parser.add_argument("--batch-size", type=int, default=256, help="frames per forward pass of the evaluation")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and what is finished, train nothing")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="training config overrides for every run")


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def run(args: argparse.Namespace) -> int:
    from mmhpe_ros.model.card import CheckpointError

    try:
        return _run(args)
    except (ValueError, FileNotFoundError, FileExistsError, CheckpointError) as error:
        print(f"mmhpe-ros benchmark: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mmhpe_ros.train.benchmark import grid, parse_alphas, read_result, run_grid, write_outputs
    from mmhpe_ros.train.config import load_train_config

    import warnings

    from mmhpe_ros.data.mmfi import PartialDatasetWarning

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("once", category=PartialDatasetWarning)  # every run opens the same tree
    base = load_train_config(args.config, args.overrides)
    try:
        seeds = [int(s) for s in _list(args.seeds)]
    except ValueError:
        raise ValueError(f"--seeds: expected integers, got {args.seeds!r}") from None
    if not seeds:
        raise ValueError("--seeds: give at least one seed")
    specs = grid(base, _list(args.methods), seeds, _list(args.alone),
                 [s.split("+") for s in _list(args.subsets)], parse_alphas(args.alphas))
    out = Path(args.out)
    names = list(dict.fromkeys(spec.name for spec in specs))
    finished = [n for n in names if read_result(out / "runs" / n) is not None]
    print(f"benchmark: {len(names)} runs ({len(finished)} finished) in {out}")
    if args.dry_run:
        for name in names:
            print(f"  {name}{' (finished)' if name in finished else ''}")
        return 0
    start = time.perf_counter()

    def done(record: dict) -> None:
        print(f"  {record['name']}: MPJPE {record['subsets']['+'.join(record['modalities'])]['mpjpe_mm']:.2f} mm, "
              f"train {record['train_seconds']:.0f} s, evaluate {record['evaluate_seconds']:.0f} s", flush=True)

    results = run_grid(specs, base, out, args.jobs, args.missing, args.checkpoint, args.batch_size, on_done=done)
    title = (f"Benchmark: {base.data_root or ', '.join(base.bags)}, {base.protocol} {base.setting}, "
             f"{base.epochs} epochs, seeds {', '.join(map(str, seeds))}; validation split evaluated once per run "
             f"({args.checkpoint} model, missing={args.missing})")
    paths = write_outputs(results, out, title)
    print(paths["results.md"].read_text(encoding="utf-8"))
    print(f"wrote {paths['results.md']} and {paths['runs.csv']} ({time.perf_counter() - start:.0f} s)")
    return 0
