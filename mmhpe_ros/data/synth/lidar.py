"""LiDAR model: a spinning multi-beam scanner's returns from the body and the room, in scan order.

Rays leave the sensor on a fixed grid (``RINGS`` beams over +-22.5 degrees of elevation, one
column every 0.35 degrees over the recorded +-30 degree sector, like a 32-beam, 1024-column unit).
Each ray stops at the nearest of: a body sphere (:mod:`surface`), a furniture box, the floor, the
walls or the ceiling. So the body is seen only from the sensor's side, body parts occlude what is
behind them, and the number of points on the person falls with distance as the fixed angular grid
spreads out. Range noise moves each point along its ray; room returns drop out at the scene's
rate (dark or specular surfaces) and a few body returns do too. Points are in the world frame,
float64, ring by ring, as a driver would emit them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmhpe_ros.data.synth.scene import Scene
from mmhpe_ros.data.synth.surface import SURFACE

RINGS = 32
ELEVATION_DEG = (-22.5, 22.5)
AZIMUTH_DEG = (-30.0, 30.0)
AZIMUTH_STEP_DEG = 360.0 / 1024
MAX_RANGE_M = 12.0
BODY_DROPOUT = 0.05


@dataclass(frozen=True)
class ScanGrid:
    """The fixed rays of one scan: world directions and their angles in the sensor frame."""

    directions: np.ndarray  # (R, 3) unit vectors, world frame, ring-major scan order
    azimuth: np.ndarray  # (R,) radians, sensor frame
    elevation: np.ndarray  # (R,) radians, sensor frame


def scan_grid(scene: Scene) -> ScanGrid:
    """The scanner's rays in ``scene`` (ring by ring, top ring first)."""
    elevation = np.deg2rad(np.linspace(ELEVATION_DEG[1], ELEVATION_DEG[0], RINGS))
    azimuth = np.deg2rad(np.arange(AZIMUTH_DEG[0], AZIMUTH_DEG[1], AZIMUTH_STEP_DEG))
    el, az = (a.ravel() for a in np.meshgrid(elevation, azimuth, indexing="ij"))
    local = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1)
    return ScanGrid(local @ scene.lidar.rotation().T, az, el)


def _sphere_hits(scene: Scene, grid: ScanGrid, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Distance (R,) along each ray to the nearest sphere in front of the sensor (inf if none).

    Only rays inside the spheres' angular box are tested (the body covers a small part of the scan).
    """
    origin = scene.lidar.position
    local = scene.lidar.to_sensor(centres)
    distance = np.linalg.norm(local, axis=-1)
    spread = np.arcsin(np.clip(radii / distance, 0.0, 1.0))
    azimuth = np.arctan2(local[:, 1], local[:, 0])
    elevation = np.arcsin(local[:, 2] / distance)
    candidate = np.flatnonzero(
        (grid.azimuth >= (azimuth - spread).min()) & (grid.azimuth <= (azimuth + spread).max())
        & (grid.elevation >= (elevation - spread).min()) & (grid.elevation <= (elevation + spread).max())
    )
    offset = centres - origin  # (S, 3)
    along = grid.directions[candidate] @ offset.T  # (C, S)
    discriminant = along**2 - ((offset**2).sum(-1) - radii**2)
    hit = (discriminant > 0) & (along > 0)
    nearest = np.where(hit, along - np.sqrt(np.where(hit, discriminant, 0.0)), np.inf).min(axis=1)
    result = np.full(len(grid.directions), np.inf)
    result[candidate] = nearest
    return result


def _room_hits(scene: Scene, origin: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """Distance (R,) along each ray to the floor, walls, ceiling or a furniture box."""
    back, half_width, ceiling = scene.room
    with np.errstate(divide="ignore", invalid="ignore"):
        # Planes: floor z=0, ceiling, back wall x=back, side walls y=+-half_width.
        candidates = [
            -origin[2] / rays[:, 2], (ceiling - origin[2]) / rays[:, 2], (back - origin[0]) / rays[:, 0],
            (half_width - origin[1]) / rays[:, 1], (-half_width - origin[1]) / rays[:, 1],
        ]
        planes = np.stack(candidates, 1)
        planes = np.where(planes > 1e-6, planes, np.inf).min(axis=1)
        if len(scene.boxes) == 0:
            return planes
        inverse = 1.0 / rays  # (R, 3); inf where a component is 0 (slab test handles it)
        t0 = (scene.boxes[None, :, 0, :] - origin) * inverse[:, None, :]  # (R, B, 3)
        t1 = (scene.boxes[None, :, 1, :] - origin) * inverse[:, None, :]
        near = np.nanmax(np.minimum(t0, t1), axis=-1)
        far = np.nanmin(np.maximum(t0, t1), axis=-1)
    boxes = np.where((far >= near) & (near > 1e-6), near, np.inf).min(axis=1)
    return np.minimum(planes, boxes)


def room_distances(scene: Scene, grid: ScanGrid) -> np.ndarray:
    """Distance along each ray to the room (static for a scene: computed once per sequence)."""
    return _room_hits(scene, scene.lidar.position, grid.directions)


def lidar_points(scene: Scene, joints: np.ndarray, rng: np.random.Generator,
                 grid: ScanGrid | None = None, room: np.ndarray | None = None) -> np.ndarray:
    """One frame's point cloud (N, 3) float64 for joints (17, 3).

    ``grid`` and ``room`` (:func:`scan_grid`, :func:`room_distances`) may be passed in to reuse
    them across the frames of a sequence.
    """
    grid = scan_grid(scene) if grid is None else grid
    room = room_distances(scene, grid) if room is None else room
    body = _sphere_hits(scene, grid, SURFACE.centres(joints), SURFACE.radii)
    on_body = body < room
    distance = np.where(on_body, body, room)
    rays = len(distance)
    keep = np.isfinite(distance) & (distance < MAX_RANGE_M)
    kept_body = rng.random(rays) >= BODY_DROPOUT
    kept_room = rng.random(rays) < scene.lidar_background_keep
    keep &= np.where(on_body, kept_body, kept_room)
    distance = distance[keep] + rng.normal(0.0, scene.lidar_range_noise_m, int(keep.sum()))
    return scene.lidar.position + grid.directions[keep] * distance[:, None]
