"""Progress bars that show on a terminal and stay quiet when output goes to a file or a pipe.

Every long loop of the package makes its bar with :func:`progress_bar` (tqdm underneath). Which
bars show:

* ``enabled=False`` (a command's ``--no-progress``, ``progress: false`` in a training config):
  never;
* otherwise the environment variable ``MMHPE_PROGRESS`` decides when set: ``1`` always (e.g. to
  follow a run in a log file), ``0`` never;
* otherwise tqdm's own rule (``disable=None``): only when its output (stderr) is a terminal, so
  logs, CI output and pipes get no bar lines.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Iterable

PROGRESS_ENV = "MMHPE_PROGRESS"
_ON = {"1", "true", "yes", "on"}
_OFF = {"0", "false", "no", "off"}


def bar_disabled(enabled: bool = True) -> bool | None:
    """tqdm's ``disable`` for a bar: True (hidden), False (shown) or None (shown on a terminal only)."""
    if not enabled:
        return True
    forced = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if forced in _ON:
        return False
    if forced in _OFF:
        return True
    if forced:
        warnings.warn(f"{PROGRESS_ENV}={os.environ[PROGRESS_ENV]!r} is neither 1 nor 0: progress bars show on a "
                      "terminal only", stacklevel=3)
    return None


def progress_bar(iterable: Iterable[Any] | None = None, *, enabled: bool = True, **options: Any) -> Any:
    """A tqdm bar over ``iterable`` (or a manual one, ``iterable=None``), shown as the module docstring
    says; ``options`` are tqdm's (``total``, ``desc``, ``unit``, ``leave``, ...)."""
    from tqdm import tqdm

    return tqdm(iterable, disable=bar_disabled(enabled), **options)
