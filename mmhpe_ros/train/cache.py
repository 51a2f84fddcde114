"""What the sensors of each frame observed, computed once and kept on disk as memory-mapped arrays.

:func:`prepare_frames` runs stage 1 of the model inputs (:func:`~mmhpe_ros.model.observe.observe`,
with the rig of the frame's environment: its data in the base frame, the person found) over every
frame of a source (in DataLoader workers when asked, with a progress bar) and stores one ``.npy``
per observation key (whatever keys ``observe`` returns, plus ``joints``: the ground truth in the
base frame) under ``<cache_dir>/<key>/``. Stage 2 (centring on the fused root, augmentation) runs
on every fetched batch (:class:`~mmhpe_ros.train.augment.BodyFrameBatches`). The key is a hash of
everything the arrays depend on:

- the source's fingerprint: its frames and the sizes and modification times of their files
  (:meth:`MmfiDataset.fingerprint`, the bag files for bags, the positions of a subset);
- the input-relevant :class:`ModelConfig` fields (:meth:`ModelConfig.input_fields`: all but the
  architecture);
- :data:`PREPROCESSING_VERSION` and a hash of the source text of the stage-1 modules
  (:data:`STAGE_1_MODULES`: ``model/observe.py``, ``model/inputs.py``, ``model/csi.py`` and the
  geometry they use, ``geometry/localise.py``, ``camera.py``, ``transforms.py``,
  ``background.py``), so a change of the preprocessing invalidates the cache even if nobody bumps
  the version;
- the rigs: every calibration and background model used (:meth:`RigCatalogue.fingerprint`).

A changed file, selection, preprocessing or calibration gives a new key, hence a fresh cache;
old entries stay until deleted (``rm -r <cache_dir>``). An entry is written under
``<key>.partial-<pid>`` and renamed when complete, so a killed first pass leaves no half cache.
Sources without a fingerprint (in-memory frame lists) are prepared into memory, or into a
temporary directory when larger than ``cache_bytes``. A complete cache up to ``cache_bytes`` is
loaded into memory; a larger one is memory-mapped read-only (the OS page cache keeps what fits).
"""
from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mmhpe_ros.data.frames import Frame, FrameSource, SequenceKey
from mmhpe_ros.geometry import background as background_module
from mmhpe_ros.geometry import camera as camera_module
from mmhpe_ros.geometry import localise as localise_module
from mmhpe_ros.geometry import transforms as transforms_module
from mmhpe_ros.model import csi as csi_module
from mmhpe_ros.model import inputs as inputs_module
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.data.rigs import RigCatalogue
from mmhpe_ros.model import observe as observe_module
from mmhpe_ros.model.observe import LOCALISED, observe
from mmhpe_ros.skeleton import NUM_JOINTS

log = logging.getLogger(__name__)
# Bump when what observe returns changes in a way the source hash below would miss
# (e.g. a change in a module it imports).
PREPROCESSING_VERSION = 1
TARGET = "joints"
DEFAULT_CACHE_BYTES = 4 << 30  # a prepared set up to this size is held in memory, a larger one memory-mapped
META_FILE = "meta.json"
PARALLEL_MIN_FRAMES = 256  # smaller sources are prepared in the calling process (workers cost more to start)
CACHE_FORMAT = "mmhpe_ros.prepared/1"


# The modules whose code computes the cached arrays (observe and what it calls)
STAGE_1_MODULES = (observe_module, inputs_module, csi_module, localise_module, camera_module, transforms_module,
                   background_module)


def _inputs_source_hash() -> str:
    try:
        return hashlib.sha256("".join(inspect.getsource(m) for m in STAGE_1_MODULES).encode()).hexdigest()
    except (OSError, TypeError):  # no source (frozen install): rely on the version constant
        return "no-source"


def source_fingerprint(source: FrameSource) -> str | None:
    """A hash of the frames and files a source reads, or None when it cannot say (in-memory lists)."""
    own = getattr(source, "fingerprint", None)
    if callable(own):
        return own()
    paths = getattr(source, "paths", None)
    index = getattr(source, "index", None)
    if paths is not None and index is not None and not callable(index):  # bags
        digest = hashlib.sha256(repr(getattr(source, "modalities", ())).encode())
        for root in paths:
            for path in sorted(Path(root).rglob("*")):
                if path.is_file():
                    stat = path.stat()
                    digest.update(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        digest.update(repr([(str(k), i) for k, i in index]).encode())
        return digest.hexdigest()
    return None


def cache_key(fingerprint: str, model_config: ModelConfig, calibration: Mapping[str, Any] | None = None) -> str:
    """The cache entry name of a source's prepared inputs (see the module docstring)."""
    recipe = {"format": CACHE_FORMAT, "source": fingerprint, "inputs": model_config.input_fields(),
              "version": PREPROCESSING_VERSION, "inputs_source": _inputs_source_hash(),
              "calibration": dict(calibration or {})}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:32]


