"""PoseEstimator: the traced model the fusion node runs predicts what the eager model predicts."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mmhpe_ros.model.checkpoint import save_model  # noqa: E402
from mmhpe_ros.model.config import ModelConfig  # noqa: E402
from mmhpe_ros.model.inputs import prepare_modality  # noqa: E402
from mmhpe_ros.model.pose_model import PoseModel  # noqa: E402
from mmhpe_ros.runtime.estimator import PoseEstimator  # noqa: E402

CONFIG = ModelConfig(feature_dim=8, hidden_dim=16, lidar_points=32, mmwave_points=8, csi_width=8)


def raw(modality: str, rng: np.random.Generator) -> np.ndarray:
    return {"rgb": lambda: rng.uniform(0, 640, size=(17, 2)),
            "lidar": lambda: rng.normal(size=(100, 3)),
            "mmwave": lambda: rng.normal(size=(20, 5)),
            "wifi": lambda: rng.normal(size=(2, 3, 114, 10))}[modality]()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.manual_seed(0)
    model = PoseModel(CONFIG)
    with torch.no_grad():  # a model whose weights are not at their initial values
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return save_model(tmp_path_factory.mktemp("model") / "m.safetensors", model)


def test_traced_predictions_equal_eager_for_any_subset_and_batch(model_path):
    traced, eager = PoseEstimator(model_path), PoseEstimator(model_path, trace=False)
    assert isinstance(traced.forward, torch.jit.ScriptModule) and eager.forward is eager.model
    rng = np.random.default_rng(1)
    subsets = [("rgb", "lidar", "mmwave", "wifi"), ("wifi",), ("lidar", "mmwave"), ("rgb", "wifi"), ("mmwave",)]
    sets = [{m: prepare_modality(m, raw(m, rng), CONFIG)[0] for m in subset} for subset in subsets]
    got, expected = traced.predict_batch(sets), eager.predict_batch(sets)
    assert got.shape == (len(subsets), 17, 3) and np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    single = traced.predict(sets[2])
    np.testing.assert_allclose(single, expected[2], rtol=0, atol=1e-6)
    assert len({round(float(p[0, 0]), 6) for p in expected}) == len(subsets)  # subsets really differ


def test_a_set_without_modalities_or_with_unknown_ones_is_refused(model_path):
    estimator = PoseEstimator(model_path)
    with pytest.raises(ValueError, match="at least one modality"):
        estimator.predict({})
    with pytest.raises(ValueError, match="thermal"):
        estimator.predict({"thermal": {}})
