"""Training data: frame sources by split, the held-out tuning frames, batched datasets and loaders.

- :func:`frame_source` opens the frames of ONE split of an MM-Fi tree (real or generated,
  :class:`MmfiDataset`) or of bags (:class:`BagDataset`): a training run opens only the training
  split, so the validation subjects may be absent from the tree and are never read.
- :func:`training_frames` splits the training frames into those fitted and those held out for
  every training decision (:func:`~mmhpe_ros.data.splits.holdout_sequences`: whole sequences,
  stratified over actions and subjects; the validation split is for ``mmhpe-ros evaluate``).
- :class:`PoseDataset` serves model-ready batches from prepared arrays (:mod:`mmhpe_ros.train.cache`:
  computed once, cached on disk, memory-mapped): a whole batch is fetched by fancy indexing, never
  sample by sample; a temporal RGB model gets ``<key>_window`` arrays (the current frame and the
  ones before it in its sequence); an optional ``transform(batch) -> batch`` runs on every batch.
- :func:`batch_loader` wraps one in a DataLoader (batch sampler, workers, DDP shards).
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, Sampler

from mmhpe_ros.data.frames import Frame, FrameSource, SequenceKey
from mmhpe_ros.data.splits import holdout_sequences, protocol_actions, split_filter, split_of
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.data.rigs import RigCatalogue
from mmhpe_ros.model.body import window_observation_keys
from mmhpe_ros.model.encoders import WINDOW_SUFFIX
from mmhpe_ros.skeleton import NUM_JOINTS
from mmhpe_ros.train.cache import (
    DEFAULT_CACHE_BYTES,
    TARGET,
    PreparedFrames,
    prepare_frames,
    source_fingerprint,
    source_index,
    to_tensors,
)
from mmhpe_ros.train.config import TrainConfig

INDEX = "index"
Transform = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


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

    def fingerprint(self) -> str | None:
        """The source's fingerprint and these positions (None if the source has none)."""
        import hashlib

        parent = source_fingerprint(self.source)
        return None if parent is None else hashlib.sha256(parent.encode() + self.indices.tobytes()).hexdigest()


def frame_source(config: TrainConfig, split: str | None = "train", missing: str | None = None) -> FrameSource:
    """The frames of one split (``"train"``, ``"val"``; None: every frame of the protocol's actions)
    of ``config.data_root`` (an MM-Fi tree: only that split's sequences are indexed) or
    ``config.bags`` (only that split's frames are ever read). ``missing``: the MM-Fi frame policy
    (``"skip"`` frames with an empty modality, as the toolbox does, or keep them ``"absent"``);
    default ``config.missing``."""
    modalities = list(config.model_modalities)
    if config.data_root and config.bags:
        raise ValueError("training config: give data_root (an MM-Fi tree) or bags, not both")
    if config.data_root:
        from mmhpe_ros.data.mmfi import MmfiDataset

        select = split_filter(config.protocol, config.setting, split, config.split_seed) if split else None
        return MmfiDataset(config.data_root, modalities=modalities, actions=protocol_actions(config.protocol),
                           missing=missing or config.missing, select=select, progress=config.progress,
                           strict=config.strict_data)
    if config.bags:
        from mmhpe_ros.data.bags import BagDataset

        bags = BagDataset(list(config.bags), modalities=modalities)
        names = [split_of(key, config.protocol, config.setting, config.split_seed) for key, _ in bags.index]
        return FrameSubset(bags, [i for i, name in enumerate(names) if name is not None and (split is None or name == split)])
    raise ValueError("training config: set data_root (an MM-Fi tree) or bags (rosbag2 files)")


def rig_catalogue(config: TrainConfig, source: FrameSource | None = None) -> RigCatalogue:
    """The rig (calibration, background) of each environment of ``config``'s data: an MM-Fi tree's
    ``calibration/`` and ``background/`` folders, or the calibrations the bags carry."""
    if config.data_root:
        return RigCatalogue.from_tree(config.data_root)
    while isinstance(source, FrameSubset):
        source = source.source
    calibration = getattr(source, "calibration", None)
    if callable(calibration):
        from mmhpe_ros.model.observe import Rig

        environments = sorted({key.environment for key, _ in source_index(source)})
        found = {e: calibration(e) for e in environments}
        return RigCatalogue({e: Rig(c) for e, c in found.items() if c is not None}, where=", ".join(config.bags))
    return RigCatalogue(where="this data")


