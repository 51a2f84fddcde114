"""Training loop: data split and preparation, every method, exact resume, checkpoint refusal, logs, cards."""
from __future__ import annotations

import csv
import json
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from rig_scene import RigFrames, frames_of, rig_calibration, rigs, write_rig_tree  # noqa: E402

from mmhpe_ros.data.frames import Frame, SequenceKey  # noqa: E402
from mmhpe_ros.model.card import CheckpointError  # noqa: E402
from mmhpe_ros.model.body import BodyFrame  # noqa: E402
from mmhpe_ros.model.checkpoint import load_model  # noqa: E402
from mmhpe_ros.model.config import ModelConfig  # noqa: E402
from mmhpe_ros.data.splits import split_of  # noqa: E402
from mmhpe_ros.modalities import MODALITIES  # noqa: E402
from mmhpe_ros.skeleton import JOINTS  # noqa: E402
from mmhpe_ros.train.config import TrainConfig  # noqa: E402
from mmhpe_ros.train.data import (PoseDataset, TrainingData, default_transforms, frame_source,  # noqa: E402
                                  validation_data)
from mmhpe_ros.train.state import complete_checkpoints  # noqa: E402
from mmhpe_ros.train.trainer import BEST, LAST, LOG_FILE, log_columns, train  # noqa: E402

torch.set_num_threads(1)
TINY = dict(feature_dim=8, hidden_dim=16, lidar_points=16, mmwave_points=4)
TREE_KEYS = (SequenceKey("E01", "S01", "A02"), SequenceKey("E01", "S02", "A02"), SequenceKey("E01", "S03", "A02"),
             SequenceKey("E01", "S05", "A02"),  # validates under S2
             SequenceKey("E01", "S02", "A03"), SequenceKey("E01", "S03", "A01"))  # A01: not in P1


def tiny_config(tmp_path: Path, **changes) -> TrainConfig:
    values = dict(setting="S2", method="awc", epochs=2, batch_size=4, shapley_batches=2, fisher_samples=4,
                  awc_epochs=2, model=TINY, output_dir=str(tmp_path / "run"), progress=False,
                  tensorboard=False, awc_alpha_strong=200.0, awc_alpha_weak=100.0, cache_dir=None)
    values.update(changes)
    return TrainConfig(**values)


def synthetic_frames(count: int, seed: int, key: SequenceKey = SequenceKey("E01", "S01", "A02")) -> RigFrames:
    """Frames of a person in front of the rig (joints learnable from the inputs), WiFi missing in some."""
    frames = frames_of([SequenceKey(key.environment, key.subject, f"A{seed + 2:02d}")], count)
    for i, frame in enumerate(frames):
        frame.key = key
        if i % 7 == 3:
            del frame.data["wifi"]
    return frames


def datasets(config: TrainConfig) -> tuple[PoseDataset, PoseDataset]:
    model_config = ModelConfig.from_dict({**TINY, "modalities": list(config.model_modalities)})
    fit, held = default_transforms(config, model_config)
    return (PoseDataset(synthetic_frames(16, 0), model_config, rigs=rigs(), transform=fit),
            PoseDataset(synthetic_frames(8, 1), model_config, rigs=rigs(), transform=held))


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return write_rig_tree(tmp_path_factory.mktemp("mmfi"), TREE_KEYS, frames=4)


