"""Model cards: the JSON file beside a model's weights, readable without torch.

Sensor nodes read a card only for its :class:`ModelConfig` (preprocessing constants); this module
keeps that path free of torch. :mod:`mmhpe_ros.model.checkpoint` writes and loads full models.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import math

from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.runtime.limits import CARD_BYTES, LimitError, read_bounded
from mmhpe_ros.skeleton import JOINTS

CARD_FORMAT = "mmhpe_ros.pose_model/2"
# Older card formats read by upgrading their config: in /1, fusion "concat" was concat + presence
# bits + MLP, now called "mlp" ("concat" is now the paper's linear head).
LEGACY_FORMATS: dict[str, dict[str, dict[str, str]]] = {"mmhpe_ros.pose_model/1": {"fusion": {"concat": "mlp"}}}
RESERVED_CARD_KEYS = ("format", "config", "modalities", "joints", "units")
# Card section written by `mmhpe-ros evaluate --update-card`: {"note": str, "subsets": {"rgb+lidar":
# [one error per joint, mm], ...}}; the fusion node colours each joint by it (color_mode confidence).
EXPECTED_ERRORS_KEY = "expected_joint_error_mm"


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
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; these are shareable data files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise



def read_json_file(path: Path, what: str, limit: int, where_expected: str = "") -> Any:
    """The JSON in ``path`` (at most ``limit`` bytes, refused before reading if larger);
    :class:`CheckpointError` naming ``what`` if it is missing, too large or not JSON."""
    try:
        return json.loads(read_bounded(path, limit, what).decode("utf-8"))
    except LimitError as error:
        raise CheckpointError(str(error)) from None
    except FileNotFoundError:
        raise CheckpointError(f"{path}: {what} missing{where_expected}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: {what} is not valid JSON ({error})") from None


def read_card(path: str | Path) -> dict[str, Any]:
    """The validated card of a weights file (or of the card itself)."""
    path = Path(path)
    card_file = path if path.suffix == ".json" else card_path(path)
    card = read_json_file(card_file, "model card", CARD_BYTES, " (expected beside the weights)")
    if isinstance(card, dict) and card.get("format") in LEGACY_FORMATS and isinstance(card.get("config"), dict):
        renames = LEGACY_FORMATS[card["format"]]
        card["config"] = {k: renames.get(k, {}).get(v, v) if isinstance(v, str) else v
                          for k, v in card["config"].items()}
        card["format"] = CARD_FORMAT
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


def expected_joint_errors(card: dict[str, Any]) -> dict[frozenset[str], tuple[float, ...]] | None:
    """The card's expected error of each joint (mm) per fused modality subset; None if it has none.

    :class:`CheckpointError` if the section is malformed (unknown modality, not one finite,
    non-negative number per joint)."""
    section = card.get(EXPECTED_ERRORS_KEY)
    if section is None:
        return None
    subsets = section.get("subsets") if isinstance(section, dict) else None
    if not isinstance(subsets, dict) or not subsets:
        raise CheckpointError(f"model card: {EXPECTED_ERRORS_KEY} needs a non-empty 'subsets' mapping")
    known = set(card.get("modalities") or ())
    out: dict[frozenset[str], tuple[float, ...]] = {}
    for name, values in subsets.items():
        modalities = frozenset(str(name).split("+"))
        if not modalities <= known:
            raise CheckpointError(f"model card: {EXPECTED_ERRORS_KEY} subset {name!r} is not of {sorted(known)}")
        if not (isinstance(values, list) and len(values) == len(JOINTS) and all(
                isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in values)):
            raise CheckpointError(f"model card: {EXPECTED_ERRORS_KEY}[{name!r}] must be {len(JOINTS)} "
                                  "finite, non-negative errors (mm), one per joint")
        out[modalities] = tuple(float(v) for v in values)
    return out


def update_card(weights_path: str | Path, changes: dict[str, Any]) -> Path:
    """Set top-level ``changes`` in the (valid) card beside ``weights_path``; the reserved keys
    cannot be changed. Written atomically; returns the card's path."""
    reserved = [key for key in changes if key in RESERVED_CARD_KEYS]
    if reserved:
        raise ValueError(f"card keys {reserved} are written with the weights, not updated")
    card = read_card(weights_path)
    card.update(changes)
    text = json.dumps(card, indent=2, sort_keys=False) + "\n"
    path = card_path(weights_path) if Path(weights_path).suffix != ".json" else Path(weights_path)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path
