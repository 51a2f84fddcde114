"""Camera images of a generated person in the generated room: a z-buffered render of spheres.

The person is the body of :mod:`surface` drawn denser (spheres every 0.6 radius along each bone,
so limbs read as smooth capsules), with what a detector looks for on a person: a broad torso
(a grid of spheres between shoulders and hips), a head with hair, eyes, nose and ears at the COCO
face points of :func:`camera.coco_points`, hands and shoes. Clothes and skin take per-subject
colours (shirt, trousers, short or long sleeves, one of several skin tones and hair colours).
The room (floor, walls, ceiling, furniture of :class:`scene.Room`) is the background, each
surface with its own colour, a little texture and the same light.

Each pixel's ray (through the camera's intrinsics, lens model included) is intersected with every
sphere whose projected box holds it; the nearest hit wins against the room's depth. Shading is
Lambertian from a light above and in front of the person plus ambient light; the image gets a
slight blur (the lens) and sensor noise. About 30 ms for 640 x 480 on one core
(``bench/bench_blazepose_gap.py`` prints it).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter

from mmhpe_ros.data.synth.camera import coco_points
from mmhpe_ros.data.synth.scene import Scene
from mmhpe_ros.data.synth.surface import HEAD_RADIUS, SEGMENTS
from mmhpe_ros.geometry.camera import CameraIntrinsics
from mmhpe_ros.geometry.transforms import RigidTransform
from mmhpe_ros.skeleton import JOINT_INDEX, KEYPOINT_INDEX

SKIN_TONES = np.array([[0.96, 0.80, 0.69], [0.90, 0.72, 0.58], [0.78, 0.57, 0.42],
                       [0.62, 0.43, 0.30], [0.45, 0.31, 0.21], [0.33, 0.22, 0.15]])
HAIR_COLOURS = np.array([[0.08, 0.06, 0.05], [0.25, 0.16, 0.09], [0.55, 0.40, 0.22], [0.70, 0.68, 0.65]])
SHIRT_COLOURS = np.array([[0.80, 0.15, 0.15], [0.15, 0.35, 0.75], [0.20, 0.55, 0.30], [0.90, 0.90, 0.88],
                          [0.15, 0.15, 0.17], [0.85, 0.65, 0.15], [0.55, 0.25, 0.55], [0.45, 0.55, 0.60]])
TROUSER_COLOURS = np.array([[0.15, 0.20, 0.35], [0.10, 0.10, 0.11], [0.55, 0.48, 0.35], [0.35, 0.35, 0.38]])
SHOE_COLOUR = np.array([0.12, 0.11, 0.10])
EYE_COLOUR = np.array([0.05, 0.04, 0.04])
AMBIENT = 0.4
SENSOR_NOISE = 2.0  # grey levels (of 255), per pixel
NOISE_FRAMES = 8  # sensor noise drawn once per renderer, one of these per image
BLUR_PX = 0.6

_SRGB = (np.linspace(0.0, 1.0, 4096) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)  # linear -> 8-bit gamma-encoded
# Parts, in the order of Appearance.colours (each sphere carries one part index).
SKIN, HAIR, SHIRT, TROUSERS, SHOES, EYES, SLEEVES = range(7)
_PART_OF_SEGMENT = {
    ("pelvis", "spine"): SHIRT, ("spine", "thorax"): SHIRT, ("thorax", "neck"): SKIN,
    ("pelvis", "left_hip"): TROUSERS, ("pelvis", "right_hip"): TROUSERS,
    ("thorax", "left_shoulder"): SHIRT, ("thorax", "right_shoulder"): SHIRT,
    ("left_hip", "left_knee"): TROUSERS, ("right_hip", "right_knee"): TROUSERS,
    ("left_knee", "left_ankle"): TROUSERS, ("right_knee", "right_ankle"): TROUSERS,
    ("left_shoulder", "left_elbow"): SHIRT, ("right_shoulder", "right_elbow"): SHIRT,
    ("left_elbow", "left_wrist"): SLEEVES, ("right_elbow", "right_wrist"): SLEEVES,
}


@dataclass(frozen=True)
class Appearance:
    """A subject's colours: linear RGB in [0, 1] per part (SKIN, HAIR, SHIRT, TROUSERS, SHOES, EYES,
    SLEEVES: the forearms, skin or shirt)."""

    colours: np.ndarray  # (7, 3)

    @classmethod
    def of_subject(cls, subject_number: int, seed: int) -> "Appearance":
        """Deterministic for (subject, seed): a skin tone, hair, shirt and trouser colour, sleeves."""
        rng = np.random.default_rng([seed, 11, subject_number])
        skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.95, 1.05)
        shirt = SHIRT_COLOURS[rng.integers(len(SHIRT_COLOURS))] * rng.uniform(0.9, 1.1)
        colours = np.array([skin, HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))], shirt,
                            TROUSER_COLOURS[rng.integers(len(TROUSER_COLOURS))], SHOE_COLOUR, EYE_COLOUR,
                            shirt if rng.random() < 0.4 else skin])
        return cls(np.clip(colours, 0.0, 1.0))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def body_spheres(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres (S, 3) (the frame of ``joints``), radii (S,) and part indices (S,) of the rendered
    body for one frame of joints (17, 3)."""
    j = lambda name: joints[JOINT_INDEX[name]]  # noqa: E731
    centres, radii, parts = [], [], []

    def add(points: np.ndarray, radius: float | np.ndarray, part: int) -> None:
        points = np.atleast_2d(points)
        centres.append(points)
        radii.append(np.broadcast_to(radius, len(points)))
        parts.append(np.full(len(points), part))

    for start, end, radius, _ in SEGMENTS:
        length = float(np.linalg.norm(j(end) - j(start)))
        count = max(2, int(np.ceil(length / (0.6 * radius))) + 1)
        fractions = np.linspace(0.0, 1.0, count)[:, None]
        add(j(start) + fractions * (j(end) - j(start)), radius, _PART_OF_SEGMENT[(start, end)])
    # Torso: a grid between the shoulders and the hips, narrowing to the waist.
    top_left, top_right, low_left, low_right = j("left_shoulder"), j("right_shoulder"), j("left_hip"), j("right_hip")
    for v in np.linspace(0.08, 1.0, 9):
        left, right = top_left + v * (low_left - top_left), top_right + v * (low_right - top_right)
        for u in np.linspace(0.15, 0.85, 5):
            add(left + u * (right - left), 0.1 - 0.01 * v, TROUSERS if v > 0.88 else SHIRT)
    # Head: skin, hair on top and at the back, eyes, nose, ears at the COCO face points.
    face = coco_points(joints[None])[0]
    up = _unit(j("head") - j("neck"))
    centre = 0.5 * (j("neck") + j("head"))
    forward = _unit(face[KEYPOINT_INDEX["nose"]] - centre)
    add(centre, HEAD_RADIUS, SKIN)
    add(centre + 0.025 * up - 0.03 * forward, HEAD_RADIUS * 0.98, HAIR)
    for name in ("left_eye", "right_eye"):
        add(centre + HEAD_RADIUS * 0.93 * _unit(face[KEYPOINT_INDEX[name]] - centre), 0.014, EYES)
    add(face[KEYPOINT_INDEX["nose"]] - 0.005 * forward, 0.022, SKIN)
    for name in ("left_ear", "right_ear"):
        add(centre + HEAD_RADIUS * 0.95 * _unit(face[KEYPOINT_INDEX[name]] - centre), 0.028, SKIN)
    # Hands beyond the wrists, shoes forward of the ankles.
    for side in ("left", "right"):
        wrist, elbow = j(f"{side}_wrist"), j(f"{side}_elbow")
        add(wrist + np.outer([0.03, 0.07], _unit(wrist - elbow)), np.array([0.04, 0.035]), SKIN)
        ankle = j(f"{side}_ankle")
        toe = _unit(np.array([forward[0], forward[1], 0.0]))
        add(ankle + np.outer([0.0, 0.06, 0.12], toe) + [0.0, 0.0, -0.03], np.array([0.05, 0.045, 0.04]), SHOES)
    return np.vstack(centres), np.concatenate(radii), np.concatenate(parts)