def test_training_data_from_an_mmfi_tree_holds_out_training_sequences(tree: Path, tmp_path: Path) -> None:
    config = tiny_config(tmp_path, data_root=str(tree))
    with pytest.warns(UserWarning, match="partial MM-Fi tree"):
        data = TrainingData(config, ModelConfig(**TINY))
    fit_keys, held_keys = set(data.fit.sequence_keys()), set(data.holdout.sequence_keys())
    assert fit_keys | held_keys == {TREE_KEYS[0], TREE_KEYS[1], TREE_KEYS[2], TREE_KEYS[4]}  # S05: validation
    assert len(held_keys) == 1 and held_keys < set(TREE_KEYS[:3])  # one whole A02 sequence; A03 has one only
    assert not fit_keys & held_keys and data.info["holdout_unit"] == "sequences"
    assert len(data.fit) == 12 and len(data.holdout) == 4 and data.info["holdout_frames"] == 4
    batch = data.fit.batch([5, 1])
    assert batch["joints"].dtype == np.float32 and batch["joints"].shape == (2, 17, 3)
    frames = data.fit.frames
    truth = np.stack([frames[int(i)].joints for i in batch["index"]])
    # training batches: the scene turned and shifted, the targets in the person's frame (bones kept)
    bones = lambda j: np.linalg.norm(j[:, 1:] - j[:, :1], axis=-1)  # noqa: E731
    np.testing.assert_allclose(bones(batch["joints"]), bones(truth), atol=1e-5)
    assert np.abs(batch["joints"][..., :2]).max() < 1.0  # relative to the person's root
    held = data.holdout.batch([0, 2])  # held-out batches are not moved: their frame gives the ground truth back
    body = BodyFrame(held["root"], held["yaw"], np.ones(2, bool))
    np.testing.assert_allclose(body.to_base(held["joints"]),
                               np.stack([frames[int(i)].joints for i in held["index"]]), atol=1e-5)
    assert batch["present"].tolist() == [[True] * 4] * 2 and batch["lidar"].shape == (2, 16, 3)
    sample = data.fit[3]
    assert isinstance(sample["mmwave_mask"], torch.Tensor) and sample["mmwave_mask"].dtype == torch.bool
    capped = TrainingData(tiny_config(tmp_path, data_root=str(tree), max_train_frames=3), ModelConfig(**TINY))
    assert len(capped.fit) == 3 and len(capped.holdout) == 4
    val = validation_data(config, ModelConfig(**TINY))
    assert set(val.sequence_keys()) == {TREE_KEYS[3]} and len(val) == 4


def test_an_anomalous_file_is_skipped_unless_strict(tree: Path, tmp_path: Path) -> None:
    import shutil

    from mmhpe_ros.data.mmfi import AnomalousFilesWarning, MmfiFormatError

    copy = tmp_path / "tree"
    shutil.copytree(tree, copy)
    (copy / "E01/S02/A02/lidar/frame002.bin").unlink()  # a frame file missing: one anomaly
    with pytest.warns(AnomalousFilesWarning, match="1 missing frame file"):
        data = TrainingData(tiny_config(tmp_path, data_root=str(copy)), ModelConfig(**TINY))
    assert len(data.fit) + len(data.holdout) == 16  # kept, without LiDAR (missing: absent)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(MmfiFormatError, match=r"S02/A02/lidar/frame002\.bin: missing file"):
            TrainingData(tiny_config(tmp_path, data_root=str(copy), strict_data=True), ModelConfig(**TINY))


class ValidationGuard:
    """A frame source whose validation frames raise when read (their keys may be listed)."""

    def __init__(self, frames: list[Frame]) -> None:
        self.frames, self.reads = frames, 0

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> Frame:
        frame = self.frames[index]
        if split_of(frame.key, "P1", "S2") != "train":
            raise AssertionError(f"training read a frame of {frame.key}, which is not a training sequence")
        self.reads += 1
        return frame

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    @property
    def index(self) -> list[tuple[SequenceKey, int]]:
        return [(f.key, f.index) for f in self.frames]

    def calibration(self, environment: str):
        return rig_calibration(environment)


def test_training_never_reads_a_validation_frame(tmp_path: Path) -> None:
    frames = []
    for n, subject in enumerate(("S01", "S02", "S03", "S05", "S10")):  # S05, S10: validation under S2
        for i, frame in enumerate(synthetic_frames(6, n)):
            frames.append(Frame(SequenceKey("E01", subject, "A02"), i, frame.joints, frame.data))
    source = ValidationGuard(frames)
    for method in ("awc", "naive"):
        result = train(tiny_config(tmp_path / method, method=method, val_curves=False), source=source)
        assert len(result.history) == 2 and np.isfinite(result.history[-1]["holdout_mpjpe_mm"])
    assert source.reads == 2 * 18  # the 18 training frames, prepared once per run; nothing else
    card = load_model(tmp_path / "awc" / "run" / BEST)[1]
    assert card["training_data"]["holdout_frames"] == 6 and card["training_data"]["train_frames"] == 12
    assert "val_mpjpe_mm" not in result.history[-1]


