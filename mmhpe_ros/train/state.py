"""Training checkpoints: written atomically each epoch, read back only when complete; no pickle.

A checkpoint is a directory ``<output_dir>/checkpoints/epoch_NNNN/`` (NNNN = epochs completed):

- ``model.safetensors`` + ``model.json``: the weights and card (:func:`checkpoint.save_model`);
- ``state.safetensors``: optimizer moments and AWC Fisher / anchor tensors;
- ``state.json``: epoch, optimizer hyperparameters, scheduler, AWC alphas, the latest strong
  modalities, best metric, the per-epoch log rows and the training config.

The directory is written under a temporary name and renamed in one step once every file is
flushed, so a run killed mid-write leaves only a ``*.partial`` directory, which is ignored and
cleaned up. Random number generators are re-seeded from (seed, epoch, rank) at the start of each
epoch, so the epoch number is the whole RNG state a resumed run needs.

``MMHPE_TRAIN_PAUSE=checkpoint:N`` (tests only) sleeps inside the write of epoch N's checkpoint,
after the model file is written, so a test can kill the process there.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mmhpe_ros.model.card import CheckpointError, read_json_file
from mmhpe_ros.model.checkpoint import load_model, save_model
from mmhpe_ros.model.pose_model import PoseModel
from mmhpe_ros.runtime.limits import TRAIN_STATE_BYTES
from mmhpe_ros.runtime.paths import resolve_inside

STATE_FORMAT = "mmhpe_ros.train_state/1"
CHECKPOINT_DIR = "checkpoints"
KEEP_CHECKPOINTS = 2
PAUSE_ENV = "MMHPE_TRAIN_PAUSE"
_NAME = re.compile(r"^epoch_(\d{4,})$")
# Config keys that may change on --resume (the rest must match the checkpoint).
RESUMABLE_KEYS = ("epochs", "output_dir", "progress", "tensorboard", "num_workers", "prepare_workers", "device", "data_root", "bags",
                  "cache_dir", "cache_bytes")


def pause_point(where: str) -> None:
    """Tests: sleep here if ``MMHPE_TRAIN_PAUSE`` names ``where`` (e.g. ``checkpoint:2``)."""
    if os.environ.get(PAUSE_ENV) == where:
        print(f"MMHPE_TRAIN_PAUSED {where}", file=sys.stderr, flush=True)
        time.sleep(600)


@dataclass
class TrainState:
    """Everything besides the weights that a resumed run needs."""

    epoch: int = 0  # epochs completed
    optimizer: dict[str, Any] = field(default_factory=dict)
    scheduler: dict[str, Any] = field(default_factory=dict)
    awc: dict[str, Any] | None = None
    strong: list[str] | None = None  # strong modalities of the latest assessment
    best_mpjpe_mm: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    method_state: dict[str, Any] = field(default_factory=dict)  # JSON-able state of a method (G-Blending weights)


def _flatten(state: TrainState) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, JSON) of a state: tensors named by their place in the nested dicts."""
    tensors: dict[str, torch.Tensor] = {}
    optimizer_state = {}
    for index, values in state.optimizer.get("state", {}).items():
        optimizer_state[str(index)] = sorted(values)
        for name, value in values.items():
            tensors[f"optimizer/{index}/{name}"] = torch.as_tensor(value)
    awc = None
    if state.awc is not None:
        awc = {"alpha": state.awc["alpha"], "counts": {}}
        for kind in ("fisher", "anchor"):
            for modality, values in state.awc[kind].items():
                awc["counts"][modality] = len(values)
                for i, value in enumerate(values):
                    tensors[f"awc/{kind}/{modality}/{i}"] = value
    meta = {
        "format": STATE_FORMAT,
        "epoch": state.epoch,
        "optimizer": {"param_groups": state.optimizer.get("param_groups", []), "state": optimizer_state},
        "scheduler": state.scheduler,
        "awc": awc,
        "strong": state.strong,
        "best_mpjpe_mm": state.best_mpjpe_mm,
        "history": state.history,
        "config": state.config,
        "method_state": state.method_state,
    }
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, meta


