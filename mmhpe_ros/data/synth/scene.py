"""Per-environment scene: the rig's sensor mounts, the room and its furniture, and noise levels.

MM-Fi records each environment (E01..E04) with the sensor rig in a different room; here each
environment gets its own room, furniture, sensor mounts and noise levels, drawn deterministically
from (seed, environment). Everything is given in the rig's base frame ``base_link`` (REP 103:
x forward from the rig into the room, y left, z up; origin on the floor below the rig; metres).

Each sensor is mounted on its own: height 0.6-1.6 m, yaw +-35 degrees, pitch -5..+15 degrees
(positive looks down: ROS's pitch, a rotation about y), roll +-2 degrees, a few centimetres of
offset. A mount's body axes are REP 103 (x forward along the sensor's boresight, y left, z up);
the camera's optical frame (z forward, x right, y down) is its mount rotated by
:data:`OPTICAL_IN_CAMERA`. :meth:`Scene.calibration` is the rig's true calibration.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Mapping

import numpy as np

from mmhpe_ros.geometry.calibration import Calibration
from mmhpe_ros.geometry.camera import CameraIntrinsics
from mmhpe_ros.geometry.transforms import RigidTransform
from mmhpe_ros.modalities import CSI_ANTENNAS, ENVIRONMENTS, FRAME_IDS, IMAGE_HEIGHT, IMAGE_WIDTH

SPEED_OF_LIGHT = 299_792_458.0
WIFI_CARRIER_HZ = 5.32e9  # 5 GHz band, 40 MHz channel (Atheros CSI: 114 subcarriers)
WIFI_SUBCARRIER_SPACING_HZ = 312.5e3
# Subcarrier indices of a 40 MHz channel as the Atheros CSI tool reports them: -58..-2, 2..58.
WIFI_SUBCARRIER_INDICES = np.concatenate([np.arange(-58, -1), np.arange(2, 59)]).astype(np.float64)

# The mount ranges (uniform), per sensor and independent within a rig.
MOUNT_HEIGHT_M = (0.6, 1.6)
MOUNT_YAW_RAD = (np.deg2rad(-30.0), np.deg2rad(30.0))
MOUNT_PITCH_RAD = (np.deg2rad(-5.0), np.deg2rad(15.0))  # positive: looking down
MOUNT_PITCH_SPREAD_RAD = np.deg2rad(6.0)  # about the pitch that aims at AIM_POINT_M
AIM_POINT_M = (2.5, 1.0)  # a mount is roughly aimed at this distance and height (a person's chest)
MOUNT_ROLL_RAD = (np.deg2rad(-2.0), np.deg2rad(2.0))
MOUNT_OFFSET_M = ((-0.1, 0.1), (-0.2, 0.2))  # x, y
# Where people stand (base_link, metres), kept free of furniture (with room for their reach).
PERSON_REGION = ((0.4, 4.6), (-2.0, 2.0))
RIG_REGION = ((-0.3, 0.3), (-0.5, 0.5))
# The camera's optical frame in its mount's frame: z forward (= x), x right (= -y), y down (= -z).
OPTICAL_IN_CAMERA = RigidTransform(np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]), np.zeros(3))
DECIMALS = 6  # mounts are drawn at the calibration file's precision, so the file is exact


@dataclass(frozen=True)
class MountChange:
    """A change of one sensor's mount: height (m), yaw and pitch (rad) added to the drawn ones."""

    height: float = 0.0
    yaw: float = 0.0
    pitch: float = 0.0


@dataclass(frozen=True)
class SensorPose:
    """A sensor mount in base_link: position and fixed-axis roll, pitch (positive looks down), yaw.

    The sensor's axes are REP 103 body axes: x along its boresight, y left, z up."""

    position: np.ndarray  # (3,)
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0

    @cached_property
    def transform(self) -> RigidTransform:
        """``T_base_sensor``: maps points in the sensor frame into base_link."""
        return RigidTransform.from_xyz_rpy(self.position, (self.roll, self.pitch, self.yaw))

    def rotation(self) -> np.ndarray:
        """Base-from-sensor rotation (3, 3)."""
        return self.transform.rotation

    def to_sensor(self, points: np.ndarray) -> np.ndarray:
        """Base-frame points (..., 3) in this sensor's frame."""
        return (np.asarray(points)[..., :3] - self.position) @ self.rotation()

    def changed(self, change: MountChange) -> "SensorPose":
        """This mount moved up by ``change.height`` and turned by its yaw and pitch."""
        return SensorPose(self.position + np.array([0.0, 0.0, change.height]), self.yaw + change.yaw,
                          self.pitch + change.pitch, self.roll)


