"""Model inputs, PoseModel with any subset of modalities, modality dropout, checkpoints."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

import sys
from pathlib import Path

from mmhpe_ros.geometry.calibration import Calibration, MissingTransformError
from mmhpe_ros.model.checkpoint import CheckpointError, card_path, load_model, save_model
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.fusion import modality_dropout
from mmhpe_ros.model.inputs import input_shapes, normalise_csi_amplitude, prepare_inputs, sanitise_csi_phase
from mmhpe_ros.model.observe import Rig, resample_points
from mmhpe_ros.model.pose_model import PoseModel
from mmhpe_ros.modalities import MODALITIES
from mmhpe_ros.skeleton import JOINTS

sys.path.insert(0, str(Path(__file__).parent))
from rig_scene import CAMERA, keypoints_3d, person_joints, rig_calibration, sensor_data  # noqa: E402

torch.set_num_threads(1)
SMALL = dict(feature_dim=16, hidden_dim=32, lidar_points=64, mmwave_points=8)
CALIBRATION = rig_calibration()
RIG = Rig(CALIBRATION)


def raw_frame(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One frame of a person in front of :data:`RIG`, every modality in its sensor's frame."""
    return sensor_data(person_joints(rng), CALIBRATION, rng)


def batch_of(config: ModelConfig, frames: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    prepared = [prepare_inputs(f, RIG, config)[0] for f in frames]
    return {k: torch.as_tensor(np.stack([p[k] for p in prepared])) for k in prepared[0]}


# -- inputs ------------------------------------------------------------------------------------


def test_prepare_inputs_shapes_dtypes_and_determinism() -> None:
    config = ModelConfig(**SMALL)
    data = raw_frame(np.random.default_rng(0))
    (first, body), (second, again) = (prepare_inputs(data, RIG, config),
                                      prepare_inputs({k: v.copy() for k, v in data.items()}, RIG, config))
    assert set(first) == set(input_shapes(config))
    for key, (shape, dtype) in input_shapes(config).items():
        assert first[key].shape == shape and first[key].dtype == dtype, key
        np.testing.assert_array_equal(first[key], second[key])
    assert first["present"].all() and body.person.tolist() == [True]
    np.testing.assert_array_equal(body.root, again.root)


def test_prepare_inputs_centres_on_the_person_found_in_sensor_frames() -> None:
    """The fused root is under the person; every point input is near the body frame's origin,
    though the sensors are up to 1.2 m above and beside the base origin and the person 2-3 m away."""
    config = ModelConfig(**SMALL)
    rng = np.random.default_rng(10)
    for _ in range(5):
        joints = person_joints(rng)
        inputs, body = prepare_inputs(sensor_data(joints, CALIBRATION, rng), RIG, config)
        assert np.hypot(*(body.root[0, :2] - joints[0, :2])) < 0.3 and body.root[0, 2] == 0.0
        relative = body.to_body(joints[None])[0]
        assert np.abs(relative[:, :2]).max() < 0.8 and relative[:, 2].min() > 0.0  # the skeleton around the origin
        lidar = inputs["lidar"] / config.point_scale
        assert np.abs(lidar[:, :2]).max() < 0.9 and lidar[:, 2].min() > 0.05  # the person, not the floor
        np.testing.assert_allclose(body.to_base(body.to_body(joints[None])), joints[None], atol=1e-9)


def test_rgb_keypoints_come_back_on_the_person_and_unusable_ones_are_zero() -> None:
    config = ModelConfig(**SMALL)
    rng = np.random.default_rng(11)
    joints = person_joints(rng)
    data = sensor_data(joints, CALIBRATION, rng)
    data["rgb"] = CAMERA.project(CALIBRATION.to_base("camera_optical").inverse().apply(keypoints_3d(joints)))[0]
    data["rgb"][2] = [np.nan, 100.0]
    data["rgb"][3] = [CAMERA.width + 50.0, 100.0]  # off the image
    inputs, body = prepare_inputs(data, RIG, config)
    truth = body.to_body(keypoints_3d(joints)[None])[0]
    usable = np.ones(17, dtype=bool)
    usable[[2, 3]] = False
    assert inputs["rgb_score"][usable].min() == 1.0 and not inputs["rgb_score"][~usable].any()
    assert not inputs["rgb"][~usable].any()
    # on the plane through the root facing the camera: height and sideways offset as the body's
    np.testing.assert_allclose(inputs["rgb"][usable][:, 1:], truth[usable][:, 1:], atol=0.06)
    assert np.abs(inputs["rgb"][usable][:, 0]).max() < 0.35


def test_lidar_resampling_is_deterministic_and_drops_non_finite() -> None:
    config = ModelConfig(**SMALL)
    rng = np.random.default_rng(1)
    few = rng.normal(size=(10, 3))
    np.testing.assert_array_equal(resample_points(few, 64)[:10], few)  # every point, then repetition
    np.testing.assert_array_equal(resample_points(few, 64)[10:20], few)
    many = rng.normal(size=(1000, 3))
    spread = resample_points(many, 64)
    assert len({tuple(r) for r in spread}) == 64 and np.array_equal(spread[[0, -1]], many[[0, 984]])
    data = raw_frame(rng)
    inputs, body = prepare_inputs(data, RIG, config)
    dirty = dict(data, lidar=np.vstack([data["lidar"][:5], [[np.nan, 0, 0], [np.inf, 1, 1]], data["lidar"][5:]]))
    np.testing.assert_array_equal(prepare_inputs(dirty, RIG, config)[0]["lidar"], inputs["lidar"])
    # each input point is one of the cloud's points, all distinct: spread over the person
    in_base = body.to_base(inputs["lidar"][None] / config.point_scale)[0]
    cloud = CALIBRATION.to_base("lidar").apply(data["lidar"])
    assert np.linalg.norm(in_base[:, None] - cloud[None], axis=2).min(axis=1).max() < 1e-4
    assert len({tuple(r) for r in inputs["lidar"]}) == 64


def test_mmwave_padding_and_mask() -> None:
    config = ModelConfig(**{**SMALL, "mmwave_points": 16})
    rng = np.random.default_rng(2)
    joints = person_joints(rng)
    data = sensor_data(joints, CALIBRATION, rng)
    radar = CALIBRATION.to_base("radar")
    aside = radar.inverse().apply(joints[:3] + [0.0, 2.5, 0.0])  # 2.5 m beside the person: not theirs
    data["mmwave"] = np.vstack([data["mmwave"], np.column_stack([aside, np.full((3, 2), 0.5)])])
    inputs, body = prepare_inputs(data, RIG, config)
    assert inputs["mmwave_mask"].tolist() == [True] * 12 + [False] * 4
    assert (inputs["mmwave"][12:] == 0).all()
    near = radar.apply(data["mmwave"][:12])
    np.testing.assert_allclose(inputs["mmwave"][:12, :3], body.to_body(near[None, :, :3])[0] * config.point_scale,
                               atol=1e-5)
    np.testing.assert_allclose(inputs["mmwave"][:12, 3:], data["mmwave"][:12, 3:] * config.mmwave_feature_scale,
                               rtol=1e-6)
    crowded = dict(data, mmwave=np.tile(data["mmwave"][:4], (50, 1)))
    assert prepare_inputs(crowded, RIG, config)[0]["mmwave_mask"].all()


def reference_amplitude(amplitude: np.ndarray) -> np.ndarray:
    """MM-Fi's documented procedure, written as a plain loop over packets."""
    amplitude = amplitude.copy()
    amplitude[np.isinf(amplitude)] = np.nan
    for packet in range(amplitude.shape[2]):
        column = amplitude[:, :, packet]
        if np.isnan(column).any():
            column[np.isnan(column)] = column[~np.isnan(column)].mean()
    return (amplitude - amplitude.min()) / (amplitude.max() - amplitude.min())


def test_csi_amplitude_matches_official_procedure() -> None:
    amplitude = np.random.default_rng(3).uniform(1, 40, (3, 114, 10))
    amplitude[0, 5, 2] = np.inf
    amplitude[2, 100, 2] = np.nan
    amplitude[1, 7, 9] = -np.inf
    out = normalise_csi_amplitude(amplitude)
    np.testing.assert_allclose(out, reference_amplitude(amplitude))
    assert out.min() == 0.0 and out.max() == 1.0


def test_csi_phase_linear_trend_and_wraps_removed() -> None:
    k = np.arange(114)[None, :, None]
    offsets = np.array([0.3, -1.0, 2.0])[:, None, None]
    true_phase = offsets + 0.2 * k + np.zeros((3, 114, 10))
    wrapped = np.angle(np.exp(1j * true_phase))
    np.testing.assert_allclose(sanitise_csi_phase(wrapped), 0.0, atol=1e-9)
    curved = wrapped + 0.5 * np.sin(np.arange(114) / 10.0)[None, :, None]
    assert np.abs(sanitise_csi_phase(curved)).max() > 0.1  # non-linear structure survives


def test_absent_and_unusable_modalities() -> None:
    config = ModelConfig(**SMALL)
    data = raw_frame(np.random.default_rng(4))
    del data["lidar"]
    data["mmwave"] = np.zeros((0, 5))
    data["wifi"] = np.full((2, 3, 114, 10), np.nan)
    prepared, body = prepare_inputs(data, RIG, config)
    assert prepared["present"].tolist() == [True, False, False, False] and body.person.tolist() == [True]
    for key in ("lidar", "mmwave", "mmwave_mask", "wifi", "wifi_mask"):
        assert not prepared[key].any(), key
    assert prepared["rgb"].any()
    # the camera alone finds the person (its rays through the ankles); nobody anywhere: all absent
    nobody, body = prepare_inputs({"lidar": np.zeros((0, 3)), "wifi": data["wifi"]}, RIG, config)
    assert body.person.tolist() == [False] and not nobody["present"].any()
    assert not any(nobody[k].any() for k in nobody)


def test_bad_input_names_modality_and_shape() -> None:
    config = ModelConfig(**SMALL)
    with pytest.raises(ValueError, match=r"lidar.*\(N, 3\)"):
        prepare_inputs({"lidar": np.zeros((10, 4))}, RIG, config)
    with pytest.raises(ValueError, match=r"wifi"):
        prepare_inputs({"wifi": np.zeros((3, 114, 10))}, RIG, config)
    with pytest.raises(MissingTransformError, match="'lidar'"):  # never a silent identity
        prepare_inputs({"lidar": np.zeros((10, 3))}, Rig(Calibration()), config)


# -- the model ---------------------------------------------------------------------------------


PAPER = {"rgb_encoder": "temporal", "rgb_window": 9, "lidar_encoder": "point_transformer",
         "mmwave_encoder": "point_transformer", "wifi_encoder": "metafi", "fusion": "concat"}


@pytest.mark.parametrize("architecture", [{"fusion": "concat"}, {"fusion": "mlp"}, {"fusion": "attention"}, PAPER],
                         ids=["concat", "mlp", "attention", "paper"])
def test_any_subset_inference_ignores_absent_inputs(architecture: dict) -> None:
    torch.manual_seed(0)
    config = ModelConfig(**architecture, **SMALL)
    model = PoseModel(config).eval()
    rng = np.random.default_rng(5)
    batch = batch_of(config, [raw_frame(rng) for _ in range(3)])
    noisy = batch_of(config, [raw_frame(rng) for _ in range(3)])
    with torch.no_grad():
        for size in range(1, 5):
            for subset in itertools.combinations(MODALITIES, size):
                present = model.presence_mask(subset, 3)
                out = model(batch, present)
                assert out.shape == (3, 17, 3) and torch.isfinite(out).all()
                # Replace every absent modality's input: the prediction must not change.
                mixed = dict(batch)
                for m in set(MODALITIES) - set(subset):
                    for key in (m, "mmwave_mask") if m == "mmwave" else (m,):
                        mixed[key] = noisy[key]
                torch.testing.assert_close(model(mixed, present), out)
                # Encoding only the present modalities gives the same result.
                features = {m: f for m, f in model.encode(batch).items() if m in subset}
                torch.testing.assert_close(model.fuse(features, torch.ones(3, 4, dtype=torch.bool)), out)


def test_the_paper_concat_fusion_is_a_linear_head_on_zero_filled_features() -> None:
    torch.manual_seed(0)
    model = PoseModel(ModelConfig(fusion="concat", **SMALL)).eval()
    features = {m: torch.randn(2, SMALL["feature_dim"]) for m in MODALITIES}
    present = torch.tensor([[True, True, False, True], [False, True, True, True]])
    stacked = torch.cat([features[m] * present[:, i:i + 1] for i, m in enumerate(MODALITIES)], dim=1)
    expected = (stacked @ model.head.weight.T + model.head.bias).view(2, 17, 3)
    torch.testing.assert_close(model.fuse(features, present), expected)
    assert [type(m).__name__ for m in model.fusion.modules()] == ["ConcatFusion"]  # no parameters of its own


def test_the_temporal_rgb_encoder_reads_its_window_causally() -> None:
    torch.manual_seed(0)
    config = ModelConfig(modalities=("rgb",), feature_dim=8, hidden_dim=16, rgb_encoder="temporal", rgb_window=9)
    encoder = PoseModel(config).eval().encoders["rgb"]
    rgb, score = torch.randn(2, 17, 3), torch.rand(2, 17)
    window, scores = torch.randn(2, 9, 17, 3), score.unsqueeze(1).expand(2, 9, 17)
    window[:, -1] = rgb
    current = {"rgb": rgb, "rgb_score": score}
    with torch.no_grad():
        still = encoder(current)  # no window (a node feeding single frames): the frame repeated
        torch.testing.assert_close(still, encoder({**current, "rgb_window": rgb.unsqueeze(1).expand(2, 9, 17, 3),
                                                   "rgb_score_window": scores}))
        moving = encoder({**current, "rgb_window": window, "rgb_score_window": scores})
        assert not torch.allclose(moving, still)
        earlier = window.clone()
        earlier[:, 0] += 1.0  # the oldest frame is inside the receptive field
        assert not torch.allclose(encoder({**current, "rgb_window": earlier, "rgb_score_window": scores}), moving)
    with pytest.raises(ValueError, match="rgb_window"):
        encoder({**current, "rgb_window": window[:, :3], "rgb_score_window": scores})
    with pytest.raises(ValueError, match="rgb_window must be 3, 9, 27"):
        ModelConfig(rgb_encoder="temporal", rgb_window=10)


def test_forward_uses_present_from_inputs_and_model_subsets() -> None:
    torch.manual_seed(0)
    config = ModelConfig(modalities=("lidar", "wifi"), **SMALL)
    model = PoseModel(config).eval()
    batch = batch_of(config, [raw_frame(np.random.default_rng(6)) for _ in range(2)])
    assert batch["present"].shape == (2, 2) and "rgb" not in batch
    with torch.no_grad():
        torch.testing.assert_close(model(batch), model(batch, batch["present"]))
    with pytest.raises(ValueError, match="order"):
        ModelConfig(modalities=("wifi", "lidar"))


def test_modality_dropout_keeps_non_empty_subsets_of_present() -> None:
    generator = torch.Generator().manual_seed(0)
    present = torch.rand(500, 4, generator=generator) < 0.7
    present[0] = False
    dropped = modality_dropout(present, 1.0, generator)
    assert not (dropped & ~present).any()  # never adds a modality
    has_any = present.any(dim=1)
    assert dropped[has_any].any(dim=1).all()  # never empties a row
    assert not dropped[0].any()
    assert (dropped != present).any(dim=1).float().mean() > 0.3
    assert torch.equal(modality_dropout(present, 0.0, generator), present)
    # All 15 non-empty subsets of a full row occur.
    full = modality_dropout(torch.ones(2000, 4, dtype=torch.bool), 1.0, generator)
    assert len({tuple(r) for r in full.tolist()}) == 15


# -- checkpoints -------------------------------------------------------------------------------


def saved(tmp_path, config: ModelConfig | None = None):
    torch.manual_seed(0)
    model = PoseModel(config or ModelConfig(**SMALL)).eval()
    path = save_model(tmp_path / "model.safetensors", model, {"training_data": "unit test", "metrics": {"mpjpe_mm": 1.0}})
    return model, path


def test_a_card_of_format_1_loads_with_its_fusion_renamed(tmp_path) -> None:
    """In format 1, fusion "concat" was concat + presence bits + MLP: the fusion now called "mlp"."""
    import json

    model, path = saved(tmp_path, ModelConfig(fusion="mlp", **SMALL))
    card_file = path.with_suffix(".json")
    card = json.loads(card_file.read_text())
    card["format"], card["config"]["fusion"] = "mmhpe_ros.pose_model/1", "concat"
    card_file.write_text(json.dumps(card))
    loaded, read = load_model(path)
    assert loaded.config.fusion == "mlp" and read["format"] == "mmhpe_ros.pose_model/2"
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


@pytest.mark.parametrize("architecture", [{}, PAPER], ids=["light", "paper"])
def test_checkpoint_round_trip_of_every_architecture(tmp_path, architecture: dict) -> None:
    model, path = saved(tmp_path, ModelConfig(**architecture, **SMALL))
    loaded, card = load_model(path)
    assert loaded.config == model.config and card["config"]["lidar_encoder"] == model.config.lidar_encoder
    batch = batch_of(model.config, [raw_frame(np.random.default_rng(8)) for _ in range(2)])
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch), model(batch))


