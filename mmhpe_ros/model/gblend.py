"""Gradient-Blending (Wang, Tran & Feiszli, CVPR 2020) adapted to regression: a baseline method.

G-Blending trains the fused output and one output per modality together, with loss weights
``w_k`` proportional to each output's generalisation gain over its overfitting:
``w_k ~ dG_k / dO_k^2`` (the paper's eq. 5 approximation), re-estimated every "super-epoch".
Adaptation here (the original needs one classification head per modality):

- the outputs are the fused model with every present modality and the same fused model with
  only modality ``m`` present (no auxiliary head, as for OGM-GE in this project);
- the loss is MPJPE (not cross-entropy); ``G_k`` is output ``k``'s MPJPE on the held-out training
  sequences, ``O_k = G_k - T_k`` its gap to the MPJPE on a fixed subset of the fitted frames;
- one epoch is a super-epoch: after epoch ``e``, ``dG_k = G_k(e-1) - G_k(e)`` and
  ``dO_k = O_k(e) - O_k(e-1)``; ``w_k = max(dG_k, 0) / max(dO_k^2, eps)``, normalised to sum to 1
  (all zero: the weights stay). The first epoch uses equal weights.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

EPSILON = 1e-12  # floor of dO^2 (mm^2)


class GradientBlending:
    """Loss weights of the fused output and of each modality alone (``names``: "all", then modalities)."""

    def __init__(self, modalities: Sequence[str]) -> None:
        self.names = ("all", *modalities)
        self.weights = np.full(len(self.names), 1.0 / len(self.names))
        self.previous: dict[str, tuple[float, float]] | None = None  # name -> (G, O) of the last epoch

    def loss(self, predictions: Tensor, target: Tensor, present: Tensor) -> Tensor:
        """Weighted MPJPE of the stacked outputs (1 + M, B, 17, 3): output ``k``'s loss is its mean
        over the samples where it is defined (every sample for "all", those with ``m`` present)."""
        per_sample = (predictions - target.unsqueeze(0)).norm(dim=-1).mean(dim=-1)  # (1 + M, B)
        defined = torch.cat([torch.ones_like(present[:, :1]), present], dim=1).T.to(per_sample.dtype)
        means = (per_sample * defined).sum(dim=1) / defined.sum(dim=1).clamp(min=1.0)
        return (torch.as_tensor(self.weights, dtype=means.dtype, device=means.device) * means).sum()

    def update(self, holdout_mm: Mapping[str, float], train_mm: Mapping[str, float]) -> None:
        """New weights from this epoch's held-out (G) and fitted-subset (T) MPJPE of each output."""
        now = {k: (float(holdout_mm[k]), float(holdout_mm[k]) - float(train_mm[k])) for k in self.names}
        if self.previous is not None:
            gains = np.array([self.previous[k][0] - now[k][0] for k in self.names])
            overfit = np.array([now[k][1] - self.previous[k][1] for k in self.names])
            raw = np.where(np.isfinite(gains) & np.isfinite(overfit),
                           np.maximum(gains, 0.0) / np.maximum(overfit**2, EPSILON), 0.0)
            if raw.sum() > 0:
                self.weights = raw / raw.sum()
        self.previous = now

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.tolist(), "previous": self.previous}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.weights = np.asarray(state["weights"], dtype=np.float64)
        previous = state.get("previous")
        self.previous = {k: (float(v[0]), float(v[1])) for k, v in previous.items()} if previous else None
