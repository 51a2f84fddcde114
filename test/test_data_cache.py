"""Prepared inputs: disk cache reuse and invalidation, batch fetching, windows, transforms, workers."""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from rig_scene import RigFrames, person_frame, rig_calibration, rigs, write_rig_tree  # noqa: E402

from mmhpe_ros.data.frames import SequenceKey  # noqa: E402
from mmhpe_ros.data.mmfi import MmfiDataset, calibration_path  # noqa: E402
from mmhpe_ros.data.rigs import RigCatalogue  # noqa: E402
from mmhpe_ros.geometry.calibration import write_calibration  # noqa: E402
from mmhpe_ros.geometry.transforms import RigidTransform  # noqa: E402
from mmhpe_ros.model.config import ModelConfig  # noqa: E402
from mmhpe_ros.model.inputs import prepare_inputs  # noqa: E402
from mmhpe_ros.model.observe import Rig, observe  # noqa: E402
from mmhpe_ros.train import cache  # noqa: E402
from mmhpe_ros.train.augment import BodyFrameBatches  # noqa: E402
from mmhpe_ros.train.data import PoseDataset, batch_loader  # noqa: E402

TINY = ModelConfig(feature_dim=8, hidden_dim=16, lidar_points=16, mmwave_points=4)
KEYS = (SequenceKey("E01", "S01", "A02"), SequenceKey("E01", "S02", "A03"))


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    return write_rig_tree(tmp_path / "mmfi", KEYS, frames=5)


def dataset_of(root: Path) -> MmfiDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MmfiDataset(root)


class Counting:
    """Counts calls of prepare_sample (a frame prepared from its files)."""

    def __init__(self, monkeypatch) -> None:
        self.calls = 0
        original = cache.prepare_sample

        def counted(frame, config, rigs):
            self.calls += 1
            return original(frame, config, rigs)

        monkeypatch.setattr(cache, "prepare_sample", counted)


def test_the_disk_cache_is_built_once_and_equals_observe(tree: Path, tmp_path: Path, monkeypatch) -> None:
    counter = Counting(monkeypatch)
    frames = dataset_of(tree)
    catalogue = RigCatalogue.from_tree(tree)
    first = cache.prepare_frames(frames, TINY, catalogue, tmp_path / "cache")
    assert counter.calls == len(frames) == 10 and first.directory is not None and not first.mapped
    again = cache.prepare_frames(dataset_of(tree), TINY, RigCatalogue.from_tree(tree), tmp_path / "cache")
    assert counter.calls == 10 and again.directory == first.directory  # nothing prepared again
    mapped = cache.prepare_frames(dataset_of(tree), TINY, catalogue, tmp_path / "cache", cache_bytes=0)
    assert mapped.mapped and isinstance(mapped.arrays["lidar_points"], np.memmap)
    for i in (0, 7):
        expected = observe(frames[i].data, catalogue.rig(frames[i].key), TINY)  # the rig of the file
        assert set(mapped.arrays) == set(expected) | {"joints"}
        for key, value in expected.items():
            np.testing.assert_array_equal(mapped.arrays[key][i], value, err_msg=key)
        assert mapped.arrays["localised"][i].tolist() == [True, True, True, False]  # CSI does not localise
        np.testing.assert_array_equal(mapped.arrays["joints"][i], frames[i].joints.astype(np.float32))
    assert mapped.usable.all()
    assert not list((tmp_path / "cache").glob("*.partial-*"))


def test_a_missing_calibration_is_an_error_that_says_what_to_do(tree: Path) -> None:
    (tree / "calibration" / "E01.yaml").unlink()
    with pytest.raises(ValueError, match=r"no calibration for E01 .*mmhpe-ros calibrate"):  # before any work
        cache.prepare_frames(dataset_of(tree), TINY, RigCatalogue.from_tree(tree))


