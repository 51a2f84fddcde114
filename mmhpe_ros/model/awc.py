"""Adaptive Weight Constraint (AWC): a Fisher-weighted, contribution-scaled penalty on encoder drift.

    L = L_MPJPE + sum_m alpha_m * sum_{i in encoder m} F_i (theta_i - theta*_i)^2 / 2

(Qi et al., the AWC part of the method: a per-parameter EWC-style constraint weighted by the
diagonal of the Fisher Information Matrix and, per modality, by its assessed contribution. Only
the paper's abstract and secondary summaries (../shared/docs/method.md) could be read here, so
its section and equation numbers are not cited.)

``F`` is the diagonal empirical Fisher information as the paper defines it,
F_i = 1/|D| sum_n (d L(x_n, y_n; theta) / d theta_i)^2: the mean over samples of the squared
PER-SAMPLE gradient of the MPJPE loss, with each sample's own modalities present. It is computed
with ``torch.func`` (``vmap`` of ``grad`` over the samples of a batch, :func:`diagonal_fisher`),
so it does not depend on how the samples are batched; squaring a mini-batch mean gradient
instead would shrink with the batch size, unevenly across modalities. ``alpha_m`` is
``alpha_strong`` for modalities the latest Shapley assessment calls strong and ``alpha_weak`` for
weak ones (before any assessment: ``alpha_weak`` for all). The penalty is active only in the first
``epochs`` epochs (the paper: K = 20 of 50) and touches encoder parameters only; it adds no
learnable parameter.

Anchor ``theta*`` (our choice; the paper's text leaves it open): ``"epoch"`` (default)
re-anchors at the start of every epoch, together with a fresh Fisher estimate and fresh alphas,
so the penalty is a per-epoch trust region that slows how fast each encoder moves - most for the
strong modalities' most informative parameters - without pinning the model to its random
initialisation. ``"initial"`` anchors once, at the first update (parameters and Fisher of that
moment), as in classic EWC; only the alphas follow later assessments.
"""
from __future__ import annotations

import warnings
from typing import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor

from mmhpe_ros.model.inputs import PRESENT
from mmhpe_ros.model.pose_model import PoseModel

ANCHORS = ("epoch", "initial")
TARGET = "joints"
FISHER_CHUNK = 32  # samples whose gradients vmap holds at once


def sample_mpjpe(predicted: Tensor, target: Tensor) -> Tensor:
    """MPJPE of each sample (B, 17, 3) -> (B,), metres: the per-sample loss of the Fisher."""
    return (predicted - target).norm(dim=-1).mean(dim=-1)


def _tensors(batch: Mapping[str, object], device: torch.device | str) -> dict[str, Tensor]:
    return {k: v.to(device) for k, v in batch.items() if isinstance(v, Tensor)}


def diagonal_fisher(
    model: PoseModel,
    batches: Iterable[Mapping[str, object]],
    device: torch.device | str = "cpu",
    method: str = "vmap",
) -> dict[str, list[Tensor]]:
    """Mean over every sample of ``batches`` of its squared MPJPE-loss gradient, per encoder
    parameter (eval mode, so dropout is off). ``method``: ``"vmap"`` (per-sample gradients with
    ``torch.func``, batched) or ``"loop"`` (one backward pass per sample: the reference)."""
    if method not in ("vmap", "loop"):
        raise ValueError(f"Fisher method must be 'vmap' or 'loop', got {method!r}")
    names = {m: [f"encoders.{m}.{n}" for n, p in model.encoders[m].named_parameters() if p.requires_grad]
             for m in model.modalities}
    params = dict(model.named_parameters())
    sums = {n: torch.zeros_like(params[n]) for ns in names.values() for n in ns}
    was_training = model.training
    model.eval()
    count = 0
    try:
        for batch in batches:
            inputs = _tensors(batch, device)
            if method == "vmap":
                try:
                    _add_vmap(model, inputs, sums, params)
                except (RuntimeError, NotImplementedError) as error:  # an op without a batching rule
                    warnings.warn(f"per-sample Fisher by vmap failed ({error}); one backward pass per sample")
                    method = "loop"
            if method == "loop":
                _add_loop(model, inputs, sums, params)
            count += int(inputs[TARGET].shape[0])
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    if count == 0:
        raise ValueError("the Fisher estimate needs at least one sample")
    return {m: [sums[n] / count for n in ns] for m, ns in names.items()}


def _add_vmap(model: PoseModel, inputs: dict[str, Tensor], sums: dict[str, Tensor],
              params: dict[str, Tensor]) -> None:
    from torch.func import functional_call, grad, vmap

    wrt = {n: params[n].detach() for n in sums}
    fixed = {n: p.detach() for n, p in params.items() if n not in sums}
    fixed.update(dict(model.named_buffers()))

    def loss(weights: dict[str, Tensor], sample: dict[str, Tensor]) -> Tensor:
        batch = {k: v.unsqueeze(0) for k, v in sample.items()}
        predicted = functional_call(model, {**fixed, **weights}, (batch, batch[PRESENT]))
        return sample_mpjpe(predicted, batch[TARGET])[0]

    with warnings.catch_warnings():  # "performance drop ... batching rule" for attention kernels
        warnings.filterwarnings("ignore", message="There is a performance drop")
        grads = vmap(grad(loss), in_dims=(None, 0), chunk_size=FISHER_CHUNK)(wrt, inputs)
    for n, g in grads.items():
        sums[n] += g.pow(2).sum(dim=0)


def _add_loop(model: PoseModel, inputs: dict[str, Tensor], sums: dict[str, Tensor],
              params: dict[str, Tensor]) -> None:
    for i in range(int(inputs[TARGET].shape[0])):
        sample = {k: v[i:i + 1] for k, v in inputs.items()}
        model.zero_grad(set_to_none=True)
        sample_mpjpe(model(sample, sample[PRESENT]), sample[TARGET])[0].backward()
        for n in sums:
            if params[n].grad is not None:
                sums[n] += params[n].grad.detach().pow(2)


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

    def fisher_trace(self) -> dict[str, float]:
        """Sum of each modality's diagonal Fisher (for logging; NaN before the first update)."""
        return {m: float(sum(f.sum() for f in self.fisher[m])) if m in self.fisher else float("nan")
                for m in self.model.modalities}

    def state_dict(self) -> dict[str, object]:
        return {"alpha": dict(self.alpha), "fisher": self.fisher, "anchor": self.anchor}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        self.alpha = dict(state["alpha"])  # type: ignore[arg-type]
        self.fisher = {m: list(v) for m, v in state["fisher"].items()}  # type: ignore[union-attr]
        self.anchor = {m: list(v) for m, v in state["anchor"].items()}  # type: ignore[union-attr]
