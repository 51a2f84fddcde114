"""Where the package's shipped files live: the default model, config files, the sample bag.

A colcon build installs ``models/`` and ``config/`` to ``share/mmhpe_ros/``; a pip install puts
them under ``<prefix>/share/mmhpe_ros/``; an editable install or a source checkout keeps them at
the repository's top level. :func:`share_file` looks in that order.
"""
from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = "mmhpe_ros"
DEFAULT_MODEL = "models/mmhpe_awc.safetensors"  # the shipped model (card: models/mmhpe_awc.json)
DEFAULT_PARAMS = "config/fusion.yaml"
DEFAULT_CALIBRATION = "config/calibration.yaml"  # the rig of the sample bag; replace with yours
SAMPLE_BAG = Path(__file__).resolve().parent / "sample" / "sample.mcap"  # package data
SOURCE_ROOT = Path(__file__).resolve().parents[1]


def share_directories() -> list[Path]:
    """Candidate ``share/mmhpe_ros`` directories, most specific first."""
    candidates: list[Path] = []
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            candidates.append(Path(get_package_share_directory(PACKAGE)))
        except (PackageNotFoundError, OSError):  # OSError: AMENT_PREFIX_PATH unset (pip-installed ament_index)
            pass
    except ImportError:  # no ROS install: pip or source checkout
        pass
    candidates.append(Path(sys.prefix) / "share" / PACKAGE)
    candidates.append(SOURCE_ROOT)
    return candidates


def share_file(relative: str) -> Path:
    """The installed file ``relative`` (e.g. ``models/x.safetensors``), or FileNotFoundError."""
    for directory in share_directories():
        path = directory / relative
        if path.exists():
            return path
    searched = ", ".join(str(d) for d in share_directories())
    raise FileNotFoundError(f"{relative}: not found in {searched}")


def default_model_path() -> Path:
    """The shipped model's weights file."""
    return share_file(DEFAULT_MODEL)


def default_params_path() -> Path:
    """config/fusion.yaml as installed."""
    return share_file(DEFAULT_PARAMS)


def default_calibration_path() -> Path:
    """config/calibration.yaml as installed (the sample bag's rig)."""
    return share_file(DEFAULT_CALIBRATION)
