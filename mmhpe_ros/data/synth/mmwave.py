"""mmWave radar model: a sparse point cloud of moving body parts with Doppler velocity and intensity.

Each body sphere (:mod:`surface`) is a scatterer at the point of its surface nearest the radar.
Static-clutter removal (as in TI's people-counting chains) keeps mostly what moves: a scatterer
is detected with a probability that grows with its radial speed, from ``STATIC_DETECTION`` for a
still part, if it lies in the radar's field of view. A detection is measured with the radar's
coarse resolution (range, azimuth and elevation noise), its Doppler velocity is the scatterer's
radial velocity with respect to the radar (positive away from it) plus noise, quantised to the
velocity bin, and its intensity (dB) falls with range as 1/R^4 and grows with the part's size.

The room leaks through too: static clutter that the removal misses (a few returns per frame from
walls, floor and furniture, Doppler near zero), floor-multipath mirrors of true detections and
random clutter detections. Columns: x, y, z (the radar's own frame: x forward, y left, z up),
doppler (m/s), intensity (dB); typically a handful to a few tens of points, sorted by range.
"""
from __future__ import annotations

import numpy as np

from mmhpe_ros.data.synth.scene import Scene
from mmhpe_ros.data.synth.surface import SURFACE

STATIC_DETECTION = 0.03
SPEED_SCALE_MPS = 0.12  # radial speed at which detection becomes likely
FIELD_OF_VIEW_RAD = (np.deg2rad(60.0), np.deg2rad(30.0))  # azimuth, elevation half angles
MAX_RANGE_M = 10.0
RANGE_NOISE_M = 0.06
AZIMUTH_NOISE_RAD = 0.12
ELEVATION_NOISE_RAD = 0.25
VELOCITY_BIN_MPS = 0.04
VELOCITY_NOISE_MPS = 0.03
CLUTTER_VELOCITY_MPS = 0.02  # residual Doppler of a static return (vibration, phase noise)


def _quantised(velocity: np.ndarray) -> np.ndarray:
    """Velocities rounded to the radar's Doppler bins."""
    return np.round(velocity / VELOCITY_BIN_MPS) * VELOCITY_BIN_MPS


