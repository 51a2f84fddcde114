"""Subset evaluation: every modality subset, honest counts of missing data, per action, tables, command."""
from __future__ import annotations

import csv
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).parent))
from rig_scene import RigFrames, person_frame, rigs, write_rig_tree  # noqa: E402

from mmhpe_ros.cli import main  # noqa: E402
from mmhpe_ros.data.frames import Frame, SequenceKey  # noqa: E402
from mmhpe_ros.metrics import mpjpe, pa_mpjpe  # noqa: E402
from mmhpe_ros.modalities import MODALITIES  # noqa: E402
from mmhpe_ros.model.checkpoint import save_model  # noqa: E402
from mmhpe_ros.model.config import ModelConfig  # noqa: E402
from mmhpe_ros.model.pose_model import PoseModel  # noqa: E402
from mmhpe_ros.train.augment import BodyFrameBatches  # noqa: E402
from mmhpe_ros.train.data import PoseDataset  # noqa: E402
from mmhpe_ros.train.evaluate import ActionLabelled, Evaluation, evaluate, subset_name  # noqa: E402

torch.set_num_threads(1)
TINY = ModelConfig(feature_dim=8, hidden_dim=16, lidar_points=16, mmwave_points=4)
FULL = subset_name(MODALITIES)


def make_frames(count: int = 20, seed: int = 0, missing: bool = True) -> RigFrames:
    """Frames of two actions; if ``missing``, WiFi missing in every 4th frame, radar in every 5th."""
    frames = RigFrames()
    for i in range(count):
        frame = person_frame(SequenceKey("E01", f"S{seed + 1:02d}", "A02"), i)
        frame.key = SequenceKey("E01", "S01", "A02" if i % 2 else "A03")
        if missing and i % 4 == 1:
            del frame.data["wifi"]
        if missing and i % 5 == 2:
            del frame.data["mmwave"]
        frames.append(frame)
    return frames


def dataset(frames: RigFrames, config: ModelConfig = TINY) -> PoseDataset:
    """The frames as evaluation sees them: centred on the person, targets in their body frame."""
    return PoseDataset(frames, config, rigs=rigs(), transform=BodyFrameBatches(config))


def loader(frames: RigFrames, batch_size: int = 6) -> DataLoader:
    return DataLoader(ActionLabelled(dataset(frames)), batch_size=batch_size)


def model(seed: int = 0) -> PoseModel:
    torch.manual_seed(seed)
    return PoseModel(TINY).eval()


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    return make_frames()


@pytest.fixture(scope="module")
def result(frames: list[Frame]) -> Evaluation:
    return evaluate(model(), loader(frames))


class IgnoresWifi(PoseModel):
    """A model whose output never depends on WiFi."""

    def fuse(self, features, present):
        kept = present.clone()
        kept[:, self.modalities.index("wifi")] = False
        return super().fuse({m: f for m, f in features.items() if m != "wifi"}, kept)


def test_fifteen_subsets_in_order_with_honest_counts(result: Evaluation, frames: list[Frame]) -> None:
    names = [s.name for s in result.overall()]
    expected = ["+".join(c) for k in range(1, 5) for c in itertools.combinations(MODALITIES, k)]
    assert names == expected and len(names) == 15
    with_wifi = sum("wifi" in f.data for f in frames)
    with_both = sum("wifi" in f.data and "mmwave" in f.data for f in frames)
    assert result.score(["wifi"]).frames == with_wifi < len(frames)
    assert result.score(["wifi"]).partial == 0
    rgb_wifi = result.score(["rgb", "wifi"])
    assert (rgb_wifi.frames, rgb_wifi.partial) == (len(frames), len(frames) - with_wifi)
    assert result.score(["mmwave", "wifi"]).frames == sum("wifi" in f.data or "mmwave" in f.data for f in frames)
    strict = evaluate(model(), loader(frames), complete_only=True)
    assert strict.score(["rgb", "wifi"]).frames == with_wifi
    assert strict.score(["mmwave", "wifi"]).frames == with_both
    assert all(s.partial == 0 for s in strict.scores)


