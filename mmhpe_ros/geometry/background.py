"""The static scene as voxels in the base frame: what a LiDAR sees of the room when nobody is there.

Built from clouds of an empty scene (``mmhpe-ros background BAG --out FILE``, or the generator's
empty rooms): a voxel is background when points fell in it in at least ``min_fraction`` of the
frames; the set is dilated by ``dilate`` voxels so that range noise does not leak through. At run
time :meth:`BackgroundModel.contains` is one gather from a dense boolean grid per point, so a
130k-point scan costs a few index operations. Saved as an ``.npz`` (no pickles).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

MAX_CELLS = 64_000_000  # 64 MB of booleans: a 40 x 40 x 4 m grid at 5 cm
FORMAT_VERSION = 1


@dataclass(frozen=True)
class BackgroundModel:
    """Occupied voxels of the static scene: a boolean grid of ``voxel``-sized cells from ``origin``."""

    voxel: float
    origin: np.ndarray  # (3,) lower corner of cell (0, 0, 0), base frame
    occupied: np.ndarray  # (X, Y, Z) bool

    def __post_init__(self) -> None:
        origin = np.asarray(self.origin, dtype=np.float64).reshape(3)
        occupied = np.asarray(self.occupied, dtype=bool)
        if not self.voxel > 0 or occupied.ndim != 3 or occupied.size > MAX_CELLS or not np.isfinite(origin).all():
            raise ValueError(f"background: need voxel > 0 and a 3-D grid of at most {MAX_CELLS} cells, "
                             f"got voxel {self.voxel}, grid {occupied.shape}")
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "occupied", occupied)
        object.__setattr__(self, "voxel", float(self.voxel))

    @classmethod
    def build(cls, clouds: Iterable[np.ndarray], voxel: float = 0.1, min_fraction: float = 0.1,
              dilate: int = 1, lower: np.ndarray | None = None, upper: np.ndarray | None = None) -> "BackgroundModel":
        """From empty-scene clouds (each (N, >= 3), base frame): cells hit in ``min_fraction`` of
        the frames, dilated by ``dilate`` cells. The grid spans ``lower``..``upper`` (default: the
        clouds' extent plus a margin)."""
        from scipy.ndimage import binary_dilation

        clouds = [np.asarray(c, dtype=np.float64)[:, :3] for c in clouds]
        clouds = [c[np.isfinite(c).all(axis=1)] for c in clouds]
        if not clouds or not any(len(c) for c in clouds):
            raise ValueError("background: need at least one non-empty cloud of the empty scene")
        if lower is None or upper is None:
            every = np.concatenate(clouds)
            lower = every.min(axis=0) - (dilate + 1) * voxel if lower is None else lower
            upper = every.max(axis=0) + (dilate + 1) * voxel if upper is None else upper
        origin = np.asarray(lower, dtype=np.float64)
        shape = np.maximum(np.ceil((np.asarray(upper, dtype=np.float64) - origin) / voxel).astype(int), 1)
        if int(np.prod(shape)) > MAX_CELLS:
            raise ValueError(f"background: a {shape.tolist()} grid of {voxel} m cells is too large; "
                             "use a larger voxel or a smaller region")
        hits = np.zeros(int(np.prod(shape)), dtype=np.int32)
        for cloud in clouds:
            cells = np.floor((cloud - origin) / voxel).astype(np.int64)
            inside = ((cells >= 0) & (cells < shape)).all(axis=1)
            flat = np.unique(np.ravel_multi_index(cells[inside].T, shape))
            hits[flat] += 1
        occupied = (hits >= max(1, int(np.ceil(min_fraction * len(clouds))))).reshape(shape)
        if dilate > 0:
            occupied = binary_dilation(occupied, structure=np.ones((3, 3, 3), bool), iterations=dilate)
        return cls(voxel, origin, occupied)

    def contains(self, xyz: np.ndarray) -> np.ndarray:
        """(N,) bool: the point lies in a background cell (points outside the grid: False)."""
        xyz = np.asarray(xyz)
        scale = np.float32(1.0 / self.voxel) if xyz.dtype == np.float32 else 1.0 / self.voxel
        cells = ((xyz[:, :3] - self.origin.astype(xyz.dtype, copy=False)) * scale).astype(np.int32)
        shape = np.array(self.occupied.shape, dtype=np.int32)
        inside = ((cells >= 0) & (cells < shape)).all(axis=1) & (xyz[:, :3] >= self.origin).all(axis=1)
        result = np.zeros(len(xyz), dtype=bool)
        index = cells[inside]
        result[inside] = self.occupied[index[:, 0], index[:, 1], index[:, 2]]
        return result

    @property
    def cells(self) -> int:
        """Number of background cells."""
        return int(self.occupied.sum())

    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` (np.load reads it); the bytes depend only on the model (fixed zip dates)."""
        import zipfile

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"version": np.int32(FORMAT_VERSION), "voxel": np.float64(self.voxel), "origin": self.origin,
                  "occupied": np.packbits(self.occupied.ravel()), "shape": np.array(self.occupied.shape, dtype=np.int64)}
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, value in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(info, "w") as file:
                    np.lib.format.write_array(file, np.asarray(value), allow_pickle=False)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "BackgroundModel":
        """Read a model written by :meth:`save`; ValueError naming the file if it is not one."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["version"]) != FORMAT_VERSION:
                    raise ValueError(f"format version {int(data['version'])}, expected {FORMAT_VERSION}")
                shape = tuple(int(v) for v in data["shape"])
                if len(shape) != 3 or min(shape) < 1 or int(np.prod(shape)) > MAX_CELLS:
                    raise ValueError(f"grid shape {shape}")
                occupied = np.unpackbits(data["occupied"], count=int(np.prod(shape))).astype(bool).reshape(shape)
                return cls(float(data["voxel"]), data["origin"], occupied)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: background model not found") from None
        except (OSError, KeyError, ValueError, EOFError) as error:
            raise ValueError(f"{path}: not a background model ({error})") from None
