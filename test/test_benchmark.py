"""The benchmark runner: the grid, a resumed interrupted grid, paper-shaped tables, paired intervals."""
from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from rig_scene import write_rig_tree as write_tree  # noqa: E402

from mmhpe_ros.cli import main  # noqa: E402
from mmhpe_ros.data.frames import SequenceKey  # noqa: E402
from mmhpe_ros.train import benchmark  # noqa: E402
from mmhpe_ros.train.config import TrainConfig  # noqa: E402

KEYS = tuple(SequenceKey("E01", s, a) for s in ("S01", "S02", "S03", "S05") for a in ("A02", "A03"))  # S05: val
TINY = {"feature_dim": 8, "hidden_dim": 16, "lidar_points": 16, "mmwave_points": 4, "csi_width": 8}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return write_tree(tmp_path_factory.mktemp("bench") / "mmfi", KEYS, frames=3)


def base_config(tree: Path, tmp_path: Path) -> TrainConfig:
    return TrainConfig(data_root=str(tree), setting="S2", epochs=1, batch_size=4, shapley_batches=1, fisher_samples=4,
                       gblend_frames=4, model=TINY, cache_dir=str(tmp_path / "cache"), awc_alpha_strong=200.0,
                       awc_alpha_weak=100.0)


def test_grid_lists_each_table_and_reuses_runs(tree: Path, tmp_path: Path) -> None:
    specs = benchmark.grid(base_config(tree, tmp_path), ["naive", "awc"], [0, 1], alone=["lidar"],
                           subsets=[["lidar", "rgb"]], alphas=[(0, 0), (200, 100), (10, 10)])
    names = [s.name for s in specs]
    assert names == ["naive-s0", "naive-s1", "awc-s0", "awc-s1", "alone-lidar-s0", "alone-lidar-s1",
                     "naive-rgb+lidar-s0", "naive-rgb+lidar-s1", "naive-s0", "naive-s1", "awc-s0", "awc-s1",
                     "awc-a10-10-s0", "awc-a10-10-s1"]  # (0, 0) is naive; the config's alphas are the AWC run
    config = specs[-1].config(base_config(tree, tmp_path), tmp_path)
    assert (config.method, config.awc_alpha_strong, config.awc_alpha_weak, config.seed) == ("awc", 10.0, 10.0, 1)
    assert specs[6].config(base_config(tree, tmp_path), tmp_path).modalities == ("rgb", "lidar")
    with pytest.raises(ValueError, match="unknown methods"):
        benchmark.grid(base_config(tree, tmp_path), ["magic"], [0])


