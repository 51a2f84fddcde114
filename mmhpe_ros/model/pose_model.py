"""`PoseModel`: per-modality encoders -> mask-aware fusion -> regression head to (B, 17, 3) metres."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import Tensor, nn

from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.encoders import build_encoder
from mmhpe_ros.model.fusion import build_fusion
from mmhpe_ros.model.inputs import PRESENT
from mmhpe_ros.skeleton import NUM_JOINTS


class PoseModel(nn.Module):
    """The multi-modal pose model of docs/architecture.md ("Model API").

    ``inputs`` are batched :func:`~mmhpe_ros.model.inputs.prepare_inputs` dicts (default torch
    collate), ``present`` a (B, M) bool tensor in ``config.modalities`` order. Any non-empty
    subset of modalities can be present; a row with none present gets the head's bias pose.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.modalities = config.modalities
        self.encoders = nn.ModuleDict({m: build_encoder(m, config) for m in config.modalities})
        self.fusion = build_fusion(config)
        self.head = nn.Linear(self.fusion.out_dim, NUM_JOINTS * 3)

    def encode(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Features (B, feature_dim) of every model modality found in ``inputs``."""
        return {m: encoder(inputs) for m, encoder in self.encoders.items() if m in inputs}

    def fuse(self, features: Mapping[str, Tensor], present: Tensor) -> Tensor:
        """Joints (B, 17, 3) in metres from features; modalities missing from ``features`` are absent."""
        reference = next(iter(features.values()))
        zeros = reference.new_zeros(reference.shape)
        stacked = torch.stack([features.get(m, zeros) for m in self.modalities], dim=1)
        available = torch.tensor([m in features for m in self.modalities], device=present.device)
        fused = self.fusion(stacked, present.bool() & available)
        return self.head(fused).view(-1, NUM_JOINTS, 3)

    def forward(self, inputs: Mapping[str, Tensor], present: Tensor | None = None, alone: bool = False) -> Tensor:
        """``fuse(encode(inputs), present if given else inputs["present"])``; with ``alone``, that and
        then the prediction of each modality alone (only it present), stacked (1 + M, B, 17, 3)."""
        present = inputs[PRESENT] if present is None else present
        features = self.encode(inputs)
        fused = self.fuse(features, present)
        if not alone:
            return fused
        outputs = [fused]
        for i in range(len(self.modalities)):
            only = torch.zeros_like(present, dtype=torch.bool)
            only[:, i] = present[:, i].bool()
            outputs.append(self.fuse(features, only))
        return torch.stack(outputs)

    def init_output_bias(self, mean_joints: np.ndarray | Tensor) -> None:
        """Start the head at the mean training pose (17, 3) m: the prediction when nothing is known."""
        mean = torch.as_tensor(np.asarray(mean_joints, dtype=np.float32).reshape(-1))
        with torch.no_grad():
            self.head.bias.copy_(mean)

    def encoder_parameters(self, modality: str) -> list[nn.Parameter]:
        """Trainable parameters of one modality's encoder."""
        return [p for p in self.encoders[modality].parameters() if p.requires_grad]

    def presence_mask(self, modalities: list[str] | tuple[str, ...], batch: int, device: torch.device | str = "cpu") -> Tensor:
        """(batch, M) bool mask with exactly ``modalities`` present (e.g. to query one subset)."""
        unknown = [m for m in modalities if m not in self.modalities]
        if unknown:
            raise ValueError(f"modalities {unknown} not in this model's {self.modalities}")
        row = torch.tensor([m in modalities for m in self.modalities], device=device)
        return row.expand(batch, -1).clone()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
