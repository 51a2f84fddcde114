"""Adaptive Weight Constraint: Fisher estimate, penalty, alphas, anchors; OGM-GE baseline."""
from __future__ import annotations

import copy

import pytest
import torch

from mmhpe_ros.model.awc import AdaptiveWeightConstraint, diagonal_fisher
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.losses import mpjpe_loss
from mmhpe_ros.model.ogm import GradientModulation
from mmhpe_ros.model.pose_model import PoseModel
from test_shapley import make_batches

torch.set_num_threads(1)
CONFIG = ModelConfig(feature_dim=16, hidden_dim=32, lidar_points=32, mmwave_points=8, dropout=0.0,
                     csi_packet_dropout=0.0)  # deterministic training-mode forward passes


@pytest.fixture
def model() -> PoseModel:
    torch.manual_seed(0)
    return PoseModel(CONFIG)


@pytest.fixture
def batches() -> list[dict[str, torch.Tensor]]:
    return make_batches(CONFIG, 2, 6)


def test_fisher_is_mean_squared_gradient_of_encoders_only(model, batches) -> None:
    fisher = diagonal_fisher(model, batches)
    assert set(fisher) == set(CONFIG.modalities)
    assert all(p.grad is None for p in model.parameters())  # gradients cleared afterwards
    expected = [torch.zeros_like(p) for p in model.encoder_parameters("lidar")]
    for batch in batches:
        model.zero_grad()
        mpjpe_loss(model(batch), batch["joints"]).backward()
        for e, p in zip(expected, model.encoder_parameters("lidar")):
            e += p.grad**2 / len(batches)
    for f, e in zip(fisher["lidar"], expected):
        torch.testing.assert_close(f, e)
    assert sum(float(f.sum()) for f in fisher["rgb"]) > 0


def drift(model: PoseModel, modality: str, amount: float) -> None:
    with torch.no_grad():
        for p in model.encoder_parameters(modality):
            p.add_(amount)


def fisher_sum(awc: AdaptiveWeightConstraint, modality: str) -> float:
    return sum(float(f.sum()) for f in awc.fisher[modality])


def test_penalty_zero_at_anchor_and_fisher_weighted_drift(model, batches) -> None:
    awc = AdaptiveWeightConstraint(model, alpha_strong=20_000, alpha_weak=10_000, epochs=2)
    assert awc.penalty().item() == 0.0  # nothing estimated yet
    awc.update(batches, strong=("rgb", "lidar"))
    assert awc.alpha == {"rgb": 20_000, "lidar": 20_000, "mmwave": 10_000, "wifi": 10_000}
    assert awc.penalty().item() == 0.0
    drift(model, "rgb", 0.01)
    expected = 20_000 * fisher_sum(awc, "rgb") * 0.01**2 / 2
    assert awc.penalty().item() == pytest.approx(expected, rel=1e-5)
    drift(model, "rgb", 0.01)  # twice the drift: four times the penalty
    assert awc.penalty().item() == pytest.approx(4 * expected, rel=1e-5)
    drift(model, "wifi", 0.01)  # a weak modality counts with alpha_weak
    weak = 10_000 * fisher_sum(awc, "wifi") * 0.01**2 / 2
    assert awc.penalty().item() == pytest.approx(4 * expected + weak, rel=1e-5)
    assert awc.per_modality()["wifi"] == pytest.approx(weak, rel=1e-5)


def test_penalty_weights_each_parameter_by_its_fisher_entry(model, batches) -> None:
    awc = AdaptiveWeightConstraint(model, epochs=1)
    awc.update(batches, strong=None)
    param = model.encoder_parameters("mmwave")[0]
    with torch.no_grad():
        param.view(-1)[0] += 0.5
    f = float(awc.fisher["mmwave"][0].view(-1)[0])
    assert awc.penalty().item() == pytest.approx(awc.alpha_weak * f * 0.25 / 2, rel=1e-5)


