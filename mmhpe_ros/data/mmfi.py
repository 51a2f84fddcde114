"""Reader of the real MM-Fi tree: :class:`MmfiDataset` and one loader per modality file.

Layout (``/work/shared/docs/mmfi.md``, the MM-Fi toolbox)::

    <root>/E01..E04/S01..S40/A01..A27/ground_truth.npy            (F, 17, 3), F = 297
    <root>/E0x/Syy/Azz/<folder>/frame001.<ext> .. frameF.<ext>    folder/ext: modalities.MMFI_FORMATS

Beside it a tree may hold ``<root>/calibration/E0x.yaml``, each environment's rig
(:mod:`mmhpe_ros.geometry.calibration`; written by `mmhpe-ros synth`). The reader ignores it (it
looks at E01..E04 only); :func:`tree_calibrations` reads it.

A frame file of size 0 marks a frame missing for that modality. The files are untrusted input:
every file is size-checked against ``MAX_FILE_BYTES`` before it is read, ``.npy`` files are read
without pickle after their header is checked, ``.mat`` files are walked
(:mod:`mmhpe_ros.data.matfile`) before scipy parses them, and every array is checked for its
MM-Fi shape and dtype. Problems raise :class:`MmfiFormatError` naming the file and what was
expected.
"""
from __future__ import annotations

import io
import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Sequence

import numpy as np

from mmhpe_ros.data.frames import Frame, SequenceKey
from mmhpe_ros.data.matfile import MatFileError, mat_variables
from mmhpe_ros.modalities import (
    ACTIONS,
    CSI_ANTENNAS,
    CSI_PACKETS_PER_FRAME,
    CSI_SUBCARRIERS,
    ENVIRONMENTS,
    GROUND_TRUTH_FILE,
    LIDAR_FIELDS,
    MMFI_FORMATS,
    MMWAVE_FIELDS,
    MODALITIES,
    SUBJECTS,
    environment_of,
)
from mmhpe_ros.skeleton import NUM_JOINTS, NUM_KEYPOINTS_2D

# Largest file of each kind that is read at all (real MM-Fi: keypoints 0.4 KB, CSI .mat ~60 KB,
# LiDAR .bin tens of KB, ground truth 120 KB); anything larger is refused before reading.
MAX_FILE_BYTES: dict[str, int] = {"npy": 1 << 20, "bin": 64 << 20, "mat": 4 << 20}
MAX_GROUND_TRUTH_BYTES = 16 << 20
GROUND_TRUTH_EXPECTED = f"(frames >= 1, {NUM_JOINTS}, 3) floating point (metres)"

CSI_VARIABLES: tuple[str, ...] = ("CSIamp", "CSIphase")  # stacked in this order: wifi[0], wifi[1]
CSI_SHAPE = (CSI_ANTENNAS, CSI_SUBCARRIERS, CSI_PACKETS_PER_FRAME)
CSI_MATLAB_CLASSES = (6, 7)  # double, single
KEYPOINTS_SHAPE = (NUM_KEYPOINTS_2D, 2)
POINT_COLUMNS: dict[str, int] = {"lidar": len(LIDAR_FIELDS), "mmwave": len(MMWAVE_FIELDS)}
POINT_DTYPE = np.dtype("<f8")  # MM-Fi .bin files: raw little-endian float64
MISSING_MODES = ("skip", "absent")
GROUND_TRUTH_CACHE = 8  # sequences whose ground truth a dataset keeps in memory (FIFO)
CALIBRATION_FOLDER = "calibration"


class MmfiFormatError(ValueError):
    """A file or folder of an MM-Fi tree that does not have the layout MM-Fi ships."""


class PartialDatasetWarning(UserWarning):
    """The tree lacks sequences, ground truth or modality folders that were asked for."""


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------


def frame_file_name(modality: str, index: int) -> str:
    """File name of 0-based frame ``index`` of ``modality``: ``frame001.npy`` for rgb frame 0."""
    return f"frame{index + 1:03d}.{MMFI_FORMATS[modality].extension}"


def sequence_dir(root: str | Path, key: SequenceKey) -> Path:
    """``<root>/E01/S01/A01``."""
    return Path(root, key.environment, key.subject, key.action)