@dataclass(frozen=True)
class Room:
    """The room as an axis-aligned box in base_link (floor z = 0), with furniture boxes in it."""

    low: np.ndarray  # (3,): front wall x (behind the rig), right wall y, floor 0
    high: np.ndarray  # (3,): back wall x, left wall y, ceiling
    boxes: np.ndarray  # (B, 2, 3): furniture, min and max corners

    def distances(self, origin: np.ndarray, rays: np.ndarray) -> np.ndarray:
        """Distance (R,) along unit rays (R, 3) from ``origin`` (3,) inside the room to the first
        wall, floor, ceiling or furniture box."""
        with np.errstate(divide="ignore", invalid="ignore"):
            inverse = 1.0 / rays  # inf where a component is 0
            walls = np.maximum((self.low - origin) * inverse, (self.high - origin) * inverse).min(axis=1)
            if len(self.boxes) == 0:
                return walls
            t0 = (self.boxes[None, :, 0, :] - origin) * inverse[:, None, :]  # (R, B, 3)
            t1 = (self.boxes[None, :, 1, :] - origin) * inverse[:, None, :]
            near = np.nanmax(np.minimum(t0, t1), axis=-1)
            far = np.nanmin(np.maximum(t0, t1), axis=-1)
        boxes = np.where((far >= near) & (near > 1e-6), near, np.inf).min(axis=1)
        return np.minimum(walls, boxes)

    def surface_distance(self, points: np.ndarray) -> np.ndarray:
        """Distance (N,) of base-frame points (N, 3) to the nearest room surface (walls, floor,
        ceiling, furniture faces); for telling room returns from others."""
        points = np.asarray(points, dtype=np.float64)[:, :3]
        nearest = np.minimum(np.abs(points - self.low), np.abs(points - self.high)).min(axis=1)
        for low, high in self.boxes:
            outside = np.maximum(np.maximum(low - points, points - high), 0.0)
            inside = np.minimum(points - low, high - points).min(axis=1)
            nearest = np.minimum(nearest, np.where(inside > 0, inside, np.linalg.norm(outside, axis=1)))
        return nearest


@dataclass(frozen=True)
class WifiLink:
    """Transmitter, receive antennas (base_link) and the static multipath of the room."""

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


ANTENNA_SPACING_M = SPEED_OF_LIGHT / WIFI_CARRIER_HZ / 2  # half a wavelength


def antenna_positions(receiver: SensorPose) -> np.ndarray:
    """The receive antennas (CSI_ANTENNAS, 3) in base_link: a line along the receiver's y axis."""
    local = np.outer(np.arange(CSI_ANTENNAS) - (CSI_ANTENNAS - 1) / 2, [0.0, ANTENNA_SPACING_M, 0.0])
    return receiver.transform.apply(local)


