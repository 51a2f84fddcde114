"""Plots: Shapley values per epoch from training logs, the subset table as bars; the command."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mmhpe_ros.cli import main
from mmhpe_ros.modalities import MODALITIES
from mmhpe_ros.train.evaluate import ALL, SubsetScore, subsets_of, write_csv
from mmhpe_ros.train.plot import DPI, PANEL_INCHES, SUBSETS_INCHES, plot_shapley, plot_subsets, png_size
from mmhpe_ros.train.trainer import log_columns, write_log


def write_training_log(path: Path, epochs: int = 4, shapley: bool = True) -> Path:
    """A log.csv as the trainer writes it (its own columns and writer)."""
    rng = np.random.default_rng(len(str(path)))
    rows = []
    for epoch in range(1, epochs + 1):
        row = {"epoch": epoch, "loss": 1.0 / epoch, "holdout_mpjpe_mm": 200 - 10 * epoch,
               "holdout_pa_mpjpe_mm": 150 - 5 * epoch, "penalty": 0.1, "lr": 1e-3, "time": 2.0}
        for i, m in enumerate(MODALITIES):
            row[f"shapley_{m}"] = (4 - i) * epoch * rng.uniform(0.5, 1.0) if shapley else math.nan
            row[f"holdout_mpjpe_{m}_only_mm"] = 220 + 40 * i - 5 * epoch
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_log(path, rows, log_columns(MODALITIES))
    return path


def write_subsets(path: Path, scale: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(path, [SubsetScore(s, ALL, 10, 0, scale * (200 - 20 * len(s)), scale * (100 - 10 * len(s)))
                     for s in subsets_of(MODALITIES)])
    return path


def assert_drawn(path: Path, size: tuple[float, float]) -> None:
    from matplotlib.image import imread

    assert png_size(path) == (round(size[0] * DPI), round(size[1] * DPI))
    pixels = imread(path)
    assert pixels[..., :3].std() > 0.05  # not a blank canvas


def test_shapley_plot_one_column_per_log(tmp_path: Path) -> None:
    logs = [write_training_log(tmp_path / "naive" / "log.csv"), write_training_log(tmp_path / "awc" / "log.csv")]
    out = plot_shapley(logs, tmp_path / "plots" / "shapley.png")
    assert_drawn(out, (2 * PANEL_INCHES[0], 2 * PANEL_INCHES[1]))


def test_subset_bars_for_one_and_several_runs(tmp_path: Path) -> None:
    one = plot_subsets([write_subsets(tmp_path / "a" / "subsets.csv")], tmp_path / "one.png")
    assert_drawn(one, (SUBSETS_INCHES[0], 2 * SUBSETS_INCHES[1]))
    two = plot_subsets([tmp_path / "a" / "subsets.csv", write_subsets(tmp_path / "b" / "subsets.csv", 0.8)],
                       tmp_path / "two.png", labels=["naive", "awc"])
    assert_drawn(two, (SUBSETS_INCHES[0], 2 * SUBSETS_INCHES[1]))
    assert two.read_bytes() != one.read_bytes()


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    empty = write_training_log(tmp_path / "off" / "log.csv", shapley=False)
    with pytest.raises(ValueError, match="shapley_batches"):
        plot_shapley([empty], tmp_path / "x.png")
    with pytest.raises(ValueError, match="missing columns"):
        plot_subsets([empty], tmp_path / "x.png")
    with pytest.raises(FileNotFoundError, match="nothing.csv"):
        plot_shapley([tmp_path / "nothing.csv"], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_plot_command(tmp_path: Path, capsys) -> None:
    log = write_training_log(tmp_path / "run" / "log.csv")
    subsets = write_subsets(tmp_path / "run" / "subsets.csv")
    assert main(["plot", "--log", str(log), "--subsets", str(subsets), "--out", str(tmp_path / "out")]) == 0
    assert_drawn(tmp_path / "out" / "shapley.png", (PANEL_INCHES[0], 2 * PANEL_INCHES[1]))
    assert_drawn(tmp_path / "out" / "subsets.png", (SUBSETS_INCHES[0], 2 * SUBSETS_INCHES[1]))
    assert "wrote" in capsys.readouterr().out
    assert main(["plot", "--log", str(log)]) == 0  # default: beside the input
    assert (tmp_path / "run" / "shapley.png").exists()
    assert main(["plot"]) == 2
    assert main(["plot", "--subsets", str(log)]) == 2
    assert "missing columns" in capsys.readouterr().err
    assert main(["plot", "--log", str(log), "--labels", "a", "b"]) == 2
