"""Stage 1 of the model inputs: each modality's raw data -> what it observed, in the base frame.

Sensor nodes run this on every message, training on every frame (then cached), so both see the
same arrays. Nothing here depends on where the person is yet (stage 2, :mod:`.body`, centres
everything on the fused root); what each modality observed carries its own root estimate, which
is a pure function of the arrays (:func:`observation_roots`), so the fusion node recomputes it
from the messages it gets.

Per modality (shapes for one frame; :func:`observation_shapes`):

- ``rgb``: ``rgb_rays`` (17, 3) unit rays in the base frame through the keypoints (camera
  intrinsics undo the lens, extrinsics rotate), ``rgb_origin`` (3,) the camera centre,
  ``rgb_score`` (17,) the detector's confidence, 0 where a keypoint is missing, not finite or off
  the image (those rays are 0).
- ``lidar``: ``lidar_points`` (lidar_points, 3) the person's points found by
  :class:`~mmhpe_ros.geometry.localise.LidarLocaliser`, evenly strided to the model's point
  count (repeated cyclically when fewer). Nothing when no person-shaped cluster was found.
- ``mmwave``: ``mmwave_points`` (RADAR_POINTS, 5) finite radar points in the search region, x, y,
  z in the base frame, doppler and intensity as measured, strided to at most ``RADAR_POINTS``;
  ``mmwave_valid`` (RADAR_POINTS,) marks real rows.
- ``wifi``: ``wifi`` (2, 3, 114, 10) normalised CSI with gaps filled and ``wifi_mask`` (10,) the
  measured packets (:func:`~mmhpe_ros.model.inputs.prepare_csi`); CSI has no geometry.

Plus, per frame: ``observed`` (M,) bool, the modality carried anything usable; ``roots`` (M, 3)
and ``localised`` (M,) bool, each modality's estimate of the root (:func:`observation_roots`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from mmhpe_ros.geometry.calibration import Calibration
from mmhpe_ros.geometry.camera import MMFI_CAMERA, CameraIntrinsics
from mmhpe_ros.geometry.localise import LidarLocaliser, LidarSettings, SearchRegion, camera_root, radar_root
from mmhpe_ros.geometry.background import BackgroundModel
from mmhpe_ros.geometry.transforms import RigidTransform
from mmhpe_ros.modalities import FRAME_IDS, LIDAR_FIELDS, MMWAVE_FIELDS
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.skeleton import NUM_KEYPOINTS_2D

RADAR_POINTS = 128  # radar points kept per frame before the crop around the person
OBSERVED, ROOTS, LOCALISED = "observed", "roots", "localised"
FRAME_KEYS = (OBSERVED, ROOTS, LOCALISED)  # per frame, not per modality


@dataclass
class Rig:
    """What stage 1 needs to know about the sensors of one recording: the calibration (extrinsics,
    floor, camera intrinsics), the LiDAR localiser (search region, background) and the frame id of
    each modality's raw data."""

    calibration: Calibration
    background: BackgroundModel | None = None
    lidar_settings: LidarSettings = field(default_factory=LidarSettings)
    frames: Mapping[str, str] = field(default_factory=lambda: dict(FRAME_IDS))

    def __post_init__(self) -> None:
        self.localiser = LidarLocaliser(self.lidar_settings, self.calibration.ground_height, self.background)

    @property
    def ground_height(self) -> float:
        return self.calibration.ground_height

    @property
    def region(self) -> SearchRegion:
        return self.lidar_settings.region

    def to_base(self, modality: str, frame_id: str | None = None) -> RigidTransform:
        """``T_base_sensor`` for a modality's data (its frame id from ``frames`` unless given)."""
        return self.calibration.to_base(frame_id or self.frames[modality])

    def camera(self, frame_id: str | None = None) -> CameraIntrinsics:
        """The camera's intrinsics from the calibration, else MM-Fi's nominal ones."""
        return self.calibration.camera(frame_id or self.frames["rgb"]) or MMFI_CAMERA