def test_train_without_calibration_exits_2_with_one_line(tree: Path, tmp_path: Path, capsys) -> None:
    from mmhpe_ros.cli import main

    (tree / "calibration" / "E01.yaml").unlink()
    code = main(["train", f"data_root={tree}", "epochs=1", f"output_dir={tmp_path / 'run'}", "progress=false",
                 "cache_dir=null", "setting=S1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no calibration for E01" in err[0] and "Traceback" not in err[0]


def test_the_cache_is_invalidated_by_data_inputs_calibration_and_preprocessing(tree: Path, tmp_path: Path,
                                                                               monkeypatch) -> None:
    root = tmp_path / "cache"
    prepare = lambda config=TINY, source=None: cache.prepare_frames(  # noqa: E731
        source or dataset_of(tree), config, RigCatalogue.from_tree(tree), root)
    first = prepare()
    base = first.directory
    architecture = ModelConfig(**{**TINY.to_dict(), "feature_dim": 32, "fusion": "concat"})
    assert prepare(architecture).directory == base  # not an input field
    changed_input = ModelConfig(**{**TINY.to_dict(), "lidar_points": 8})
    assert prepare(changed_input).directory != base
    calibration = rig_calibration("E01")
    moved = calibration.with_extrinsics(lidar=RigidTransform.from_xyz_rpy([0.0, 0.0, 0.5], [0, 0, 0]))
    write_calibration(calibration_path(tree, "E01"), moved)  # a recalibrated rig: the same files, other arrays
    recalibrated = prepare()
    assert recalibrated.directory != base
    assert not np.array_equal(recalibrated.arrays["lidar_points"], first.arrays["lidar_points"])
    write_calibration(calibration_path(tree, "E01"), calibration)
    assert prepare().directory == base
    monkeypatch.setattr(cache, "PREPROCESSING_VERSION", cache.PREPROCESSING_VERSION + 1)
    bumped = prepare().directory
    assert bumped != base
    monkeypatch.undo()
    lidar = tree / "E01/S01/A02/lidar/frame003.bin"
    np.zeros((7, 3)).tofile(lidar)  # new content, new size: nobody for the LiDAR
    rebuilt = prepare()
    assert rebuilt.directory not in (base, bumped)
    np.testing.assert_array_equal(rebuilt.arrays["lidar_points"][2], np.zeros((16, 3), np.float32))
    assert rebuilt.arrays["observed"][2].tolist() == [True, False, True, True]
    stat = lidar.stat()
    os.utime(lidar, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same size, touched
    assert prepare().directory != rebuilt.directory
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = MmfiDataset(tree, subjects=["S01"])  # another selection
    assert prepare(source=other).directory != prepare().directory


def test_the_cache_key_follows_the_code_of_every_stage_1_module(monkeypatch) -> None:
    """A change in any module observe runs (the geometry included) gives a new cache entry."""
    import inspect

    from mmhpe_ros.geometry import background, camera, localise, transforms
    from mmhpe_ros.model import csi, inputs, observe

    fingerprint = "0" * 64
    base = cache.cache_key(fingerprint, TINY)
    real = inspect.getsource
    for module in (observe, inputs, csi, localise, camera, transforms, background):
        monkeypatch.setattr(inspect, "getsource", lambda m, changed=module: real(m) + ("\n#" if m is changed else ""))
        assert cache.cache_key(fingerprint, TINY) != base, module.__name__
    monkeypatch.undo()
    assert cache.cache_key(fingerprint, TINY) == base


def frames_of(sequences: dict[str, int]) -> RigFrames:
    """Frames of several sequences (subject -> length), each a different pose."""
    return RigFrames(person_frame(SequenceKey("E01", subject, "A02"), i)
                     for subject, count in sequences.items() for i in range(count))


def test_batches_windows_and_transform() -> None:
    config = ModelConfig(modalities=("rgb",), feature_dim=8, hidden_dim=16, rgb_encoder="temporal", rgb_window=3)
    frames = frames_of({"S01": 4, "S02": 2})
    order = (3, 0, 4, 2, 5, 1)
    frames = RigFrames(frames[i] for i in order)  # a source need not be in frame order
    calls = []
    body_frames = BodyFrameBatches(config)

    def transform(batch):
        calls.append(sorted(batch))
        return body_frames(batch)

    dataset = PoseDataset(frames, config, rigs=rigs(), transform=transform)
    raw = PoseDataset(frames, config, prepared=dataset.prepared)
    rays = raw.batch([0, 1, 2, 5])["rgb_rays_window"]
    assert rays.shape == (4, 3, 17, 3)
    at = {(f.key.subject, f.index): p for p, f in enumerate(frames)}  # (subject, frame) -> position
    expected = [[("S01", 1), ("S01", 2), ("S01", 3)],  # S01 frame 3
                [("S01", 0)] * 3,  # a sequence start repeats frame 0
                [("S02", 0)] * 3,  # S02 frame 0: never S01's frames
                [("S01", 0), ("S01", 0), ("S01", 1)]]
    all_rays = dataset.prepared.arrays["rgb_rays"]
    for row, window in enumerate(expected):
        np.testing.assert_array_equal(rays[row], all_rays[[at[w] for w in window]])
    assert len({all_rays[p].tobytes() for p in range(len(frames))}) == len(frames)  # the frames differ
    batch = dataset.batch([0, 1, 2, 5])
    assert batch["rgb_window"].shape == (4, 3, 17, 3) and batch["rgb_score_window"].shape == (4, 3, 17)
    np.testing.assert_allclose(batch["rgb_window"][:, -1], batch["rgb"], atol=1e-6)  # ends at the frame itself
    np.testing.assert_allclose(batch["rgb_window"][1, 0], batch["rgb"][1], atol=1e-6)
    assert not np.allclose(batch["rgb_window"][0, 0], batch["rgb"][0], atol=1e-3)
    assert batch["index"].tolist() == [0, 1, 2, 5] and batch["joints"].shape == (4, 17, 3)
    assert calls and "rgb_rays_window" in calls[0]


def test_frames_without_a_person_or_a_finite_ground_truth_are_left_out() -> None:
    frames = frames_of({"S01": 5})
    frames[1].data = {"wifi": frames[1].data["wifi"]}  # CSI alone finds nobody
    frames[3].joints = np.full((17, 3), np.nan)  # e.g. an empty room's ground truth, though a sensor saw "someone"
    dataset = PoseDataset(frames, TINY, rigs=rigs(), transform=BodyFrameBatches(TINY))
    assert dataset.prepared.usable.tolist() == [True, False, True, False, True] and dataset.dropped == 2
    batch = dataset.batch(np.arange(len(dataset)))
    assert batch["index"].tolist() == [0, 2, 4] and np.isfinite(batch["joints"]).all()


def test_loader_batches_are_the_same_with_workers_and_cover_every_sample(tree: Path, tmp_path: Path) -> None:
    dataset = PoseDataset(dataset_of(tree), TINY, rigs=RigCatalogue.from_tree(tree), cache_dir=str(tmp_path / "cache"),
                          cache_bytes=0, transform=BodyFrameBatches(TINY))
    torch.manual_seed(0)
    plain = list(batch_loader(dataset, 3, shuffle=True, seed=1))
    with_workers = list(batch_loader(dataset, 3, shuffle=True, seed=1, workers=2))
    assert len(plain) == 4 and [len(b["index"]) for b in plain] == [3, 3, 3, 1]
    assert sorted(torch.cat([b["index"] for b in plain]).tolist()) == list(range(10))
    for a, b in zip(plain, with_workers):
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    sample = dataset[4]
    expected, _ = prepare_inputs(dataset.frames[4].data, Rig(rig_calibration("E01")), TINY)
    for key, value in expected.items():
        torch.testing.assert_close(sample[key], torch.from_numpy(value), atol=1e-5, rtol=0)
    two = [list(batch_loader(dataset, 2, rank=r, world_size=2)) for r in (0, 1)]
    assert sorted(torch.cat([b["index"] for part in two for b in part]).tolist()) == list(range(10))


def test_a_large_uncached_source_goes_to_a_temporary_memory_map() -> None:
    frames = frames_of({"S01": 3})
    small = PoseDataset(frames, ModelConfig(modalities=("rgb",), feature_dim=8, hidden_dim=16), rigs=rigs(),
                        cache_bytes=0)
    assert small.prepared.mapped and small.prepared.directory is not None and small.prepared.directory.exists()
    directory = small.prepared.directory
    assert small.batch([2])["rgb_rays"].shape == (1, 17, 3)
    del small
    import gc

    gc.collect()
    assert not directory.exists()  # removed with the last reference


def test_the_first_pass_in_workers_prepares_the_same_arrays(tree: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(cache, "PARALLEL_MIN_FRAMES", 0)
    catalogue = RigCatalogue.from_tree(tree)
    serial = cache.prepare_frames(dataset_of(tree), TINY, catalogue)
    parallel = cache.prepare_frames(dataset_of(tree), TINY, catalogue, tmp_path / "cache", workers=2)
    assert parallel.directory is not None and serial.arrays.keys() == parallel.arrays.keys()
    for key in serial.arrays:
        np.testing.assert_array_equal(serial.arrays[key], parallel.arrays[key])