def default_transforms(config: TrainConfig, model_config: ModelConfig) -> tuple[Transform, Transform]:
    """(training, evaluation) batch transforms: centring on the fused root, relative targets; the
    training one with random rigid augmentation when ``config.augment``."""
    from mmhpe_ros.train.augment import BodyFrameBatches

    return (BodyFrameBatches(model_config, augment=config.augment, seed=config.seed),
            BodyFrameBatches(model_config))


def strided(count: int, limit: int | None) -> np.ndarray:
    """``min(count, limit)`` positions spread evenly over ``range(count)``."""
    if limit is None or limit >= count:
        return np.arange(count)
    return (np.arange(limit, dtype=np.int64) * count) // limit


def split_positions(config: TrainConfig, source: FrameSource, split: str) -> np.ndarray:
    """Positions in ``source`` of the frames of ``split`` under the config's protocol and setting
    (from the source's index: no frame is read)."""
    names = [split_of(key, config.protocol, config.setting, config.split_seed) for key, _ in source_index(source)]
    return np.array([i for i, name in enumerate(names) if name == split], dtype=np.int64)


def _no_frames(config: TrainConfig, split: str, total: int) -> ValueError:
    return ValueError(f"no {split} frames for protocol {config.protocol} setting {config.setting} in "
                      f"{config.data_root or list(config.bags)} ({total} frames in all)")


def holdout_positions(index: Sequence[tuple[SequenceKey, int]], fraction: float, seed: int) -> tuple[np.ndarray, str]:
    """(positions held out, unit) among training frames ``index``: whole sequences
    (:func:`holdout_sequences`); if no sequence can be spared (every action has one training
    sequence), the last ``fraction`` of every sequence's frames (unit ``"sequence tails"``: only
    the frames at the boundary neighbour training frames), with a warning."""
    if fraction <= 0:
        return np.zeros(0, dtype=np.int64), "none"
    held = holdout_sequences({key for key, _ in index}, fraction, seed)
    if held:
        return np.array([i for i, (key, _) in enumerate(index) if key in held], dtype=np.int64), "sequences"
    by_sequence: dict[SequenceKey, list[int]] = {}
    for position, (key, _) in enumerate(index):
        by_sequence.setdefault(key, []).append(position)
    picked = []
    for positions in by_sequence.values():
        positions = sorted(positions, key=lambda p: index[p][1])
        count = min(max(1, round(fraction * len(positions))), len(positions) - 1)
        picked += positions[len(positions) - count:] if count > 0 else []
    warnings.warn("too few training sequences to hold out whole ones (each action has one): holding out the last "
                  f"{fraction:.0%} of every training sequence's frames instead", stacklevel=2)
    return np.array(sorted(picked), dtype=np.int64), "sequence tails"