def source_index(source: FrameSource) -> list[tuple[SequenceKey, int]]:
    """(sequence key, frame index) of every frame, from the source's index (or by reading it)."""
    index = getattr(source, "index", None)
    if index is not None and not callable(index):
        return list(index)
    return [(frame.key, frame.index) for frame in source]


def previous_positions(index: Sequence[tuple[SequenceKey, int]]) -> np.ndarray:
    """For each frame, the position of the frame before it in the same sequence (the nearest
    earlier frame index present), or its own position at a sequence start."""
    previous = np.arange(len(index), dtype=np.int64)
    last: dict[SequenceKey, tuple[int, int]] = {}
    for position in sorted(range(len(index)), key=lambda p: (index[p][0], index[p][1])):
        key, frame = index[position]
        if key in last and last[key][0] < frame:
            previous[position] = last[key][1]
        last[key] = (frame, position)
    return previous


@dataclass
class PreparedFrames:
    """Observation arrays (N, ...) of every frame of ``frames``, keyed like ``observe``
    plus ``joints``; ``previous`` (N,) the position of each frame's predecessor in its sequence."""

    frames: FrameSource
    arrays: dict[str, np.ndarray]
    previous: np.ndarray
    directory: Path | None = None  # the disk cache entry (None: in memory)
    mapped: bool = False  # arrays are read-only memory maps of ``directory``
    seconds: float = 0.0  # time spent preparing (0 when loaded from the cache)
    temporary: bool = False
    _cleanup: Any = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.previous)

    @property
    def usable(self) -> np.ndarray:
        """(N,) bool: frames in which some modality found the person (a root to centre on) and whose
        ground truth is finite (an empty room's is NaN: one such target would make every weight NaN)."""
        return self.arrays[LOCALISED].any(axis=1) & np.isfinite(self.arrays[TARGET]).all(axis=(1, 2))

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers: reopen memory maps, do not copy them
        state = self.__dict__.copy()
        state["_cleanup"] = None
        if self.mapped:
            state["arrays"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.arrays is None:
            self.arrays = _open_arrays(self.directory, mapped=True)


def _open_arrays(directory: Path, mapped: bool) -> dict[str, np.ndarray]:
    meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    return {key: np.load(directory / f"{key}.npy", mmap_mode="r" if mapped else None, allow_pickle=False)
            for key in meta["keys"]}


class _Prepare(Dataset):
    """Frame i -> its prepared arrays (run in DataLoader workers during the first pass)."""

    def __init__(self, frames: FrameSource, config: ModelConfig, rigs: RigCatalogue) -> None:
        self.frames, self.config, self.rigs = frames, config, rigs

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return prepare_sample(self.frames[index], self.config, self.rigs)


def prepare_sample(frame: Frame, config: ModelConfig, rigs: RigCatalogue) -> dict[str, np.ndarray]:
    """What the frame's sensors observed (:func:`~mmhpe_ros.model.observe.observe`, with the rig of
    its environment) plus ``joints`` (17, 3) float32, the ground truth in the base frame."""
    rig = rigs.rig(frame.key)
    sample = observe(frame.data, rig, config)
    joints = np.asarray(frame.joints, dtype=np.float64)
    if joints.shape != (NUM_JOINTS, 3):
        raise ValueError(f"frame {frame.key} #{frame.index}: joints {joints.shape}, expected ({NUM_JOINTS}, 3)")
    sample[TARGET] = rig.calibration.ground_truth_to_base().apply(joints).astype(np.float32)
    return sample


def _identity(sample: Any) -> Any:
    return sample


def _prepared_samples(frames: FrameSource, config: ModelConfig, rigs: RigCatalogue,
                      workers: int) -> Iterator[dict[str, np.ndarray]]:
    if workers <= 0 or len(frames) < PARALLEL_MIN_FRAMES:
        return (prepare_sample(frames[i], config, rigs) for i in range(len(frames)))
    return iter(DataLoader(_Prepare(frames, config, rigs), batch_size=None, num_workers=workers,
                           collate_fn=_identity, prefetch_factor=8))


def prepare_frames(
    frames: FrameSource,
    model_config: ModelConfig,
    rigs: RigCatalogue,
    cache_dir: str | Path | None = None,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    workers: int = 0,
    progress: bool = False,
) -> PreparedFrames:
    """The prepared inputs of every frame of ``frames`` (observed with ``rigs``, the rig of each
    environment): from the disk cache when there, else computed once (and stored there when the
    source has a fingerprint and ``cache_dir`` is set)."""
    calibration = {"rigs": rigs.fingerprint()}
    index = source_index(frames)
    rigs.check(key for key, _ in index)
    previous = previous_positions(index)
    fingerprint = source_fingerprint(frames) if cache_dir is not None else None
    if fingerprint is not None:
        root = Path(cache_dir)  # type: ignore[arg-type]
        entry = root / cache_key(fingerprint, model_config, calibration)
        if (entry / META_FILE).is_file():
            arrays, mapped = _load(entry, cache_bytes)
            if len(arrays[TARGET]) == len(index):
                log.info("prepared inputs from the cache %s", entry)
                return PreparedFrames(frames, arrays, previous, entry, mapped)
            log.warning("cache %s holds %d frames, the source %d: preparing again", entry, len(arrays[TARGET]), len(index))
        return _build(frames, model_config, rigs, previous, root, entry, cache_bytes, workers, progress, calibration)
    return _build(frames, model_config, rigs, previous, None, None, cache_bytes, workers, progress, calibration)


def _load(entry: Path, cache_bytes: int) -> tuple[dict[str, np.ndarray], bool]:
    meta = json.loads((entry / META_FILE).read_text(encoding="utf-8"))
    mapped = int(meta["bytes"]) > cache_bytes
    return _open_arrays(entry, mapped), mapped


def _remove_stale_partials(root: Path) -> None:
    for path in root.glob("*.partial-*"):
        try:
            pid = int(path.name.rsplit("-", 1)[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (ValueError, PermissionError):
            continue


def _build(frames: FrameSource, config: ModelConfig, rigs: RigCatalogue, previous: np.ndarray, root: Path | None,
           entry: Path | None,
           cache_bytes: int, workers: int, progress: bool, calibration: Mapping[str, Any] | None) -> PreparedFrames:
    n = len(frames)
    start = time.perf_counter()
    samples = _prepared_samples(frames, config, rigs, workers)
    if progress:
        from mmhpe_ros.progress import progress_bar

        samples = progress_bar(samples, total=n, unit="frame", desc="prepare inputs", leave=False)
    arrays: dict[str, np.ndarray] = {}
    target, temporary = None, False
    try:
        for i, sample in enumerate(samples):
            if i == 0:
                per_frame = sum(np.asarray(v).nbytes for v in sample.values())
                if entry is not None:
                    root.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
                    _remove_stale_partials(root)  # type: ignore[arg-type]
                    target = root / f"{entry.name}.partial-{os.getpid()}"  # type: ignore[operator]
                elif per_frame * n > cache_bytes:
                    target, temporary = Path(tempfile.mkdtemp(prefix="mmhpe_prepared_")), True
                if target is not None:
                    target.mkdir(parents=True, exist_ok=True)
                arrays = {k: _allocate(target, k, (n, *np.shape(v)), np.asarray(v).dtype) for k, v in sample.items()}
            if sample.keys() != arrays.keys():
                raise ValueError(f"observe returned keys {sorted(sample)} for frame {i}, "
                                 f"{sorted(arrays)} for frame 0")
            for key, value in sample.items():
                arrays[key][i] = value
    except BaseException:
        if target is not None:
            shutil.rmtree(target, ignore_errors=True)
        raise
    seconds = time.perf_counter() - start
    if n == 0:
        return PreparedFrames(frames, {LOCALISED: np.zeros((0, config.num_modalities), bool),
                                       TARGET: np.zeros((0, NUM_JOINTS, 3), np.float32)}, previous)
    if target is None:
        return PreparedFrames(frames, arrays, previous, seconds=seconds)
    for array in arrays.values():
        array.flush()  # type: ignore[attr-defined]
    total = sum(a.nbytes for a in arrays.values())
    meta = {"format": CACHE_FORMAT, "frames": n, "keys": list(arrays), "bytes": total, "seconds": round(seconds, 3),
            "model_inputs": config.input_fields(), "preprocessing_version": PREPROCESSING_VERSION,
            "calibration": dict(calibration or {})}
    (target / META_FILE).write_text(json.dumps(meta, indent=1, default=str) + "\n", encoding="utf-8")
    del arrays
    if temporary:
        prepared = PreparedFrames(frames, _open_arrays(target, mapped=True), previous, target, True, seconds, True)
        prepared._cleanup = _TemporaryDirectory(target)
        return prepared
    try:
        os.replace(target, entry)  # type: ignore[arg-type]
    except OSError:  # another process finished the same entry first: use theirs
        shutil.rmtree(target, ignore_errors=True)
    arrays, mapped = _load(entry, cache_bytes)  # type: ignore[arg-type]
    log.info("prepared %d frames in %.1f s into %s", n, seconds, entry)
    return PreparedFrames(frames, arrays, previous, entry, mapped, seconds)


def _allocate(directory: Path | None, key: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if directory is None:
        return np.zeros(shape, dtype=dtype)
    return np.lib.format.open_memmap(directory / f"{key}.npy", mode="w+", dtype=dtype, shape=shape)


class _TemporaryDirectory:
    """Deletes a temporary cache directory when the last reference to it goes."""

    def __init__(self, path: Path) -> None:
        self.path, self.pid = path, os.getpid()

    def __del__(self) -> None:
        if os.getpid() == self.pid:
            shutil.rmtree(self.path, ignore_errors=True)


def to_tensors(batch: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Numpy batch arrays -> tensors (copies of memory-mapped data)."""
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


__all__ = ["DEFAULT_CACHE_BYTES", "PREPROCESSING_VERSION", "PreparedFrames", "cache_key", "prepare_frames",
           "prepare_sample", "previous_positions", "source_fingerprint", "source_index", "to_tensors"]