@dataclass(frozen=True)
class Scene:
    """One environment: sensor mounts, room, noise levels (all geometry in base_link)."""

    environment: str
    camera: SensorPose  # the camera's mount (body axes); its optical frame: :meth:`camera_optical`
    intrinsics: CameraIntrinsics
    keypoint_noise_px: float  # detector noise at a 3 m distance
    keypoint_outlier_rate: float  # chance per keypoint of a wrong detection
    keypoint_swap_rate: float  # chance per frame of a left/right confusion of one limb pair
    lidar: SensorPose
    lidar_range_noise_m: float
    lidar_background_keep: float  # fraction of room returns a sector scan keeps (dark or specular surfaces drop out)
    radar: SensorPose
    radar_ghost_rate: float  # mean ghost points per frame
    radar_clutter_rate: float  # mean static room returns per frame left by static-clutter removal
    room: Room
    wifi_receiver: SensorPose  # the receive antenna array (antennas along its y axis)
    wifi: WifiLink
    mounts_changed: Mapping[str, MountChange] = field(default_factory=dict)

    def camera_optical(self) -> RigidTransform:
        """``T_base_camera_optical``: the camera mount composed with the optical rotation."""
        return self.camera.transform @ OPTICAL_IN_CAMERA

    def calibration(self) -> Calibration:
        """The rig's true calibration: extrinsics of every sensor frame, the camera's intrinsics."""
        extrinsics = {FRAME_IDS["rgb"]: self.camera_optical(), FRAME_IDS["lidar"]: self.lidar.transform,
                      FRAME_IDS["mmwave"]: self.radar.transform, FRAME_IDS["wifi"]: self.wifi_receiver.transform}
        return Calibration(ground_height=0.0, extrinsics=extrinsics,
                           intrinsics={FRAME_IDS["rgb"]: self.intrinsics},
                           source=f"the generator's {self.environment} rig")

    def with_mounts(self, changes: Mapping[str, MountChange]) -> "Scene":
        """This scene with sensor mounts changed (keys: frame ids ``camera_optical``, ``lidar``,
        ``radar``, ``wifi``); the WiFi antennas follow their receiver."""
        unknown = sorted(set(changes) - set(MOUNT_FIELDS))
        if unknown:
            raise ValueError(f"no sensor mount for frames {unknown}; known: {sorted(MOUNT_FIELDS)}")
        moved = {MOUNT_FIELDS[f]: getattr(self, MOUNT_FIELDS[f]).changed(c) for f, c in changes.items()}
        scene = replace(self, **moved, mounts_changed={**self.mounts_changed, **changes})
        return replace(scene, wifi=replace(scene.wifi, antennas=antenna_positions(scene.wifi_receiver)))

    def without_body(self) -> "Scene":
        """This scene with the body's WiFi scattering switched off (an empty room's CSI)."""
        return replace(self, wifi=replace(self.wifi, body_gain=0.0))


# Frame id -> the Scene field holding that sensor's mount.
MOUNT_FIELDS = {FRAME_IDS["rgb"]: "camera", FRAME_IDS["lidar"]: "lidar", FRAME_IDS["mmwave"]: "radar",
                FRAME_IDS["wifi"]: "wifi_receiver"}


def _mount(rng: np.random.Generator) -> SensorPose:
    """One sensor's mount, drawn from the MOUNT_* ranges (rounded to the calibration file's precision):
    its pitch roughly aims at a person's chest from its height (+- MOUNT_PITCH_SPREAD_RAD), as an
    installer would, within MOUNT_PITCH_RAD."""
    x, y = (rng.uniform(*span) for span in MOUNT_OFFSET_M)
    height, yaw = rng.uniform(*MOUNT_HEIGHT_M), rng.uniform(*MOUNT_YAW_RAD)
    aimed = np.arctan2(height - AIM_POINT_M[1], AIM_POINT_M[0])
    pitch = np.clip(aimed + rng.uniform(-MOUNT_PITCH_SPREAD_RAD, MOUNT_PITCH_SPREAD_RAD), *MOUNT_PITCH_RAD)
    values = [x, y, height, yaw, pitch, rng.uniform(*MOUNT_ROLL_RAD)]
    x, y, z, yaw, pitch, roll = np.round(values, DECIMALS)
    return SensorPose(np.array([x, y, z]), float(yaw), float(pitch), float(roll))


def _overlaps(low: np.ndarray, high: np.ndarray, region: tuple[tuple[float, float], ...]) -> bool:
    return all(low[i] < region[i][1] and high[i] > region[i][0] for i in range(2))


