"""Training faults: kill -9 during an epoch and during a checkpoint write, then --resume.

A resumed run continues from the last complete checkpoint, ignores (and removes) a half-written
one, and ends with the same weights as a run that was never interrupted.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from rig_scene import write_rig_tree as write_tree  # noqa: E402
from test_train import TREE_KEYS  # noqa: E402

from mmhpe_ros.train.state import PAUSE_ENV, complete_checkpoints  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["setting=S2", "method=awc", "epochs=3", "batch_size=4", "shapley_batches=1", "fisher_samples=4",
        "progress=false", "tensorboard=false", "device=cpu", "model.feature_dim=8", "model.hidden_dim=16",
        "model.lidar_points=16", "model.mmwave_points=4"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def command(tree: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mmhpe_ros.train", f"data_root={tree}", f"output_dir={out}",
            f"cache_dir={tree.parent / 'prepared'}", *ARGS, *extra]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    base = tmp_path_factory.mktemp("faults")
    tree = write_tree(base / "mmfi", TREE_KEYS, frames=4)
    subprocess.run(command(tree, base / "reference"), check=True, env=ENV, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return tree, load_file(str(base / "reference" / "last.safetensors"))


def run_until_paused(tree: Path, out: Path, where: str) -> None:
    """Start training, wait until it sleeps at ``where``, then kill -9 it."""
    process = subprocess.Popen(command(tree, out), env={**ENV, PAUSE_ENV: where}, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:
            if f"MMHPE_TRAIN_PAUSED {where}" in line:
                break
        else:
            pytest.fail(f"training exited (rc {process.wait()}) before pausing at {where}")
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL


def resume_and_compare(tree: Path, out: Path, reference: dict[str, torch.Tensor]) -> None:
    done = subprocess.run(command(tree, out, "--resume"), env=ENV, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    final = load_file(str(out / "last.safetensors"))
    for name, value in reference.items():
        torch.testing.assert_close(final[name], value, rtol=0, atol=0, msg=name)
    assert [p.name for p in complete_checkpoints(out)] == ["epoch_0002", "epoch_0003"]
    assert not list((out / "checkpoints").glob("*.partial"))
    assert (out / "log.csv").read_text().count("\n") == 4  # header + 3 epochs, no duplicate rows


@pytest.mark.timeout(120)
def test_kill_during_an_epoch_then_resume(setup, tmp_path: Path) -> None:
    tree, reference = setup
    out = tmp_path / "run"
    run_until_paused(tree, out, "batch:1")  # inside the second epoch
    assert [p.name for p in complete_checkpoints(out)] == ["epoch_0001"]
    resume_and_compare(tree, out, reference)


@pytest.mark.timeout(120)
def test_kill_during_a_checkpoint_write_then_resume(setup, tmp_path: Path) -> None:
    tree, reference = setup
    out = tmp_path / "run"
    run_until_paused(tree, out, "checkpoint:2")
    partial = out / "checkpoints" / "epoch_0002.partial"
    assert (partial / "model.safetensors").exists() and not (partial / "state.json").exists()
    assert [p.name for p in complete_checkpoints(out)] == ["epoch_0001"]  # the half-written one is not
    resume_and_compare(tree, out, reference)


def test_a_bad_config_is_reported_with_exit_code_2(setup, tmp_path: Path) -> None:
    tree, _ = setup
    bad = subprocess.run(command(tree, tmp_path / "x", "method=magic"), env=ENV, cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "method must be one of" in bad.stderr
