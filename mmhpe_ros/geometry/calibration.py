"""The rig's calibration: each sensor frame's pose in the base frame, the floor, camera intrinsics.

One file format for the nodes, ``ros2 launch`` (static TF), training and the generator: a ROS 2
parameter file whose ``/**`` section every node receives (config/calibration.yaml)::

    /**:
      ros__parameters:
        base_frame: base_link        # frame of the rig and of the skeleton outputs (REP 103: z up)
        ground_height: 0.0           # z of the floor in base_frame, metres
        extrinsics:                  # pose of each sensor frame in base_frame (sensor -> base)
          lidar: {xyz: [0.0, 0.0, 1.1], rpy: [0.0, 0.0, 0.0]}   # m; fixed-axis roll, pitch, yaw (rad)
          camera_optical: {xyz: [...], rpy: [...]}
        intrinsics:                  # cameras without a CameraInfo topic (optional)
          camera_optical: {width: 640, height: 480, k: [fx, 0, cx, 0, fy, cy, 0, 0, 1], d: []}

Nodes get the same values as flattened parameters (``extrinsics.lidar.xyz``, ...):
:func:`calibration_from_parameters` reads those.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from mmhpe_ros.geometry.camera import CameraIntrinsics
from mmhpe_ros.geometry.transforms import RigidTransform
from mmhpe_ros.modalities import FRAME_IDS

BASE_FRAME = FRAME_IDS["base"]
GROUND_TRUTH_FRAME = "mmfi"  # the frame a dataset's ground truth is given in; the base frame unless listed
PARAMETERS_KEY = "ros__parameters"
WILDCARD = "/**"
MAX_FILE_BYTES = 1 << 20


class MissingTransformError(LookupError):
    """No transform from a sensor frame to the base frame: never replaced by a silent identity."""

    def __init__(self, frame: str, base_frame: str, known: list[str], source: str = "the calibration") -> None:
        self.frame, self.base_frame = frame, base_frame
        listed = ", ".join(known) if known else "none"
        super().__init__(f"no transform from frame '{frame}' to '{base_frame}' in {source} "
                         f"(it has extrinsics for: {listed}); add extrinsics.{frame or '<frame>'} or publish it on TF")


@dataclass(frozen=True)
class Calibration:
    """Extrinsics (frame -> ``T_base_frame``), the floor height and camera intrinsics of a rig."""

    base_frame: str = BASE_FRAME
    ground_height: float = 0.0
    extrinsics: Mapping[str, RigidTransform] = field(default_factory=dict)
    intrinsics: Mapping[str, CameraIntrinsics] = field(default_factory=dict)
    source: str = "the calibration"  # where it came from, for error messages

    def __post_init__(self) -> None:
        if not self.base_frame:
            raise ValueError("calibration: base_frame must not be empty")
        if not np.isfinite(self.ground_height):
            raise ValueError(f"calibration: ground_height must be finite, got {self.ground_height}")

    def to_base(self, frame: str) -> RigidTransform:
        """``T_base_frame``: maps points in ``frame`` into the base frame. The base frame itself is
        the identity; an unknown frame raises :class:`MissingTransformError`."""
        if frame == self.base_frame:
            return RigidTransform.identity()
        try:
            return self.extrinsics[frame]
        except KeyError:
            raise MissingTransformError(frame, self.base_frame, sorted(self.extrinsics), self.source) from None

    def ground_truth_to_base(self) -> RigidTransform:
        """``T_base_mmfi``: the dataset's ground-truth frame in the base frame (identity unless
        ``extrinsics.mmfi`` is given, as `mmhpe-ros calibrate` writes for real MM-Fi)."""
        return self.extrinsics.get(GROUND_TRUTH_FRAME, RigidTransform.identity())

    def camera(self, frame: str) -> CameraIntrinsics | None:
        return self.intrinsics.get(frame)

    def with_extrinsics(self, **transforms: RigidTransform) -> "Calibration":
        return Calibration(self.base_frame, self.ground_height, {**self.extrinsics, **transforms},
                           self.intrinsics, self.source)

    def to_document(self) -> dict[str, Any]:
        """The parameter-file document (``/**: ros__parameters: ...``)."""
        values: dict[str, Any] = {"base_frame": self.base_frame, "ground_height": float(self.ground_height)}
        values["extrinsics"] = {frame: {"xyz": [round(v, 6) for v in t.xyz], "rpy": [round(v, 6) for v in t.rpy]}
                                for frame, t in sorted(self.extrinsics.items())}
        if self.intrinsics:
            values["intrinsics"] = {frame: c.to_dict() for frame, c in sorted(self.intrinsics.items())}
        return {WILDCARD: {PARAMETERS_KEY: values}}


def calibration_parameters(calibration: Calibration) -> dict[str, Any]:
    """The flattened parameters a node receives from a calibration file (``extrinsics.lidar.xyz``, ...):
    the inverse of :func:`calibration_from_parameters`."""
    flat: dict[str, Any] = {}

    def walk(values: Mapping[str, Any], prefix: str) -> None:
        for name, value in values.items():
            if isinstance(value, Mapping):
                walk(value, f"{prefix}{name}.")
            else:
                flat[f"{prefix}{name}"] = value

    walk(calibration.to_document()[WILDCARD][PARAMETERS_KEY], "")
    return flat


def _transform(values: Any, what: str) -> RigidTransform:
    if not isinstance(values, Mapping) or set(values) - {"xyz", "rpy"} or "xyz" not in values:
        raise ValueError(f"{what}: expected {{xyz: [x, y, z], rpy: [roll, pitch, yaw]}}, got {values!r}")
    try:
        return RigidTransform.from_xyz_rpy([float(v) for v in values["xyz"]],
                                           [float(v) for v in values.get("rpy", (0.0, 0.0, 0.0))])
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what}: {error}") from None


def calibration_from_values(values: Mapping[str, Any], source: str = "the calibration") -> Calibration:
    """From the ``ros__parameters`` mapping (nested, as in the file)."""
    known = {"base_frame", "ground_height", "extrinsics", "intrinsics"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{source}: unknown calibration keys {unknown}; known: {sorted(known)}")
    extrinsics = values.get("extrinsics") or {}
    intrinsics = values.get("intrinsics") or {}
    if not isinstance(extrinsics, Mapping) or not isinstance(intrinsics, Mapping):
        raise ValueError(f"{source}: extrinsics and intrinsics must be mappings of frame names")
    try:
        ground = float(values.get("ground_height", 0.0))
    except (TypeError, ValueError):
        raise ValueError(f"{source}: ground_height must be a number, got {values.get('ground_height')!r}") from None
    return Calibration(
        base_frame=str(values.get("base_frame", BASE_FRAME)),
        ground_height=ground,
        extrinsics={str(f): _transform(v, f"{source}: extrinsics.{f}") for f, v in extrinsics.items()},
        intrinsics={str(f): CameraIntrinsics.from_dict(v, f"{source}: intrinsics.{f}") for f, v in intrinsics.items()},
        source=source,
    )


def load_calibration(path: str | Path) -> Calibration:
    """Read a calibration parameter file (the ``/**`` section; a bare mapping is accepted too)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"{path}: larger than {MAX_FILE_BYTES} bytes; not a calibration file")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: calibration file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read calibration file ({error})") from None
    return calibration_from_text(text, str(path))


def calibration_from_text(text: str, source: str = "the calibration") -> Calibration:
    """Parse a calibration parameter file's text (as :func:`load_calibration` reads it; e.g. a
    bag's stored copy). ``source`` names it in error messages."""
    if len(text) > MAX_FILE_BYTES:
        raise ValueError(f"{source}: larger than {MAX_FILE_BYTES} bytes; not a calibration file")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"{source}: cannot read calibration file ({error})") from None
    if not isinstance(document, Mapping):
        raise ValueError(f"{source}: expected a mapping, got {type(document).__name__}")
    section = document.get(WILDCARD, document)
    values = section.get(PARAMETERS_KEY, section) if isinstance(section, Mapping) else None
    if not isinstance(values, Mapping):
        raise ValueError(f"{source}: expected '{WILDCARD}: {PARAMETERS_KEY}:' with the calibration values")
    return calibration_from_values(values, source)


def write_calibration(path: str | Path, calibration: Calibration, comment: str = "") -> Path:
    """Write ``calibration`` as a parameter file (``comment`` lines go on top)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    text = yaml.safe_dump(calibration.to_document(), sort_keys=False, default_flow_style=None)
    path.write_text(header + text, encoding="utf-8")
    return path


def calibration_from_parameters(parameters: Mapping[str, Any], source: str = "node parameters") -> Calibration:
    """From flattened parameter names (``base_frame``, ``extrinsics.lidar.xyz``, ``intrinsics.cam.k``, ...)."""
    nested: dict[str, Any] = {}
    for name, value in parameters.items():
        head, _, rest = name.partition(".")
        if head in ("extrinsics", "intrinsics") and rest:
            frame, _, key = rest.rpartition(".")
            if frame:
                nested.setdefault(head, {}).setdefault(frame, {})[key] = value
        elif head in ("base_frame", "ground_height"):
            nested[head] = value
    return calibration_from_values(nested, source)
