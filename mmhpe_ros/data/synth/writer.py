"""Write simulated sequences as an MM-Fi tree, file for file as the dataset ships it.

    <out>/E0x/Syy/Azz/ground_truth.npy          (F, 17, 3) float64, metres
    <out>/E0x/Syy/Azz/rgb/frameNNN.npy          (17, 2) float64, pixels (COCO order)
    <out>/E0x/Syy/Azz/lidar/frameNNN.bin        raw little-endian float64, (N, 3)
    <out>/E0x/Syy/Azz/mmwave/frameNNN.bin       raw little-endian float64, (N, 5)
    <out>/E0x/Syy/Azz/wifi-csi/frameNNN.mat     MATLAB v5: CSIamp, CSIphase (3, 114, 10) float64

Folder names, extensions and numbering come from :mod:`mmhpe_ros.modalities` and
:func:`mmhpe_ros.data.mmfi.frame_file_name`. Bytes depend only on the data: the one varying field
of a MATLAB file, the creation date in its text header, is replaced by a fixed text.
"""
from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from mmhpe_ros.data.mmfi import frame_file_name, sequence_dir
from mmhpe_ros.data.synth.sequence import SequenceData, simulate_sequence
from mmhpe_ros.modalities import ENVIRONMENTS, GROUND_TRUTH_FILE, MMFI_FORMATS

MAT_HEADER_TEXT = b"MATLAB 5.0 MAT-file, written by mmhpe-ros synth (simulated MM-Fi CSI)"
MAT_TEXT_BYTES = 116  # the descriptive text field of a MATLAB v5 header
POINT_DTYPE = np.dtype("<f8")


def mat_bytes(variables: dict[str, np.ndarray]) -> bytes:
    """A MATLAB v5 file of ``variables`` (scipy.io.savemat) with a fixed header text."""
    from scipy.io import savemat

    buffer = io.BytesIO()
    savemat(buffer, variables, format="5", do_compression=False, oned_as="row")
    blob = bytearray(buffer.getvalue())
    blob[:MAT_TEXT_BYTES] = MAT_HEADER_TEXT.ljust(MAT_TEXT_BYTES, b" ")
    return bytes(blob)


def write_sequence(root: str | Path, data: SequenceData) -> int:
    """Write one sequence's files under ``root``; returns the bytes written."""
    path = sequence_dir(root, data.key)
    folders = {m: path / MMFI_FORMATS[m].folder for m in ("rgb", "lidar", "mmwave", "wifi")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    np.save(path / GROUND_TRUTH_FILE, np.ascontiguousarray(data.joints, dtype=np.float64))
    for index in range(data.num_frames):
        keypoints = np.ascontiguousarray(data.rgb[index], dtype=np.float64)
        np.save(folders["rgb"] / frame_file_name("rgb", index), keypoints)
        for modality in ("lidar", "mmwave"):
            points = np.ascontiguousarray(getattr(data, modality)[index], dtype=POINT_DTYPE)
            (folders[modality] / frame_file_name(modality, index)).write_bytes(points.tobytes())
        (folders["wifi"] / frame_file_name("wifi", index)).write_bytes(mat_bytes({
            "CSIamp": data.csi_amplitude[index], "CSIphase": data.csi_phase[index]}))
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _simulate_and_write(job: tuple[str, str, str, int, int]) -> int:
    root, subject, action, frames, seed = job
    return write_sequence(root, simulate_sequence(subject, action, frames, seed))


@dataclass(frozen=True)
class TreeSummary:
    """What :func:`write_tree` wrote."""

    sequences: int
    frames: int
    bytes: int


def prepare_output(out: str | Path, overwrite: bool) -> Path:
    """Check ``out`` may be written: absent or empty, or (with ``overwrite``) an MM-Fi tree,
    which is then removed. Refuses to delete anything that is not an MM-Fi tree."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a directory")
    entries = sorted(out.iterdir()) if out.is_dir() else []
    if entries and not overwrite:
        raise FileExistsError(f"{out}: not empty; pass --overwrite to replace an MM-Fi tree there")
    if entries:
        foreign = [e.name for e in entries if not (e.is_dir() and e.name in ENVIRONMENTS)]
        if foreign:
            raise FileExistsError(
                f"{out}: holds {foreign[:3]}, not only MM-Fi environment folders (E01..E04); "
                "refusing to delete it"
            )
        for entry in entries:
            shutil.rmtree(entry)
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_tree(out: str | Path, subjects: Sequence[str], actions: Sequence[str], frames: int, seed: int,
               *, workers: int = 1, overwrite: bool = False, progress: bool = True) -> TreeSummary:
    """Simulate ``subjects`` x ``actions`` (``frames`` frames each) and write them as an MM-Fi tree.

    The output is identical (byte for byte) for the same arguments, whatever ``workers``.
    """
    out = prepare_output(out, overwrite)
    jobs = [(str(out), s, a, frames, seed) for s in subjects for a in actions]
    total = 0
    for written in _run(jobs, workers, progress):
        total += written
    return TreeSummary(len(jobs), len(jobs) * frames, total)


def _run(jobs: list[tuple[str, str, str, int, int]], workers: int, progress: bool) -> Iterator[int]:
    from mmhpe_ros.progress import progress_bar

    bar = progress_bar(enabled=progress, total=len(jobs), unit="sequence", desc="synth")
    try:
        if workers <= 1:
            results: Iterable[int] = map(_simulate_and_write, jobs)
            for result in results:
                bar.update()
                yield result
            return
        with get_context("spawn").Pool(workers) as pool:
            for result in pool.imap_unordered(_simulate_and_write, jobs):
                bar.update()
                yield result
    finally:
        bar.close()