def observation_shapes(config: ModelConfig) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array :func:`observe` returns for ``config.modalities``."""
    from mmhpe_ros.model.inputs import CSI_SHAPE

    f32, boolean = np.dtype(np.float32), np.dtype(bool)
    per_modality = {
        "rgb": {"rgb_rays": ((NUM_KEYPOINTS_2D, 3), f32), "rgb_origin": ((3,), f32),
                "rgb_score": ((NUM_KEYPOINTS_2D,), f32)},
        "lidar": {"lidar_points": ((config.lidar_points, len(LIDAR_FIELDS)), f32)},
        "mmwave": {"mmwave_points": ((RADAR_POINTS, len(MMWAVE_FIELDS)), f32), "mmwave_valid": ((RADAR_POINTS,), boolean)},
        "wifi": {"wifi": (CSI_SHAPE, f32), "wifi_mask": ((CSI_SHAPE[-1],), boolean)},
    }
    shapes = {k: v for m in config.modalities for k, v in per_modality[m].items()}
    shapes[OBSERVED] = ((config.num_modalities,), boolean)
    shapes[ROOTS] = ((config.num_modalities, 3), f32)
    shapes[LOCALISED] = ((config.num_modalities,), boolean)
    return shapes


def empty_observation(modality: str, config: ModelConfig) -> dict[str, np.ndarray]:
    """The zero arrays of a modality that observed nothing."""
    shapes = observation_shapes(config)
    return {k: np.zeros(*shapes[k]) for k in shapes if k not in FRAME_KEYS and _modality_of(k) == modality}


def _modality_of(key: str) -> str:
    return key.split("_")[0]


def observe_rgb(keypoints: np.ndarray, camera: CameraIntrinsics, to_base: RigidTransform) -> tuple[dict[str, np.ndarray], bool]:
    """Keypoints (17, 2) or (17, 3) (u, v[, score]) in pixels of ``camera`` -> rays in the base frame."""
    keypoints = _checked(keypoints, "rgb", (NUM_KEYPOINTS_2D, None))
    if keypoints.shape[1] not in (2, 3):
        raise ValueError(f"Frame.data['rgb']: expected (17, 2) or (17, 3) keypoints (u, v[, score]), got {keypoints.shape}")
    uv = keypoints[:, :2]
    score = keypoints[:, 2] if keypoints.shape[1] == 3 else np.ones(NUM_KEYPOINTS_2D)
    usable = np.isfinite(keypoints).all(axis=1) & camera.inside(uv) & (score > 0)
    score = np.where(usable, np.clip(score, 0.0, 1.0), 0.0)
    rays = np.zeros((NUM_KEYPOINTS_2D, 3))
    if usable.any():
        rays[usable] = to_base.rotate(camera.rays(uv[usable]))
    arrays = {"rgb_rays": rays.astype(np.float32), "rgb_origin": to_base.translation.astype(np.float32),
              "rgb_score": score.astype(np.float32)}
    return arrays, bool(usable.any())


def resample_points(points: np.ndarray, count: int) -> np.ndarray:
    """``count`` rows of ``points`` (N >= 1): evenly strided when more, repeated cyclically when fewer."""
    n = len(points)
    index = (np.arange(count, dtype=np.int64) * n) // count if n >= count else np.arange(count) % n
    return points[index]


def observe_lidar(points: np.ndarray, to_base: RigidTransform, localiser: LidarLocaliser,
                  config: ModelConfig) -> tuple[dict[str, np.ndarray], bool]:
    """A LiDAR cloud (N, 3) in the sensor frame -> the person's points in the base frame."""
    points = _checked(points, "lidar", (None, len(LIDAR_FIELDS)))
    points = points[np.isfinite(points).all(axis=1)].astype(np.float32, copy=False)
    person = localiser.localise(to_base.apply(points)) if len(points) else None
    if person is None:
        return {}, False
    return {"lidar_points": resample_points(person.points, config.lidar_points)}, True


def observe_mmwave(points: np.ndarray, to_base: RigidTransform, region: SearchRegion,
                   ground_height: float) -> tuple[dict[str, np.ndarray], bool]:
    """Radar points (N, 5) in the sensor frame -> the finite ones in the search region, base frame."""
    points = _checked(points, "mmwave", (None, len(MMWAVE_FIELDS)))
    points = to_base.apply(points[np.isfinite(points).all(axis=1)])
    x, y, z = points[:, 0], points[:, 1], points[:, 2] - ground_height
    inside = ((x >= region.x[0]) & (x <= region.x[1]) & (y >= region.y[0]) & (y <= region.y[1])
              & (z >= region.height[0] - 0.3) & (z <= region.height[1]))
    points = points[inside]
    if len(points) == 0:
        return {}, False
    if len(points) > RADAR_POINTS:
        points = resample_points(points, RADAR_POINTS)
    padded = np.zeros((RADAR_POINTS, len(MMWAVE_FIELDS)), dtype=np.float32)
    padded[:len(points)] = points
    valid = np.zeros(RADAR_POINTS, dtype=bool)
    valid[:len(points)] = True
    return {"mmwave_points": padded, "mmwave_valid": valid}, True


