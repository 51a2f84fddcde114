"""`mmhpe-ros convert`: MM-Fi tree -> bags whose BagDataset equals MmfiDataset frame by frame."""
from __future__ import annotations

import warnings

import pytest
from mmfi_tree import FRAMES, KEYS, write_tree

from mmhpe_ros.cli import main
from mmhpe_ros.data import splits
from mmhpe_ros.data.bags import BagDataset
from mmhpe_ros.data.mmfi import MmfiDataset, PartialDatasetWarning
from mmhpe_ros.geometry.calibration import load_calibration


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = write_tree(tmp_path_factory.mktemp("mmfi") / "tree")
    (root / "E01/S01/A02/lidar/frame002.bin").write_bytes(b"")  # a missing frame
    return root


def read(root, **kwargs) -> MmfiDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDatasetWarning)
        return MmfiDataset(root, **kwargs)


def convert(*argv) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDatasetWarning)
        return main(["convert", *map(str, argv)])


def assert_same_frames(bag_frames, tree_frames):
    bag_frames, tree_frames = list(bag_frames), list(tree_frames)
    assert [(f.key, f.index) for f in bag_frames] == [(f.key, f.index) for f in tree_frames]
    for got, want in zip(bag_frames, tree_frames):
        assert got.joints.dtype == want.joints.dtype and got.joints.tobytes() == want.joints.tobytes()
        assert sorted(got.data) == sorted(want.data), (want.key, want.index)
        for modality, array in want.data.items():
            assert got.data[modality].dtype == array.dtype, modality
            assert got.data[modality].shape == array.shape, modality
            assert got.data[modality].tobytes() == array.tobytes(), modality  # inf included


@pytest.mark.parametrize("missing", ["skip", "absent"])
def test_per_sequence_bags_equal_the_tree(tree, tmp_path, capsys, missing):
    assert convert(tree, tmp_path / "bags", "--missing", missing) == 0
    assert sorted(p.name for p in (tmp_path / "bags").iterdir()) == sorted(
        f"{k.environment}_{k.subject}_{k.action}" for k in KEYS)
    source = read(tree, missing=missing)
    assert len(source) == len(KEYS) * FRAMES - (missing == "skip")
    assert_same_frames(BagDataset(tmp_path / "bags"), source)
    out, err = capsys.readouterr()
    assert f"wrote {len(KEYS)} bags" in out
    assert "warning: partial MM-Fi tree" in err and "1076 of the 1080 MM-Fi sequences" in err


def test_per_split_bags_follow_the_protocol_and_setting(tree, tmp_path, capsys):
    out = tmp_path / "bags"
    assert convert(tree, out, "--per", "split", "--protocol", "P1", "--setting", "S3",
                   "--modalities", "rgb", "wifi") == 0
    assert sorted(p.name for p in out.iterdir()) == ["train"]  # E01/E02 only: all train in S3
    source = read(tree, modalities=["rgb", "wifi"], select=splits.split_filter("P1", "S3", "train"))
    assert {k.action for k in source.keys} == {"A02", "A03"}  # both in P1
    assert_same_frames(BagDataset(out / "train"), source)

    assert convert(tree, out, "--per", "split", "--protocol", "P1", "--setting", "S1") == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert convert(tree, out, "--per", "split", "--protocol", "P1", "--setting", "S1", "--overwrite") == 0
    for split in ("train", "val"):
        want = read(tree, select=splits.split_filter("P1", "S1", split))
        if len(want):
            assert_same_frames(BagDataset(out / split), want)
        else:
            assert not (out / split).exists()


def test_per_sequence_with_protocol_and_filters(tree, tmp_path):
    out = tmp_path / "bags"
    assert convert(tree, out, "--protocol", "P2") != 0  # A02 and A03 are daily actions: nothing
    assert not out.exists()
    assert convert(tree, out, "--subjects", "S12", "--actions", "A03", "--modalities", "lidar") == 0
    assert [p.name for p in out.iterdir()] == ["E02_S12_A03"]
    assert_same_frames(BagDataset(out), read(tree, modalities=["lidar"], subjects=["S12"], actions=["A03"]))


def test_generated_tree_round_trips(tmp_path):
    """`mmhpe-ros synth` then `mmhpe-ros convert`: the bags read back equal to the tree."""
    pytest.importorskip("mmhpe_ros.data.synth.command")
    tree = tmp_path / "synth"
    assert main(["synth", str(tree), "--subjects", "S01,S31", "--actions", "A02", "--frames", "3"]) == 0
    assert convert(tree, tmp_path / "bags", "--per", "split", "--setting", "S3") == 0
    for split, subject in (("train", "S01"), ("val", "S31")):
        source = read(tree, select=splits.split_filter("P3", "S3", split))
        assert [k.subject for k in source.keys] == [subject] and len(source) == 3
        bags = BagDataset(tmp_path / "bags" / split)
        assert_same_frames(bags, source)
        environment = source.keys[0].environment  # the tree's calibration file travels with its bag
        written = load_calibration(tree / "calibration" / f"{environment}.yaml")
        assert bags.calibration(environment).to_document() == written.to_document()


def test_bad_root_is_a_clear_error(tmp_path, capsys):
    assert convert(tmp_path / "nowhere", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "nowhere: no such directory" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert convert(tmp_path / "empty", tmp_path / "out") == 2
    assert "no MM-Fi sequence folders" in capsys.readouterr().err
    bad = write_tree(tmp_path / "bad", keys=KEYS[:1])
    (bad / "E01/S01/A02/mmwave/frame001.bin").write_bytes(b"\0" * 12)
    assert convert(bad, tmp_path / "out") == 2
    assert "frame001.bin: .bin size 12 bytes is not a multiple of 40" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    text = capsys.readouterr().out
    for option in ("--per", "--protocol", "--setting", "--seed", "--modalities", "--overwrite"):
        assert option in text