def test_validation_curves_only_when_asked_and_labelled(tree: Path, tmp_path: Path) -> None:
    config = tiny_config(tmp_path, data_root=str(tree), method="naive", epochs=2, val_curves=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = train(config)
    rows = list(csv.DictReader(open(Path(config.output_dir) / LOG_FILE, newline="")))
    assert list(rows[0]) == log_columns(MODALITIES, val_curves=True)
    assert all(np.isfinite(float(r["val_mpjpe_mm"])) for r in rows)
    best = min(rows, key=lambda r: float(r["holdout_mpjpe_mm"]))["epoch"]  # chosen on held-out frames only
    assert load_model(Path(config.output_dir) / BEST)[1]["metrics"]["epoch"] == int(best)
    assert result.history[-1]["val_mpjpe_mm"] == pytest.approx(float(rows[-1]["val_mpjpe_mm"]))


def test_transforms_run_on_training_and_held_out_batches(tmp_path: Path) -> None:
    frames = RigFrames(Frame(SequenceKey("E01", s, "A02"), i, f.joints, f.data)
                       for n, s in enumerate(("S01", "S02", "S03")) for i, f in enumerate(synthetic_frames(4, n)))
    seen: dict[str, int] = {"train": 0, "eval": 0}
    config = tiny_config(tmp_path, method="naive", epochs=1, shapley_batches=0)
    body_frames = default_transforms(config, ModelConfig.from_dict({**TINY, "modalities": list(config.model_modalities)}))

    def counting(kind: str, then):
        def transform(batch):
            seen[kind] += len(batch["joints"])
            assert batch["lidar_points"].ndim == 3 and isinstance(batch["lidar_points"], np.ndarray)  # batched numpy
            return then(batch)
        return transform

    train(config, source=frames, transform=counting("train", body_frames[0]),
          eval_transform=counting("eval", body_frames[1]))
    assert seen["train"] == 2 * 8  # the 8 fitted frames: for the mean target (output bias), then the epoch
    assert seen["eval"] >= 4  # the held-out sequence (4 frames), per epoch and for the card's errors


def test_training_runs_with_the_validation_subjects_absent_from_the_tree(tmp_path: Path) -> None:
    training_only = [k for k in TREE_KEYS if split_of(k, "P1", "S2") == "train"]
    root = write_rig_tree(tmp_path / "mmfi", training_only, frames=4)
    config = tiny_config(tmp_path, data_root=str(root), method="naive", epochs=1)
    with pytest.warns(UserWarning, match="partial MM-Fi tree"):
        result = train(config)
    assert result.history[0]["epoch"] == 1 and "val_mpjpe_mm" not in result.history[0]


@pytest.mark.parametrize("method", ["awc", "ogm", "gblend"])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path: Path, method: str) -> None:
    full = tiny_config(tmp_path / "full", method=method, epochs=3)
    straight = train(full, datasets=datasets(full))
    half = tiny_config(tmp_path / "half", method=method, epochs=2)
    train(half, datasets=datasets(half))
    resumed = train(tiny_config(tmp_path / "half", method=method, epochs=3), resume=True, datasets=datasets(half))
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert straight.history[-1]["holdout_mpjpe_mm"] == resumed.history[-1]["holdout_mpjpe_mm"]
    saved = load_file(str(tmp_path / "half" / "run" / LAST))
    for name, value in straight.model.state_dict().items():
        torch.testing.assert_close(saved[name], value, rtol=0, atol=0)
    assert [p.name for p in complete_checkpoints(tmp_path / "half" / "run")] == ["epoch_0002", "epoch_0003"]


