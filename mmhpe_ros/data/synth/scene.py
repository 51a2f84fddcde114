"""Per-environment scene: where each sensor stands, the room and its clutter, and noise levels.

MM-Fi records each environment (E01..E04) with the sensor rig in a different room; here each
environment gets its own room size, furniture boxes, sensor heights and offsets, and noise levels,
drawn deterministically from (seed, environment). All positions are in the world frame of
``docs/synth.md`` (REP-103: x forward from the sensor rig, y left, z up; origin on the floor
below the rig).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mmhpe_ros.modalities import CSI_ANTENNAS, ENVIRONMENTS

SPEED_OF_LIGHT = 299_792_458.0
WIFI_CARRIER_HZ = 5.32e9  # 5 GHz band, 40 MHz channel (Atheros CSI: 114 subcarriers)
WIFI_SUBCARRIER_SPACING_HZ = 312.5e3
# Subcarrier indices of a 40 MHz channel as the Atheros CSI tool reports them: -58..-2, 2..58.
WIFI_SUBCARRIER_INDICES = np.concatenate([np.arange(-58, -1), np.arange(2, 59)]).astype(np.float64)


@dataclass(frozen=True)
class SensorPose:
    """A sensor's position (world frame) and heading: yaw about z, pitch (positive looks down)."""

    position: np.ndarray  # (3,)
    yaw: float = 0.0
    pitch: float = 0.0

    def rotation(self) -> np.ndarray:
        """World-from-sensor rotation (sensor frame: x forward, y left, z up)."""
        cy, sy, cp, sp = np.cos(self.yaw), np.sin(self.yaw), np.cos(self.pitch), np.sin(self.pitch)
        yaw = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
        pitch = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
        return yaw @ pitch

    def to_sensor(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) in this sensor's frame."""
        return (points - self.position) @ self.rotation()


@dataclass(frozen=True)
class WifiLink:
    """Transmitter, receive antennas and the static multipath of the room."""

    transmitter: np.ndarray  # (3,)
    antennas: np.ndarray  # (CSI_ANTENNAS, 3)
    path_extra_m: np.ndarray  # (L,) extra length of each static reflected path beyond line of sight
    path_gain: np.ndarray  # (L,) amplitude relative to line of sight
    path_angle: np.ndarray  # (L,) arrival angle at the antenna array (radians)
    antenna_phase: np.ndarray  # (CSI_ANTENNAS,) fixed phase offsets of the receive chains
    ripple: np.ndarray  # (CSI_SUBCARRIERS,) frequency response of the receiver filters (linear)
    body_gain: float  # body scatterer amplitude scale (relative to line of sight at 1 m x 1 m)
    snr_db: float
    dropout: float  # chance a packet reports zero magnitude on some subcarriers (-> -inf dB)


@dataclass(frozen=True)
class Scene:
    """One environment: sensors, room, clutter, noise."""

    environment: str
    camera: SensorPose
    focal_px: float
    keypoint_noise_px: float  # detector noise at a 3 m distance
    keypoint_outlier_rate: float  # chance per keypoint of a wrong detection
    keypoint_swap_rate: float  # chance per frame of a left/right confusion of one limb pair
    lidar: SensorPose
    lidar_range_noise_m: float
    lidar_background_keep: float  # fraction of room returns kept (dark or specular surfaces drop out)
    radar: SensorPose
    radar_ghost_rate: float  # mean ghost points per frame
    room: np.ndarray  # (3,): back wall x, half width in y, ceiling height
    boxes: np.ndarray  # (B, 2, 3): furniture as axis-aligned boxes, min and max corners
    wifi: WifiLink


@lru_cache(maxsize=16)
def environment_scene(environment: str, seed: int) -> Scene:
    """The scene of ``environment`` (``E01``..``E04``), deterministic for ``seed`` (cached; read only)."""
    if environment not in ENVIRONMENTS:
        raise ValueError(f"unknown MM-Fi environment {environment!r}; expected one of {ENVIRONMENTS}")
    number = ENVIRONMENTS.index(environment) + 1
    rng = np.random.default_rng([seed, 2, number])
    room = np.array([rng.uniform(5.0, 7.0), rng.uniform(2.2, 3.5), rng.uniform(2.6, 3.2)])
    boxes = []
    for _ in range(int(rng.integers(2, 6))):  # furniture against a side wall or the back wall
        size = rng.uniform([0.4, 0.4, 0.4], [1.2, 1.0, 1.8])
        if rng.random() < 0.7:
            y = room[1] - size[1] if rng.random() < 0.5 else -room[1]
            low = np.array([rng.uniform(1.0, room[0] - size[0]), y, 0.0])
        else:
            low = np.array([room[0] - size[0], rng.uniform(-room[1], room[1] - size[1]), 0.0])
        boxes.append([low, low + size])
    rig_height = rng.uniform(0.9, 1.2)
    camera = SensorPose(np.array([0.0, rng.uniform(-0.1, 0.1), rig_height + 0.15]),
                        rng.uniform(-0.04, 0.04), rng.uniform(0.0, 0.06))
    lidar = SensorPose(np.array([0.0, rng.uniform(-0.1, 0.1), rig_height]), rng.uniform(-0.03, 0.03))
    radar = SensorPose(np.array([0.0, rng.uniform(-0.1, 0.1), rig_height - 0.15]), rng.uniform(-0.03, 0.03))
    paths = int(rng.integers(5, 9))
    spacing = SPEED_OF_LIGHT / WIFI_CARRIER_HZ / 2
    receiver = np.array([rng.uniform(4.5, room[0] - 0.3), rng.uniform(-1.5, 1.5), rng.uniform(0.8, 1.2)])
    link = WifiLink(
        transmitter=np.array([rng.uniform(0.2, 0.8), rng.choice([-1, 1]) * rng.uniform(1.0, 2.0),
                              rng.uniform(0.8, 1.5)]),
        antennas=receiver + np.outer(np.arange(CSI_ANTENNAS) - 1, [0.0, spacing, 0.0]),
        path_extra_m=rng.uniform(0.5, 12.0, paths),
        path_gain=rng.uniform(0.2, 0.7, paths),
        path_angle=rng.uniform(-np.pi / 2, np.pi / 2, paths),
        antenna_phase=rng.uniform(-np.pi, np.pi, CSI_ANTENNAS),
        ripple=1.0 + 0.15 * np.cos(WIFI_SUBCARRIER_INDICES / rng.uniform(6, 14) + rng.uniform(0, 2 * np.pi)),
        body_gain=float(rng.uniform(0.15, 0.3)),
        snr_db=float(rng.uniform(18.0, 26.0)),
        dropout=float(rng.uniform(0.01, 0.04)),
    )
    scene = Scene(
        environment=environment, camera=camera, focal_px=float(rng.uniform(480, 560)),
        keypoint_noise_px=float(rng.uniform(3.0, 6.0)), keypoint_outlier_rate=float(rng.uniform(0.01, 0.03)),
        keypoint_swap_rate=float(rng.uniform(0.02, 0.06)),
        lidar=lidar, lidar_range_noise_m=float(rng.uniform(0.01, 0.03)),
        lidar_background_keep=float(rng.uniform(0.05, 0.12)),
        radar=radar, radar_ghost_rate=float(rng.uniform(4.0, 8.0)),
        room=room, boxes=np.array(boxes), wifi=link,
    )
    for part in (scene, scene.camera, scene.lidar, scene.radar, link):  # cached: make it read only
        for value in vars(part).values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
    return scene
