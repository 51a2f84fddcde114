"""Keypoints from any camera -> pixels of the model's camera (MM-Fi's 640 x 480 RGB camera).

The model was trained on MM-Fi's keypoints, pixels of a 640 x 480 image from the dataset's RGB
camera. A robot's camera has its own resolution and focal length, so its keypoints are
re-projected (docs/camera.md):

* with a ``sensor_msgs/CameraInfo`` (calibrated: K not all zero): each pixel is mapped to the
  full-resolution sensor (``binning_x/y``, ``roi`` offsets), undistorted with ``D``
  (``plumb_bob`` / ``rational_polynomial``) into normalised coordinates x = X/Z, y = Y/Z, and
  re-projected with the model's K (:data:`MODEL_CAMERA`): u' = fx' x + cx', v' = fy' y + cy'.
  The keypoints then lie where the same rays would fall on the model's camera;
* without one (or uncalibrated): plain rescaling of the image onto 640 x 480.

Pixel convention everywhere: the centre of pixel (i, j) is (u, v) = (i, j) (OpenCV, REP 104),
so rescaling maps u -> (u + 0.5) * 640 / width - 0.5. NaN keypoints stay NaN; scores pass through.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mmhpe_ros.modalities import IMAGE_HEIGHT, IMAGE_WIDTH
from mmhpe_ros.runtime.codecs import CodecError
from mmhpe_ros.skeleton import NUM_KEYPOINTS_2D

UNDISTORT_ITERATIONS = 20  # fixed-point iterations inverting the lens model (as OpenCV's default)


@dataclass(frozen=True)
class PinholeCamera:
    """Pinhole intrinsics (pixels) of a ``width`` x ``height`` image, no skew."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def matrix(self) -> np.ndarray:
        """The 3 x 3 camera matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


MODEL_CAMERA = PinholeCamera(fx=615.0, fy=615.0, cx=319.5, cy=239.5, width=IMAGE_WIDTH, height=IMAGE_HEIGHT)
"""Nominal intrinsics of MM-Fi's RGB camera (an Intel RealSense D435 colour stream at 640 x 480:
~69 x 42 deg sensor cropped to 4:3, fx = fy ~ 615 px, principal point at the image centre).
MM-Fi does not publish its calibration; these are the D435's typical factory values. One place
to change them if a calibration turns up."""


def _keypoints(keypoints: np.ndarray) -> np.ndarray:
    keypoints = np.array(keypoints, dtype=np.float64)  # a copy: the caller's array is not changed
    if keypoints.ndim != 2 or keypoints.shape[0] != NUM_KEYPOINTS_2D or keypoints.shape[1] not in (2, 3):
        raise ValueError(f"keypoints: expected ({NUM_KEYPOINTS_2D}, 2) or ({NUM_KEYPOINTS_2D}, 3) "
                         f"(u, v[, score]), got {keypoints.shape}")
    return keypoints


def _positive_size(width: int, height: int) -> tuple[int, int]:
    width, height = int(width), int(height)
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width} x {height}")
    return width, height


def rescale(uv: np.ndarray, width: int, height: int, to_width: int, to_height: int) -> np.ndarray:
    """Pixels (N, 2) of a ``width`` x ``height`` image -> the same places in a ``to_width`` x
    ``to_height`` image (pixel centres at integers)."""
    scale = np.array([to_width / width, to_height / height])
    return (uv + 0.5) * scale - 0.5


def _lens_terms(xy: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radial factor (N,) and tangential shift (N, 2) of the lens model at undistorted ``xy``."""
    k1, k2, p1, p2, k3, k4, k5, k6 = np.pad(np.asarray(d, dtype=np.float64), (0, 8 - len(d)))
    x, y = xy[:, 0], xy[:, 1]
    r2 = x * x + y * y
    radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    tangential = np.column_stack([2 * p1 * x * y + p2 * (r2 + 2 * x * x), p1 * (r2 + 2 * y * y) + 2 * p2 * x * y])
    return radial, tangential