def test_a_run_depends_on_its_seed_only(tmp_path: Path) -> None:
    """The same config gives the same weights whatever numpy's global state was before (the output
    bias is the mean of augmented targets: drawn from the config's seed)."""
    weights = []
    for run, before in (("a", 1), ("b", 2)):
        np.random.seed(before)
        config = tiny_config(tmp_path / run, method="naive", epochs=1, shapley_batches=0)
        weights.append(train(config, datasets=datasets(config)).model.state_dict())
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=0, atol=0, msg=name)


def test_training_lowers_the_error_and_writes_log_cards_and_checkpoints(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, method="naive", epochs=4, lr=3e-3)
    result = train(config, datasets=datasets(config))
    out = Path(config.output_dir)
    assert result.history[-1]["holdout_mpjpe_mm"] < result.history[0]["holdout_mpjpe_mm"]
    with open(out / LOG_FILE, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and list(rows[0]) == log_columns(MODALITIES)
    assert all(np.isfinite(float(rows[-1][f"shapley_{m}"])) for m in MODALITIES)
    best_epoch = min(rows, key=lambda r: float(r["holdout_mpjpe_mm"]))["epoch"]
    model, card = load_model(out / BEST)
    assert card["metrics"]["epoch"] == int(best_epoch) and card["method"]["name"] == "naive"
    assert card["method"]["modality_dropout"] == 0.0 and card["config"]["modality_dropout"] == 0.0  # the paper's naive
    assert card["training_data"]["train_frames"] == 16 and card["joints"] == list(JOINTS)
    assert card["architecture"]["fusion"] == "concat + presence bits + MLP" and "held-out" in card["selection"]
    expected = card["expected_joint_error_mm"]
    assert "held-out training frames" in expected["note"] and len(expected["subsets"]) == 15
    assert load_model(out / LAST)[1]["metrics"]["epoch"] == 4
    from mmhpe_ros.train.summary import summary_table

    table = summary_table([out]).splitlines()
    assert len(table) == 3 and table[2].startswith(f"| run | 4 | {float(rows[-1]['holdout_mpjpe_mm']):.1f} |")
    with pytest.raises(FileExistsError, match="--resume"):
        train(config, datasets=datasets(config))


def test_unimodal_training_has_one_encoder(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, method="unimodal", modality="lidar", epochs=1)
    result = train(config, datasets=datasets(config))
    assert list(result.model.encoders) == ["lidar"] and np.isfinite(result.history[0]["holdout_mpjpe_mm"])
    assert "shapley_lidar" in result.history[0]


def test_resume_refuses_mismatched_or_corrupt_checkpoints(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, method="naive", epochs=1)
    train(config, datasets=datasets(config))
    other = tiny_config(tmp_path, method="naive", epochs=2, modalities=["rgb", "lidar"])
    with pytest.raises(CheckpointError, match=r"fuses \['rgb', 'lidar', 'mmwave', 'wifi'\], the config trains \['rgb', 'lidar'\]"):
        train(other, resume=True, datasets=datasets(other))
    with pytest.raises(CheckpointError, match="lr: checkpoint 0.001, config 0.01"):
        train(tiny_config(tmp_path, method="naive", epochs=2, lr=0.01), resume=True, datasets=datasets(config))
    checkpoint = complete_checkpoints(config.output_dir)[-1]
    backup = tmp_path / "backup"
    shutil.copytree(checkpoint, backup)
    card = json.loads((checkpoint / "model.json").read_text())
    card["joints"] = card["joints"][::-1]
    (checkpoint / "model.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="joint order"):
        train(tiny_config(tmp_path, method="naive", epochs=2), resume=True, datasets=datasets(config))
    shutil.rmtree(checkpoint)
    shutil.copytree(backup, checkpoint)
    state = checkpoint / "state.safetensors"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="state.safetensors: not a readable safetensors file"):
        train(tiny_config(tmp_path, method="naive", epochs=2), resume=True, datasets=datasets(config))


def test_config_file_documents_every_key_with_its_default() -> None:
    import yaml

    from mmhpe_ros.train.config import load_train_config

    path = Path(__file__).resolve().parents[1] / "config" / "train.yaml"
    values = yaml.safe_load(path.read_text())
    defaults = TrainConfig().to_dict()
    assert set(values) == set(defaults)
    changed = {k for k in defaults if values[k] != defaults[k]}
    assert changed == {"data_root", "setting"}  # the shipped file points at the generated benchmark, S2
    config = load_train_config(path, ["epochs=3", "model.feature_dim=32"])
    assert config.epochs == 3 and config.model == {"feature_dim": 32}


def test_csi_width_sets_the_wifi_encoder_size_and_survives_a_checkpoint(tmp_path: Path) -> None:
    from mmhpe_ros.model.checkpoint import save_model
    from mmhpe_ros.model.pose_model import PoseModel

    narrow, wide = PoseModel(ModelConfig(csi_width=8, **TINY)), PoseModel(ModelConfig(csi_width=16, **TINY))
    count = lambda m: sum(p.numel() for p in m.encoders["wifi"].parameters())  # noqa: E731
    assert count(narrow) < count(wide)
    save_model(tmp_path / "m.safetensors", narrow)
    assert load_model(tmp_path / "m.safetensors")[0].config.csi_width == 8
    with pytest.raises(ValueError, match="csi_width must be a positive multiple of 8"):
        ModelConfig(csi_width=12)


def test_training_from_bags_uses_the_same_frames_as_the_tree(tree: Path, tmp_path: Path) -> None:
    import warnings

    from mmhpe_ros.data.bags import convert
    from mmhpe_ros.data.mmfi import MmfiDataset, tree_calibrations

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert(MmfiDataset(tree), tmp_path / "bags", progress=False, calibrations=tree_calibrations(tree))
        from_tree = [frame_source(tiny_config(tmp_path, data_root=str(tree)), split) for split in ("train", "val")]
    from_bags = [frame_source(tiny_config(tmp_path, bags=[str(tmp_path / "bags")]), split) for split in ("train", "val")]
    for a, b in zip(from_tree, from_bags):
        assert a.index == b.index
    np.testing.assert_array_equal(from_tree[0][3].data["lidar"], from_bags[0][3].data["lidar"])
    config = tiny_config(tmp_path, bags=[str(tmp_path / "bags")], method="naive", epochs=1)
    result = train(config)
    assert result.history[0]["epoch"] == 1 and load_model(Path(config.output_dir) / LAST)[1]["training_data"]["source"] == [str(tmp_path / "bags")]


def test_outputs_never_follow_a_link_out_of_output_dir(tmp_path: Path) -> None:
    """A link inside output_dir that leads out is refused before anything is deleted or written through it."""
    from mmhpe_ros.runtime.paths import PathEscapeError

    outside = tmp_path / "outside"
    (outside / "epoch_0001.partial").mkdir(parents=True)
    (outside / "epoch_0001.partial" / "keep.txt").write_text("not a checkpoint")
    config = tiny_config(tmp_path, method="naive", epochs=1)
    run = Path(config.output_dir)
    run.mkdir()
    (run / "checkpoints").symlink_to(outside)
    with pytest.raises(PathEscapeError, match="checkpoint directory 'checkpoints' resolves to .*outside"):
        train(config, resume=True, datasets=datasets(config))  # --resume removes *.partial below checkpoints/
    assert (outside / "epoch_0001.partial" / "keep.txt").exists()

    (run / "checkpoints").unlink()
    precious = tmp_path / "precious.safetensors"
    precious.write_bytes(b"someone else's file")
    (run / LAST).symlink_to(precious)
    with pytest.raises(PathEscapeError, match=f"training output '{LAST}'"):
        train(config, datasets=datasets(config))
    assert precious.read_bytes() == b"someone else's file"
