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
from mmfi_tree import write_tree  # noqa: E402

from mmhpe_ros.data.frames import Frame, SequenceKey  # noqa: E402
from mmhpe_ros.data.mmfi import MmfiDataset  # noqa: E402
from mmhpe_ros.model.config import ModelConfig  # noqa: E402
from mmhpe_ros.model.inputs import prepare_inputs  # noqa: E402
from mmhpe_ros.train import cache  # noqa: E402
from mmhpe_ros.train.data import PoseDataset, batch_loader  # noqa: E402

TINY = ModelConfig(feature_dim=8, hidden_dim=16, lidar_points=16, mmwave_points=4)
KEYS = (SequenceKey("E01", "S01", "A02"), SequenceKey("E01", "S02", "A03"))


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "mmfi", KEYS, frames=5)


def dataset_of(root: Path) -> MmfiDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MmfiDataset(root)


class Counting:
    """Counts calls of prepare_sample (a frame prepared from its files)."""

    def __init__(self, monkeypatch) -> None:
        self.calls = 0
        original = cache.prepare_sample

        def counted(frame, config):
            self.calls += 1
            return original(frame, config)

        monkeypatch.setattr(cache, "prepare_sample", counted)


def test_the_disk_cache_is_built_once_and_equals_prepare_inputs(tree: Path, tmp_path: Path, monkeypatch) -> None:
    counter = Counting(monkeypatch)
    frames = dataset_of(tree)
    first = cache.prepare_frames(frames, TINY, tmp_path / "cache")
    assert counter.calls == len(frames) == 10 and first.directory is not None and not first.mapped
    again = cache.prepare_frames(dataset_of(tree), TINY, tmp_path / "cache")
    assert counter.calls == 10 and again.directory == first.directory  # nothing prepared again
    mapped = cache.prepare_frames(dataset_of(tree), TINY, tmp_path / "cache", cache_bytes=0)
    assert mapped.mapped and isinstance(mapped.arrays["lidar"], np.memmap)
    for i in (0, 7):
        expected = prepare_inputs(frames[i].data, TINY)
        for key, value in expected.items():
            np.testing.assert_array_equal(mapped.arrays[key][i], value)
        np.testing.assert_array_equal(mapped.arrays["joints"][i], frames[i].joints.astype(np.float32))
    assert not list((tmp_path / "cache").glob("*.partial-*"))