@dataclass(frozen=True)
class _Background:
    colour: np.ndarray  # (H, W, 3) float, shaded
    depth: np.ndarray  # (H, W) distance along each ray (inf: nothing)


class PersonRenderer:
    """Renders (H, W, 3) uint8 RGB images of a person in ``scene`` through its camera (or
    ``intrinsics``, e.g. another resolution of the same camera); the room is drawn once, so one
    renderer serves every sequence of an environment."""

    def __init__(self, scene: Scene, intrinsics: CameraIntrinsics | None = None, seed: int = 0) -> None:
        self.scene = scene
        self.intrinsics = intrinsics or scene.intrinsics
        self.optical = scene.camera_optical()  # T_base_optical
        self._base_to_optical = self.optical.inverse()
        self.rays = _pixel_rays(self.intrinsics)  # (H, W, 3) unit, optical frame
        self.background = _room_background(scene, self.optical, self.rays, seed)
        self.rng = np.random.default_rng([seed, 12])
        shape = self.background.colour.shape
        self._noise = [self.rng.standard_normal(shape, dtype=np.float32) * np.float32(SENSOR_NOISE / 255)
                       for _ in range(NOISE_FRAMES)]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the images."""
        return self.intrinsics.width, self.intrinsics.height

    def render(self, joints: np.ndarray | None, appearance: Appearance | None = None) -> np.ndarray:
        """The image of one frame: joints (17, 3) in base_link wearing ``appearance`` (None: the
        empty room)."""
        colour = self.background.colour.copy()  # blurred once, when the renderer was made
        if joints is not None:
            if appearance is None:
                raise ValueError("a person needs an appearance (Appearance.of_subject)")
            box = self._draw_person(colour, np.asarray(joints, dtype=np.float64), appearance)
            if box is not None:  # blur the person's box only (the room's pixels are blurred already)
                rows, columns = box
                colour[rows, columns] = gaussian_filter(colour[rows, columns], sigma=(BLUR_PX, BLUR_PX, 0))
        colour += self._noise[self.rng.integers(len(self._noise))]
        index = np.clip(colour * (len(_SRGB) - 1) + 0.5, 0, len(_SRGB) - 1).astype(np.int32)
        return _SRGB[index]

    def _draw_person(self, colour: np.ndarray, joints: np.ndarray,
                     appearance: Appearance) -> tuple[slice, slice] | None:
        """Nearest sphere per pixel (depth test against the room), then one shading pass; returns
        the box of the person's pixels (with a margin for the blur), None when none shows."""
        centres, radii, parts = body_spheres(joints)
        local = self._base_to_optical.apply(centres)
        depth = self.background.depth.copy()
        owner = np.full(depth.shape, -1, dtype=np.int32)
        height, width = depth.shape
        k = self.intrinsics.k
        for number, (centre, radius) in enumerate(zip(local, radii)):
            if centre[2] <= radius + 0.05:  # behind or touching the camera
                continue
            box = _pixel_box(centre, radius, k, width, height)
            if box is None:
                continue
            (u0, u1), (v0, v1) = box
            along = self.rays[v0:v1, u0:u1] @ centre.astype(np.float32)
            gap = along * along - np.float32(centre @ centre - radius**2)
            distance = along - np.sqrt(np.maximum(gap, 0.0))
            nearer = (gap > 0) & (distance < depth[v0:v1, u0:u1])
            depth[v0:v1, u0:u1][nearer] = distance[nearer]
            owner[v0:v1, u0:u1][nearer] = number
        person = owner >= 0
        if not person.any():
            return None
        sphere = owner[person]
        normal = (self.rays[person] * depth[person][:, None] - local[sphere]) / radii[sphere][:, None]
        light = self._base_to_optical.rotation @ _unit(
            np.array([0.0, 0.0, 1.0]) + 0.8 * _unit(self.optical.translation - joints[JOINT_INDEX["pelvis"]]))
        shade = AMBIENT + (1.0 - AMBIENT) * np.clip(normal @ light, 0.0, 1.0)
        colour[person] = appearance.colours[parts[sphere]] * shade[:, None]
        rows, columns = np.flatnonzero(person.any(axis=1)), np.flatnonzero(person.any(axis=0))
        margin = int(np.ceil(4 * BLUR_PX))
        return (slice(max(rows[0] - margin, 0), rows[-1] + margin + 1),
                slice(max(columns[0] - margin, 0), columns[-1] + margin + 1))


