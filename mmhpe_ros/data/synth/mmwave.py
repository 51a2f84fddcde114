"""mmWave radar model: a sparse point cloud of moving body parts with Doppler velocity and intensity.

Each body sphere (:mod:`surface`) is a scatterer at the point of its surface nearest the radar.
Static-clutter removal (as in TI's people-counting chains) keeps mostly what moves: a scatterer
is detected with a probability that grows with its radial speed, from ``STATIC_DETECTION`` for a
still part. A detection is measured with the radar's coarse resolution (range, azimuth and
elevation noise), its Doppler velocity is the scatterer's radial velocity (positive away from the
radar) plus noise, quantised to the velocity bin, and its intensity (dB) falls with range as
1/R^4 and grows with the part's size. Ghost points complete the cloud: floor-multipath mirrors of
true detections and random clutter detections. Columns: x, y, z (world frame), doppler (m/s),
intensity (dB); typically a handful to a few tens of points, sorted by range.
"""
from __future__ import annotations

import numpy as np

from mmhpe_ros.data.synth.scene import Scene
from mmhpe_ros.data.synth.surface import SURFACE

STATIC_DETECTION = 0.03
SPEED_SCALE_MPS = 0.12  # radial speed at which detection becomes likely
FIELD_OF_VIEW_RAD = (np.deg2rad(60.0), np.deg2rad(30.0))  # azimuth, elevation half angles
RANGE_NOISE_M = 0.06
AZIMUTH_NOISE_RAD = 0.12
ELEVATION_NOISE_RAD = 0.25
VELOCITY_BIN_MPS = 0.04
VELOCITY_NOISE_MPS = 0.03


def _quantised(velocity: np.ndarray) -> np.ndarray:
    """Velocities rounded to the radar's Doppler bins."""
    return np.round(velocity / VELOCITY_BIN_MPS) * VELOCITY_BIN_MPS


def _spherical(local: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    distance = np.linalg.norm(local, axis=-1)
    return distance, np.arctan2(local[:, 1], local[:, 0]), np.arcsin(local[:, 2] / np.maximum(distance, 1e-9))


def mmwave_points(scene: Scene, joints: np.ndarray, velocities: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """One frame's radar points (N, 5) float64 for joints and joint velocities (17, 3)."""
    radar = scene.radar
    centres = SURFACE.centres(joints)
    toward = centres - radar.position
    unit = toward / np.linalg.norm(toward, axis=-1, keepdims=True)
    surface = centres - SURFACE.radii[:, None] * unit
    radial = (SURFACE.centres(velocities) * unit).sum(-1)
    detect = STATIC_DETECTION + (1 - STATIC_DETECTION) * (1 - np.exp(-(radial / SPEED_SCALE_MPS) ** 2))
    local = radar.to_sensor(surface)
    distance, azimuth, elevation = _spherical(local)
    seen = (np.abs(azimuth) < FIELD_OF_VIEW_RAD[0]) & (np.abs(elevation) < FIELD_OF_VIEW_RAD[1])
    hit = seen & (rng.random(len(detect)) < detect)
    count = int(hit.sum())
    distance = distance[hit] + rng.normal(0, RANGE_NOISE_M, count)
    azimuth = azimuth[hit] + rng.normal(0, AZIMUTH_NOISE_RAD, count)
    elevation = elevation[hit] + rng.normal(0, ELEVATION_NOISE_RAD, count)
    measured = np.stack([distance * np.cos(elevation) * np.cos(azimuth),
                         distance * np.cos(elevation) * np.sin(azimuth), distance * np.sin(elevation)], -1)
    xyz = measured @ radar.rotation().T + radar.position
    doppler = _quantised(radial[hit] + rng.normal(0, VELOCITY_NOISE_MPS, count))
    intensity = 38.0 + 20 * np.log10(SURFACE.radii[hit] / 0.1) - 40 * np.log10(distance / 3.0)
    intensity += rng.normal(0, 3.0, count)
    points = np.column_stack([xyz, doppler, intensity])
    ghosts = _ghosts(scene, points, rng)
    cloud = np.vstack([points, ghosts])
    order = np.argsort(np.linalg.norm(cloud[:, :3] - radar.position, axis=-1), kind="stable")
    return cloud[order]


def _ghosts(scene: Scene, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Floor-multipath mirrors of true detections and random clutter detections, (G, 5)."""
    count = int(rng.poisson(scene.radar_ghost_rate))
    mirrored = rng.random(count) < 0.5 if len(points) else np.zeros(count, dtype=bool)
    ghosts = np.empty((count, 5))
    back, half_width, _ = scene.room
    source = points[rng.integers(0, max(len(points), 1), count)] if len(points) else np.zeros((count, 5))
    behind = source[:, 0] + rng.uniform(0.1, 0.4, count)  # the bounced path is longer
    ghosts[:, 0] = np.where(mirrored, behind, rng.uniform(1.0, back, count))
    ghosts[:, 1] = np.where(mirrored, source[:, 1], rng.uniform(-half_width, half_width, count))
    ghosts[:, 2] = np.where(mirrored, -source[:, 2], rng.uniform(0.0, 2.5, count))
    ghosts[:, 3] = np.where(mirrored, source[:, 3], _quantised(rng.normal(0, 0.05, count)))
    ghosts[:, 4] = np.where(mirrored, source[:, 4] - 6.0, rng.uniform(12.0, 24.0, count))
    ghosts[:, 4] += rng.normal(0, 2.0, count)
    return ghosts
