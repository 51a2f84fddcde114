"""One simulated MM-Fi sequence: a subject doing an action somewhere in a room, seen by all four sensors.

Randomness is drawn per sequence from ``(seed, subject, action)`` (and per environment and per
subject for the scene and the body), so any subset of sequences comes out identical to the same
sequences of a larger run, whatever the order or the number of worker processes.

:func:`simulate_sequence` also takes explicit overrides (for benchmarks and tests): where the
person stands, changed sensor mounts, the LiDAR scan (a full dense scan), or no person at all
(an empty room). Its :class:`SequenceData` holds the arrays in each sensor's own frame, the
ground truth in base_link, the rig's true :class:`~mmhpe_ros.geometry.calibration.Calibration`,
which points lie on the person, and the scene (room geometry included).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import numpy as np

from mmhpe_ros.data.frames import SequenceKey
from mmhpe_ros.data.synth.camera import camera_keypoints
from mmhpe_ros.data.synth.lidar import SECTOR_SCAN, LidarSpec, ScanGrid, lidar_points, room_distances, scan_grid
from mmhpe_ros.data.synth.mmwave import mmwave_points
from mmhpe_ros.data.synth.motion import Motion, Placement, draw_placement, sequence_motion, subject_body
from mmhpe_ros.data.synth.scene import MountChange, Scene, environment_scene
from mmhpe_ros.data.synth.wifi import csi_frames
from mmhpe_ros.geometry.calibration import Calibration
from mmhpe_ros.modalities import CSI_PACKET_RATE_HZ, CSI_PACKETS_PER_FRAME, FRAME_RATE_HZ, environment_of
from mmhpe_ros.skeleton import NUM_JOINTS

# Sub-streams of a sequence's randomness, one per part, so changing one model leaves the others.
STREAMS = ("motion", "camera", "lidar", "mmwave", "wifi", "placement")


@dataclass
class SequenceData:
    """Every array of one sequence (as the MM-Fi files store them) and the truth behind them."""

    key: SequenceKey
    joints: np.ndarray  # (F, 17, 3) float64 metres, base_link (NaN: no person)
    rgb: np.ndarray  # (F, 17, 2) float64 pixels of the camera's intrinsics (NaN: not reported)
    lidar: list[np.ndarray]  # F x (N, 3) float64, LiDAR frame
    mmwave: list[np.ndarray]  # F x (N, 5) float64, radar frame
    csi_amplitude: np.ndarray  # (F, 3, 114, 10) float64 dB
    csi_phase: np.ndarray  # (F, 3, 114, 10) float64 radians
    calibration: Calibration  # the rig's true calibration (sensor frames -> base_link)
    placement: Placement | None  # where the person stood (None: no person)
    lidar_on_person: list[np.ndarray]  # F x (N,) bool: LiDAR point lies on the person
    mmwave_on_person: list[np.ndarray]  # F x (N,) bool: radar point is a detection of the person
    scene: Scene  # the environment as simulated (mounts, room, furniture), base_link

    @property
    def num_frames(self) -> int:
        return len(self.joints)


def sequence_key(subject: str, action: str) -> SequenceKey:
    """The key of ``subject`` doing ``action``, in the subject's fixed environment."""
    return SequenceKey(environment_of(subject), subject, action)


@lru_cache(maxsize=16)
def _cached_scan(environment: str, seed: int, spec: LidarSpec) -> tuple[ScanGrid, np.ndarray]:
    """The LiDAR's rays and their distances to the (static) room of an unchanged environment."""
    grid, room = _lidar_scan(environment_scene(environment, seed), spec)
    for array in (grid.local, grid.directions, grid.azimuth, grid.elevation, room):  # cached: read only
        array.flags.writeable = False
    return grid, room


def _lidar_scan(scene: Scene, spec: LidarSpec) -> tuple[ScanGrid, np.ndarray]:
    grid = scan_grid(scene.lidar, spec)
    return grid, room_distances(scene, grid)