def frame_path(root: str | Path, key: SequenceKey, modality: str, index: int) -> Path:
    """``<root>/E01/S01/A01/<folder>/frameNNN.<ext>`` of one frame of one modality."""
    return sequence_dir(root, key) / MMFI_FORMATS[modality].folder / frame_file_name(modality, index)


def calibration_path(root: str | Path, environment: str) -> Path:
    """``<root>/calibration/E01.yaml``: where a tree keeps the calibration of an environment."""
    return Path(root, CALIBRATION_FOLDER, f"{environment}.yaml")


def tree_calibrations(root: str | Path, environments: Iterable[str] = ENVIRONMENTS) -> dict[str, str]:
    """Text of each calibration file the tree at ``root`` holds, by environment (none: empty).

    Each is checked to parse as a calibration (ValueError naming the file otherwise)."""
    from mmhpe_ros.geometry.calibration import load_calibration

    texts = {}
    for environment in environments:
        path = calibration_path(root, environment)
        if path.is_file():
            load_calibration(path)  # size-checked and parsed before its text is used
            texts[environment] = path.read_text(encoding="utf-8")
    return texts


# ---------------------------------------------------------------------------------------------
# Loaders: one file -> the array exactly as stored
# ---------------------------------------------------------------------------------------------


def check_file_size(path: str | Path, size: int, limit: int) -> None:
    """Refuse an empty file (MM-Fi's mark of a missing frame) or one larger than ``limit``."""
    if size == 0:
        raise MmfiFormatError(f"{path}: empty file (MM-Fi marks a missing frame this way)")
    if size > limit:
        raise MmfiFormatError(f"{path}: {size} bytes, more than the {limit}-byte limit for this file")


