"""Training losses on joints in metres."""
from __future__ import annotations

from torch import Tensor


def mpjpe_loss(predicted: Tensor, target: Tensor) -> Tensor:
    """Mean per-joint position error (mean Euclidean distance over frames and joints), metres."""
    if predicted.shape != target.shape:
        raise ValueError(f"prediction {tuple(predicted.shape)} and target {tuple(target.shape)} differ")
    return (predicted - target).norm(dim=-1).mean()