def _rig(environment: str, seed: int, mounts: Mapping[str, MountChange] | None,
         spec: LidarSpec) -> tuple[Scene, tuple[ScanGrid, np.ndarray]]:
    """The environment's scene with ``mounts`` changed, and its LiDAR scan (cached when unchanged)."""
    scene = environment_scene(environment, seed)
    if not mounts:
        return scene, _cached_scan(environment, seed, spec)
    scene = scene.with_mounts(mounts)
    return scene, _lidar_scan(scene, spec)


def _streams(seed: int, subject: str, action: str) -> dict[str, np.random.Generator]:
    numbers = (int(subject[1:]), int(action[1:]))
    return {name: np.random.default_rng([seed, 3, *numbers, stream]) for stream, name in enumerate(STREAMS)}


def simulate_sequence(subject: str, action: str, frames: int, seed: int, *,
                      placement: Placement | None = None, mounts: Mapping[str, MountChange] | None = None,
                      lidar: LidarSpec = SECTOR_SCAN, person: bool = True) -> SequenceData:
    """Simulate ``frames`` frames (10 Hz) of ``subject`` doing ``action``; deterministic for ``seed``.

    Overrides: ``placement`` (default: drawn from seed, subject and action); ``mounts`` changes
    sensor mounts by frame id (``camera_optical``, ``lidar``, ``radar``, ``wifi``; the returned
    calibration is the changed rig's); ``lidar`` the scan (:data:`~lidar.FULL_SCAN`: 360 degrees,
    every room return); ``person=False`` an empty room (no placement, NaN joints and keypoints,
    the room's CSI alone). The random streams do not depend on the overrides, so a changed
    placement leaves the noise draws of the other sensors' models as they were.
    """
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    key = sequence_key(subject, action)
    rng = _streams(seed, subject, action)
    scene, (grid, room) = _rig(key.environment, seed, mounts, lidar)
    drawn = draw_placement(rng["placement"])
    placement = (placement or drawn) if person else None
    motion = sequence_motion(subject_body(int(subject[1:]), seed), action, rng["motion"], placement) \
        if placement else None
    times = np.arange(frames) / FRAME_RATE_HZ
    joints = motion.joints(times) if motion else None
    velocities = motion.velocities(times) if motion else None
    lidar_frames = [lidar_points(scene, j, rng["lidar"], grid, room, lidar) for j in _each(joints, frames)]
    radar_frames = [mmwave_points(scene, j, v, rng["mmwave"])
                    for j, v in zip(_each(joints, frames), _each(velocities, frames))]
    amplitude, phase = _csi(scene, motion, frames, rng["wifi"])
    return SequenceData(
        key, np.full((frames, NUM_JOINTS, 3), np.nan) if joints is None else joints,
        camera_keypoints(scene, joints, velocities, rng["camera"], frames),
        [p for p, _ in lidar_frames], [p for p, _ in radar_frames], amplitude, phase,
        scene.calibration(), placement, [m for _, m in lidar_frames], [m for _, m in radar_frames], scene,
    )


def _each(array: np.ndarray | None, frames: int) -> list:
    """The frames of ``array``, or ``frames`` times None."""
    return [None] * frames if array is None else list(array)


def _csi(scene: Scene, motion: Motion | None, frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """CSI amplitude and phase of the sequence; an empty room's from the same model with the body's
    scattering switched off."""
    packet_times = np.arange(frames * CSI_PACKETS_PER_FRAME) / CSI_PACKET_RATE_HZ
    if motion is None:  # the body's gain is 0: where its stand-in joints are does not matter
        stand_in = np.broadcast_to(scene.wifi.transmitter / 2, (len(packet_times), NUM_JOINTS, 3))
        return csi_frames(scene.without_body(), stand_in, rng)
    return csi_frames(scene, motion.joints(packet_times), rng)