def test_penalty_touches_encoders_only(model, batches) -> None:
    awc = AdaptiveWeightConstraint(model)
    awc.update(batches, strong=("rgb",))
    with torch.no_grad():
        for p in list(model.fusion.parameters()) + list(model.head.parameters()):
            p.add_(1.0)
    assert awc.penalty().item() == 0.0
    drift(model, "lidar", 0.05)
    awc.penalty().backward()
    assert all(p.grad is None for p in list(model.fusion.parameters()) + list(model.head.parameters()))
    assert all(p.grad is None or not p.grad.any() for p in model.encoder_parameters("rgb"))
    assert any(p.grad.abs().sum() > 0 for p in model.encoder_parameters("lidar"))


def test_active_only_in_first_k_epochs(model) -> None:
    awc = AdaptiveWeightConstraint(model, epochs=3)
    assert [awc.active(e) for e in range(5)] == [True, True, True, False, False]


def test_epoch_anchor_refreshes_and_initial_anchor_stays(model, batches) -> None:
    start = copy.deepcopy(model.state_dict())
    refreshed = AdaptiveWeightConstraint(model, anchor="epoch")
    fixed = AdaptiveWeightConstraint(model, anchor="initial")
    refreshed.update(batches, strong=None)
    fixed.update(batches, strong=None)
    drift(model, "rgb", 0.02)
    before = fixed.penalty().item()
    assert before > 0 and refreshed.penalty().item() > 0
    refreshed.update(batches, strong=("rgb",))
    fixed.update(batches, strong=("rgb",))
    assert refreshed.penalty().item() == 0.0  # re-anchored at the current parameters
    for a, p in zip(refreshed.anchor["rgb"], model.encoder_parameters("rgb")):
        assert torch.equal(a, p)
    # The initial anchor (and its Fisher) stay; only the alpha of the now strong rgb changes.
    for a, (name, _) in zip(fixed.anchor["rgb"], model.encoders["rgb"].named_parameters()):
        assert torch.equal(a, start[f"encoders.rgb.{name}"])
    assert fixed.penalty().item() == pytest.approx(before * fixed.alpha_strong / fixed.alpha_weak, rel=1e-5)


def test_state_dict_round_trip(model, batches) -> None:
    awc = AdaptiveWeightConstraint(model, anchor="initial")
    awc.update(batches, strong=("lidar",))
    drift(model, "lidar", 0.01)
    other = AdaptiveWeightConstraint(model, anchor="initial")
    other.load_state_dict(copy.deepcopy(awc.state_dict()))
    assert other.penalty().item() == pytest.approx(awc.penalty().item())
    assert other.alpha == awc.alpha


def test_ogm_slows_the_better_modality_and_adds_noise(model, batches) -> None:
    ogm = GradientModulation(model, alpha=1.0, epochs=1, noise=False)
    errors = torch.tensor([1.0, 1.5, 4.0, 4.0])
    coefficients = ogm.coefficients(errors, torch.full((4,), 10.0))
    assert coefficients[0] < coefficients[1] < 1.0  # lowest error: strongest slow-down
    assert coefficients[2] == coefficients[3] == 1.0  # below-average modalities untouched
    sums, counts = ogm.unimodal_errors(batches[0], batches[0]["joints"])
    assert counts.tolist() == [6, 6, 5, 6] and (sums > 0).all()  # radar absent in one frame
    mpjpe_loss(model(batches[0]), batches[0]["joints"]).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    ogm.modulate(torch.tensor([0.5, 1.0, 1.0, 1.0]))
    for name, p in model.named_parameters():
        factor = 0.5 if name.startswith("encoders.rgb.") else 1.0
        torch.testing.assert_close(p.grad, grads[name] * factor)
    noisy = GradientModulation(model, noise=True)
    noisy.modulate(torch.ones(4), torch.Generator().manual_seed(0))
    changed = [not torch.equal(p.grad, grads[n] * (0.5 if n.startswith("encoders.rgb.") else 1.0))
               for n, p in model.named_parameters()]
    assert any(changed)
    assert all(torch.equal(p.grad, grads[n]) for n, p in model.named_parameters() if not n.startswith("encoders."))