def _pixel_box(centre: np.ndarray, radius: float, k: np.ndarray, width: int,
               height: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Pixel ranges [u0, u1), [v0, v1) that may see a sphere (optical frame centre), None if off-image.
    Conservative for a pinhole; with lens distortion a margin of 10 % covers the usual lenses."""
    z = centre[2]
    reach = 1.1 * radius / np.sqrt(max(z**2 - radius**2, 1e-9)) * (1.0 + (centre[:2] @ centre[:2]) / z**2)
    u, v = k[0, 0] * centre[0] / z + k[0, 2], k[1, 1] * centre[1] / z + k[1, 2]
    du, dv = k[0, 0] * reach + 2, k[1, 1] * reach + 2
    u0, u1 = max(int(u - du), 0), min(int(u + du) + 1, width)
    v0, v1 = max(int(v - dv), 0), min(int(v + dv) + 1, height)
    return None if u0 >= u1 or v0 >= v1 else ((u0, u1), (v0, v1))


def _pixel_rays(intrinsics: CameraIntrinsics) -> np.ndarray:
    """(H, W, 3) unit rays of every pixel centre, optical frame."""
    u, v = np.meshgrid(np.arange(intrinsics.width, dtype=np.float64), np.arange(intrinsics.height, dtype=np.float64))
    rays = intrinsics.rays(np.column_stack([u.ravel(), v.ravel()]))
    return rays.reshape(intrinsics.height, intrinsics.width, 3).astype(np.float32)


@lru_cache(maxsize=8)
def _wall_colours(environment: str, seed: int) -> np.ndarray:
    """Floor, wall, ceiling and furniture base colours of an environment (rows 0, 1, 2, 3+)."""
    rng = np.random.default_rng([seed, 13, int(environment[1:])])
    floor = np.array([0.45, 0.33, 0.22]) * rng.uniform(0.7, 1.3) if rng.random() < 0.6 else \
        np.array([0.5, 0.5, 0.52]) * rng.uniform(0.6, 1.2)
    wall = np.array([0.86, 0.84, 0.78]) * rng.uniform(0.8, 1.0) + rng.uniform(-0.05, 0.05, 3)
    ceiling = np.array([0.92, 0.92, 0.92])
    furniture = rng.uniform(0.15, 0.75, size=(8, 3))
    return np.clip(np.vstack([floor, wall, ceiling, furniture]), 0.0, 1.0)


def _room_background(scene: Scene, optical: RigidTransform, rays: np.ndarray, seed: int) -> _Background:
    """The empty room through the camera: colour and depth along every pixel ray."""
    height, width = rays.shape[:2]
    directions = rays.reshape(-1, 3).astype(np.float64) @ optical.rotation.T  # base frame
    origin = optical.translation
    room = scene.room
    distance = room.distances(origin, directions)
    points = origin + directions * np.where(np.isfinite(distance), distance, 0.0)[:, None]
    palette = _wall_colours(scene.environment, seed)
    tolerance = 1e-6 + 1e-6 * np.abs(distance)
    normal = np.zeros_like(points)
    base = np.tile(palette[1], (len(points), 1))  # walls unless found otherwise
    on_floor = np.abs(points[:, 2] - room.low[2]) < tolerance
    on_ceiling = np.abs(points[:, 2] - room.high[2]) < tolerance
    for axis in range(2):
        normal[np.abs(points[:, axis] - room.low[axis]) < tolerance, axis] = 1.0
        normal[np.abs(points[:, axis] - room.high[axis]) < tolerance, axis] = -1.0
    inside_room = (points > room.low + tolerance[:, None]) & (points < room.high - tolerance[:, None])
    on_furniture = np.zeros(len(points), dtype=bool)
    for index, (low, high) in enumerate(room.boxes):
        near = (points >= low - 1e-4) & (points <= high + 1e-4)
        on_box = near.all(axis=1) & inside_room[:, :2].all(axis=1) & ~on_floor
        face = np.argmin(np.minimum(np.abs(points - low), np.abs(points - high)), axis=1)
        sign = np.where(np.abs(points - low)[np.arange(len(points)), face]
                        < np.abs(points - high)[np.arange(len(points)), face], -1.0, 1.0)
        normal[on_box] = 0.0
        normal[on_box, face[on_box]] = sign[on_box]
        base[on_box] = palette[3 + index % (len(palette) - 3)]
        on_furniture |= on_box
    normal[on_floor & ~on_furniture] = (0.0, 0.0, 1.0)
    normal[on_ceiling] = (0.0, 0.0, -1.0)
    base[on_floor & ~on_furniture] = palette[0]
    base[on_ceiling] = palette[2]
    # A little texture: floor boards along x, faint noise everywhere.
    boards = 0.9 + 0.1 * np.cos(points[:, 1] * 2 * np.pi / 0.18) ** 8
    base[on_floor & ~on_furniture] *= boards[on_floor & ~on_furniture, None]
    texture = 1.0 + 0.03 * np.sin(points[:, 0] * 37.0) * np.sin(points[:, 1] * 29.0 + points[:, 2] * 23.0)
    light = _unit(np.array([0.3, 0.2, 1.0]))
    shade = AMBIENT + (1.0 - AMBIENT) * np.abs(normal @ light)
    falloff = 1.0 / (1.0 + 0.04 * np.where(np.isfinite(distance), distance, 10.0))
    colour = base * (shade * texture * falloff * 1.15)[:, None]
    colour[~np.isfinite(distance)] = 0.0
    colour = gaussian_filter(colour.reshape(height, width, 3), sigma=(BLUR_PX, BLUR_PX, 0))
    return _Background(colour.astype(np.float32),
                       distance.reshape(height, width).astype(np.float32))
