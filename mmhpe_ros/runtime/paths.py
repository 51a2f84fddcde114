"""Names from config or from files that must stay inside the directory they are relative to.

A checkpoint name inside ``output_dir``, a bag name inside the convert output folder, a sequence
folder inside an MM-Fi root, a storage file inside a bag: :func:`resolve_inside` joins the name
to its base and refuses a result outside the base, whether by ``..``, an absolute name or a
symbolic link that points out.
"""
from __future__ import annotations

import os
from pathlib import Path


class PathEscapeError(ValueError):
    """A name that would resolve outside the directory it is meant to be in."""


def resolve_inside(base: str | Path, name: str | Path, what: str = "path") -> Path:
    """``base / name`` resolved (symbolic links followed), refused unless inside ``base``.

    ``name`` is relative (``a/b.safetensors``); an absolute name, ``..`` that climbs out, or a
    link (anywhere along the way, existing or not yet created parts alike) that leads out of
    ``base`` raises :class:`PathEscapeError` naming ``what``, the name and the base. ``base``
    itself may be a link; it is resolved first. The result need not exist.
    """
    text = os.fspath(name)
    if not text or "\x00" in text:
        raise PathEscapeError(f"{what} {text!r}: empty or contains a NUL byte")
    if Path(text).is_absolute():
        raise PathEscapeError(f"{what} {text!r} must be relative to {base}, not absolute")
    root = Path(base).resolve()
    target = (root / text).resolve()
    if target != root and root not in target.parents:
        raise PathEscapeError(f"{what} {text!r} resolves to {target}, outside {root}")
    return target

