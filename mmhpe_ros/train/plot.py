"""Figures of training runs and evaluations, as PNG files (matplotlib, Agg; no display needed).

- :func:`plot_shapley`: per training log (``log.csv`` of ``mmhpe-ros train``), each modality's
  Shapley value per epoch; below it, the MPJPE of the fused model and of each modality alone on
  the held-out training sequences (``holdout_mpjpe_<m>_only_mm``), or, for a log without them,
  on the validation split (``val_mpjpe_<m>_only_mm``: older logs, or ``val_curves``): the balance
  over training.
- :func:`plot_subsets`: per evaluation (``subsets.csv`` of ``mmhpe-ros evaluate``), MPJPE and
  PA-MPJPE of every modality subset as grouped bars, one colour per run.

Figure sizes are fixed (:data:`DPI`, :data:`PANEL_INCHES`, :data:`SUBSETS_INCHES`) so the PNG
size is known from the number of panels. matplotlib is imported inside the drawing functions.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mmhpe_ros.modalities import MODALITIES

DPI = 100
PANEL_INCHES = (6.0, 3.5)  # one training log's panel (width, height)
SUBSETS_INCHES = (11.0, 3.5)  # one metric's panel of the subset bar chart
SHAPLEY_PNG, SUBSETS_PNG = "shapley.png", "subsets.png"
MODALITY_COLOURS = dict(zip(MODALITIES, ("tab:blue", "tab:orange", "tab:green", "tab:red")))
SUBSET_METRICS = (("mpjpe_mm", "MPJPE (mm)"), ("pa_mpjpe_mm", "PA-MPJPE (mm)"))


def read_table(path: str | Path, required: Sequence[str]) -> dict[str, list[str]]:
    """Columns of a CSV file by name; errors name the file and the missing columns."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    if not rows:
        raise ValueError(f"{path}: no rows")
    missing = [c for c in required if c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; found {list(rows[0])}")
    return {name: [row[name] for row in rows] for name in rows[0]}


def _floats(values: Sequence[str]) -> np.ndarray:
    """CSV cells as floats; empty cells become NaN."""
    return np.array([float(v) if v not in ("", None) else math.nan for v in values])


def run_labels(paths: Sequence[str | Path]) -> list[str]:
    """A short label per file: its folder name (``runs/awc/log.csv`` -> ``awc``), the path if ambiguous."""
    names = [Path(p).resolve().parent.name or str(p) for p in paths]
    return [n if names.count(n) == 1 else str(p) for n, p in zip(names, paths)]


def _figure(width_in: float, height_in: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=DPI, format="png")
    return out


def plot_shapley(logs: Sequence[str | Path], out: str | Path, labels: Sequence[str] | None = None) -> Path:
    """One column per training log: Shapley value per epoch per modality (top) and, when logged,
    the validation MPJPE fused and per modality alone (bottom). Returns ``out``."""
    from matplotlib.ticker import MaxNLocator

    labels = list(labels) if labels is not None else run_labels(logs)
    tables = [read_table(p, ["epoch"]) for p in logs]
    for path, table in zip(logs, tables):
        if not _shapley_columns(table):
            raise ValueError(f"{path}: no shapley_<modality> columns (is it a `mmhpe-ros train` log.csv?)")
        if all(np.isnan(_floats(table[c])).all() for c in _shapley_columns(table)):
            raise ValueError(f"{path}: every Shapley value is empty (trained with shapley_batches: 0?)")
    prefixes = [_error_prefix(t) for t in tables]
    with_errors = any(prefixes)
    rows = 2 if with_errors else 1
    figure = _figure(PANEL_INCHES[0] * len(logs), PANEL_INCHES[1] * rows)
    axes = figure.subplots(rows, len(logs), squeeze=False, sharex="col", sharey="row")
    for column, (table, label, prefix) in enumerate(zip(tables, labels, prefixes)):
        epoch = _floats(table["epoch"])
        top = axes[0, column]
        for name in _shapley_columns(table):
            modality = name[len("shapley_"):]
            top.plot(epoch, _floats(table[name]), marker="o", markersize=3, label=modality,
                     color=MODALITY_COLOURS.get(modality))
        top.xaxis.set_major_locator(MaxNLocator(integer=True))
        top.axhline(0.0, color="0.7", linewidth=0.8)
        top.set_title(label)
        top.set_ylabel("Shapley value")
        top.legend(fontsize="small")
        if with_errors:
            bottom = axes[1, column]
            if prefix:
                bottom.plot(epoch, _floats(table[f"{prefix}_mpjpe_mm"]), color="black", label="fused")
            for name in _shapley_columns(table):
                modality = name[len("shapley_"):]
                only = f"{prefix}_mpjpe_{modality}_only_mm"
                if prefix and only in table:
                    bottom.plot(epoch, _floats(table[only]), linestyle="--", label=f"{modality} only",
                                color=MODALITY_COLOURS.get(modality))
            bottom.set_ylabel({"holdout": "held-out MPJPE (mm)", "val": "val MPJPE (mm)"}.get(prefix, "MPJPE (mm)"))
            bottom.set_xlabel("epoch")
            bottom.legend(fontsize="small")
        else:
            top.set_xlabel("epoch")
    return _save(figure, out)


def _error_prefix(table: Mapping[str, list[str]]) -> str:
    """``holdout`` or ``val``: whose errors a log has (held-out preferred), or "" for none."""
    return next((p for p in ("holdout", "val") if f"{p}_mpjpe_mm" in table), "")


def _shapley_columns(table: Mapping[str, list[str]]) -> list[str]:
    return [c for c in table if c.startswith("shapley_") and c != "shapley_seconds"]


def plot_subsets(tables: Sequence[str | Path], out: str | Path, labels: Sequence[str] | None = None) -> Path:
    """MPJPE and PA-MPJPE per modality subset (the ``subsets.csv`` of ``mmhpe-ros evaluate``),
    one panel per metric, one bar colour per table; subsets in the first table's order."""
    labels = list(labels) if labels is not None else run_labels(tables)
    read = [read_table(p, ["subset", *(m for m, _ in SUBSET_METRICS)]) for p in tables]
    subsets = list(dict.fromkeys(s for t in read for s in t["subset"]))
    figure = _figure(*(SUBSETS_INCHES[0], SUBSETS_INCHES[1] * len(SUBSET_METRICS)))
    axes = figure.subplots(len(SUBSET_METRICS), 1, squeeze=False, sharex="col")[:, 0]
    x = np.arange(len(subsets))
    width = 0.8 / len(read)
    for axis, (metric, title) in zip(axes, SUBSET_METRICS):
        for i, (table, label) in enumerate(zip(read, labels)):
            by_subset = dict(zip(table["subset"], _floats(table[metric])))
            values = np.array([by_subset.get(s, math.nan) for s in subsets])
            axis.bar(x + (i - (len(read) - 1) / 2) * width, values, width, label=label)
        axis.set_ylabel(title)
        axis.grid(axis="y", color="0.9")
        axis.set_axisbelow(True)
        if len(read) > 1:
            axis.legend(fontsize="small")
    axes[-1].set_xticks(x, subsets, rotation=35, ha="right", fontsize="small")
    return _save(figure, out)


def png_size(path: str | Path) -> tuple[int, int]:
    """(width, height) in pixels from a PNG header."""
    header = Path(path).read_bytes()[:24]
    if header[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


__all__ = ["DPI", "PANEL_INCHES", "SHAPLEY_PNG", "SUBSETS_INCHES", "SUBSETS_PNG", "plot_shapley",
           "plot_subsets", "png_size", "read_table", "run_labels"]