def test_the_cache_is_invalidated_by_data_inputs_and_preprocessing(tree: Path, tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "cache"
    base = cache.prepare_frames(dataset_of(tree), TINY, root).directory
    architecture = ModelConfig(**{**TINY.to_dict(), "feature_dim": 32, "fusion": "concat"})
    assert cache.prepare_frames(dataset_of(tree), architecture, root).directory == base  # not an input field
    changed_input = ModelConfig(**{**TINY.to_dict(), "lidar_points": 8})
    assert cache.prepare_frames(dataset_of(tree), changed_input, root).directory != base
    assert cache.prepare_frames(dataset_of(tree), TINY, root, calibration={"camera": [1, 2]}).directory != base
    monkeypatch.setattr(cache, "PREPROCESSING_VERSION", cache.PREPROCESSING_VERSION + 1)
    bumped = cache.prepare_frames(dataset_of(tree), TINY, root).directory
    assert bumped != base
    monkeypatch.undo()
    lidar = tree / "E01/S01/A02/lidar/frame003.bin"
    np.zeros((7, 3)).tofile(lidar)  # new content, new size
    rebuilt = cache.prepare_frames(dataset_of(tree), TINY, root)
    assert rebuilt.directory not in (base, bumped)
    np.testing.assert_array_equal(rebuilt.arrays["lidar"][2], np.zeros((16, 3), np.float32))
    stat = lidar.stat()
    os.utime(lidar, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same size, touched
    assert cache.prepare_frames(dataset_of(tree), TINY, root).directory != rebuilt.directory
    sources = [dataset_of(tree)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sources.append(MmfiDataset(tree, subjects=["S01"]))  # another selection
    assert cache.prepare_frames(sources[1], TINY, root).directory != cache.prepare_frames(sources[0], TINY, root).directory


def frames_of(sequences: dict[str, int]) -> list[Frame]:
    """Frames of several sequences (subject -> length) whose rgb encodes (sequence, frame)."""
    frames = []
    for s, (subject, count) in enumerate(sequences.items()):
        for i in range(count):
            rgb = np.full((17, 2), 10.0 * s + i)
            frames.append(Frame(SequenceKey("E01", subject, "A02"), i, np.zeros((17, 3)), {"rgb": rgb}))
    return frames


def test_batches_windows_and_transform() -> None:
    config = ModelConfig(modalities=("rgb",), feature_dim=8, hidden_dim=16, rgb_encoder="temporal", rgb_window=3)
    frames = frames_of({"S01": 4, "S02": 2})
    frames = [frames[i] for i in (3, 0, 4, 2, 5, 1)]  # a source need not be in frame order
    calls = []

    def transform(batch):
        calls.append(sorted(batch))
        batch["joints"] = batch["joints"] + 1.0
        return batch

    dataset = PoseDataset(frames, config, transform=transform)
    batch = dataset.batch([0, 1, 2, 5])
    pixel = lambda k, i: (10.0 * k + i) / 640 * 2 - 1  # noqa: E731  (u, normalised by the image width)
    window = batch["rgb_window"][..., 0, 0]
    assert batch["rgb_window"].shape == (4, 3, 17, 2)
    np.testing.assert_allclose(window[0], [pixel(0, 1), pixel(0, 2), pixel(0, 3)], rtol=1e-6)  # S01 frame 3
    np.testing.assert_allclose(window[1], [pixel(0, 0)] * 3, rtol=1e-6)  # a sequence start repeats frame 0
    np.testing.assert_allclose(window[2], [pixel(1, 0)] * 3, rtol=1e-6)  # S02 frame 0: never S01's frames
    np.testing.assert_allclose(window[3], [pixel(0, 0), pixel(0, 0), pixel(0, 1)], rtol=1e-6)
    np.testing.assert_array_equal(window[:, -1], batch["rgb"][:, 0, 0])  # ends at the frame itself
    assert batch["index"].tolist() == [0, 1, 2, 5] and np.all(batch["joints"] == 1.0)
    assert calls and "rgb_window" in calls[0]


def test_loader_batches_are_the_same_with_workers_and_cover_every_sample(tree: Path, tmp_path: Path) -> None:
    dataset = PoseDataset(dataset_of(tree), TINY, cache_dir=str(tmp_path / "cache"), cache_bytes=0)
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
    torch.testing.assert_close(sample["lidar"], torch.from_numpy(prepare_inputs(dataset.frames[4].data, TINY)["lidar"]))
    two = [list(batch_loader(dataset, 2, rank=r, world_size=2)) for r in (0, 1)]
    assert sorted(torch.cat([b["index"] for part in two for b in part]).tolist()) == list(range(10))


def test_a_large_uncached_source_goes_to_a_temporary_memory_map() -> None:
    frames = frames_of({"S01": 3})
    small = PoseDataset(frames, ModelConfig(modalities=("rgb",), feature_dim=8, hidden_dim=16), cache_bytes=0)
    assert small.prepared.mapped and small.prepared.directory is not None and small.prepared.directory.exists()
    directory = small.prepared.directory
    assert small.batch([2])["rgb"].shape == (1, 17, 2)
    del small
    import gc

    gc.collect()
    assert not directory.exists()  # removed with the last reference


def test_the_first_pass_in_workers_prepares_the_same_arrays(tree: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(cache, "PARALLEL_MIN_FRAMES", 0)
    serial = cache.prepare_frames(dataset_of(tree), TINY)
    parallel = cache.prepare_frames(dataset_of(tree), TINY, tmp_path / "cache", workers=2)
    assert parallel.directory is not None and serial.arrays.keys() == parallel.arrays.keys()
    for key in serial.arrays:
        np.testing.assert_array_equal(serial.arrays[key], parallel.arrays[key])