def observe_modality(modality: str, raw: np.ndarray, rig: Rig, config: ModelConfig,
                     frame_id: str | None = None) -> tuple[dict[str, np.ndarray], bool]:
    """One modality's raw array (as ``Frame.data`` holds it, in its sensor frame ``frame_id``) ->
    (its observation arrays, whether it observed anything). Missing arrays are zeros."""
    from mmhpe_ros.model.inputs import prepare_csi

    if modality == "rgb":
        arrays, observed = observe_rgb(raw, rig.camera(frame_id), rig.to_base("rgb", frame_id))
    elif modality == "lidar":
        arrays, observed = observe_lidar(raw, rig.to_base("lidar", frame_id), rig.localiser, config)
    elif modality == "mmwave":
        arrays, observed = observe_mmwave(raw, rig.to_base("mmwave", frame_id), rig.region, rig.ground_height)
    elif modality == "wifi":
        arrays, observed = prepare_csi(raw, config)
    else:
        raise ValueError(f"unknown modality {modality!r}; expected one of {config.modalities}")
    return (arrays if observed else empty_observation(modality, config)), observed


def observe(data: Mapping[str, np.ndarray], rig: Rig, config: ModelConfig) -> dict[str, np.ndarray]:
    """``Frame.data`` -> the observation arrays of ``config.modalities`` plus ``observed`` (M,)."""
    out: dict[str, np.ndarray] = {}
    observed = np.zeros(config.num_modalities, dtype=bool)
    for i, modality in enumerate(config.modalities):
        raw = data.get(modality)
        if raw is None:
            out.update(empty_observation(modality, config))
            continue
        arrays, observed[i] = observe_modality(modality, raw, rig, config)
        out.update(arrays)
    out[OBSERVED] = observed
    out.update(root_arrays(observation_roots(out, config.modalities, rig.ground_height, rig.region), config))
    return out


def root_arrays(roots: Mapping[str, np.ndarray | None], config: ModelConfig) -> dict[str, np.ndarray]:
    """``roots`` (M, 3) float32 and ``localised`` (M,) bool from :func:`observation_roots`' dict."""
    values = np.zeros((config.num_modalities, 3), dtype=np.float32)
    localised = np.zeros(config.num_modalities, dtype=bool)
    for i, modality in enumerate(config.modalities):
        root = roots.get(modality)
        if root is not None:
            values[i], localised[i] = root, True
    return {ROOTS: values, LOCALISED: localised}


def observation_roots(observation: Mapping[str, np.ndarray], modalities: tuple[str, ...],
                      ground_height: float, region: SearchRegion = SearchRegion()) -> dict[str, np.ndarray | None]:
    """Each localising modality's root estimate (None: it found nobody) from one frame's arrays."""
    observed = dict(zip(modalities, np.asarray(observation[OBSERVED], dtype=bool)))
    roots: dict[str, np.ndarray | None] = {}
    if "lidar" in modalities:
        points = observation["lidar_points"]
        roots["lidar"] = (np.array([*np.median(points[:, :2], axis=0), ground_height])
                          if observed["lidar"] else None)
    if "mmwave" in modalities:
        valid = np.asarray(observation["mmwave_valid"], dtype=bool)
        roots["mmwave"] = (radar_root(observation["mmwave_points"][valid], ground_height, region)
                           if observed["mmwave"] else None)
    if "rgb" in modalities:
        roots["rgb"] = (camera_root(observation["rgb_origin"], observation["rgb_rays"], observation["rgb_score"],
                                    ground_height, region) if observed["rgb"] else None)
    return roots


def _checked(raw: np.ndarray, modality: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """``raw`` as float64, or a ValueError naming the modality and the expected shape."""
    array = np.asarray(raw)
    ok = array.ndim == len(shape) and all(s is None or s == n for s, n in zip(shape, array.shape))
    if not ok or not np.issubdtype(array.dtype, np.number):
        expected = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"Frame.data[{modality!r}]: expected a numeric array of shape {expected}, "
                         f"got {array.dtype} {array.shape}")
    return array.astype(np.float64, copy=False)
