"""Mask-aware fusion of per-modality features, and modality dropout for training.

Every fusion takes stacked features (B, M, D) and ``present`` (B, M) bool and ignores absent
modalities entirely (their features are zeroed or masked out), so any subset of modalities can
be fused by the same weights. ``out_dim`` is the width the regression head reads.

- ``concat`` (the paper's: features concatenated, missing modalities zero-filled, then the
  model's linear regression head; Qi et al., method overview and Table 1 "concat");
- ``mlp`` (the light default): the zero-filled features and the presence bits, a 2-layer MLP;
- ``attention``: self-attention over the present modality tokens, masked mean (the paper's
  attention fusion row; its exact layout is not given in the paper, this one is ours).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.encoders import mlp


class ConcatFusion(nn.Module):
    """The paper's concat fusion: the zeroed-if-absent features side by side (B, M * D); the
    model's head is then one linear layer on them."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.out_dim = config.num_modalities * config.feature_dim

    def forward(self, features: Tensor, present: Tensor) -> Tensor:
        return (features * present.to(features.dtype).unsqueeze(-1)).flatten(1)


class MlpFusion(nn.Module):
    """Concatenate the zeroed-if-absent features and the presence bits, then an MLP."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        m, d, h = config.num_modalities, config.feature_dim, config.hidden_dim
        self.out_dim = h
        self.net = nn.Sequential(mlp([m * d + m, h, h], final_activation=True), nn.Dropout(config.dropout))

    def forward(self, features: Tensor, present: Tensor) -> Tensor:
        mask = present.to(features.dtype)
        fused = torch.cat([(features * mask.unsqueeze(-1)).flatten(1), mask], dim=-1)
        return self.net(fused)


class AttentionFusion(nn.Module):
    """Self-attention over present modality tokens (+ a learnt modality embedding), masked mean."""

    def __init__(self, config: ModelConfig, heads: int = 4) -> None:
        super().__init__()
        d = config.feature_dim
        self.out_dim = config.hidden_dim
        self.modality_embedding = nn.Parameter(torch.zeros(config.num_modalities, d))
        self.attention = nn.MultiheadAttention(d, heads, dropout=config.dropout, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.feed_forward = mlp([d, 2 * d, d])
        self.out = nn.Sequential(mlp([d, config.hidden_dim], final_activation=True), nn.Dropout(config.dropout))

    def forward(self, features: Tensor, present: Tensor) -> Tensor:
        mask = present.to(features.dtype).unsqueeze(-1)  # (B, M, 1)
        tokens = (features + self.modality_embedding) * mask
        # A row with nothing present attends to its (zero) tokens instead of producing NaN.
        ignore = ~present & present.any(dim=1, keepdim=True)
        attended, _ = self.attention(tokens, tokens, tokens, key_padding_mask=ignore, need_weights=False)
        tokens = self.norm1(tokens + attended)
        tokens = self.norm2(tokens + self.feed_forward(tokens))
        pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return self.out(pooled)


def build_fusion(config: ModelConfig) -> nn.Module:
    """The fusion module named by ``config.fusion``."""
    return {"concat": ConcatFusion, "mlp": MlpFusion, "attention": AttentionFusion}[config.fusion](config)


def modality_dropout(present: Tensor, probability: float, generator: torch.Generator | None = None) -> Tensor:
    """Training-time modality dropout.

    Each row of ``present`` (B, M) bool is, with chance ``probability``, replaced by a random
    non-empty subset of its present modalities (each kept with chance 1/2; if none is kept, one
    present modality chosen uniformly). Rows with nothing present are left alone.
    """
    if probability <= 0.0:
        return present
    rows, count = present.shape
    draw = lambda *shape: torch.rand(*shape, generator=generator, device="cpu").to(present.device)  # noqa: E731
    apply = draw(rows, 1) < probability
    keep = present & (draw(rows, count) < 0.5)
    # One present modality per row, uniformly: the argmax of random scores over present ones.
    scores = torch.where(present, draw(rows, count), torch.full_like(present, -1.0, dtype=torch.float32))
    one = torch.zeros_like(present).scatter_(1, scores.argmax(dim=1, keepdim=True), True) & present
    subset = torch.where(keep.any(dim=1, keepdim=True), keep, one)
    return torch.where(apply, subset, present)
