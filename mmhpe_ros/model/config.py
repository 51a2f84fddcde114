"""`ModelConfig`: the architecture and input constants of a pose model, saved with its weights."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from mmhpe_ros.modalities import MODALITIES

FUSIONS: tuple[str, ...] = ("concat", "attention")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a :class:`~mmhpe_ros.model.pose_model.PoseModel`.

    The input constants (point counts, scales) belong to the model: :func:`prepare_inputs`
    reads them from here, so a checkpoint preprocesses its inputs exactly as in training.
    """

    modalities: tuple[str, ...] = MODALITIES  # fused modalities, in MODALITIES order
    feature_dim: int = 128  # width of each encoder's output
    hidden_dim: int = 256  # width of the fusion MLP / regression head
    csi_width: int = 32  # channels of the CSI conv net's first block (then x2, x4); a multiple of 8
    fusion: str = "concat"  # "concat" (masked features + presence bits) or "attention"
    lidar_points: int = 1024  # points per LiDAR frame after deterministic resampling
    mmwave_points: int = 64  # radar points kept per frame (zero padded, masked)
    point_scale: float = 1.0  # LiDAR / radar xyz are multiplied by this (metres -> network units)
    mmwave_feature_scale: tuple[float, float] = (1.0, 0.05)  # doppler (m/s), intensity multipliers
    csi_phase_scale: float = 1.0 / math.pi  # sanitised CSI phase (radians) multiplier
    csi_mask_channel: bool = True  # the CSI encoder takes wifi_mask as a 7th input channel
    csi_packet_dropout: float = 0.3  # training: chance a sample's CSI loses one packet (filled, masked)
    modality_dropout: float = 0.5  # training: chance a sample keeps only a random non-empty subset
    dropout: float = 0.1  # feature dropout in fusion and head (training only)

    def __post_init__(self) -> None:
        modalities = tuple(self.modalities)
        object.__setattr__(self, "modalities", modalities)
        object.__setattr__(self, "mmwave_feature_scale", tuple(float(v) for v in self.mmwave_feature_scale))
        unknown = [m for m in modalities if m not in MODALITIES]
        if not modalities or unknown or len(set(modalities)) != len(modalities):
            raise ValueError(
                f"ModelConfig.modalities must be distinct names from {MODALITIES}, got {modalities}"
            )
        if modalities != tuple(m for m in MODALITIES if m in modalities):
            raise ValueError(f"ModelConfig.modalities must follow the order {MODALITIES}, got {modalities}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"ModelConfig.fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if len(self.mmwave_feature_scale) != 2:
            raise ValueError("ModelConfig.mmwave_feature_scale needs 2 values: doppler, intensity")
        if self.csi_width <= 0 or self.csi_width % 8:
            raise ValueError(f"ModelConfig.csi_width must be a positive multiple of 8, got {self.csi_width}")
        for name in ("feature_dim", "hidden_dim", "lidar_points", "mmwave_points"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ModelConfig.{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.csi_packet_dropout <= 1.0:
            raise ValueError(f"ModelConfig.csi_packet_dropout must be in [0, 1], got {self.csi_packet_dropout}")
        if not 0.0 <= self.modality_dropout <= 1.0 or not 0.0 <= self.dropout < 1.0:
            raise ValueError("ModelConfig.modality_dropout must be in [0, 1] and dropout in [0, 1)")

    @property
    def num_modalities(self) -> int:
        return len(self.modalities)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error, missing keys take defaults."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig keys {unknown}; known: {sorted(known)}")
        return cls(**values)
