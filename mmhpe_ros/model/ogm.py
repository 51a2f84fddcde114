"""OGM-GE (Peng et al., CVPR 2022) adapted to regression: a baseline balancing method.

On-the-fly gradient modulation: each step, every modality's contribution is scored from the
fused model itself with only that modality present (no auxiliary head): ``s_m = 1 / MPJPE_m``
over the batch frames where ``m`` is present (OGM-GE scores a class's softmax probability, which
a regression model does not have; this score is our adaptation). A modality doing better than the
mean of the others (``rho_m = s_m / mean_{j != m} s_j > 1``; OGM-GE's two-modality ratio extended
to M modalities) gets its encoder gradients scaled by ``k_m``; the rest keep 1:

- ``coefficient="reference"`` (default): ``k_m = 1 - tanh(alpha * rho_m)``, as in OGM-GE's paper
  (Peng et al., eq. 7) and code (``1 - tanh(alpha * relu(ratio))`` where the ratio exceeds 1);
- ``coefficient="mild"``: ``k_m = 1 - tanh(alpha * (rho_m - 1))``, continuous at rho = 1 (ours).

Generalisation enhancement (GE) then adds Gaussian noise with the standard deviation of each
gradient tensor to every encoder gradient. Applied only in the first ``epochs`` epochs, like the
original's modulation window.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor

from mmhpe_ros.model.inputs import PRESENT
from mmhpe_ros.model.pose_model import PoseModel

COEFFICIENTS = ("reference", "mild")


class GradientModulation:
    """OGM-GE for a :class:`PoseModel`; call :meth:`modulate` between backward and the step."""

    def __init__(self, model: PoseModel, alpha: float = 0.5, epochs: int = 20, noise: bool = True,
                 coefficient: str = "reference") -> None:
        if coefficient not in COEFFICIENTS:
            raise ValueError(f"OGM-GE coefficient must be one of {COEFFICIENTS}, got {coefficient!r}")
        self.model, self.alpha, self.epochs, self.noise = model, float(alpha), int(epochs), noise
        self.coefficient = coefficient

    def active(self, epoch: int) -> bool:
        return epoch < self.epochs

    @torch.no_grad()
    def unimodal_errors(self, inputs: Mapping[str, Tensor], target: Tensor) -> tuple[Tensor, Tensor]:
        """(summed per-frame MPJPE, frame count) of each modality alone, shape (M,) each."""
        was_training = self.model.training
        self.model.eval()
        try:
            features = self.model.encode(inputs)
            present = inputs[PRESENT].bool()
            errors, counts = [], []
            for i in range(len(self.model.modalities)):
                only = torch.zeros_like(present)
                only[:, i] = present[:, i]
                per_frame = (self.model.fuse(features, only) - target).norm(dim=-1).mean(dim=-1)
                errors.append((per_frame * only[:, i]).sum())
                counts.append(only[:, i].sum().to(per_frame.dtype))
        finally:
            self.model.train(was_training)
        return torch.stack(errors), torch.stack(counts)

    def coefficients(self, errors: Tensor, counts: Tensor) -> Tensor:
        """Gradient scale per modality (M,) from summed unimodal errors and counts."""
        score = counts / errors.clamp(min=1e-12)  # 1 / mean MPJPE; 0 where never present
        total, num = score.sum(), len(score)
        if num < 2:
            return torch.ones_like(score)
        others = (total - score) / (num - 1)
        ratio = score / others.clamp(min=1e-12)
        if self.coefficient == "mild":
            return 1.0 - torch.tanh(self.alpha * torch.relu(ratio - 1.0))
        return torch.where(ratio > 1.0, 1.0 - torch.tanh(self.alpha * ratio), torch.ones_like(ratio))

    @torch.no_grad()
    def modulate(self, coefficients: Tensor, generator: torch.Generator | None = None) -> None:
        """Scale each encoder's gradients by its coefficient, then add GE noise."""
        for m, coefficient in zip(self.model.modalities, coefficients.tolist()):
            for p in self.model.encoder_parameters(m):
                if p.grad is None:
                    continue
                std = p.grad.std().item() if p.grad.numel() > 1 else 0.0
                p.grad.mul_(coefficient)
                if self.noise and std > 0:
                    noise = torch.randn(p.grad.shape, generator=generator, dtype=p.grad.dtype)
                    p.grad.add_(noise.to(p.grad.device) * std)
