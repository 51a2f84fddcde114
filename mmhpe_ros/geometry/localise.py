"""Find the person before the model sees anything: one root estimate per modality, then one fused.

Everything is in the base frame (REP 103, z up, the floor at ``ground_height``). A *root* is the
point on the floor under the person, ``(x, y, ground_height)``; the model predicts joints relative
to the fused root and the skeleton is placed back there.

- LiDAR (:class:`LidarLocaliser`): crop to the search region, drop the floor (points below
  ``ground_height + ground_clearance``) and the static scene (:class:`~.background.BackgroundModel`),
  cluster what is left (voxel grid, then connected components of voxels closer than
  ``cluster_gap``: scipy.spatial.cKDTree + scipy.sparse.csgraph, docs/geometry.md says why), keep
  the clusters shaped like a person (tall enough, not too wide, enough points) and choose the one
  with most points. Its root is the median x, y of its points.
- Radar (:func:`radar_root`): points moving faster than ``min_speed`` (Doppler), clustered the same
  way; the largest cluster with ``min_points`` or more gives the root.
- Camera (:func:`camera_root`): the rays through the ankles meet the floor where the person stands;
  without usable ankles, the torso's angular size at an assumed torso length gives the distance.
- :func:`fuse_roots`: inverse-variance weighted mean of the estimates near the most precise one.

One person is enough for now: with two, the LiDAR keeps the cluster with more points and the
other person is ignored (docs/geometry.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from mmhpe_ros.geometry.background import BackgroundModel
from mmhpe_ros.skeleton import KEYPOINT_INDEX

# 1-sigma of each modality's root estimate (m): weights of fuse_roots.
ROOT_SIGMA_M: dict[str, float] = {"lidar": 0.05, "mmwave": 0.25, "rgb": 0.3}
ANKLE_HEIGHT_M = 0.08  # the ankle keypoints above the floor
TORSO_LENGTH_M = 0.5  # shoulder centre to hip centre of an adult, for the camera's distance guess
MIN_SCORE = 0.3  # keypoints below this score do not locate the person


@dataclass(frozen=True)
class SearchRegion:
    """Where a person can be, base frame: x and y bounds, and heights above the floor."""

    x: tuple[float, float] = (0.2, 10.0)
    y: tuple[float, float] = (-6.0, 6.0)
    height: tuple[float, float] = (0.0, 2.5)  # above ground_height


@dataclass(frozen=True)
class LidarSettings:
    """Parameters of :class:`LidarLocaliser` (metres unless said)."""

    region: SearchRegion = SearchRegion()
    ground_clearance: float = 0.1  # points lower than this above the floor are floor
    voxel: float = 0.1  # cell of the clustering grid
    cluster_gap: float = 0.25  # cells closer than this (centre to centre) join one cluster
    min_points: int = 25  # a person cluster has at least this many points
    min_top: float = 0.7  # its highest point is at least this high above the floor (a squat: ~0.9 m)
    max_top: float = 2.4
    max_width: float = 1.5  # and it is at most this wide (horizontal extent, either axis)
    person_radius: float = 0.9  # points of the chosen cluster's surroundings kept within this (horizontal)


@dataclass(frozen=True)
class LidarPerson:
    """What the LiDAR localiser found: the person's points (base frame) and its root estimate."""

    points: np.ndarray  # (M, 3) float32
    root: np.ndarray  # (3,) float64


@dataclass
class LidarCounts:
    """What the last call saw (diagnostics)."""

    outside: int = 0  # points outside the search region, on the floor or in the background
    clusters: int = 0  # clusters of what was left