class PoseDataset(Dataset):
    """Model-ready samples of some frames: ``prepare_inputs`` arrays + ``joints`` (17, 3) float32
    + ``index`` (the frame's position in ``frames``), served by whole batches (:meth:`batch`).

    ``prepared``: arrays of every frame of ``frames`` (default: :func:`prepare_frames`, which
    uses the disk cache ``cache_dir``); ``positions``: which of them this dataset serves (default
    all). Frames in which no modality found the person, or without a finite ground truth, are
    dropped (``dropped`` counts them). ``transform(batch) -> batch`` (numpy arrays, batched) runs on every fetched batch
    (augmentation, centring)."""

    def __init__(self, frames: FrameSource, model_config: ModelConfig, cache_bytes: int = DEFAULT_CACHE_BYTES,
                 progress: bool = False, *, rigs: RigCatalogue | None = None, cache_dir: str | None = None,
                 prepared: PreparedFrames | None = None, positions: Sequence[int] | None = None,
                 transform: Transform | None = None, workers: int = 0) -> None:
        self.frames, self.config, self.transform = frames, model_config, transform
        if prepared is None and rigs is None:
            raise ValueError("PoseDataset needs the prepared arrays or the rigs to prepare them with")
        self.prepared = prepared if prepared is not None else prepare_frames(
            frames, model_config, rigs, cache_dir, cache_bytes, workers, progress)
        wanted = np.arange(len(self.prepared)) if positions is None else np.asarray(positions, dtype=np.int64)
        usable = self.prepared.usable[wanted] if len(wanted) else np.zeros(0, bool)
        self.positions = wanted[usable]
        self.dropped = int(len(wanted) - len(self.positions))
        self.window = model_config.window
        self.window_keys = window_observation_keys(model_config)

    @property
    def cached(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self.positions)

    def batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
        """Samples ``indices`` (of this dataset) as one batch of numpy arrays."""
        positions = self.positions[np.asarray(indices, dtype=np.int64)]
        arrays = self.prepared.arrays
        out = {key: array[positions] for key, array in arrays.items()}
        if self.window > 1:
            frames = self.window_positions(positions)
            for key in self.window_keys:
                out[key + WINDOW_SUFFIX] = arrays[key][frames.reshape(-1)].reshape(*frames.shape, *arrays[key].shape[1:])
        out[INDEX] = positions
        return self.transform(out) if self.transform is not None else out

    def window_positions(self, positions: np.ndarray) -> np.ndarray:
        """(B, T) positions of each frame's window, oldest first, ending at the frame itself; at a
        sequence start the first frame repeats (VideoPose3D's edge padding, causal)."""
        window = np.empty((len(positions), self.window), dtype=np.int64)
        window[:, -1] = positions
        for t in range(self.window - 2, -1, -1):
            window[:, t] = self.prepared.previous[window[:, t + 1]]
        return window

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in to_tensors(self.batch([index])).items()}

    def mean_joints(self, limit: int = 4096) -> np.ndarray:
        """Mean target pose (17, 3) of (an even subset of at most ``limit``) the frames, as the
        model sees targets: after ``transform`` (relative to the person's root)."""
        if not len(self):
            return np.zeros((NUM_JOINTS, 3), np.float32)
        picks = strided(len(self), limit)
        total = np.zeros((NUM_JOINTS, 3), np.float64)
        for start in range(0, len(picks), 1024):
            total += np.asarray(self.batch(picks[start:start + 1024])[TARGET], dtype=np.float64).sum(axis=0)
        return (total / len(picks)).astype(np.float32)

    def subset(self, indices: Sequence[int] | np.ndarray) -> "PoseDataset":
        """The same prepared frames, serving only ``indices`` of this dataset."""
        return PoseDataset(self.frames, self.config, prepared=self.prepared,
                           positions=self.positions[np.asarray(indices, dtype=np.int64)], transform=self.transform)

    def sequence_keys(self) -> list[SequenceKey]:
        """The sequence of every sample."""
        index = source_index(self.frames)
        return [index[int(p)][0] for p in self.positions]


class _Batches(Dataset):
    """A dataset whose items are whole batches: ``[indices] -> dataset.batch(indices)`` as tensors."""

    def __init__(self, dataset: PoseDataset, extra: Callable[[np.ndarray], Mapping[str, Any]] | None = None) -> None:
        self.dataset, self.extra = dataset, extra

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, indices: Sequence[int]) -> dict[str, Any]:
        order = np.sort(np.asarray(indices, dtype=np.int64))  # memory-map locality; a batch is a set
        batch = to_tensors(self.dataset.batch(order))
        if self.extra is not None:
            batch.update(self.extra(order))
        return batch


def _seed_numpy(worker: int) -> None:
    np.random.seed(torch.initial_seed() % 2**32)


class _Fixed(Sampler[int]):
    """Fixed positions, in order."""

    def __init__(self, positions: Sequence[int]) -> None:
        self.positions = list(positions)

    def __iter__(self) -> Iterator[int]:
        return iter(self.positions)

    def __len__(self) -> int:
        return len(self.positions)


