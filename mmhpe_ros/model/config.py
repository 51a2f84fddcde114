"""`ModelConfig`: the architecture and input constants of a pose model, saved with its weights."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from mmhpe_ros.modalities import MODALITIES

# Fusion of the encoders' features (model/fusion.py): "concat" is the paper's (a linear head on the
# concatenated, zero-filled features), "mlp" the light default (concat + presence bits + MLP),
# "attention" self-attention over modality tokens.
FUSIONS: tuple[str, ...] = ("concat", "mlp", "attention")
# Encoders (model/encoders.py): the first of each is the light, real-time default; the second the
# paper's (Qi et al., implementation details: VideoPose3D / Point Transformer / MetaFi++).
RGB_ENCODERS: tuple[str, ...] = ("mlp", "temporal")
POINT_ENCODERS: tuple[str, ...] = ("pointnet", "point_transformer")
WIFI_ENCODERS: tuple[str, ...] = ("cnn", "metafi")
# Fields that shape the network only; every other field may change what prepare_inputs returns
# (train/cache.py keys its disk cache on those).
ARCHITECTURE_FIELDS: tuple[str, ...] = (
    "feature_dim", "hidden_dim", "csi_width", "fusion", "modality_dropout", "dropout", "rgb_encoder",
    "rgb_window", "lidar_encoder", "mmwave_encoder", "wifi_encoder", "point_neighbours",
)


def _power_of_three(n: int) -> bool:
    while n > 1 and n % 3 == 0:
        n //= 3
    return n == 1


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
    fusion: str = "mlp"  # "concat" (paper: linear head), "mlp" (+ presence bits, MLP) or "attention"
    lidar_points: int = 1024  # points per LiDAR frame after deterministic resampling
    mmwave_points: int = 64  # radar points kept per frame (zero padded, masked)
    point_scale: float = 1.0  # LiDAR / radar xyz are multiplied by this (metres -> network units)
    mmwave_feature_scale: tuple[float, float] = (1.0, 0.05)  # doppler (m/s), intensity multipliers
    csi_phase_scale: float = 1.0 / math.pi  # sanitised CSI phase (radians) multiplier
    csi_mask_channel: bool = True  # the CSI encoder takes wifi_mask as a 7th input channel
    csi_packet_dropout: float = 0.3  # training: chance a sample's CSI loses one packet (filled, masked)
    modality_dropout: float = 0.5  # the rate the model was trained with (TrainConfig.modality_dropout sets it)
    dropout: float = 0.1  # feature dropout in fusion and head (training only)
    rgb_encoder: str = "mlp"  # "mlp" (one frame) or "temporal" (VideoPose3D-style, rgb_window frames)
    rgb_window: int = 27  # frames seen by the temporal RGB encoder (the current one and earlier ones)
    lidar_encoder: str = "pointnet"  # "pointnet" or "point_transformer"
    mmwave_encoder: str = "pointnet"  # "pointnet" or "point_transformer"
    wifi_encoder: str = "cnn"  # "cnn" or "metafi" (MetaFi++-style conv stem + transformer)
    point_neighbours: int = 16  # k of the Point Transformer's k-nearest-neighbour attention

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
        for name, allowed in (("rgb_encoder", RGB_ENCODERS), ("lidar_encoder", POINT_ENCODERS),
                              ("mmwave_encoder", POINT_ENCODERS), ("wifi_encoder", WIFI_ENCODERS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"ModelConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.rgb_encoder == "temporal" and not _power_of_three(self.rgb_window):
            raise ValueError(f"ModelConfig.rgb_window must be 3, 9, 27, 81 or 243 frames for the temporal RGB "
                             f"encoder (kernel-3 convolutions dilated 1, 3, 9, ...), got {self.rgb_window}")
        if len(self.mmwave_feature_scale) != 2:
            raise ValueError("ModelConfig.mmwave_feature_scale needs 2 values: doppler, intensity")
        if self.csi_width <= 0 or self.csi_width % 8:
            raise ValueError(f"ModelConfig.csi_width must be a positive multiple of 8, got {self.csi_width}")
        for name in ("feature_dim", "hidden_dim", "lidar_points", "mmwave_points", "rgb_window", "point_neighbours"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ModelConfig.{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.csi_packet_dropout <= 1.0:
            raise ValueError(f"ModelConfig.csi_packet_dropout must be in [0, 1], got {self.csi_packet_dropout}")
        if not 0.0 <= self.modality_dropout <= 1.0 or not 0.0 <= self.dropout < 1.0:
            raise ValueError("ModelConfig.modality_dropout must be in [0, 1] and dropout in [0, 1)")

    @property
    def num_modalities(self) -> int:
        return len(self.modalities)

    @property
    def window(self) -> int:
        """Frames of RGB input the model reads per sample: ``rgb_window`` for the temporal encoder, else 1."""
        return self.rgb_window if "rgb" in self.modalities and self.rgb_encoder == "temporal" else 1

    def input_fields(self) -> dict[str, Any]:
        """The fields that may change what ``prepare_inputs`` returns (all but ARCHITECTURE_FIELDS)."""
        return {k: v for k, v in self.to_dict().items() if k not in ARCHITECTURE_FIELDS}

    def describe(self) -> dict[str, str]:
        """Which encoder and fusion the model uses, in words (for model cards and tables)."""
        names = {"mlp": "MLP on one frame's keypoints",
                 "temporal": f"dilated temporal convolutions over {self.rgb_window} frames (VideoPose3D-style)",
                 "pointnet": "PointNet", "point_transformer": f"Point Transformer (k={self.point_neighbours})",
                 "cnn": "CNN", "metafi": "MetaFi++-style conv + transformer"}
        choice = {"rgb": self.rgb_encoder, "lidar": self.lidar_encoder, "mmwave": self.mmwave_encoder,
                  "wifi": self.wifi_encoder}
        fusion = {"concat": "concat + linear head (paper)", "mlp": "concat + presence bits + MLP",
                  "attention": "self-attention over modality tokens"}[self.fusion]
        return {**{m: names[choice[m]] for m in self.modalities}, "fusion": fusion}

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
