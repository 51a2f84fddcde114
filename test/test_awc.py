"""Adaptive Weight Constraint: per-sample Fisher, penalty, alphas, anchors; OGM-GE and G-Blending baselines."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from mmhpe_ros.model.awc import AdaptiveWeightConstraint, diagonal_fisher
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.gblend import GradientBlending
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


def explicit_per_sample_fisher(model: PoseModel, batches, modality: str) -> list[torch.Tensor]:
    """Reference: one backward pass per sample, the squared gradients averaged over all samples."""
    params = model.encoder_parameters(modality)
    total = [torch.zeros_like(p) for p in params]
    count = 0
    model.eval()
    for batch in batches:
        for i in range(batch["joints"].shape[0]):
            sample = {k: v[i:i + 1] for k, v in batch.items()}
            model.zero_grad()
            mpjpe_loss(model(sample), sample["joints"]).backward()
            for t, p in zip(total, params):
                t += p.grad ** 2
            count += 1
    model.zero_grad()
    return [t / count for t in total]


def rebatch(batches, size: int) -> list[dict[str, torch.Tensor]]:
    """The same samples in batches of ``size``."""
    joined = {k: torch.cat([b[k] for b in batches]) for k in batches[0]}
    total = joined["joints"].shape[0]
    return [{k: v[i:i + size] for k, v in joined.items()} for i in range(0, total, size)]


@pytest.mark.parametrize("architecture", [
    {}, {"fusion": "attention"}, {"fusion": "concat", "rgb_encoder": "temporal", "rgb_window": 3},
    {"lidar_encoder": "point_transformer", "mmwave_encoder": "point_transformer", "wifi_encoder": "metafi"},
])
def test_fisher_is_the_mean_of_per_sample_squared_gradients(architecture, batches) -> None:
    config = ModelConfig(**{**CONFIG.to_dict(), **architecture})
    torch.manual_seed(0)
    model = PoseModel(config)
    data = make_batches(config, 2, 6)
    fisher = diagonal_fisher(model, data)
    assert set(fisher) == set(CONFIG.modalities)
    assert all(p.grad is None for p in model.parameters())  # gradients cleared afterwards
    for modality in CONFIG.modalities:
        for f, e in zip(fisher[modality], explicit_per_sample_fisher(model, data, modality)):
            torch.testing.assert_close(f, e, rtol=1e-4, atol=1e-9)
    assert sum(float(f.sum()) for f in fisher["rgb"]) > 0


def test_fisher_does_not_depend_on_the_batch_size(model, batches) -> None:
    """The squared mini-batch gradient shrinks with the batch; the per-sample Fisher does not."""
    data = make_batches(CONFIG, 2, 12)
    with torch.no_grad():  # the mean prediction on the mean target: the residuals vary in sign between samples
        residual = torch.cat([b["joints"] - model(b) for b in data]).mean(dim=0)
        model.head.bias += residual.reshape(-1)
    reference = diagonal_fisher(model, rebatch(data, 1), method="loop")
    squared_batch_mean = {}
    for size in (1, 4, 24):
        fisher = diagonal_fisher(model, rebatch(data, size))
        for modality in CONFIG.modalities:
            for f, r in zip(fisher[modality], reference[modality]):
                torch.testing.assert_close(f, r, rtol=1e-4, atol=1e-9)
        model.zero_grad()
        batch = rebatch(data, size)[0]
        mpjpe_loss(model(batch), batch["joints"]).backward()
        squared_batch_mean[size] = sum(float((p.grad ** 2).sum()) for p in model.encoder_parameters("rgb"))
    model.zero_grad()
    per_sample = sum(float(r.sum()) for r in reference["rgb"])  # the mean of the 24 squared per-sample gradients
    assert squared_batch_mean[1] > 0 and squared_batch_mean[24] < 0.5 * per_sample  # what the old estimate would do


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


def test_ogm_coefficients_reference_and_mild() -> None:
    torch.manual_seed(0)
    model = PoseModel(CONFIG)
    errors, counts = torch.tensor([1.0, 1.5, 4.0, 4.0]), torch.full((4,), 10.0)
    score = counts / errors
    rho = score / ((score.sum() - score) / 3)  # each score over the mean of the others
    reference = GradientModulation(model, alpha=0.5).coefficients(errors, counts)
    mild = GradientModulation(model, alpha=0.5, coefficient="mild").coefficients(errors, counts)
    assert rho[0] > rho[1] > 1 > rho[2]
    for i in (0, 1):  # OGM-GE: k = 1 - tanh(alpha * rho) where rho > 1
        assert reference[i].item() == pytest.approx(1 - math.tanh(0.5 * rho[i].item()), rel=1e-6)
        assert mild[i].item() == pytest.approx(1 - math.tanh(0.5 * (rho[i].item() - 1)), rel=1e-6)
    assert reference[2] == reference[3] == mild[2] == mild[3] == 1.0  # below-average modalities untouched
    assert reference[0] < reference[1] < mild[1] < 1.0  # the reference slows harder
    with pytest.raises(ValueError, match="coefficient"):
        GradientModulation(model, coefficient="soft")


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


def test_gradient_blending_weights_follow_gain_over_squared_overfitting() -> None:
    blend = GradientBlending(("rgb", "lidar"))
    assert blend.weights.tolist() == pytest.approx([1 / 3] * 3)
    blend.update({"all": 100.0, "rgb": 120.0, "lidar": 150.0}, {"all": 90.0, "rgb": 110.0, "lidar": 140.0})
    assert blend.weights.tolist() == pytest.approx([1 / 3] * 3)  # the first epoch only records
    # gains 10, 5, 0; overfitting changes 5 (gap 10 -> 15), 1 (10 -> 11), 2
    blend.update({"all": 90.0, "rgb": 115.0, "lidar": 150.0}, {"all": 75.0, "rgb": 104.0, "lidar": 138.0})
    raw = [10 / 25, 5 / 1, 0.0]
    assert blend.weights.tolist() == pytest.approx([r / sum(raw) for r in raw])
    predictions = torch.zeros(3, 2, 17, 3)
    predictions[1] += 1.0  # rgb alone off by sqrt(3) m per joint
    present = torch.tensor([[True, False], [True, True]])
    loss = blend.loss(predictions, torch.zeros(2, 17, 3), present)
    assert loss.item() == pytest.approx(blend.weights[1] * math.sqrt(3), rel=1e-6)
    restored = GradientBlending(("rgb", "lidar"))
    restored.load_state_dict(blend.state_dict())
    assert restored.weights.tolist() == blend.weights.tolist() and restored.previous == blend.previous