def _file_size(path: str | Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        raise MmfiFormatError(f"{path}: missing file") from None


def _npy_header(file: BinaryIO, path: str | Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) of an open .npy file; refuses object arrays."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        version = np.lib.format.read_magic(file)
        reader = readers.get(version)
        if reader is not None:
            shape, _, dtype = reader(file)
    except Exception as error:  # numpy's header parser raises ValueError, EOFError, TokenError...
        raise MmfiFormatError(
            f"{path}: not a readable .npy file ({type(error).__name__}: {error})"
        ) from error
    if reader is None:
        raise MmfiFormatError(f"{path}: .npy format version {version}, expected 1.0 or 2.0")
    if dtype.hasobject or dtype.kind not in "fiu":
        raise MmfiFormatError(f"{path}: dtype {dtype}, expected a numeric array (no objects)")
    return shape, dtype, file.tell()


def _read_npy(
    path: str | Path, limit: int, accept: Callable[[tuple[int, ...], np.dtype], bool], expected: str,
    *, header_only: bool = False,
) -> tuple[tuple[int, ...], np.dtype, np.ndarray | None]:
    """(shape, dtype, array) of a .npy file after checking its size, header and completeness;
    ``accept(shape, dtype)`` says whether the header is the ``expected`` one."""
    size = _file_size(path)
    check_file_size(path, size, limit)
    with open(path, "rb") as file:
        shape, dtype, offset = _npy_header(file, path)
        if not accept(shape, dtype):
            raise MmfiFormatError(f"{path}: {shape} {dtype}, expected {expected}")
        needed = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if size != needed:
            raise MmfiFormatError(
                f"{path}: {size} bytes, expected {needed} for a {shape} {dtype} array (truncated?)"
            )
        if header_only:
            return shape, dtype, None
        file.seek(0)
        try:
            return shape, dtype, np.load(file, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise MmfiFormatError(f"{path}: unreadable .npy file ({error})") from error


def load_keypoints(path: str | Path) -> np.ndarray:
    """An rgb keypoint file: (17, 2) pixels, the file's own dtype."""
    return _read_npy(path, MAX_FILE_BYTES["npy"], lambda shape, _: shape == KEYPOINTS_SHAPE,
                     f"{KEYPOINTS_SHAPE} 2D keypoints")[2]


def load_points(path: str | Path, columns: int) -> np.ndarray:
    """A LiDAR (3 columns) or mmWave (5 columns) .bin file: raw float64 -> (N, columns)."""
    size = _file_size(path)
    check_file_size(path, size, MAX_FILE_BYTES["bin"])
    row = columns * POINT_DTYPE.itemsize
    if size % row:
        raise MmfiFormatError(
            f"{path}: .bin size {size} bytes is not a multiple of {row} = {columns} float64"
        )
    return np.fromfile(path, dtype=POINT_DTYPE).reshape(-1, columns)


def check_csi_mat(blob: bytes, path: str | Path) -> None:
    """Check a CSI .mat file's bytes before scipy parses them: well-formed MATLAB v5
    (:func:`matfile.mat_variables`) holding CSIamp and CSIphase as real (3, 114, 10) double or
    single arrays."""
    try:
        variables = mat_variables(blob)
    except MatFileError as error:
        raise MmfiFormatError(f"{path}: malformed MATLAB v5 file: {error}") from error
    for name in CSI_VARIABLES:
        variable = variables.get(name)
        if variable is None:
            raise MmfiFormatError(f"{path}: no variable {name!r}; expected {' and '.join(CSI_VARIABLES)}")
        real_float = variable.matlab_class in CSI_MATLAB_CLASSES and not variable.is_complex
        if variable.dims != CSI_SHAPE or not real_float:
            raise MmfiFormatError(
                f"{path}: {name} is {variable.describe()}, expected {CSI_SHAPE} real double or single"
            )


def load_csi(path: str | Path) -> np.ndarray:
    """A WiFi-CSI .mat file -> (2, 3, 114, 10) = stack([CSIamp, CSIphase]), values as stored.

    The file's structure is checked (:func:`check_csi_mat`) before ``scipy.io.loadmat`` reads it.
    """
    from scipy.io import loadmat

    check_file_size(path, _file_size(path), MAX_FILE_BYTES["mat"])
    with open(path, "rb") as file:
        blob = file.read()
    check_csi_mat(blob, path)
    try:
        mat = loadmat(io.BytesIO(blob), variable_names=CSI_VARIABLES)
    except Exception as error:  # scipy raises many types for corrupt files
        raise MmfiFormatError(f"{path}: unreadable MATLAB file ({type(error).__name__}: {error})") from error
    arrays = [mat.get(name) for name in CSI_VARIABLES]
    for name, array in zip(CSI_VARIABLES, arrays):
        if not isinstance(array, np.ndarray) or array.shape != CSI_SHAPE or array.dtype.kind != "f":
            raise MmfiFormatError(f"{path}: {name} did not load as a {CSI_SHAPE} float array")
    return np.stack(arrays)


def _is_ground_truth(shape: tuple[int, ...], dtype: np.dtype) -> bool:
    return len(shape) == 3 and shape[0] >= 1 and shape[1:] == (NUM_JOINTS, 3) and dtype.kind == "f"


def ground_truth_info(path: str | Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ground_truth.npy, from its header, checked to be (F, 17, 3) float."""
    shape, dtype, _ = _read_npy(path, MAX_GROUND_TRUTH_BYTES, _is_ground_truth,
                                GROUND_TRUTH_EXPECTED, header_only=True)
    return shape, dtype


def load_ground_truth(path: str | Path, num_frames: int | None = None) -> np.ndarray:
    """A ground_truth.npy: (F, 17, 3) float metres (``F == num_frames`` when given)."""
    shape, _, array = _read_npy(path, MAX_GROUND_TRUTH_BYTES, _is_ground_truth, GROUND_TRUTH_EXPECTED)
    if num_frames is not None and shape[0] != num_frames:
        raise MmfiFormatError(f"{path}: {shape[0]} frames, the index holds {num_frames} (file changed?)")
    return array


def load_modality_file(modality: str, path: str | Path) -> np.ndarray:
    """One frame file of ``modality`` (a name of ``modalities.MODALITIES``), exactly as stored."""
    if modality == "rgb":
        return load_keypoints(path)
    if modality in POINT_COLUMNS:
        return load_points(path, POINT_COLUMNS[modality])
    if modality == "wifi":
        return load_csi(path)
    raise ValueError(f"no loader for modality {modality!r}; readable: {', '.join(MODALITIES)}")


# ---------------------------------------------------------------------------------------------
# Index of a tree
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sequence:
    """One indexed sequence: its folders present, and which frame files hold data."""

    key: SequenceKey
    path: Path
    num_frames: int
    modalities: tuple[str, ...]  # requested modalities whose folder exists
    filled: np.ndarray  # (num_frames, len(modalities)) bool: file size > 0


def _scan_modality(path: Path, modality: str, num_frames: int) -> np.ndarray:
    """Sizes of frame001..frameF of one modality folder (names and sizes only, no reads)."""
    extension = MMFI_FORMATS[modality].extension
    limit = MAX_FILE_BYTES[extension]
    sizes: dict[str, int] = {}
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.name.startswith("frame") and entry.name.endswith("." + extension) and entry.is_file():
                sizes[entry.name] = entry.stat().st_size
    names = [frame_file_name(modality, index) for index in range(num_frames)]
    absent = [name for name in names if name not in sizes]
    if absent:
        raise MmfiFormatError(
            f"{path / absent[0]}: missing file ({len(absent)} of frame001..frame{num_frames:03d} "
            f"missing; MM-Fi ships every frame, an empty file where the sensor had no data)"
        )
    extra = sorted(set(sizes) - set(names))
    if extra:
        raise MmfiFormatError(
            f"{path / extra[0]}: frame file beyond the {num_frames} frames of {GROUND_TRUTH_FILE} "
            f"({len(extra)} such files)"
        )
    array = np.array([sizes[name] for name in names], dtype=np.int64)
    too_large = np.flatnonzero(array > limit)
    if too_large.size:
        check_file_size(path / names[too_large[0]], int(array[too_large[0]]), limit)
    if modality in POINT_COLUMNS:
        row = POINT_COLUMNS[modality] * POINT_DTYPE.itemsize
        ragged = np.flatnonzero(array % row)
        if ragged.size:
            raise MmfiFormatError(
                f"{path / names[ragged[0]]}: .bin size {array[ragged[0]]} bytes is not a multiple "
                f"of {row} = {POINT_COLUMNS[modality]} float64"
            )
    return array


def _subdirs(path: Path, allowed: Iterable[str]) -> list[str]:
    """Sorted names of the folders in ``path`` that are in ``allowed``; other entries ignored."""
    allowed = set(allowed)
    with os.scandir(path) as entries:
        return sorted(e.name for e in entries if e.name in allowed and e.is_dir())


def _checked_names(kind: str, names: Iterable[str] | None, known: Sequence[str]) -> tuple[str, ...]:
    if names is None:
        return tuple(known)
    names = tuple(names)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown MM-Fi {kind} {unknown}; expected names like {known[0]}..{known[-1]}")
    return names


def _summarise(keys: Iterable[SequenceKey], selected: set[SequenceKey], limit: int = 8) -> str:
    """Short list of ``keys``: an environment or a subject stands for all its ``selected`` sequences."""
    keys = set(keys)
    items: list[str] = []
    for environment in sorted({k.environment for k in keys}):
        in_environment = {k for k in selected if k.environment == environment}
        if in_environment <= keys:
            items.append(environment)
            continue
        for subject in sorted({k.subject for k in keys if k.environment == environment}):
            of_subject = {k for k in in_environment if k.subject == subject}
            if of_subject <= keys:
                items.append(f"{environment}/{subject}")
            else:
                items.extend(str(k) for k in sorted(of_subject & keys))
    items.sort(key=lambda item: item.count("/"))  # whole environments first, then subjects
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


# ---------------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------------


class MmfiDataset:
    """Frames of an MM-Fi tree (a ``FrameSource``), arrays exactly as the files store them.

    ``modalities`` (default ``modalities.MODALITIES``) are read into ``Frame.data``; folders of
    other modalities (depth, infra1, ...) are ignored. ``environments``, ``subjects``, ``actions``
    and ``select`` (a predicate on :class:`SequenceKey`, e.g. ``splits.split_filter(...)``) choose
    sequences. ``missing="skip"`` leaves out a frame where a requested modality's file is empty,
    as the MM-Fi toolbox does (``skipped_frames`` counts them); ``missing="absent"`` keeps it
    with that modality absent from ``Frame.data``.

    The tree is indexed once (folder listings, file sizes, ground-truth headers); frames are read
    lazily. A partial tree (sequences, ground truth or modality folders missing) loads what is
    there and emits one :class:`PartialDatasetWarning` saying what was missing.
    """

    def __init__(
        self,
        root: str | Path,
        modalities: Sequence[str] | None = None,
        environments: Iterable[str] | None = None,
        subjects: Iterable[str] | None = None,
        actions: Iterable[str] | None = None,
        missing: str = "skip",
        *,
        select: Callable[[SequenceKey], bool] | None = None,
        progress: bool = False,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: no such directory (expected an MM-Fi tree root)")
        if missing not in MISSING_MODES:
            raise ValueError(f"missing must be one of {MISSING_MODES}, got {missing!r}")
        self.modalities = _checked_names("modalities", modalities, MODALITIES)
        self.missing = missing
        wanted_environments = _checked_names("environments", environments, ENVIRONMENTS)
        wanted_subjects = _checked_names("subjects", subjects, SUBJECTS)
        wanted_actions = _checked_names("actions", actions, ACTIONS)

        def wanted(key: SequenceKey) -> bool:
            return (key.environment in wanted_environments and key.subject in wanted_subjects
                    and key.action in wanted_actions and (select is None or select(key)))

        in_tree = self._sequence_keys()
        if not in_tree:
            raise MmfiFormatError(
                f"{self.root}: no MM-Fi sequence folders (E01..E04/S01..S40/A01..A27) in this directory"
            )
        self._ground_truth: OrderedDict[int, np.ndarray] = OrderedDict()
        selected = {SequenceKey(environment_of(s), s, a) for s in SUBJECTS for a in ACTIONS}
        self._index([key for key in in_tree if wanted(key)], {k for k in selected if wanted(k)}, progress)

    def _index(self, keys: list[SequenceKey], selected: set[SequenceKey], progress: bool) -> None:
        """Index the sequences ``keys``; warn about what of ``selected`` is missing."""
        self._sequences: list[_Sequence] = []
        self.skipped_frames = 0
        frame_sequence, frame_index = [np.zeros(0, np.int32)], [np.zeros(0, np.int32)]
        no_ground_truth: list[SequenceKey] = []
        no_folder: dict[str, list[SequenceKey]] = {m: [] for m in self.modalities}
        for key in self._progress(keys, progress):
            sequence = self._index_sequence(key, no_folder)
            if sequence is None:
                no_ground_truth.append(key)
                continue
            keep = np.flatnonzero(sequence.filled.all(axis=1)) if self.missing == "skip" \
                else np.arange(sequence.num_frames)
            self.skipped_frames += sequence.num_frames - len(keep)
            frame_sequence.append(np.full(len(keep), len(self._sequences), dtype=np.int32))
            frame_index.append(keep.astype(np.int32))
            self._sequences.append(sequence)
        self._frame_sequence = np.concatenate(frame_sequence)
        self._frame_index = np.concatenate(frame_index)
        self._warn_partial(selected, set(keys), no_ground_truth, no_folder)

    # -- FrameSource -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._frame_index)

    def __getitem__(self, index: int) -> Frame:
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame {index} out of range for {len(self)} frames")
        sequence = self._sequences[self._frame_sequence[index]]
        frame = int(self._frame_index[index])
        data = {
            modality: load_modality_file(modality, sequence.path / MMFI_FORMATS[modality].folder
                                         / frame_file_name(modality, frame))
            for modality, filled in zip(sequence.modalities, sequence.filled[frame]) if filled
        }
        joints = self._sequence_ground_truth(int(self._frame_sequence[index]))[frame].copy()
        return Frame(key=sequence.key, index=frame, joints=joints, data=data)

    def __iter__(self) -> Iterator[Frame]:
        for index in range(len(self)):
            yield self[index]

    # -- what was indexed --------------------------------------------------------------------

    @property
    def keys(self) -> tuple[SequenceKey, ...]:
        """The sequences loaded, in dataset order."""
        return tuple(sequence.key for sequence in self._sequences)

    @property
    def index(self) -> list[tuple[SequenceKey, int]]:
        """(sequence key, frame index) of every frame, in dataset order."""
        keys = self.keys
        return [(keys[s], int(i)) for s, i in zip(self._frame_sequence, self._frame_index)]

    def __repr__(self) -> str:
        return (f"MmfiDataset({str(self.root)!r}, modalities={list(self.modalities)}, "
                f"missing={self.missing!r}: {len(self._sequences)} sequences, {len(self)} frames, "
                f"{self.skipped_frames} skipped)")

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_ground_truth"] = OrderedDict()  # DataLoader workers start with an empty cache
        return state

    # -- internals ---------------------------------------------------------------------------

    def _sequence_keys(self) -> list[SequenceKey]:
        """Every sequence folder of the tree, in sorted order."""
        keys = []
        for environment in _subdirs(self.root, ENVIRONMENTS):
            for subject in _subdirs(self.root / environment, SUBJECTS):
                if environment_of(subject) != environment:
                    raise MmfiFormatError(
                        f"{self.root / environment / subject}: MM-Fi subject {subject} belongs to "
                        f"{environment_of(subject)}, not {environment}"
                    )
                for action in _subdirs(self.root / environment / subject, ACTIONS):
                    keys.append(SequenceKey(environment, subject, action))
        return keys

    def _index_sequence(self, key: SequenceKey, no_folder: dict[str, list[SequenceKey]]) -> _Sequence | None:
        path = sequence_dir(self.root, key)
        if not (path / GROUND_TRUTH_FILE).is_file():
            return None
        num_frames = ground_truth_info(path / GROUND_TRUTH_FILE)[0][0]
        present, filled = [], []
        for modality in self.modalities:
            folder = path / MMFI_FORMATS[modality].folder
            if not folder.is_dir():
                no_folder[modality].append(key)
                continue
            present.append(modality)
            filled.append(_scan_modality(folder, modality, num_frames) > 0)
        filled_array = np.stack(filled, axis=1) if filled else np.ones((num_frames, 0), dtype=bool)
        return _Sequence(key, path, num_frames, tuple(present), filled_array)

    def _sequence_ground_truth(self, number: int) -> np.ndarray:
        """Ground truth of sequence ``number``, from a small first-in first-out cache (safe to
        share between threads: no lookup depends on another's eviction)."""
        cached = self._ground_truth.get(number)
        if cached is None:
            sequence = self._sequences[number]
            cached = load_ground_truth(sequence.path / GROUND_TRUTH_FILE, sequence.num_frames)
            self._ground_truth[number] = cached
            while len(self._ground_truth) > GROUND_TRUTH_CACHE:
                self._ground_truth.popitem(last=False)
        return cached

    @staticmethod
    def _progress(keys: list[SequenceKey], enabled: bool) -> Iterable[SequenceKey]:
        if not enabled:
            return keys
        from mmhpe_ros.progress import progress_bar

        return progress_bar(keys, unit="sequence", desc="index MM-Fi")

    def _warn_partial(self, selected: set[SequenceKey], found: set[SequenceKey],
                      no_ground_truth: list[SequenceKey], no_folder: dict[str, list[SequenceKey]]) -> None:
        parts = []
        absent = selected - found
        if absent:
            parts.append(f"{len(absent)} of the {len(selected)} MM-Fi sequences selected are not in "
                         f"the tree ({_summarise(absent, selected)})")
        if no_ground_truth:
            parts.append(f"{len(no_ground_truth)} sequences without {GROUND_TRUTH_FILE} were left "
                         f"out ({_summarise(no_ground_truth, selected)})")
        for modality, keys in no_folder.items():
            if keys:
                parts.append(f"{len(keys)} sequences have no {MMFI_FORMATS[modality].folder}/ folder, "
                             f"their frames lack {modality} ({_summarise(keys, selected)})")
        if parts:
            warnings.warn(f"partial MM-Fi tree {self.root}: " + "; ".join(parts),
                          PartialDatasetWarning, stacklevel=4)