def distort(xy: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Normalised undistorted (N, 2) -> distorted, Brown-Conrady with rational terms:
    ``d`` = (k1, k2, p1, p2[, k3[, k4, k5, k6]]) as in CameraInfo ``plumb_bob`` /
    ``rational_polynomial`` (missing coefficients are 0)."""
    radial, tangential = _lens_terms(xy, d)
    return xy * radial[:, None] + tangential


def undistort(xy: np.ndarray, d: np.ndarray, iterations: int = UNDISTORT_ITERATIONS) -> np.ndarray:
    """Inverse of :func:`distort` by fixed-point iteration (vectorised over points)."""
    undistorted = xy.copy()
    for _ in range(iterations):
        radial, tangential = _lens_terms(undistorted, d)
        undistorted = (xy - tangential) / radial[:, None]
    return undistorted


DISTORTION_MODELS = {"plumb_bob": 5, "rational_polynomial": 8}  # CameraInfo model -> coefficients used


@dataclass(frozen=True)
class SourceCamera:
    """What :func:`to_model_pixels` needs of a CameraInfo: K (3 x 3), D, and how the published
    image sits on the calibrated sensor (pixel u of the image is sensor pixel
    ``(u + 0.5) * scale_x - 0.5 + offset_x``; likewise v)."""

    k: np.ndarray
    d: np.ndarray
    scale: np.ndarray  # (2,)
    offset: np.ndarray  # (2,)

    @classmethod
    def from_camera_info(cls, info: Any, width: int, height: int) -> SourceCamera | None:
        """The camera of a CameraInfo for a ``width`` x ``height`` image; None when uncalibrated
        (K all zero, as the message defines it). CodecError for a K or D that cannot be used."""
        k = np.asarray(info.k, dtype=np.float64)
        if k.shape != (9,):
            raise CodecError(f"CameraInfo.k must hold 9 values, got {k.shape}")
        if not k.any():
            return None
        k = k.reshape(3, 3)
        if not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0 or not np.allclose(k[2], (0, 0, 1)):
            raise CodecError(f"CameraInfo.k is not a camera matrix: {k.ravel().tolist()}")
        d = np.asarray(info.d, dtype=np.float64).ravel()
        model = info.distortion_model
        if d.size and d.any():
            if model not in DISTORTION_MODELS:
                raise CodecError(f"CameraInfo.distortion_model {model!r} is not supported "
                                 f"(expected one of {list(DISTORTION_MODELS)}, or D all zero)")
            d = d[:DISTORTION_MODELS[model]]
            if not np.isfinite(d).all():
                raise CodecError(f"CameraInfo.d is not finite: {d.tolist()}")
        else:
            d = np.zeros(0)
        # REP 104: the image is the ROI of the calibrated sensor (the full sensor when its size is
        # 0), binned by binning_x/y. Spreading the region over the image received covers binning
        # and a stream resized after calibration alike; without a size, binning alone is used.
        roi = info.roi
        offset = np.array([roi.x_offset, roi.y_offset], dtype=np.float64)
        region = np.array([roi.width or info.width, roi.height or info.height], dtype=np.float64)
        binning = np.array([max(int(info.binning_x), 1), max(int(info.binning_y), 1)], dtype=np.float64)
        scale = region / np.array([width, height]) if (region > 0).all() else binning
        return cls(k=k, d=d, scale=scale, offset=offset)

    def normalised(self, uv: np.ndarray) -> np.ndarray:
        """Image pixels (N, 2) -> normalised undistorted coordinates (x, y) = (X/Z, Y/Z)."""
        sensor = (uv + 0.5) * self.scale - 0.5 + self.offset
        y = (sensor[:, 1] - self.k[1, 2]) / self.k[1, 1]
        x = (sensor[:, 0] - self.k[0, 2] - self.k[0, 1] * y) / self.k[0, 0]
        xy = np.column_stack([x, y])
        return undistort(xy, self.d) if self.d.size else xy


def project(xy: np.ndarray, camera: PinholeCamera = MODEL_CAMERA) -> np.ndarray:
    """Normalised coordinates (N, 2) -> pixels of ``camera``."""
    return xy * np.array([camera.fx, camera.fy]) + np.array([camera.cx, camera.cy])


def to_model_pixels(keypoints: np.ndarray, camera_info: Any | None, width: int, height: int,
                    model: PinholeCamera = MODEL_CAMERA) -> np.ndarray:
    """Keypoints (17, 3) (u, v, score) — or (17, 2) — in pixels of a ``width`` x ``height``
    camera image -> the same keypoints in pixels of the ``model`` camera (default: MM-Fi's
    640 x 480, :data:`MODEL_CAMERA`). With a calibrated ``camera_info`` (sensor_msgs/CameraInfo,
    rclpy or rosbags) the rays are re-projected; else the image is rescaled. Returns a new array
    of the input's shape."""
    width, height = _positive_size(width, height)
    keypoints = _keypoints(keypoints)
    source = None if camera_info is None else SourceCamera.from_camera_info(camera_info, width, height)
    uv = keypoints[:, :2]
    if source is None:
        keypoints[:, :2] = rescale(uv, width, height, model.width, model.height)
    else:
        with np.errstate(invalid="ignore"):  # NaN keypoints stay NaN
            keypoints[:, :2] = project(source.normalised(uv), model)
    return keypoints
