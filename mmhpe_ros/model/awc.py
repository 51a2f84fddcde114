"""Adaptive Weight Constraint (AWC): a Fisher-weighted, contribution-scaled penalty on encoder drift.

    L = L_MPJPE + sum_m alpha_m * sum_{i in encoder m} F_i (theta_i - theta*_i)^2 / 2

``F`` is the diagonal Fisher information, estimated as the mean squared gradient of the MPJPE
loss over a few mini-batches (the empirical Fisher of mini-batch gradients), with every modality
present. ``alpha_m`` is ``alpha_strong`` for modalities the latest Shapley assessment calls strong
and ``alpha_weak`` for weak ones (before any assessment: ``alpha_weak`` for all). The penalty is
active only in the first ``epochs`` epochs and touches encoder parameters only; it adds no
learnable parameter.

Anchor ``theta*`` (our choice; the paper's summaries leave it open): ``"epoch"`` (default)
re-anchors at the start of every epoch, together with a fresh Fisher estimate and fresh alphas,
so the penalty is a per-epoch trust region that slows how fast each encoder moves - most for the
strong modalities' most informative parameters - without pinning the model to its random
initialisation. ``"initial"`` anchors once, at the first update (parameters and Fisher of that
moment), as in classic EWC; only the alphas follow later assessments.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor

from mmhpe_ros.model.inputs import PRESENT
from mmhpe_ros.model.losses import mpjpe_loss
from mmhpe_ros.model.pose_model import PoseModel

ANCHORS = ("epoch", "initial")
LossFn = Callable[[Tensor, Tensor], Tensor]


def diagonal_fisher(
    model: PoseModel,
    batches: Iterable[Mapping[str, object]],
    device: torch.device | str = "cpu",
    loss_fn: LossFn = mpjpe_loss,
) -> dict[str, list[Tensor]]:
    """Mean over ``batches`` of the squared loss gradient, per encoder parameter (eval mode)."""
    params = {m: model.encoder_parameters(m) for m in model.modalities}
    fisher = {m: [torch.zeros_like(p) for p in ps] for m, ps in params.items()}
    was_training = model.training
    model.eval()
    count = 0
    try:
        for batch in batches:
            inputs = {k: v.to(device) for k, v in batch.items() if isinstance(v, Tensor)}
            model.zero_grad(set_to_none=True)
            loss_fn(model(inputs, inputs[PRESENT]), inputs["joints"]).backward()
            for m, ps in params.items():
                for f, p in zip(fisher[m], ps):
                    if p.grad is not None:
                        f.add_(p.grad.detach() ** 2)
            count += 1
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    if count == 0:
        raise ValueError("the Fisher estimate needs at least one batch")
    return {m: [f / count for f in fs] for m, fs in fisher.items()}


class AdaptiveWeightConstraint:
    """The AWC penalty for one :class:`PoseModel` (see module docstring)."""

    def __init__(
        self,
        model: PoseModel,
        alpha_strong: float = 20_000.0,
        alpha_weak: float = 10_000.0,
        epochs: int = 20,
        anchor: str = "epoch",
    ) -> None:
        if anchor not in ANCHORS:
            raise ValueError(f"AWC anchor must be one of {ANCHORS}, got {anchor!r}")
        self.model = model
        self.alpha_strong, self.alpha_weak = float(alpha_strong), float(alpha_weak)
        self.epochs, self.anchor_mode = int(epochs), anchor
        self.alpha: dict[str, float] = {m: self.alpha_weak for m in model.modalities}
        self.fisher: dict[str, list[Tensor]] = {}
        self.anchor: dict[str, list[Tensor]] = {}

    def active(self, epoch: int) -> bool:
        """Whether the penalty applies in (0-based) ``epoch``."""
        return epoch < self.epochs

    def update(
        self,
        batches: Iterable[Mapping[str, object]],
        strong: Sequence[str] | None,
        device: torch.device | str = "cpu",
        average: Callable[[list[Tensor]], None] | None = None,
    ) -> None:
        """Start of an epoch: alphas from the strong set, and (per anchor mode) Fisher + anchor.

        ``strong``: the strong modalities of the latest assessment (None: none yet).
        ``average``: in-place all-reduce of a tensor list (distributed training).
        """
        self.alpha = {
            m: self.alpha_strong if strong is not None and m in strong else self.alpha_weak
            for m in self.model.modalities
        }
        if self.anchor_mode == "initial" and self.anchor:
            return
        self.fisher = diagonal_fisher(self.model, batches, device)
        if average is not None:
            average([f for fs in self.fisher.values() for f in fs])
        self.anchor = {m: [p.detach().clone() for p in self.model.encoder_parameters(m)]
                       for m in self.model.modalities}

    def penalty(self) -> Tensor:
        """sum_m alpha_m * sum_i F_i (theta_i - theta*_i)^2 / 2 (0 before the first update)."""
        first = next(self.model.parameters())
        total = first.new_zeros(())
        for m in self.model.modalities:
            if m not in self.fisher:
                continue
            term = first.new_zeros(())
            for p, f, a in zip(self.model.encoder_parameters(m), self.fisher[m], self.anchor[m]):
                term = term + (f * (p - a) ** 2).sum()
            total = total + self.alpha[m] * term / 2
        return total

    def per_modality(self) -> dict[str, float]:
        """Current penalty of each modality (for logging)."""
        with torch.no_grad():
            out = {}
            for m in self.model.modalities:
                if m in self.fisher:
                    drift = sum(float((f * (p - a) ** 2).sum()) for p, f, a in
                                zip(self.model.encoder_parameters(m), self.fisher[m], self.anchor[m]))
                    out[m] = self.alpha[m] * drift / 2
            return out

    def state_dict(self) -> dict[str, object]:
        return {"alpha": dict(self.alpha), "fisher": self.fisher, "anchor": self.anchor}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        self.alpha = dict(state["alpha"])  # type: ignore[arg-type]
        self.fisher = {m: list(v) for m, v in state["fisher"].items()}  # type: ignore[union-attr]
        self.anchor = {m: list(v) for m, v in state["anchor"].items()}  # type: ignore[union-attr]
