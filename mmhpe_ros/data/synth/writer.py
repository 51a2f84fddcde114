"""Write simulated sequences as an MM-Fi tree, file for file as the dataset ships it.

    <out>/E0x/Syy/Azz/ground_truth.npy          (F, 17, 3) float64, metres
    <out>/E0x/Syy/Azz/rgb/frameNNN.npy          (17, 2) float64, pixels (COCO order)
    <out>/E0x/Syy/Azz/lidar/frameNNN.bin        raw little-endian float64, (N, 3)
    <out>/E0x/Syy/Azz/mmwave/frameNNN.bin       raw little-endian float64, (N, 5)
    <out>/E0x/Syy/Azz/wifi-csi/frameNNN.mat     MATLAB v5: CSIamp, CSIphase (3, 114, 10) float64
    <out>/calibration/E0x.yaml                  the environment's rig (geometry.calibration format)

Points are in each sensor's own frame, keypoints in the camera's pixels, the ground truth in
base_link; the calibration files map the sensor frames to base_link. The official layout
(E0x/Syy/Azz/...) is unchanged: MM-Fi readers ignore the calibration folder.

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

from mmhpe_ros.data.mmfi import CALIBRATION_FOLDER, calibration_path, frame_file_name, sequence_dir
from mmhpe_ros.data.synth.lidar import SCANS
from mmhpe_ros.data.synth.scene import environment_scene
from mmhpe_ros.data.synth.sequence import SequenceData, simulate_sequence
from mmhpe_ros.geometry.calibration import write_calibration
from mmhpe_ros.modalities import ENVIRONMENTS, GROUND_TRUTH_FILE, MMFI_FORMATS, environment_of

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


def _simulate_and_write(job: tuple[str, str, str, int, int, str]) -> int:
    root, subject, action, frames, seed, scan = job
    return write_sequence(root, simulate_sequence(subject, action, frames, seed, lidar=SCANS[scan]))


def write_calibrations(root: str | Path, environments: Iterable[str], seed: int) -> int:
    """Write each environment's true rig calibration beside the tree; returns the bytes written."""
    total = 0
    for environment in sorted(set(environments)):
        comment = (f"The rig of {environment} in a tree written by `mmhpe-ros synth --seed {seed}`:\n"
                   "sensor frames -> base_link (REP 103: x forward, y left, z up; the floor at z = 0).")
        path = write_calibration(calibration_path(root, environment),
                                 environment_scene(environment, seed).calibration(), comment)
        total += path.stat().st_size
    return total


@dataclass(frozen=True)
class TreeSummary:
    """What :func:`write_tree` wrote."""

    sequences: int
    frames: int
    bytes: int


def _is_calibration_folder(entry: Path) -> bool:
    """A ``calibration`` folder holding only the generator's ``E0x.yaml`` files."""
    names = {f"{environment}.yaml" for environment in ENVIRONMENTS}
    return entry.is_dir() and entry.name == CALIBRATION_FOLDER and all(
        p.name in names and p.is_file() and not p.is_symlink() for p in entry.iterdir())


def prepare_output(out: str | Path, overwrite: bool) -> Path:
    """Check ``out`` may be written: absent or empty, or (with ``overwrite``) a generated MM-Fi
    tree (E01..E04 folders and the calibration folder), which is then removed. Refuses to delete
    anything else."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a directory")
    entries = sorted(out.iterdir()) if out.is_dir() else []
    if entries and not overwrite:
        raise FileExistsError(f"{out}: not empty; pass --overwrite to replace an MM-Fi tree there")
    if entries:
        foreign = [e.name for e in entries
                   if not ((e.is_dir() and e.name in ENVIRONMENTS) or _is_calibration_folder(e))]
        if foreign:
            raise FileExistsError(
                f"{out}: holds {foreign[:3]}, not only MM-Fi environment folders (E01..E04) and "
                f"the generator's {CALIBRATION_FOLDER}/E0x.yaml files; refusing to delete it"
            )
        for entry in entries:
            shutil.rmtree(entry)
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_tree(out: str | Path, subjects: Sequence[str], actions: Sequence[str], frames: int, seed: int,
               *, workers: int = 1, overwrite: bool = False, progress: bool = True,
               lidar_scan: str = "sector") -> TreeSummary:
    """Simulate ``subjects`` x ``actions`` (``frames`` frames each) and write them as an MM-Fi tree,
    with the calibration of each environment used beside it.

    ``lidar_scan``: ``sector`` (MM-Fi's recorded sector, sparse room) or ``full`` (360 degrees,
    every room return). The output is identical (byte for byte) for the same arguments, whatever
    ``workers``.
    """
    if lidar_scan not in SCANS:
        raise ValueError(f"lidar_scan must be one of {sorted(SCANS)}, got {lidar_scan!r}")
    out = prepare_output(out, overwrite)
    jobs = [(str(out), s, a, frames, seed, lidar_scan) for s in subjects for a in actions]
    total = write_calibrations(out, (environment_of(s) for s in subjects), seed)
    for written in _run(jobs, workers, progress):
        total += written
    return TreeSummary(len(jobs), len(jobs) * frames, total)


def _run(jobs: list[tuple[str, str, str, int, int, str]], workers: int, progress: bool) -> Iterator[int]:
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

