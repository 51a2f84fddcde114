"""One simulated MM-Fi sequence: a subject doing an action, seen by all four sensors.

Randomness is drawn per sequence from ``(seed, subject, action)`` (and per environment and per
subject for the scene and the body), so any subset of sequences comes out identical to the same
sequences of a larger run, whatever the order or the number of worker processes.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mmhpe_ros.data.frames import SequenceKey
from mmhpe_ros.data.synth.camera import camera_keypoints
from mmhpe_ros.data.synth.lidar import ScanGrid, lidar_points, room_distances, scan_grid
from mmhpe_ros.data.synth.mmwave import mmwave_points
from mmhpe_ros.data.synth.motion import sequence_motion, subject_body
from mmhpe_ros.data.synth.scene import environment_scene
from mmhpe_ros.data.synth.wifi import csi_frames
from mmhpe_ros.modalities import CSI_PACKET_RATE_HZ, CSI_PACKETS_PER_FRAME, FRAME_RATE_HZ, environment_of

# Sub-streams of a sequence's randomness, one per part, so changing one model leaves the others.
STREAMS = ("motion", "camera", "lidar", "mmwave", "wifi")


@dataclass
class SequenceData:
    """Every array of one sequence, as the MM-Fi files store them."""

    key: SequenceKey
    joints: np.ndarray  # (F, 17, 3) float64 metres
    rgb: np.ndarray  # (F, 17, 2) float64 pixels
    lidar: list[np.ndarray]  # F x (N, 3) float64
    mmwave: list[np.ndarray]  # F x (N, 5) float64
    csi_amplitude: np.ndarray  # (F, 3, 114, 10) float64 dB
    csi_phase: np.ndarray  # (F, 3, 114, 10) float64 radians

    @property
    def num_frames(self) -> int:
        return len(self.joints)


def sequence_key(subject: str, action: str) -> SequenceKey:
    """The key of ``subject`` doing ``action``, in the subject's fixed environment."""
    return SequenceKey(environment_of(subject), subject, action)


@lru_cache(maxsize=16)
def _lidar_scan(environment: str, seed: int) -> tuple[ScanGrid, np.ndarray]:
    """The LiDAR's rays and their distances to the (static) room of an environment."""
    scene = environment_scene(environment, seed)
    grid = scan_grid(scene)
    room = room_distances(scene, grid)
    for array in (grid.directions, grid.azimuth, grid.elevation, room):  # cached: read only
        array.flags.writeable = False
    return grid, room


def simulate_sequence(subject: str, action: str, frames: int, seed: int) -> SequenceData:
    """Simulate ``frames`` frames (10 Hz) of ``subject`` doing ``action``; deterministic for ``seed``."""
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    key = sequence_key(subject, action)
    subject_number, action_number = int(subject[1:]), int(action[1:])
    rng = {name: np.random.default_rng([seed, 3, subject_number, action_number, stream])
           for stream, name in enumerate(STREAMS)}
    scene = environment_scene(key.environment, seed)
    motion = sequence_motion(subject_body(subject_number, seed), action, rng["motion"])
    times = np.arange(frames) / FRAME_RATE_HZ
    joints = motion.joints(times)
    velocities = motion.velocities(times)
    grid, room = _lidar_scan(key.environment, seed)
    lidar = [lidar_points(scene, j, rng["lidar"], grid, room) for j in joints]
    mmwave = [mmwave_points(scene, j, v, rng["mmwave"]) for j, v in zip(joints, velocities)]
    packet_times = np.arange(frames * CSI_PACKETS_PER_FRAME) / CSI_PACKET_RATE_HZ
    amplitude, phase = csi_frames(scene, motion.joints(packet_times), rng["wifi"])
    return SequenceData(key, joints, camera_keypoints(scene, joints, velocities, rng["camera"]),
                        lidar, mmwave, amplitude, phase)
