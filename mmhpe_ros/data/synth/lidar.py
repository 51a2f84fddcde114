"""LiDAR model: a spinning multi-beam scanner's returns from the body and the room, in scan order.

Rays leave the sensor on a fixed grid (:class:`LidarSpec`: 32 beams over +-22.5 degrees of
elevation, one column every 0.35 degrees, like a 32-beam, 1024-column unit). The MM-Fi-format
tree records the +-30 degree sector in front of the sensor (:data:`SECTOR_SCAN`) and keeps a
sparse part of the room's returns; :data:`FULL_SCAN` records all 360 degrees and every room
return (a dense room of tens of thousands of points, as a driver publishes it).

Each ray stops at the nearest of: a body sphere (:mod:`surface`), a furniture box, the floor, the
walls or the ceiling. So the body is seen only from the sensor's side, body parts occlude what is
behind them, the number of points on the person falls with distance as the fixed angular grid
spreads out, and a person outside the recorded sector is not seen at all. Range noise moves each
point along its ray; returns closer than the minimum range are lost; a few body returns drop out.
Points are in the LiDAR's own frame (x forward, y left, z up), float64, ring by ring.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmhpe_ros.data.synth.scene import Scene, SensorPose
from mmhpe_ros.data.synth.surface import SURFACE

MAX_RANGE_M = 12.0
MIN_RANGE_M = 0.3
BODY_DROPOUT = 0.05


@dataclass(frozen=True)
class LidarSpec:
    """The rays of a scan (sensor frame) and which room returns it keeps."""

    rings: int = 32
    elevation_deg: tuple[float, float] = (-22.5, 22.5)
    azimuth_deg: tuple[float, float] = (-30.0, 30.0)  # recorded sector
    columns: int = 1024  # columns per full turn
    keep_room: bool = False  # True: every room return; False: the scene's background keep rate


SECTOR_SCAN = LidarSpec()
FULL_SCAN = LidarSpec(azimuth_deg=(-180.0, 180.0), keep_room=True)
SCANS = {"sector": SECTOR_SCAN, "full": FULL_SCAN}


@dataclass(frozen=True)
class ScanGrid:
    """The fixed rays of one scan: directions in the sensor and base frames, and their angles."""

    local: np.ndarray  # (R, 3) unit vectors, sensor frame, ring-major scan order
    directions: np.ndarray  # (R, 3) the same rays in base_link
    azimuth: np.ndarray  # (R,) radians, sensor frame
    elevation: np.ndarray  # (R,) radians, sensor frame


def scan_grid(mount: SensorPose, spec: LidarSpec = SECTOR_SCAN) -> ScanGrid:
    """The rays of a scanner at ``mount`` (ring by ring, top ring first)."""
    elevation = np.deg2rad(np.linspace(spec.elevation_deg[1], spec.elevation_deg[0], spec.rings))
    step = 360.0 / spec.columns
    azimuth = np.deg2rad(np.arange(spec.azimuth_deg[0], spec.azimuth_deg[1] - 1e-9, step))
    el, az = (a.ravel() for a in np.meshgrid(elevation, azimuth, indexing="ij"))
    local = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1)
    return ScanGrid(local, local @ mount.rotation().T, az, el)


def _sphere_hits(mount: SensorPose, grid: ScanGrid, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Distance (R,) along each ray to the nearest sphere in front of the sensor (inf if none).

    Only rays inside the spheres' angular box are tested (the body covers a small part of the scan).
    """
    local = mount.to_sensor(centres)
    distance = np.linalg.norm(local, axis=-1)
    spread = np.arcsin(np.clip(radii / distance, 0.0, 1.0))
    azimuth = np.arctan2(local[:, 1], local[:, 0])
    elevation = np.arcsin(local[:, 2] / distance)
    candidate = np.flatnonzero(
        (grid.azimuth >= (azimuth - spread).min()) & (grid.azimuth <= (azimuth + spread).max())
        & (grid.elevation >= (elevation - spread).min()) & (grid.elevation <= (elevation + spread).max())
    )
    offset = centres - mount.position  # (S, 3)
    along = grid.directions[candidate] @ offset.T  # (C, S)
    discriminant = along**2 - ((offset**2).sum(-1) - radii**2)
    hit = (discriminant > 0) & (along > 0)
    nearest = np.where(hit, along - np.sqrt(np.where(hit, discriminant, 0.0)), np.inf).min(axis=1)
    result = np.full(len(grid.directions), np.inf)
    result[candidate] = nearest
    return result


def room_distances(scene: Scene, grid: ScanGrid) -> np.ndarray:
    """Distance along each ray to the room (static for a scene: computed once per sequence)."""
    return scene.room.distances(scene.lidar.position, grid.directions)


def lidar_points(scene: Scene, joints: np.ndarray | None, rng: np.random.Generator, grid: ScanGrid,
                 room: np.ndarray, spec: LidarSpec = SECTOR_SCAN) -> tuple[np.ndarray, np.ndarray]:
    """One frame's point cloud (N, 3) float64 in the LiDAR frame, and which points lie on the
    person (N,) bool, for joints (17, 3) in base_link (None: an empty room).

    ``grid`` and ``room`` come from :func:`scan_grid` and :func:`room_distances` (reused across
    the frames of a sequence).
    """
    body = np.full(len(room), np.inf) if joints is None else \
        _sphere_hits(scene.lidar, grid, SURFACE.centres(joints), SURFACE.radii)
    on_body = body < room
    distance = np.where(on_body, body, room)
    rays = len(distance)
    keep = np.isfinite(distance) & (distance < MAX_RANGE_M) & (distance > MIN_RANGE_M)
    kept_body = rng.random(rays) >= BODY_DROPOUT
    kept_room = np.ones(rays, dtype=bool) if spec.keep_room else rng.random(rays) < scene.lidar_background_keep
    keep &= np.where(on_body, kept_body, kept_room)
    distance = distance[keep] + rng.normal(0.0, scene.lidar_range_noise_m, int(keep.sum()))
    return grid.local[keep] * distance[:, None], on_body[keep]
