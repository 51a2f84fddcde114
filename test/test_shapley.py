"""Exact Shapley values, the Pearson value function, cached coalition evaluation, 2-means split."""
from __future__ import annotations

import itertools
import sys
from math import factorial
from pathlib import Path

import numpy as np
import pytest
import torch

from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.inputs import prepare_inputs
from mmhpe_ros.model.observe import Rig
from mmhpe_ros.model.pose_model import PoseModel
from mmhpe_ros.model.shapley import (
    assess,
    coalition_masks,
    coalition_values,
    pearson_value,
    shapley_values,
    split_strong_weak,
)
from mmhpe_ros.modalities import MODALITIES

sys.path.insert(0, str(Path(__file__).parent))
from rig_scene import person_joints, rig_calibration, sensor_data  # noqa: E402

torch.set_num_threads(1)


def permutation_shapley(values: np.ndarray, n: int) -> np.ndarray:
    """Reference: average marginal contribution over all n! join orders."""
    phi = np.zeros(n)
    for order in itertools.permutations(range(n)):
        mask = 0
        for player in order:
            phi[player] += values[mask | (1 << player)] - values[mask]
            mask |= 1 << player
    return phi / factorial(n)


def test_shapley_matches_permutation_definition_and_efficiency() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 4):
        values = rng.normal(size=2**n)
        phi = shapley_values(values, n)
        np.testing.assert_allclose(phi, permutation_shapley(values, n), atol=1e-12)
        assert phi.sum() == pytest.approx(values[-1] - values[0])


def test_shapley_additive_symmetric_and_dummy() -> None:
    masks = coalition_masks(4)
    weights = np.array([3.0, 2.0, 0.5, 0.0])
    np.testing.assert_allclose(shapley_values(masks @ weights, 4), weights)  # additive game
    # Players 0 and 1 interchangeable, player 3 a dummy, with interactions.
    a, b, c = masks[:, 0], masks[:, 1], masks[:, 2]
    values = 5.0 * (a | b) + 2.0 * (a & b) + 1.5 * c + 0.7 * (a & c) + 0.7 * (b & c)
    phi = shapley_values(values.astype(float), 4)
    assert phi[0] == pytest.approx(phi[1])
    assert phi[3] == pytest.approx(0.0, abs=1e-12)
    assert phi.sum() == pytest.approx(values[-1] - values[0])
    with pytest.raises(ValueError):
        shapley_values(np.zeros(8), 4)


def test_pearson_value_perfect_negated_and_collapsed() -> None:
    rng = np.random.default_rng(1)
    target = rng.normal(size=(64, 17, 3))
    assert pearson_value(target, target) == pytest.approx(51.0)
    assert pearson_value(-target, target) == pytest.approx(-51.0)
    assert pearson_value(3.0 * target + 1.0, target) == pytest.approx(51.0)  # affine invariance
    constant = np.broadcast_to(target.mean(axis=0), target.shape)
    assert pearson_value(constant, target) == 0.0
    # A float32 "constant" with rounding-level jitter still counts as collapsed.
    jitter = constant.astype(np.float32) * (1 + 1e-8 * rng.normal(size=target.shape)).astype(np.float32)
    assert pearson_value(jitter, target) == 0.0
    half = target.copy()
    half[:, :8] = target[:, :8].mean(axis=0)  # 8 of 17 joints collapsed
    assert pearson_value(half, target) == pytest.approx(27.0)


def test_split_strong_weak_two_means() -> None:
    assert split_strong_weak([10.0, 9.0, 1.0, 0.5], MODALITIES) == (("rgb", "lidar"), ("mmwave", "wifi"))
    assert split_strong_weak([1.0, 9.0, 10.0, 8.5], MODALITIES) == (("lidar", "mmwave", "wifi"), ("rgb",))
    assert split_strong_weak([2.0, 2.0, 2.0, 2.0], MODALITIES) == (MODALITIES, ())
    assert split_strong_weak([4.0], ("rgb",)) == (("rgb",), ())


def make_batches(config: ModelConfig, count: int, size: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Batches of model inputs of a person in front of a calibrated rig, the targets in their body frame."""
    rng = np.random.default_rng(seed)
    rig = Rig(rig_calibration())
    batches = []
    for _ in range(count):
        frames = []
        for _ in range(size):
            joints = person_joints(rng)
            inputs, body = prepare_inputs(sensor_data(joints, rig.calibration, rng), rig, config)
            frames.append({**inputs, "joints": body.to_body(joints[None])[0].astype(np.float32)})
        batch = {k: torch.as_tensor(np.stack([f[k] for f in frames])) for k in frames[0]}
        batch["present"][0, 2] = False  # one frame without radar
        batches.append(batch)
    return batches


SMALL = ModelConfig(feature_dim=16, hidden_dim=32, lidar_points=32, mmwave_points=8, dropout=0.0)


def test_cached_features_equal_recomputation() -> None:
    torch.manual_seed(0)
    model = PoseModel(SMALL)
    batches = make_batches(SMALL, 3, 8)
    cached, frames = coalition_values(model, batches, cache_features=True)
    recomputed, _ = coalition_values(model, batches, cache_features=False)
    assert frames == 24 and cached[0] == 0.0
    np.testing.assert_allclose(cached, recomputed, rtol=1e-6, atol=1e-9)
    assert model.training  # mode restored


def test_assessment_gives_zero_to_a_modality_the_model_ignores() -> None:
    torch.manual_seed(1)
    model = PoseModel(SMALL)
    d, m = SMALL.feature_dim, SMALL.num_modalities
    first = model.fusion.net[0][0]  # Linear over [features (M*D), presence bits (M)]
    with torch.no_grad():  # wifi (index 3): its feature block and presence bit carry no weight
        first.weight[:, 3 * d: 4 * d] = 0.0
        first.weight[:, m * d + 3] = 0.0
    result = assess(model, make_batches(SMALL, 2, 16, seed=3))
    assert result.shapley[3] == pytest.approx(0.0, abs=1e-9)
    assert result.shapley.sum() == pytest.approx(result.coalition_values[-1] - 0.0)
    assert set(result.strong) | set(result.weak) == set(MODALITIES)
    assert result.frames == 32 and result.seconds >= 0


def test_pearson_of_untrained_bias_only_model_is_zero() -> None:
    torch.manual_seed(2)
    model = PoseModel(SMALL)
    with torch.no_grad():
        model.head.weight.zero_()  # constant predictor
    values, _ = coalition_values(model, make_batches(SMALL, 1, 16))
    assert np.all(values == 0.0)