def test_scores_match_a_direct_forward_pass(result: Evaluation, frames: list[Frame]) -> None:
    net = model().train()  # evaluate() must switch to eval mode and back
    batch = next(iter(loader(frames, batch_size=len(frames))))
    with torch.no_grad():
        net.eval()
        fused = net(batch).numpy()
        present = batch["present"].clone()
        present[:, 1:] = False  # rgb only
        rgb = net(batch, present).numpy()
        net.train()
    target = batch["joints"].numpy()
    assert result.score(MODALITIES).mpjpe_mm == pytest.approx(mpjpe(fused, target), rel=1e-5)
    assert result.score(MODALITIES).pa_mpjpe_mm == pytest.approx(pa_mpjpe(fused, target), rel=1e-5)
    assert result.score(["rgb"]).mpjpe_mm == pytest.approx(mpjpe(rgb, target), rel=1e-5)
    evaluate(net, loader(frames))
    assert net.training


def test_per_joint_errors_match_a_direct_forward_pass_and_average_to_mpjpe(
        result: Evaluation, frames: list[Frame]) -> None:
    from mmhpe_ros.metrics import joint_errors

    net = model().eval()
    batch = next(iter(loader(frames, batch_size=len(frames))))
    with torch.no_grad():
        fused = net(batch).numpy()
    per_joint = joint_errors(fused, batch["joints"].numpy()).mean(axis=0)  # every frame has some modality
    np.testing.assert_allclose(result.joint_mpjpe_mm[FULL], per_joint, rtol=1e-5)
    for score in result.overall():  # each subset over its own frames: the mean over joints is its MPJPE
        assert np.mean(result.joint_mpjpe_mm[score.name]) == pytest.approx(score.mpjpe_mm, rel=1e-6)


def test_a_model_ignoring_a_modality_scores_the_same_with_and_without_it() -> None:
    frames = make_frames(12, seed=1, missing=False)  # the same frames in every subset
    torch.manual_seed(0)
    ignoring = evaluate(IgnoresWifi(TINY), loader(frames))
    for subset in itertools.chain.from_iterable(itertools.combinations(MODALITIES[:3], k) for k in (1, 2, 3)):
        without, with_wifi = ignoring.score(subset), ignoring.score((*subset, "wifi"))
        assert with_wifi.mpjpe_mm == pytest.approx(without.mpjpe_mm, rel=1e-6)
        assert with_wifi.pa_mpjpe_mm == pytest.approx(without.pa_mpjpe_mm, rel=1e-6)
    normal = evaluate(model(), loader(frames))  # the check can fail: WiFi does change a normal model
    assert normal.score(MODALITIES).mpjpe_mm != pytest.approx(normal.score(MODALITIES[:3]).mpjpe_mm, rel=1e-6)


def test_pa_mpjpe_not_above_mpjpe(result: Evaluation) -> None:
    assert all(0 < s.pa_mpjpe_mm <= s.mpjpe_mm for s in result.scores)


def test_per_action_rows_add_up_to_the_overall_rows(result: Evaluation, frames: list[Frame]) -> None:
    assert result.actions() == ["A02", "A03"]
    assert len(result.per_action()) == 2 * 15
    for overall in result.overall():
        parts = [result.score(overall.subset, a) for a in result.actions()]
        assert sum(p.frames for p in parts) == overall.frames
        assert sum(p.partial for p in parts) == overall.partial
        weighted = sum(p.mpjpe_mm * p.frames for p in parts) / overall.frames
        assert weighted == pytest.approx(overall.mpjpe_mm, rel=1e-9)
    assert result.score(MODALITIES, "A02").frames == sum(f.key.action == "A02" for f in frames)