def _clusters(xyz: np.ndarray, voxel: float, gap: float) -> tuple[np.ndarray, int]:
    """Label (N,) of each point's cluster and the number of clusters: points are binned into
    ``voxel`` cells, cells whose centres are within ``gap`` are connected."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    cells = np.floor(xyz / voxel).astype(np.int64)
    cells -= cells.min(axis=0)
    span = cells.max(axis=0) + 1
    keys = (cells[:, 0] * span[1] + cells[:, 1]) * span[2] + cells[:, 2]
    unique, inverse = np.unique(keys, return_inverse=True)
    if len(unique) == 1:
        return np.zeros(len(xyz), dtype=np.int64), 1
    centres = np.column_stack(np.unravel_index(unique, tuple(span))).astype(np.float64) * voxel
    pairs = cKDTree(centres).query_pairs(gap + 1e-6, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])),
                       shape=(len(unique), len(unique)))
    count, cell_labels = connected_components(graph, directed=False)
    return cell_labels[inverse.ravel()], int(count)


class LidarLocaliser:
    """The person in a LiDAR scan, in the base frame (see the module docstring).

    The search region, the floor and the background are folded into one grid of ``voxel`` cells
    at construction (a cell is searched if it lies in the region, above the floor and outside the
    background), so the crop of a scan is one index computation and one gather per point.
    """

    def __init__(self, settings: LidarSettings = LidarSettings(), ground_height: float = 0.0,
                 background: BackgroundModel | None = None) -> None:
        self.settings, self.ground_height, self.background = settings, float(ground_height), background
        self.counts = LidarCounts()
        region, voxel = settings.region, settings.voxel
        self._lower = np.array([region.x[0], region.y[0], ground_height + region.height[0] + settings.ground_clearance])
        upper = np.array([region.x[1], region.y[1], ground_height + region.height[1]])
        self._shape = np.maximum(np.ceil((upper - self._lower) / voxel).astype(np.int64), 1)
        searched = np.zeros(tuple(self._shape + 2), dtype=bool)  # a border of unsearched cells all round
        inner = np.ones(tuple(self._shape), dtype=bool)
        if background is not None:
            inner &= ~self._background_cells(background)
        searched[1:-1, 1:-1, 1:-1] = inner
        self._searched = searched.ravel()
        self._inverse_voxel = np.float32(1.0 / voxel)
        self._offset = (1.0 - self._lower / voxel).astype(np.float32)
        self._top = (self._shape + 1).astype(np.float32)

    def _background_cells(self, background: BackgroundModel) -> np.ndarray:
        """(X, Y, Z) bool: search cells that touch a background cell (any corner or the centre)."""
        voxel = self.settings.voxel
        index = np.stack(np.meshgrid(*(np.arange(n) for n in self._shape), indexing="ij"), axis=-1).reshape(-1, 3)
        cells = np.zeros(len(index), dtype=bool)
        for offset in [(0.5, 0.5, 0.5)] + [(a, b, c) for a in (0.02, 0.98) for b in (0.02, 0.98) for c in (0.02, 0.98)]:
            cells |= background.contains(self._lower + (index + offset) * voxel)
        return cells.reshape(tuple(self._shape))

    def searched(self, xyz: np.ndarray) -> np.ndarray:
        """(N,) bool: points in the search region, above the floor and not background."""
        xyz = np.asarray(xyz, dtype=np.float32)
        flat = np.zeros(len(xyz), dtype=np.int32)
        cell = np.empty(len(xyz), dtype=np.float32)
        index = np.empty(len(xyz), dtype=np.int32)
        for axis in range(3):  # one contiguous pass per step: ~3x faster than on the (N, 3) array
            # cell + 1 = (x - lower) / voxel + 1; truncation puts anything below the region in the border
            np.multiply(xyz[:, axis], self._inverse_voxel, out=cell)
            cell += self._offset[axis]
            np.clip(cell, 0.0, self._top[axis], out=cell)
            index[:] = cell
            flat *= np.int32(self._shape[axis] + 2)
            flat += index
        return self._searched[flat]

    def localise(self, xyz: np.ndarray) -> LidarPerson | None:
        """The person of a scan (N, >= 3) in the base frame, or None when nobody is there."""
        s = self.settings
        xyz = np.asarray(xyz)[:, :3]
        candidates = xyz[self.searched(xyz)]
        self.counts = LidarCounts(outside=len(xyz) - len(candidates))
        if len(candidates) < s.min_points:
            return None
        labels, count = _clusters(candidates.astype(np.float64), s.voxel, s.cluster_gap)
        self.counts.clusters = count
        best = self._best_cluster(candidates, labels, count)
        if best is None:
            return None
        member = candidates[labels == best]
        root_xy = np.median(member[:, :2], axis=0)
        near = np.hypot(candidates[:, 0] - root_xy[0], candidates[:, 1] - root_xy[1]) <= s.person_radius
        points = candidates[near].astype(np.float32)
        return LidarPerson(points, np.array([root_xy[0], root_xy[1], self.ground_height]))

    def _best_cluster(self, xyz: np.ndarray, labels: np.ndarray, count: int) -> int | None:
        """The person-shaped cluster with most points (None if no cluster is person-shaped)."""
        s = self.settings
        sizes = np.bincount(labels, minlength=count)
        order = np.argsort(labels, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        sorted_xyz = xyz[order]
        nonempty = sizes > 0
        top = np.full(count, -np.inf)
        low = np.full((count, 2), np.inf)
        high = np.full((count, 2), -np.inf)
        top[nonempty] = np.maximum.reduceat(sorted_xyz[:, 2], starts[nonempty])
        low[nonempty] = np.minimum.reduceat(sorted_xyz[:, :2], starts[nonempty])
        high[nonempty] = np.maximum.reduceat(sorted_xyz[:, :2], starts[nonempty])
        top -= self.ground_height
        width = (high - low).max(axis=1)
        person = (sizes >= s.min_points) & (top >= s.min_top) & (top <= s.max_top) & (width <= s.max_width)
        if not person.any():
            return None
        return int(np.argmax(np.where(person, sizes, -1)))


def radar_root(points: np.ndarray, ground_height: float = 0.0, region: SearchRegion = SearchRegion(),
               min_speed: float = 0.05, cluster_gap: float = 0.5, min_points: int = 3) -> np.ndarray | None:
    """Root (3,) from radar points (N, 5: x, y, z, doppler, intensity; base frame): the largest
    cluster of moving points (|doppler| >= ``min_speed`` m/s) with ``min_points`` or more."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) == 0:
        return None
    x, y, z = points[:, 0], points[:, 1], points[:, 2] - ground_height
    moving = ((np.abs(points[:, 3]) >= min_speed) & (x >= region.x[0]) & (x <= region.x[1])
              & (y >= region.y[0]) & (y <= region.y[1]) & (z >= region.height[0] - 0.3) & (z <= region.height[1]))
    moving &= np.isfinite(points).all(axis=1)
    if moving.sum() < min_points:
        return None
    xy = points[moving, :2]
    labels, count = _clusters(np.column_stack([xy, np.zeros(len(xy))]), cluster_gap / 2, cluster_gap)
    sizes = np.bincount(labels, minlength=count)
    best = int(np.argmax(sizes))
    if sizes[best] < min_points:
        return None
    root_xy = np.median(xy[labels == best], axis=0)
    return np.array([root_xy[0], root_xy[1], ground_height])


