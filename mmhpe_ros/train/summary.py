"""Compare training runs: a Markdown table of the last epoch of each run's ``log.csv``.

``python -m mmhpe_ros.train.summary runs/naive runs/awc ...`` prints, per run: fused MPJPE and
PA-MPJPE on the held-out training sequences, each modality's MPJPE from the fused model with
only that modality present, the gap between the best and worst of those, and the Shapley values.
Validation results come from ``mmhpe-ros evaluate`` / ``mmhpe-ros benchmark`` instead.
"""
from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

from mmhpe_ros.modalities import MODALITIES
from mmhpe_ros.train.trainer import LOG_FILE


def _number(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _cell(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def summary_table(runs: list[str | Path]) -> str:
    """The Markdown table of the last logged epoch of each run directory."""
    head = (["run", "epochs", "held-out MPJPE", "held-out PA-MPJPE"] + [f"{m} only" for m in MODALITIES]
            + ["gap (worst - best only)"] + [f"Shapley {m}" for m in MODALITIES])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in runs:
        path = Path(run) / LOG_FILE
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise ValueError(f"{path}: no epochs logged")
        last = rows[-1]
        only = [_number(last.get(f"holdout_mpjpe_{m}_only_mm")) for m in MODALITIES]
        known = [v for v in only if not math.isnan(v)]
        gap = max(known) - min(known) if len(known) > 1 else math.nan
        cells = ([Path(run).name, last["epoch"], _cell(_number(last["holdout_mpjpe_mm"])),
                  _cell(_number(last["holdout_pa_mpjpe_mm"]))] + [_cell(v) for v in only] + [_cell(gap)]
                 + [_cell(_number(last.get(f"shapley_{m}")), 2) for m in MODALITIES])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    runs = sys.argv[1:] if argv is None else argv
    if not runs:
        print("usage: python -m mmhpe_ros.train.summary RUN_DIR [RUN_DIR ...]", file=sys.stderr)
        return 2
    print(summary_table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
