"""Modality contribution assessment: exact Shapley values over all 2^M modality coalitions.

Value function (the paper's): ``v(S)`` = sum over the 17 x 3 output coordinates of the Pearson
correlation, across the held-out frames, between the model's prediction with only the modalities
of ``S`` present and the ground truth. A coordinate whose prediction (or ground truth) is constant
scores 0, so a collapsed, near-constant modality is worth nothing. ``v(empty) = 0``: with nothing
present the model outputs its constant bias pose, which scores 0 by that same rule.

Cost: each held-out batch is encoded once; the 2^M - 1 non-empty coalitions re-run only fusion
and head on the cached features (``cache_features=False`` re-encodes per coalition, as a
reference). Imbalance: 2-means on the M Shapley values splits strong from weak modalities.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from math import factorial
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from mmhpe_ros.model.inputs import MMWAVE_MASK, PRESENT
from mmhpe_ros.model.pose_model import PoseModel

TARGET = "joints"  # batch key of the ground truth (B, 17, 3)


def pearson_value(predicted: Tensor | np.ndarray, target: Tensor | np.ndarray, rtol: float = 1e-6) -> float:
    """Sum over output coordinates of the Pearson correlation along the first (frame) axis.

    A coordinate whose prediction or target varies by less than ``rtol`` of its magnitude
    (float32 rounding level: a constant output) scores 0.
    """
    p, t = (
        x.to(torch.float64) if isinstance(x, Tensor) else torch.from_numpy(np.array(x, dtype=np.float64))
        for x in (predicted, target)
    )
    p, t = p.flatten(1), t.flatten(1)
    if p.shape != t.shape or p.shape[0] < 2:
        raise ValueError(f"need >= 2 frames of equal shape, got {tuple(p.shape)} and {tuple(t.shape)}")

    def centred(x: Tensor) -> tuple[Tensor, Tensor]:
        c = x - x.mean(dim=0)
        std = c.norm(dim=0) / x.shape[0] ** 0.5
        return c, std <= rtol * x.abs().amax(dim=0).clamp(min=1e-30)

    (p, p_constant), (t, t_constant) = centred(p), centred(t)
    constant = p_constant | t_constant
    norm = torch.where(constant, torch.ones_like(p[0]), p.norm(dim=0) * t.norm(dim=0))
    r = (p * t).sum(dim=0) / norm
    return float(torch.where(constant, torch.zeros_like(r), r).sum())


def coalition_masks(num_players: int) -> np.ndarray:
    """(2^M, M) bool: row ``s`` holds the players in the bits of ``s`` (player i = bit i)."""
    s = np.arange(2**num_players)[:, None]
    return ((s >> np.arange(num_players)) & 1).astype(bool)


def shapley_values(values: Sequence[float] | np.ndarray, num_players: int) -> np.ndarray:
    """Exact Shapley values from ``values[s]`` = v(coalition with bitmask s), s in 0 .. 2^M - 1.

    phi_i = sum over S without i of |S|! (M - |S| - 1)! / M! * (v(S + i) - v(S)).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (2**num_players,):
        raise ValueError(f"need 2^{num_players} = {2**num_players} coalition values, got {v.shape}")
    masks = coalition_masks(num_players)
    sizes = masks.sum(axis=1)
    weight = np.array([factorial(k) * factorial(num_players - k - 1) / factorial(num_players)
                       if k < num_players else 0.0 for k in sizes])
    phi = np.empty(num_players)
    for i in range(num_players):
        without = ~masks[:, i]
        s = np.flatnonzero(without)
        phi[i] = np.sum(weight[s] * (v[s | (1 << i)] - v[s]))
    return phi


def split_strong_weak(values: Sequence[float] | np.ndarray, names: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """K-means (K = 2) on the Shapley values: (strong, weak) modality names.

    In one dimension the optimal 2-means clustering is a split of the sorted values; every split
    is tried and the one with the least within-cluster sum of squares kept (the global optimum,
    deterministic). Equal values (no imbalance) or a single modality: all strong, none weak.
    """
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(-v, kind="stable")
    best, best_cost = len(v), np.inf
    for k in range(1, len(v)):
        high, low = v[order[:k]], v[order[k:]]
        cost = ((high - high.mean()) ** 2).sum() + ((low - low.mean()) ** 2).sum()
        if cost < best_cost - 1e-12 and high.min() > low.max():
            best, best_cost = k, cost
    strong = {names[i] for i in order[:best]}
    return tuple(n for n in names if n in strong), tuple(n for n in names if n not in strong)


@dataclass(frozen=True)
class Assessment:
    """The outcome of one contribution assessment."""

    modalities: tuple[str, ...]
    coalition_values: np.ndarray  # (2^M,), index = bitmask over `modalities`
    shapley: np.ndarray  # (M,)
    strong: tuple[str, ...]
    weak: tuple[str, ...]
    frames: int
    seconds: float

    def by_modality(self) -> dict[str, float]:
        return {m: float(v) for m, v in zip(self.modalities, self.shapley)}


def _to_device(batch: Mapping[str, object], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device) for k, v in batch.items() if isinstance(v, Tensor)}


def _only(inputs: Mapping[str, Tensor], model: PoseModel, keep: Tensor) -> dict[str, Tensor]:
    """``inputs`` with the modalities outside ``keep`` (M,) bool replaced by zeros (as when absent)."""
    out = dict(inputs)
    for m, kept in zip(model.modalities, keep.tolist()):
        if not kept:
            for key in (m, MMWAVE_MASK) if m == "mmwave" else (m,):
                out[key] = torch.zeros_like(inputs[key])
    return out


@torch.no_grad()
def coalition_values(
    model: PoseModel,
    batches: Iterable[Mapping[str, object]],
    device: torch.device | str = "cpu",
    cache_features: bool = True,
) -> tuple[np.ndarray, int]:
    """(v(S) for every coalition bitmask S, number of frames) over held-out ``batches``."""
    device = torch.device(device)
    num = len(model.modalities)
    masks = torch.as_tensor(coalition_masks(num), device=device)
    predictions: list[list[Tensor]] = [[] for _ in range(2**num)]
    targets: list[Tensor] = []
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            inputs = _to_device(batch, device)
            present = inputs[PRESENT]
            targets.append(inputs[TARGET].cpu())
            features = model.encode(inputs) if cache_features else None
            for s in range(1, 2**num):
                subset = present & masks[s]
                if features is None:
                    predicted = model(_only(inputs, model, masks[s]), subset)
                else:
                    predicted = model.fuse(features, subset)
                predictions[s].append(predicted.cpu())
    finally:
        model.train(was_training)
    if not targets:
        raise ValueError("contribution assessment needs at least one held-out batch")
    target = torch.cat(targets)
    values = np.zeros(2**num)
    for s in range(1, 2**num):
        values[s] = pearson_value(torch.cat(predictions[s]), target)
    return values, len(target)


def assess(
    model: PoseModel,
    batches: Iterable[Mapping[str, object]],
    device: torch.device | str = "cpu",
    cache_features: bool = True,
) -> Assessment:
    """Shapley value of each modality of ``model`` on ``batches``, and the strong / weak split."""
    start = time.perf_counter()
    values, frames = coalition_values(model, batches, device, cache_features)
    phi = shapley_values(values, len(model.modalities))
    strong, weak = split_strong_weak(phi, model.modalities)
    return Assessment(model.modalities, values, phi, strong, weak, frames, time.perf_counter() - start)