def _unflatten(tensors: dict[str, torch.Tensor], meta: dict[str, Any], where: Path) -> TrainState:
    try:
        optimizer = {
            "param_groups": meta["optimizer"]["param_groups"],
            "state": {int(i): {name: tensors[f"optimizer/{i}/{name}"] for name in names}
                      for i, names in meta["optimizer"]["state"].items()},
        }
        awc = None
        if meta["awc"] is not None:
            awc = {"alpha": meta["awc"]["alpha"]}
            for kind in ("fisher", "anchor"):
                awc[kind] = {m: [tensors[f"awc/{kind}/{m}/{i}"] for i in range(n)]
                             for m, n in meta["awc"]["counts"].items()}
        return TrainState(meta["epoch"], optimizer, meta["scheduler"], awc, meta["strong"],
                          meta["best_mpjpe_mm"], meta["history"], meta["config"], meta.get("method_state") or {})
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{where}: training state incomplete or inconsistent (missing {error})") from None


def checkpoint_root(output_dir: str | Path) -> Path:
    """``output_dir/checkpoints``, refused (:class:`PathEscapeError`) if a link takes it elsewhere:
    old and partial checkpoints are deleted below it."""
    return resolve_inside(output_dir, CHECKPOINT_DIR, "checkpoint directory")


def save_checkpoint(output_dir: str | Path, model: PoseModel, state: TrainState, card: dict[str, Any]) -> Path:
    """Write the checkpoint of ``state.epoch`` atomically; keep the newest few; return its path."""
    from safetensors.torch import save_file

    root = checkpoint_root(output_dir)
    final = root / f"epoch_{state.epoch:04d}"
    partial = root / f"{final.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    tensors, meta = _flatten(state)
    save_model(partial / "model.safetensors", model, card)
    pause_point(f"checkpoint:{state.epoch}")
    save_file(tensors, str(partial / "state.safetensors"), metadata={"format": STATE_FORMAT})
    (partial / "state.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    for path in partial.iterdir():  # data on disk before the rename makes it visible
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    _fsync_dir(root)
    for old in complete_checkpoints(output_dir)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoint directories, oldest first (``*.partial`` ones are not complete)."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def remove_partial(output_dir: str | Path) -> list[Path]:
    """Delete leftovers of interrupted checkpoint writes; returns what was removed."""
    root = checkpoint_root(output_dir)
    removed = [p for p in root.glob("*.partial")] if root.is_dir() else []
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[PoseModel, TrainState]:
    """Model and training state of one checkpoint directory; :class:`CheckpointError` if unusable."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    model, _ = load_model(path / "model.safetensors", device)
    meta_file, tensor_file = path / "state.json", path / "state.safetensors"
    meta = read_json_file(meta_file, "training state", TRAIN_STATE_BYTES)
    if not isinstance(meta, dict) or meta.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{meta_file}: not a {STATE_FORMAT} file")
    try:
        tensors = load_file(str(tensor_file), device=str(device))
    except FileNotFoundError:
        raise CheckpointError(f"{tensor_file}: optimizer/AWC tensors missing") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{tensor_file}: not a readable safetensors file ({error})") from None
    return model, _unflatten(tensors, meta, path)


def check_compatible(saved: dict[str, Any], current: dict[str, Any], where: Path) -> None:
    """Refuse to resume a checkpoint made with another config (beyond :data:`RESUMABLE_KEYS`)."""
    differ = {k: (saved.get(k), current.get(k)) for k in sorted(set(saved) | set(current))
              if k not in RESUMABLE_KEYS and saved.get(k) != current.get(k)}
    if differ:
        text = "; ".join(f"{k}: checkpoint {a!r}, config {b!r}" for k, (a, b) in differ.items())
        raise CheckpointError(f"{where}: made with another training config, cannot resume ({text})")


__all__ = [
    "CheckpointError", "TrainState", "check_compatible", "complete_checkpoints", "load_checkpoint",
    "pause_point", "remove_partial", "save_checkpoint",
]