def _furniture(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """2-6 boxes against the walls, none where people stand or where the rig is."""
    boxes: list[list[np.ndarray]] = []
    wanted = int(rng.integers(2, 7))
    for _ in range(40):  # bounded attempts: the count reached is deterministic for the seed
        if len(boxes) == wanted:
            break
        size = rng.uniform([0.4, 0.4, 0.4], [1.4, 1.4, 1.9])
        wall = int(rng.integers(0, 4))  # right, left, back, front
        corner = rng.uniform(low[:2], high[:2] - size[:2])
        if wall < 2:
            corner[1] = low[1] if wall == 0 else high[1] - size[1]
        else:
            corner[0] = high[0] - size[0] if wall == 2 else low[0]
        box_low = np.array([corner[0], corner[1], 0.0])
        if not (_overlaps(box_low, box_low + size, PERSON_REGION) or _overlaps(box_low, box_low + size, RIG_REGION)):
            boxes.append([box_low, box_low + size])
    return np.array(boxes).reshape(-1, 2, 3)


def _room(rng: np.random.Generator) -> Room:
    """Walls 0.4-1.5 m behind the rig and 5-7.5 m in front, sides 2.4-4 m away, ceiling 2.6-3.2 m."""
    low = np.array([-rng.uniform(0.4, 1.5), -rng.uniform(2.4, 4.0), 0.0])
    high = np.array([rng.uniform(5.0, 7.5), rng.uniform(2.4, 4.0), rng.uniform(2.6, 3.2)])
    return Room(low, high, _furniture(rng, low, high))


def _camera(rng: np.random.Generator) -> CameraIntrinsics:
    """640 x 480 pinhole intrinsics: focal length 500-640 px, principal point near the centre."""
    fx = rng.uniform(500.0, 640.0)
    fy, cx, cy = fx * rng.uniform(0.995, 1.005), 319.5 + rng.uniform(-8, 8), 239.5 + rng.uniform(-6, 6)
    return CameraIntrinsics.pinhole(IMAGE_WIDTH, IMAGE_HEIGHT, *np.round([fx, fy, cx, cy], 3))


def _wifi(rng: np.random.Generator, room: Room, receiver: SensorPose) -> WifiLink:
    """The transmitter across the room behind where people stand; the receiver on the rig."""
    paths = int(rng.integers(5, 9))
    transmitter = np.array([rng.uniform(PERSON_REGION[0][1], room.high[0] - 0.2), rng.uniform(-1.5, 1.5),
                            rng.uniform(0.8, 1.5)])
    return WifiLink(
        transmitter=transmitter, antennas=antenna_positions(receiver),
        path_extra_m=rng.uniform(0.5, 12.0, paths), path_gain=rng.uniform(0.2, 0.7, paths),
        path_angle=rng.uniform(-np.pi / 2, np.pi / 2, paths),
        antenna_phase=rng.uniform(-np.pi, np.pi, CSI_ANTENNAS),
        ripple=1.0 + 0.15 * np.cos(WIFI_SUBCARRIER_INDICES / rng.uniform(6, 14) + rng.uniform(0, 2 * np.pi)),
        body_gain=float(rng.uniform(0.15, 0.3)), snr_db=float(rng.uniform(18.0, 26.0)),
        dropout=float(rng.uniform(0.01, 0.04)),
    )


@lru_cache(maxsize=16)
def environment_scene(environment: str, seed: int) -> Scene:
    """The scene of ``environment`` (``E01``..``E04``), deterministic for ``seed`` (cached; read only)."""
    if environment not in ENVIRONMENTS:
        raise ValueError(f"unknown MM-Fi environment {environment!r}; expected one of {ENVIRONMENTS}")
    number = ENVIRONMENTS.index(environment) + 1
    rng = np.random.default_rng([seed, 2, number])
    room = _room(rng)
    camera, lidar, radar, receiver = (_mount(rng) for _ in range(4))
    scene = Scene(
        environment=environment, camera=camera, intrinsics=_camera(rng),
        keypoint_noise_px=float(rng.uniform(3.0, 6.0)), keypoint_outlier_rate=float(rng.uniform(0.01, 0.03)),
        keypoint_swap_rate=float(rng.uniform(0.02, 0.06)),
        lidar=lidar, lidar_range_noise_m=float(rng.uniform(0.01, 0.03)),
        lidar_background_keep=float(rng.uniform(0.05, 0.12)),
        radar=radar, radar_ghost_rate=float(rng.uniform(4.0, 8.0)), radar_clutter_rate=float(rng.uniform(2.0, 6.0)),
        room=room, wifi_receiver=receiver, wifi=_wifi(rng, room, receiver),
    )
    _freeze(scene)
    return scene


def _freeze(scene: Scene) -> None:
    """Make the cached scene's arrays read only."""
    parts = (scene, scene.camera, scene.lidar, scene.radar, scene.room, scene.wifi_receiver, scene.wifi)
    for part in parts:
        for value in vars(part).values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