def test_csv_and_markdown_agree(result: Evaluation, tmp_path: Path) -> None:
    paths = result.write(tmp_path, "tiny")
    with open(paths["subsets.csv"], newline="") as file:
        rows = list(csv.DictReader(file))
    lines = [line for line in paths["subsets.md"].read_text().splitlines() if line.startswith("|")]
    table = [line.strip("|").split("|") for line in lines[2:]]  # after the header and its rule
    assert len(rows) == len(table) == 15
    for row, cells in zip(rows, table):
        name, frames, partial, error, pa = (c.strip() for c in cells)
        assert (row["subset"], row["frames"], row["partial"]) == (name, frames, partial)
        assert row["action"] == "all" and int(row["size"]) == name.count("+") + 1
        # the same value: 4 decimals in the CSV, 2 in the table (rounding the CSV's 4 again can differ)
        assert abs(float(row["mpjpe_mm"]) - float(error)) <= 0.005 + 1e-4
        assert abs(float(row["pa_mpjpe_mm"]) - float(pa)) <= 0.005 + 1e-4
    with open(paths["actions.csv"], newline="") as file:
        action_rows = list(csv.DictReader(file))
    assert len(action_rows) == 30 and {r["action_name"] for r in action_rows} == {
        "chest expanding horizontally", "chest expanding vertically"}
    full = result.score(MODALITIES, "A03")
    assert f"| A03 | chest expanding vertically | {full.frames} | {full.mpjpe_mm:.2f} |" in paths["actions.md"].read_text()


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("evaluate")
    keys = (SequenceKey("E01", "S01", "A02"), SequenceKey("E01", "S02", "A02"), SequenceKey("E01", "S03", "A02"),
            SequenceKey("E01", "S05", "A02"), SequenceKey("E01", "S05", "A03"))
    tree = write_rig_tree(root / "tree", keys, frames=3)
    card = {"training_data": {"source": str(tree), "protocol": "P1", "setting": "S2", "split_seed": 0}}
    return save_model(root / "model.safetensors", model(), card), tree