def test_checkpoint_round_trip(tmp_path) -> None:
    model, path = saved(tmp_path, ModelConfig(fusion="attention", **SMALL))
    loaded, card = load_model(path)
    assert card["joints"] == list(JOINTS) and card["modalities"] == list(MODALITIES)
    assert card["training_data"] == "unit test" and card["metrics"]["mpjpe_mm"] == 1.0
    assert loaded.config == model.config and not loaded.training
    batch = batch_of(model.config, [raw_frame(np.random.default_rng(7)) for _ in range(2)])
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch), model(batch), rtol=0, atol=0)
    assert not list(tmp_path.glob("*.tmp"))


def test_checkpoint_refuses_other_joint_order(tmp_path) -> None:
    _, path = saved(tmp_path)
    card = json.loads(card_path(path).read_text())
    card["joints"] = card["joints"][::-1]
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="joint order"):
        load_model(path)


def test_checkpoint_refuses_modality_mismatch(tmp_path) -> None:
    _, path = saved(tmp_path, ModelConfig(modalities=("rgb", "lidar"), **SMALL))
    with pytest.raises(CheckpointError, match="cannot take"):
        load_model(path, modalities=["rgb", "wifi"])
    load_model(path, modalities=["lidar"])  # a subset is fine
    card = json.loads(card_path(path).read_text())
    card["modalities"] = ["rgb", "lidar", "wifi"]
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="modalities"):
        load_model(path)