def batch_loader(dataset: PoseDataset, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                 rank: int = 0, world_size: int = 1, workers: int = 0, pin_memory: bool = False,
                 positions: Sequence[int] | None = None, drop_last: bool = False,
                 extra: Callable[[np.ndarray], Mapping[str, Any]] | None = None) -> DataLoader:
    """A DataLoader of whole batches of ``dataset`` (one fancy-indexed fetch per batch).

    ``shuffle``: a :class:`DistributedSampler` shard of this process (call ``loader.sampler
    .sampler.set_epoch(epoch)``); else ``positions`` (default: every ``world_size``-th sample from
    ``rank``) in order. ``extra(indices)``: more batch entries (e.g. action labels)."""
    if shuffle:
        sampler: Sampler[int] = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    else:
        sampler = _Fixed(range(rank, len(dataset), world_size) if positions is None else positions)
    batches = BatchSampler(sampler, batch_size, drop_last=drop_last)
    return DataLoader(_Batches(dataset, extra), batch_size=None, sampler=batches, num_workers=workers,
                      pin_memory=pin_memory, worker_init_fn=_seed_numpy if workers else None,
                      prefetch_factor=4 if workers else None)  # workers restart (and re-seed) each epoch


class TrainingData:
    """The training split of a config, prepared once: fitted frames, held-out frames, their sizes.

    ``fit`` and ``holdout`` are :class:`PoseDataset` views of the same prepared arrays; the
    validation split is never opened. ``transform`` runs on fitted batches (augmentation),
    ``eval_transform`` on held-out ones (what must also happen at inference, e.g. centring).
    ``info`` goes into the model card."""

    def __init__(self, config: TrainConfig, model_config: ModelConfig, source: FrameSource | None = None,
                 progress: bool = False, transform: Transform | None = None,
                 eval_transform: Transform | None = None) -> None:
        source = frame_source(config, "train") if source is None else source
        train_positions = split_positions(config, source, "train")
        if len(train_positions) == 0:
            raise _no_frames(config, "train", len(source))
        frames = source if len(train_positions) == len(source) else FrameSubset(source, train_positions)
        index = source_index(frames)
        held, unit = holdout_positions(index, config.holdout_fraction, config.holdout_seed)
        fit = np.setdiff1d(np.arange(len(index)), held)
        fit = fit[strided(len(fit), config.max_train_frames)]
        held = held[strided(len(held), config.max_holdout_frames)]
        prepared = prepare_frames(frames, model_config, rig_catalogue(config, frames), config.resolved_cache_dir(),
                                  config.cache_bytes, config.prepare_workers, progress)
        default_fit, default_eval = default_transforms(config, model_config)
        self.fit = PoseDataset(frames, model_config, prepared=prepared, positions=fit, transform=transform or default_fit)
        self.holdout = PoseDataset(frames, model_config, prepared=prepared, positions=held,
                                   transform=eval_transform or default_eval)
        if len(self.holdout) == 0 and config.holdout_fraction > 0:
            raise ValueError(f"no held-out frames: {len(index)} training frames in {len({k for k, _ in index})} "
                             "sequences; set holdout_fraction higher or give more data")
        self.info = {
            "train_frames": len(self.fit), "holdout_frames": len(self.holdout),
            "holdout_fraction": config.holdout_fraction, "holdout_seed": config.holdout_seed,
            "holdout_unit": unit, "holdout_sequences": len({k for k in self.holdout.sequence_keys()}),
            "dropped_frames": self.fit.dropped + self.holdout.dropped,
            "prepare_seconds": round(prepared.seconds, 2),
        }


def validation_data(config: TrainConfig, model_config: ModelConfig, missing: str | None = None,
                    progress: bool = False, split: str = "val", transform: Transform | None = None) -> PoseDataset:
    """The validation (or another) split as a dataset: for ``mmhpe-ros evaluate`` and, only when
    asked, per-epoch validation curves for plotting. ``missing`` defaults to the toolbox policy."""
    source = frame_source(config, split if split in ("train", "val") else None, missing=missing or "skip")
    positions = split_positions(config, source, split) if split in ("train", "val") else np.arange(len(source))
    if len(positions) == 0:
        raise _no_frames(config, split, len(source))
    frames = source if len(positions) == len(source) else FrameSubset(source, positions)
    limit = config.max_val_frames
    prepared = prepare_frames(frames, model_config, rig_catalogue(config, frames), config.resolved_cache_dir(),
                              config.cache_bytes, config.prepare_workers, progress)
    return PoseDataset(frames, model_config, prepared=prepared, positions=strided(len(frames), limit),
                       transform=transform or default_transforms(config, model_config)[1])


__all__ = ["INDEX", "FrameSubset", "PoseDataset", "TrainingData", "batch_loader", "default_transforms",
           "frame_source", "holdout_positions", "rig_catalogue", "source_index", "split_positions", "strided",
           "validation_data"]