def test_an_interrupted_grid_resumes_without_redoing_finished_runs(tree: Path, tmp_path: Path, monkeypatch) -> None:
    base = base_config(tree, tmp_path)
    specs = benchmark.grid(base, ["naive", "awc"], [0, 1], alone=["lidar"], alphas=[(0, 0)])
    trained: list[str] = []
    real_train = benchmark.train

    def counting_train(config, resume=False, **kwargs):
        trained.append(Path(config.output_dir).name)
        assert resume  # every run may continue from its own checkpoint
        return real_train(config, resume=resume, **kwargs)

    monkeypatch.setattr(benchmark, "train", counting_train)

    class Stop(Exception):
        pass

    def stop_after_two(record):
        if len(trained) == 2:
            raise Stop

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Stop):
            benchmark.run_grid(specs, base, tmp_path / "out", on_done=stop_after_two)
        assert trained == ["naive-s0", "naive-s1"]
        finished = {n: (tmp_path / "out" / "runs" / n / "result.json").stat().st_mtime_ns for n in trained}
        results = benchmark.run_grid(specs, base, tmp_path / "out")
    assert trained == ["naive-s0", "naive-s1", "awc-s0", "awc-s1", "alone-lidar-s0", "alone-lidar-s1"]
    for name, stamp in finished.items():  # not redone, not rewritten
        assert (tmp_path / "out" / "runs" / name / "result.json").stat().st_mtime_ns == stamp
    assert [r["name"] for r in results] == [s.name for s in specs]
    assert [r["table"] for r in results][-2:] == ["alpha", "alpha"]  # naive's runs again, in Table 4
    record = results[2]
    assert record["method"] == "awc" and record["val_frames"] == 6 and record["epochs"] == 1
    assert set(record["subsets"]) >= {"rgb", "lidar", "mmwave", "wifi", "rgb+lidar+mmwave+wifi"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        benchmark.run_grid(specs, base, tmp_path / "out")
    assert len(trained) == 6  # a finished grid trains nothing

    markdown = benchmark.tables(results, "tiny")
    naive = [r for r in results if r["name"].startswith("naive")][:2]
    full = "rgb+lidar+mmwave+wifi"
    values = [r["subsets"][full]["mpjpe_mm"] for r in naive]
    expected = f"{np.mean(values):.2f} +- {np.std(values, ddof=1):.2f}"
    assert f"| naive joint training | 2 | {expected} |" in markdown
    differences = [a["subsets"][full]["mpjpe_mm"] - b["subsets"][full]["mpjpe_mm"] for a, b in zip(results[2:4], naive)]
    mean = np.mean(differences)
    half = 12.706204736174707 * np.std(differences, ddof=1) / math.sqrt(2)  # t(0.975, 1 dof)
    assert f"| AWC | 2 | {mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}] |" in markdown
    assert "Table 3" in markdown and "| lidar alone | 2 |" in markdown and "Table 4" in markdown
    assert "| alpha_S 0, alpha_I 0 | 2 | " + expected in markdown


def test_a_run_with_a_changed_config_is_refused(tree: Path, tmp_path: Path) -> None:
    base = base_config(tree, tmp_path)
    spec = benchmark.grid(base, ["naive"], [0])[0]
    folder = tmp_path / "out" / "runs" / spec.name
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"name": spec.name, "config_digest": "another"}))
    with pytest.raises(ValueError, match="finished with another config"):
        benchmark.run_one(spec, base, tmp_path / "out")


def test_paired_interval_and_mean_sd() -> None:
    mean, low, high, n = benchmark.paired_interval([-3.0, -1.0, -2.0])
    assert (mean, n) == (-2.0, 3)
    assert high - mean == pytest.approx(4.302652729911275 * 1.0 / math.sqrt(3))  # t(0.975, 2) * sd / sqrt(n)
    assert low == pytest.approx(2 * mean - high)
    assert math.isnan(benchmark.paired_interval([1.0])[1])
    assert benchmark.mean_sd([1.0, 3.0]) == "2.00 +- 1.41" and benchmark.mean_sd([5.0]) == "5.00"
    assert benchmark.mean_sd([]) == "-" and benchmark.parse_alphas("0:0, 20000:10000") == [(0, 0), (20000, 10000)]
    with pytest.raises(ValueError, match="alpha_S:alpha_I"):
        benchmark.parse_alphas("20000")


def test_benchmark_command(tree: Path, tmp_path: Path, capsys) -> None:
    args = ["benchmark", "--methods", "naive", "--seeds", "0", "--out", str(tmp_path / "cmd"), f"data_root={tree}",
            "setting=S2", "epochs=1", "batch_size=4", "shapley_batches=1", f"cache_dir={tmp_path / 'cache'}",
            "model.feature_dim=8", "model.hidden_dim=16", "model.lidar_points=16", "model.mmwave_points=4",
            "model.csi_width=8"]
    assert main([*args, "--dry-run"]) == 0
    assert "1 runs (0 finished)" in capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| naive joint training | 1 |" in printed and (tmp_path / "cmd" / "results.md").exists()
    assert (tmp_path / "cmd" / "runs.csv").read_text().count("\n") == 2
    assert main(["benchmark", "--seeds", "x", f"data_root={tree}"]) == 2
    assert "--seeds: expected integers" in capsys.readouterr().err