def _spherical(local: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    distance = np.linalg.norm(local, axis=-1)
    return distance, np.arctan2(local[:, 1], local[:, 0]), np.arcsin(local[:, 2] / np.maximum(distance, 1e-9))


def _measured(distance: np.ndarray, azimuth: np.ndarray, elevation: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    """Radar-frame points (N, 3) of true spherical coordinates after the radar's measurement noise."""
    count = len(distance)
    distance = distance + rng.normal(0, RANGE_NOISE_M, count)
    azimuth = azimuth + rng.normal(0, AZIMUTH_NOISE_RAD, count)
    elevation = elevation + rng.normal(0, ELEVATION_NOISE_RAD, count)
    return np.stack([distance * np.cos(elevation) * np.cos(azimuth),
                     distance * np.cos(elevation) * np.sin(azimuth), distance * np.sin(elevation)], -1)


def _in_view(azimuth: np.ndarray, elevation: np.ndarray) -> np.ndarray:
    return (np.abs(azimuth) < FIELD_OF_VIEW_RAD[0]) & (np.abs(elevation) < FIELD_OF_VIEW_RAD[1])


def _body_points(scene: Scene, joints: np.ndarray, velocities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Detections of the body (N, 5), radar frame."""
    radar = scene.radar
    centres = SURFACE.centres(joints)
    toward = centres - radar.position
    unit = toward / np.linalg.norm(toward, axis=-1, keepdims=True)
    surface = centres - SURFACE.radii[:, None] * unit
    radial = (SURFACE.centres(velocities) * unit).sum(-1)
    detect = STATIC_DETECTION + (1 - STATIC_DETECTION) * (1 - np.exp(-(radial / SPEED_SCALE_MPS) ** 2))
    distance, azimuth, elevation = _spherical(radar.to_sensor(surface))
    hit = _in_view(azimuth, elevation) & (rng.random(len(detect)) < detect)
    count = int(hit.sum())
    xyz = _measured(distance[hit], azimuth[hit], elevation[hit], rng)
    doppler = _quantised(radial[hit] + rng.normal(0, VELOCITY_NOISE_MPS, count))
    intensity = 38.0 + 20 * np.log10(SURFACE.radii[hit] / 0.1) - 40 * np.log10(np.maximum(distance[hit], 0.1) / 3.0)
    intensity += rng.normal(0, 3.0, count)
    return np.column_stack([xyz, doppler, intensity])


def _view_rays(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random directions (N, 3) in the radar's field of view, with their azimuth and elevation."""
    azimuth = rng.uniform(-FIELD_OF_VIEW_RAD[0], FIELD_OF_VIEW_RAD[0], count)
    elevation = rng.uniform(-FIELD_OF_VIEW_RAD[1], FIELD_OF_VIEW_RAD[1], count)
    local = np.stack([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], -1)
    return local, azimuth, elevation


def _random_clutter(scene: Scene, count: int, rng: np.random.Generator) -> np.ndarray:
    """Points (N, 3), radar frame, anywhere in the room in the field of view (0.5 m away or more)."""
    local, _, _ = _view_rays(count, rng)
    wall = np.minimum(scene.room.distances(scene.radar.position, local @ scene.radar.rotation().T), MAX_RANGE_M)
    return local * rng.uniform(0.5, np.maximum(wall, 0.5))[:, None]


def _static_clutter(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """Room returns that static-clutter removal missed (N, 5), radar frame: walls, floor and
    furniture seen along random directions of the field of view, Doppler near zero."""
    local, azimuth, elevation = _view_rays(int(rng.poisson(scene.radar_clutter_rate)), rng)
    distance = scene.room.distances(scene.radar.position, local @ scene.radar.rotation().T)
    seen = distance < MAX_RANGE_M
    distance, azimuth, elevation = distance[seen], azimuth[seen], elevation[seen]
    xyz = _measured(distance, azimuth, elevation, rng)
    doppler = _quantised(rng.normal(0, CLUTTER_VELOCITY_MPS, len(distance)))
    intensity = 30.0 - 40 * np.log10(np.maximum(distance, 0.1) / 3.0) + rng.normal(0, 4.0, len(distance))
    return np.column_stack([xyz, doppler, intensity])


def mmwave_points(scene: Scene, joints: np.ndarray | None, velocities: np.ndarray | None,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One frame's radar points (N, 5) float64 in the radar frame, and which are detections of
    the person (N,) bool, for joints and joint velocities (17, 3) in base_link (None: empty room)."""
    body = np.empty((0, 5)) if joints is None else _body_points(scene, joints, velocities, rng)
    clutter = _static_clutter(scene, rng)
    ghosts = _ghosts(scene, body, rng)
    cloud = np.vstack([body, clutter, ghosts])
    person = np.arange(len(cloud)) < len(body)
    order = np.argsort(np.linalg.norm(cloud[:, :3], axis=-1), kind="stable")
    return cloud[order], person[order]


def _ghosts(scene: Scene, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Floor-multipath mirrors of true detections and random clutter detections, (G, 5) radar frame.

    A mirror is the detection reflected in the floor and pushed 0.1-0.4 m further along its ray
    (the bounced path is longer); clutter lies anywhere in the room within the field of view,
    with near-zero Doppler."""
    count = int(rng.poisson(scene.radar_ghost_rate))
    mirrored = rng.random(count) < 0.5 if len(points) else np.zeros(count, dtype=bool)
    source = points[rng.integers(0, max(len(points), 1), count)] if len(points) else np.zeros((count, 5))
    radar = scene.radar
    base = source[:, :3] @ radar.rotation().T + radar.position
    base[:, 2] *= -1.0  # mirrored in the floor
    mirror = radar.to_sensor(base)
    mirror *= 1.0 + rng.uniform(0.1, 0.4, count)[:, None] / np.maximum(np.linalg.norm(mirror, axis=1), 0.1)[:, None]
    anywhere = _random_clutter(scene, count, rng)
    ghosts = np.empty((count, 5))
    ghosts[:, :3] = np.where(mirrored[:, None], mirror, anywhere)
    ghosts[:, 3] = np.where(mirrored, source[:, 3], _quantised(rng.normal(0, 0.05, count)))
    ghosts[:, 4] = np.where(mirrored, source[:, 4] - 6.0, rng.uniform(12.0, 24.0, count))
    ghosts[:, 4] += rng.normal(0, 2.0, count)
    return ghosts
