"""A tiny MM-Fi tree writer for the reader's tests (our own, independent of the generator)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.io import savemat

from mmhpe_ros.data.frames import SequenceKey

KEYS = (SequenceKey("E01", "S01", "A02"), SequenceKey("E01", "S01", "A03"),
        SequenceKey("E02", "S12", "A02"), SequenceKey("E02", "S12", "A03"))
FRAMES = 3


def expected_frame(key: SequenceKey, index: int) -> dict[str, np.ndarray]:
    """The arrays of one frame, deterministic from its key and index (awkward values included)."""
    seed = [int(key.subject[1:]), int(key.action[1:]), index]
    rng = np.random.default_rng(seed)
    amp = rng.uniform(0, 40, (3, 114, 10))
    amp[1, 7, index % 10] = np.inf  # real CSI amplitudes contain inf
    return {
        "rgb": rng.uniform(0, 640, (17, 2)).astype(np.float32),
        "lidar": rng.normal(size=(int(rng.integers(1, 50)), 3)),
        "mmwave": rng.normal(size=(int(rng.integers(1, 9)), 5)),
        "wifi": np.stack([amp, rng.uniform(-np.pi, np.pi, (3, 114, 10))]),
    }


def ground_truth(key: SequenceKey, frames: int = FRAMES) -> np.ndarray:
    rng = np.random.default_rng([int(key.subject[1:]), int(key.action[1:]), 999])
    return rng.normal(size=(frames, 17, 3))


def write_sequence(root: Path, key: SequenceKey, truth: np.ndarray, frames: Sequence[dict[str, np.ndarray]]) -> None:
    """One sequence's files in the MM-Fi layout: ``truth`` (F, 17, 3) and each frame's arrays."""
    sequence = root / key.environment / key.subject / key.action
    for folder in ("rgb", "lidar", "mmwave", "wifi-csi"):
        (sequence / folder).mkdir(parents=True)
    np.save(sequence / "ground_truth.npy", truth)
    for index, arrays in enumerate(frames):
        name = f"frame{index + 1:03d}"
        np.save(sequence / "rgb" / f"{name}.npy", arrays["rgb"])
        np.asarray(arrays["lidar"], dtype=np.float64).tofile(sequence / "lidar" / f"{name}.bin")
        np.asarray(arrays["mmwave"], dtype=np.float64).tofile(sequence / "mmwave" / f"{name}.bin")
        savemat(sequence / "wifi-csi" / f"{name}.mat", {"CSIamp": arrays["wifi"][0], "CSIphase": arrays["wifi"][1]})


def write_tree(root: Path, keys=KEYS, frames: int = FRAMES) -> Path:
    """Write ``keys`` in the MM-Fi layout with every modality of :func:`expected_frame`."""
    for key in keys:
        write_sequence(root, key, ground_truth(key, frames), [expected_frame(key, i) for i in range(frames)])
    return root