def test_command_end_to_end(saved: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    weights, tree = saved
    out = tmp_path / "eval"
    with pytest.warns(UserWarning, match="partial MM-Fi tree"):
        code = main(["evaluate", "--model", str(weights), "--out", str(out), "--batch-size", "4", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "S2 val, 6 frames" in printed  # the card's split: S05 validates under S2
    assert f"| {FULL} | 6 | 0 |" in printed
    assert {p.name for p in out.iterdir()} == {"subsets.md", "subsets.csv", "actions.md", "actions.csv",
                                               "predictions.npz"}
    assert (out / "subsets.md").read_text().count("\n| ") == 16  # header + 15 subsets
    _check_predictions(out, tree)
    with pytest.warns(UserWarning):
        assert main(["evaluate", "--model", str(weights), "--out", str(tmp_path / "all"), "--split", "all",
                     "--setting", "S1", "--no-progress"]) == 0
    assert "P1 S1 all, 15 frames" in capsys.readouterr().out


def test_command_skips_frames_with_an_empty_modality_unless_asked(saved: tuple[Path, Path], tmp_path: Path,
                                                                   capsys) -> None:
    import shutil

    weights, tree = saved
    copy = tmp_path / "tree"
    shutil.copytree(tree, copy)
    (copy / "E01/S05/A03/wifi-csi/frame002.mat").write_bytes(b"")  # MM-Fi's mark of a missing frame
    with pytest.warns(UserWarning, match="partial MM-Fi tree"):
        assert main(["evaluate", "--model", str(weights), "--data-root", str(copy), "--out", str(tmp_path / "skip"),
                     "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "val, 5 frames, missing=skip" in printed and f"| {FULL} | 5 | 0 |" in printed  # the toolbox's policy
    with pytest.warns(UserWarning, match="partial MM-Fi tree"):
        assert main(["evaluate", "--model", str(weights), "--data-root", str(copy), "--out", str(tmp_path / "absent"),
                     "--missing", "absent", "--no-progress"]) == 0
    assert f"| {FULL} | 6 | 1 |" in capsys.readouterr().out


def _check_predictions(out: Path, tree: Path) -> None:
    """predictions.npz: each frame's ground truth as the tree stores it, and fused predictions whose
    MPJPE is the subset table's all-modality row."""
    with np.load(out / "predictions.npz", allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    assert arrays["predicted"].shape == arrays["ground_truth"].shape == (6, 17, 3)
    assert list(arrays["modalities"]) == list(MODALITIES)
    for sequence, index, truth in zip(arrays["sequence"], arrays["frame"], arrays["ground_truth"]):
        stored = np.load(tree / str(sequence) / "ground_truth.npy")[index]
        np.testing.assert_allclose(truth, stored, atol=1e-6)
    with open(out / "subsets.csv", newline="", encoding="utf-8") as file:
        full = next(row for row in csv.DictReader(file) if row["subset"] == FULL)
    assert mpjpe(arrays["predicted"], arrays["ground_truth"]) == pytest.approx(float(full["mpjpe_mm"]), abs=1e-3)


def test_command_writes_expected_joint_errors_into_the_card(saved: tuple[Path, Path], tmp_path: Path,
                                                            capsys) -> None:
    import shutil

    from mmhpe_ros.model.card import EXPECTED_ERRORS_KEY, card_path, expected_joint_errors, read_card

    weights = tmp_path / "model.safetensors"
    shutil.copy(saved[0], weights)
    shutil.copy(card_path(saved[0]), card_path(weights))
    before = read_card(weights)
    with pytest.warns(UserWarning, match="partial MM-Fi tree"):
        assert main(["evaluate", "--model", str(weights), "--out", str(tmp_path / "e"), "--update-card",
                     "--no-progress"]) == 0
    assert f"updated {card_path(weights)}" in capsys.readouterr().out
    card = read_card(weights)
    assert {k: v for k, v in card.items() if k != EXPECTED_ERRORS_KEY} == before  # nothing else changed
    errors = expected_joint_errors(card)
    rows = {row["subset"]: float(row["mpjpe_mm"]) for row in csv.DictReader(open(tmp_path / "e" / "subsets.csv"))}
    assert {"+".join(m for m in MODALITIES if m in s) for s in errors} == set(rows)
    for subset, values in errors.items():
        name = "+".join(m for m in MODALITIES if m in subset)
        assert np.mean(values) == pytest.approx(rows[name], abs=0.01)  # rounded to 0.01 mm per joint
    assert "S2 holdout, 3 frames" in card[EXPECTED_ERRORS_KEY]["note"]  # one held-out training sequence
    assert main(["evaluate", "--model", str(weights), "--out", str(tmp_path / "v"), "--update-card",
                 "--split", "val", "--no-progress"]) == 2
    assert "not from --split val" in capsys.readouterr().err


def test_command_errors_exit_2(saved: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    weights, tree = saved
    assert main(["evaluate", "--model", str(tmp_path / "none.safetensors"), "--data-root", str(tree)]) == 2
    assert "none.safetensors: model weights not found" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(weights), "--data-root", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
    bare = tmp_path / "bare.safetensors"
    save_model(bare, model())  # a card without training data
    assert main(["evaluate", "--model", str(bare)]) == 2
    assert "pass --data-root" in capsys.readouterr().err


def test_a_one_modality_model_has_one_subset(frames: list[Frame], tmp_path: Path) -> None:
    config = ModelConfig(modalities=("lidar",), feature_dim=8, hidden_dim=16, lidar_points=16)
    torch.manual_seed(0)
    batches = DataLoader(ActionLabelled(dataset(frames, config)), batch_size=8)
    result = evaluate(PoseModel(config), batches)
    assert [s.name for s in result.overall()] == ["lidar"] and result.overall()[0].frames == len(frames)
    paths = result.write(tmp_path)
    assert "| A02 | chest expanding horizontally |" in paths["actions.md"].read_text()