def camera_root(origin: np.ndarray, rays: np.ndarray, score: np.ndarray, ground_height: float = 0.0,
                region: SearchRegion = SearchRegion()) -> np.ndarray | None:
    """Root (3,) from the camera: keypoint rays (17, 3) in the base frame from ``origin`` (3,).

    The ankles' rays meet the plane ``ANKLE_HEIGHT_M`` above the floor under the person; without
    confident ankles that look down, the angle between the shoulder and hip centres at an assumed
    ``TORSO_LENGTH_M`` gives the distance along the hip ray."""
    origin, rays, score = (np.asarray(a, dtype=np.float64) for a in (origin, rays, score))
    usable = (score >= MIN_SCORE) & np.isfinite(rays).all(axis=1)
    ankles = [KEYPOINT_INDEX["left_ankle"], KEYPOINT_INDEX["right_ankle"]]
    feet = []
    for index in ankles:
        ray = rays[index]
        if usable[index] and ray[2] < -0.02:
            distance = (ground_height + ANKLE_HEIGHT_M - origin[2]) / ray[2]
            feet.append(origin[:2] + distance * ray[:2])
    if feet:
        xy = np.mean(feet, axis=0)
    else:
        pairs = [(KEYPOINT_INDEX["left_shoulder"], KEYPOINT_INDEX["right_shoulder"]),
                 (KEYPOINT_INDEX["left_hip"], KEYPOINT_INDEX["right_hip"])]
        if not all(usable[a] and usable[b] for a, b in pairs):
            return None
        shoulder, hip = (_unit(rays[a] + rays[b]) for a, b in pairs)
        angle = np.arccos(np.clip(shoulder @ hip, -1.0, 1.0))
        if angle < 1e-3:
            return None
        xy = origin[:2] + TORSO_LENGTH_M / angle * hip[:2]
    if not (region.x[0] <= xy[0] <= region.x[1] and region.y[0] <= xy[1] <= region.y[1]):
        return None
    return np.array([xy[0], xy[1], ground_height])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def fuse_root_arrays(roots: np.ndarray, localised: np.ndarray, modalities: tuple[str, ...],
                     gate_m: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Batched :func:`fuse_roots`: roots (B, M, 3) and localised (B, M) bool over ``modalities``
    -> (fused roots (B, 3), person found (B,) bool). Rows where nobody was found are 0."""
    roots = np.asarray(roots, dtype=np.float64)
    sigma = np.array([ROOT_SIGMA_M.get(m, np.inf) for m in modalities])
    localised = np.asarray(localised, dtype=bool) & np.isfinite(sigma)
    person = localised.any(axis=1)
    anchor_index = np.argmin(np.where(localised, sigma, np.inf), axis=1)
    anchor = np.take_along_axis(roots, anchor_index[:, None, None], axis=1)  # (B, 1, 3)
    near = localised & (np.hypot(*(roots[..., :2] - anchor[..., :2]).transpose(2, 0, 1)) <= gate_m)
    weights = np.where(near, 1.0 / np.where(np.isfinite(sigma), sigma, 1.0) ** 2, 0.0)
    total = weights.sum(axis=1, keepdims=True)
    fused = (weights[..., None] * roots).sum(axis=1) / np.where(total > 0, total, 1.0)
    return fused, person


def fuse_roots(estimates: Mapping[str, np.ndarray | None], gate_m: float = 1.0) -> np.ndarray | None:
    """One root from the modalities' estimates (None where a modality found nobody): the
    inverse-variance (``ROOT_SIGMA_M``) weighted mean of those within ``gate_m`` (horizontal) of
    the most precise one. None when no modality found the person."""
    modalities = tuple(estimates)
    roots = np.array([[np.zeros(3) if r is None else np.asarray(r, dtype=np.float64) for r in estimates.values()]])
    localised = np.array([[r is not None for r in estimates.values()]])
    fused, person = fuse_root_arrays(roots.reshape(1, len(modalities), 3), localised, modalities, gate_m)
    return fused[0] if person[0] else None