def test_checkpoint_refuses_corrupt_or_mismatched_files(tmp_path) -> None:
    _, path = saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="safetensors"):
        load_model(path)
    path.write_bytes(b"\x80\x04not a safetensors file")  # e.g. a pickle
    with pytest.raises(CheckpointError, match="safetensors"):
        load_model(path)
    card_path(path).write_text("{ not json")
    with pytest.raises(CheckpointError, match="JSON"):
        load_model(path)
    # Weights of another architecture under this card.
    _, other = saved(tmp_path / "other", ModelConfig(feature_dim=8, hidden_dim=32, lidar_points=64, mmwave_points=8))
    _, good = saved(tmp_path / "good")
    good.write_bytes(other.read_bytes())
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(good)
    card_path(good).unlink()
    with pytest.raises(CheckpointError, match="card missing"):
        load_model(good)


def test_card_expected_joint_errors_are_validated_and_updated_in_place(tmp_path) -> None:
    from mmhpe_ros.model.card import EXPECTED_ERRORS_KEY, expected_joint_errors, read_card, update_card

    _, path = saved(tmp_path)
    assert expected_joint_errors(read_card(path)) is None
    errors = [float(j) for j in range(len(JOINTS))]
    update_card(path, {EXPECTED_ERRORS_KEY: {"note": "t", "subsets": {"rgb+wifi": errors}}})
    card = read_card(path)
    assert expected_joint_errors(card) == {frozenset({"rgb", "wifi"}): tuple(errors)}
    assert card["training_data"] == "unit test"  # the rest of the card is kept
    load_model(path)  # still a loadable model
    for bad, match in [({"subsets": {"rgb+thermal": errors}}, "not of"),
                       ({"subsets": {"rgb": errors[:-1]}}, "one per joint"),
                       ({"subsets": {"rgb": [float("nan")] * len(JOINTS)}}, "finite"),
                       ({"subsets": {}}, "non-empty")]:
        with pytest.raises(CheckpointError, match=match):
            expected_joint_errors({**card, EXPECTED_ERRORS_KEY: bad})
    with pytest.raises(ValueError, match="written with the weights"):
        update_card(path, {"joints": []})
