"""Model files: safetensors weights plus a JSON card beside them (``model.safetensors`` + ``model.json``).

The card says what the weights are: the :class:`ModelConfig`, the fused modalities, the joint
order of the output (``skeleton.JOINTS``) and its unit, plus whatever the trainer adds (training
data, method, metrics). Loading reads tensors and JSON only - nothing is unpickled - and refuses
files that do not match this code (joint order, modalities, tensor names or shapes).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.pose_model import PoseModel
from mmhpe_ros.modalities import MODALITIES
from mmhpe_ros.skeleton import JOINTS

CARD_FORMAT = "mmhpe_ros.pose_model/1"
RESERVED_CARD_KEYS = ("format", "config", "modalities", "joints", "units")


class CheckpointError(ValueError):
    """A model file that cannot be loaded: missing, corrupt, or made for other joints/modalities."""


def card_path(weights_path: str | Path) -> Path:
    """The JSON card beside a weights file: ``model.safetensors`` -> ``model.json``."""
    return Path(weights_path).with_suffix(".json")


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(temporary_path)`` then move the result onto ``path`` in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def read_card(path: str | Path) -> dict[str, Any]:
    """The validated card of a weights file (or of the card itself)."""
    path = Path(path)
    card_file = path if path.suffix == ".json" else card_path(path)
    try:
        card = json.loads(card_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{card_file}: model card missing (expected beside the weights)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{card_file}: model card is not valid JSON ({error})") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise CheckpointError(f"{card_file}: not a {CARD_FORMAT} card (format={card.get('format') if isinstance(card, dict) else None!r})")
    if card.get("joints") != list(JOINTS):
        raise CheckpointError(
            f"{card_file}: joint order {card.get('joints')} differs from this package's "
            f"skeleton.JOINTS {list(JOINTS)}; the model's outputs would be mislabelled"
        )
    if card.get("units", "m") != "m":
        raise CheckpointError(f"{card_file}: output units {card.get('units')!r}, expected 'm'")
    try:
        config = ModelConfig.from_dict(card.get("config") or {})
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{card_file}: invalid model config: {error}") from None
    if card.get("modalities") != list(config.modalities):
        raise CheckpointError(
            f"{card_file}: card lists modalities {card.get('modalities')} but its config has "
            f"{list(config.modalities)}"
        )
    return card


def load_model(
    path: str | Path,
    device: str | torch.device = "cpu",
    modalities: Iterable[str] | None = None,
) -> tuple[PoseModel, dict[str, Any]]:
    """Load weights + card written by :func:`save_model`; the model is returned in eval mode.

    ``modalities``: those the caller will feed; refused unless the model fuses every one of
    them (a model may fuse more: the rest are then simply absent at inference).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

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
    try:
        tensors = load_file(str(path), device="cpu")
    except FileNotFoundError:
        raise CheckpointError(f"{path}: weights file missing") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None
    model = PoseModel(config)
    expected = model.state_dict()
    missing_keys = sorted(set(expected) - set(tensors))
    extra_keys = sorted(set(tensors) - set(expected))
    bad_shapes = [
        f"{k} {tuple(tensors[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items() if k in tensors and tensors[k].shape != v.shape
    ]
    if missing_keys or extra_keys or bad_shapes:
        raise CheckpointError(
            f"{path}: weights do not fit the model of its card: missing {missing_keys[:5]}, "
            f"unexpected {extra_keys[:5]}, shape mismatches {bad_shapes[:5]}"
        )
    non_finite = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if non_finite:
        raise CheckpointError(f"{path}: non-finite values in {non_finite[:5]}")
    model.load_state_dict(tensors)
    return model.to(device).eval(), card
