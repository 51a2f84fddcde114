"""Training data: the frame source of a :class:`TrainConfig`, its train/val split, a torch Dataset.

``frame_source`` opens an MM-Fi tree (real or generated, :class:`MmfiDataset`) or rosbag2 bags
(:class:`BagDataset`); ``split_sources`` splits it by the MM-Fi protocol and setting
(:mod:`mmhpe_ros.data.splits`); :class:`PoseDataset` turns frames into model-ready arrays
(:func:`prepare_inputs`), prepared once and kept in memory as stacked arrays when they fit
``cache_bytes``, else prepared on each access.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from mmhpe_ros.data.frames import Frame, FrameSource, SequenceKey
from mmhpe_ros.data.splits import protocol_actions, split_of
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.inputs import PRESENT, input_shapes, prepare_inputs
from mmhpe_ros.skeleton import NUM_JOINTS
from mmhpe_ros.train.config import TrainConfig

TARGET = "joints"
INDEX = "index"
DEFAULT_CACHE_BYTES = 4 << 30  # prepared arrays kept in memory up to this size


class FrameSubset:
    """Some frames of a source, by position (a ``FrameSource`` itself)."""

    def __init__(self, source: FrameSource, indices: Sequence[int]) -> None:
        self.source = source
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Frame:
        return self.source[int(self.indices[index])]

    def __iter__(self) -> Iterator[Frame]:
        for i in self.indices:
            yield self.source[int(i)]

    @property
    def index(self) -> list[tuple[SequenceKey, int]]:
        """(sequence key, frame index) of every frame."""
        full = source_index(self.source)
        return [full[int(i)] for i in self.indices]


def source_index(source: FrameSource) -> list[tuple[SequenceKey, int]]:
    """(sequence key, frame index) of every frame, from the source's index (or by reading it)."""
    index = getattr(source, "index", None)
    if index is not None and not callable(index):
        return list(index)
    return [(frame.key, frame.index) for frame in source]


def frame_source(config: TrainConfig) -> FrameSource:
    """The frames of ``config.data_root`` (an MM-Fi tree) or ``config.bags``, protocol actions only
    for a tree (bags are split by :func:`split_sources`)."""
    modalities = list(config.model_modalities)
    if config.data_root and config.bags:
        raise ValueError("training config: give data_root (an MM-Fi tree) or bags, not both")
    if config.data_root:
        from mmhpe_ros.data.mmfi import MmfiDataset

        return MmfiDataset(config.data_root, modalities=modalities,
                           actions=protocol_actions(config.protocol), missing="absent",
                           progress=config.progress)
    if config.bags:
        from mmhpe_ros.data.bags import BagDataset

        return BagDataset(list(config.bags), modalities=modalities)
    raise ValueError("training config: set data_root (an MM-Fi tree) or bags (rosbag2 files)")


def strided(count: int, limit: int | None) -> np.ndarray:
    """``min(count, limit)`` positions spread evenly over ``range(count)``."""
    if limit is None or limit >= count:
        return np.arange(count)
    return (np.arange(limit, dtype=np.int64) * count) // limit


def split_sources(config: TrainConfig, source: FrameSource | None = None) -> tuple[FrameSubset, FrameSubset]:
    """(train, val) frames of ``config``'s protocol and setting, each capped by
    ``max_train_frames`` / ``max_val_frames`` (evenly strided)."""
    source = frame_source(config) if source is None else source
    names = [split_of(key, config.protocol, config.setting, config.split_seed)
             for key, _ in source_index(source)]
    parts = []
    for split, limit in (("train", config.max_train_frames), ("val", config.max_val_frames)):
        positions = np.array([i for i, name in enumerate(names) if name == split], dtype=np.int64)
        if len(positions) == 0:
            raise ValueError(
                f"no {split} frames for protocol {config.protocol} setting {config.setting} in "
                f"{config.data_root or list(config.bags)} ({len(names)} frames in all)"
            )
        parts.append(FrameSubset(source, positions[strided(len(positions), limit)]))
    return parts[0], parts[1]


class PoseDataset(Dataset):
    """Model-ready samples of ``frames``: ``prepare_inputs(frame.data)`` + ``joints`` (17, 3)
    float32 + ``index`` (position in ``frames``). Frames where none of the model's modalities is
    usable are dropped (``dropped`` counts them)."""

    def __init__(self, frames: FrameSource, model_config: ModelConfig,
                 cache_bytes: int = DEFAULT_CACHE_BYTES, progress: bool = False) -> None:
        self.frames, self.config = frames, model_config
        shapes = input_shapes(model_config)
        per_frame = sum(int(np.prod(s)) * d.itemsize for s, d in shapes.values()) + NUM_JOINTS * 3 * 4
        self.cached = per_frame * len(frames) <= cache_bytes
        self._arrays: dict[str, np.ndarray] = {}
        self.positions = np.arange(len(frames))
        self.dropped = 0
        if self.cached:
            self._prepare_all(shapes, progress)

    def _prepare_all(self, shapes: dict, progress: bool) -> None:
        n = len(self.frames)
        arrays = {k: np.zeros((n, *s), dtype=d) for k, (s, d) in shapes.items()}
        arrays[TARGET] = np.zeros((n, NUM_JOINTS, 3), dtype=np.float32)
        frames: Iterator[Frame] = iter(self.frames)
        if progress:
            from mmhpe_ros.progress import progress_bar

            frames = progress_bar(frames, total=n, unit="frame", desc="prepare frames", leave=False)
        for i, frame in enumerate(frames):
            for key, value in self._sample(frame).items():
                arrays[key][i] = value
        keep = np.flatnonzero(arrays[PRESENT].any(axis=1))
        self.dropped = n - len(keep)
        self._arrays = {k: v[keep] if self.dropped else v for k, v in arrays.items()}
        self.positions = keep

    def _sample(self, frame: Frame) -> dict[str, np.ndarray]:
        sample = prepare_inputs(frame.data, self.config)
        joints = np.asarray(frame.joints, dtype=np.float32)
        if joints.shape != (NUM_JOINTS, 3):
            raise ValueError(f"frame {frame.key} #{frame.index}: joints {joints.shape}, expected ({NUM_JOINTS}, 3)")
        sample[TARGET] = joints
        return sample

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self.cached:
            sample = {k: v[index] for k, v in self._arrays.items()}
        else:
            sample = self._sample(self.frames[int(self.positions[index])])
        out = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sample.items()}
        out[INDEX] = torch.tensor(int(self.positions[index]))
        return out

    def mean_joints(self, limit: int = 2048) -> np.ndarray:
        """Mean ground-truth pose (17, 3) of (an even subset of) the frames."""
        if self.cached:
            return self._arrays[TARGET].mean(axis=0) if len(self) else np.zeros((NUM_JOINTS, 3), np.float32)
        picks = strided(len(self), limit)
        return np.mean([self.frames[int(self.positions[i])].joints for i in picks], axis=0)


__all__ = ["FrameSubset", "PoseDataset", "frame_source", "source_index", "split_sources", "strided"]
