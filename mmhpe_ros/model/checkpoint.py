"""Model files: safetensors weights plus a JSON card beside them (``model.safetensors`` + ``model.json``).

The card says what the weights are: the :class:`ModelConfig`, the fused modalities, the joint
order of the output (``skeleton.JOINTS``) and its unit, plus whatever the trainer adds (training
data, method, metrics). Loading reads tensors and JSON only - nothing is unpickled - and refuses
files that do not match this code (joint order, modalities, tensor names or shapes).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from mmhpe_ros.model.card import (  # noqa: F401  (re-exported)
    CARD_FORMAT,
    RESERVED_CARD_KEYS,
    CheckpointError,
    atomic_write,
    card_path,
    read_card,
)
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.pose_model import PoseModel
from mmhpe_ros.modalities import MODALITIES
from mmhpe_ros.runtime.limits import SAFETENSORS_HEADER_BYTES
from mmhpe_ros.skeleton import JOINTS


def save_model(path: str | Path, model: PoseModel, card: Mapping[str, Any] | None = None) -> Path:
    """Write ``model``'s weights to ``path`` (.safetensors) and its card beside it; returns ``path``.

    ``card`` holds free-form, JSON-serialisable descriptions (e.g. ``training_data``, ``method``,
    ``metrics``); the keys :data:`RESERVED_CARD_KEYS` are filled in here.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: model weights must be a .safetensors file")
    extra = dict(card or {})
    clash = [k for k in RESERVED_CARD_KEYS if k in extra]
    if clash:
        raise ValueError(f"card keys {clash} are written by save_model itself")
    full_card = {
        "format": CARD_FORMAT,
        "config": model.config.to_dict(),
        "modalities": list(model.config.modalities),
        "joints": list(JOINTS),
        "units": "m",
        **extra,
    }
    text = json.dumps(full_card, indent=2, sort_keys=False) + "\n"  # fails before any file is touched
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={"format": CARD_FORMAT}))
    atomic_write(card_path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def load_model(
    path: str | Path,
    device: str | torch.device = "cpu",
    modalities: Iterable[str] | None = None,
) -> tuple[PoseModel, dict[str, Any]]:
    """Load weights + card written by :func:`save_model`; the model is returned in eval mode.

    ``modalities``: those the caller will feed; refused unless the model fuses every one of
    them (a model may fuse more: the rest are then simply absent at inference).
    """
    path = Path(path)
    card = read_card(path)
    config = ModelConfig.from_dict(card["config"])
    if modalities is not None:
        wanted = list(modalities)
        unknown = [m for m in wanted if m not in MODALITIES]
        missing = [m for m in wanted if m not in config.modalities]
        if unknown or missing:
            raise CheckpointError(
                f"{path}: model fuses {list(config.modalities)}, cannot take {unknown + missing}"
            )
    model = PoseModel(config)
    tensors = _read_weights(path, model.state_dict())
    non_finite = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if non_finite:
        raise CheckpointError(f"{path}: non-finite values in {non_finite[:5]}")
    model.load_state_dict(tensors)
    return model.to(device).eval(), card


def _read_weights(path: Path, expected: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, read only once its header (bounded in size) lists
    exactly the names and shapes of ``expected``; a hostile file cannot make us load more."""
    from safetensors import SafetensorError, safe_open

    try:
        with open(path, "rb") as file:
            head, size = file.read(8), os.fstat(file.fileno()).st_size
    except FileNotFoundError:
        raise CheckpointError(f"{path}: weights file missing") from None
    header = int.from_bytes(head, "little") if len(head) == 8 else -1
    if not 0 < header <= min(SAFETENSORS_HEADER_BYTES, size - 8):
        raise CheckpointError(
            f"{path}: not a safetensors file (header of {header} bytes in a {size}-byte file; "
            f"at most {SAFETENSORS_HEADER_BYTES} accepted)"
        )
    try:
        with safe_open(str(path), framework="pt", device="cpu") as file:
            shapes = {name: tuple(file.get_slice(name).get_shape()) for name in file.keys()}
            missing_keys = sorted(set(expected) - set(shapes))
            extra_keys = sorted(set(shapes) - set(expected))
            bad_shapes = [
                f"{k} {shapes[k]} != {tuple(v.shape)}"
                for k, v in expected.items() if k in shapes and shapes[k] != tuple(v.shape)
            ]
            if missing_keys or extra_keys or bad_shapes:
                raise CheckpointError(
                    f"{path}: weights do not fit the model of its card: missing {missing_keys[:5]}, "
                    f"unexpected {extra_keys[:5]}, shape mismatches {bad_shapes[:5]}"
                )
            return {name: file.get_tensor(name) for name in expected}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None
