"""Pinhole camera intrinsics: pixels <-> rays in the camera's optical frame (REP 103: z forward,
x right, y down), with the lens model of sensor_msgs/CameraInfo."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from mmhpe_ros.runtime.intrinsics import DISTORTION_MODELS, MODEL_CAMERA, SourceCamera, distort, undistort


@dataclass(frozen=True)
class CameraIntrinsics:
    """K (3 x 3) and distortion D (plumb_bob / rational_polynomial order) of a ``width`` x ``height``
    image; pixel centres at integer coordinates (REP 104)."""

    width: int
    height: int
    k: np.ndarray
    d: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        k = np.array(self.k, dtype=np.float64).reshape(3, 3)
        d = np.array(self.d, dtype=np.float64).ravel()
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ValueError(f"camera image size must be positive, got {self.width} x {self.height}")
        if not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0 or not np.allclose(k[2], (0, 0, 1)):
            raise ValueError(f"not a camera matrix: {k.ravel().tolist()}")
        if d.size > 8 or not np.isfinite(d).all():
            raise ValueError(f"distortion needs at most 8 finite coefficients, got {d.tolist()}")
        k.flags.writeable = d.flags.writeable = False
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))
        object.__setattr__(self, "k", k)
        object.__setattr__(self, "d", d)

    @classmethod
    def pinhole(cls, width: int, height: int, fx: float, fy: float, cx: float, cy: float) -> "CameraIntrinsics":
        return cls(width, height, np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]))

    @classmethod
    def from_camera_info(cls, info: Any) -> "CameraIntrinsics | None":
        """The camera of the images a sensor_msgs/CameraInfo (rclpy or rosbags) describes; None when
        uncalibrated (K all zero).

        REP 104: K and D are the calibrated sensor's (``width`` x ``height``); the published image is
        its ``roi`` (the whole sensor when the ROI's size is 0) binned by ``binning_x`` /
        ``binning_y``, so K is moved and scaled onto that image. ValueError (a CodecError) for a K, D
        or size that cannot be used."""
        binning = max(int(info.binning_x), 1), max(int(info.binning_y), 1)
        roi = info.roi
        width = int(roi.width or info.width) // binning[0]
        height = int(roi.height or info.height) // binning[1]
        source = SourceCamera.from_camera_info(info, width or 1, height or 1)
        if source is None:
            return None
        (sx, sy), (ox, oy), k = source.scale, source.offset, source.k
        # image pixel u is sensor pixel (u + 0.5) * sx - 0.5 + ox (pixel centres at integers)
        image_k = np.array([[k[0, 0] / sx, k[0, 1] / sx, (k[0, 2] - ox + 0.5) / sx - 0.5],
                            [0.0, k[1, 1] / sy, (k[1, 2] - oy + 0.5) / sy - 0.5],
                            [0.0, 0.0, 1.0]])
        return cls(width, height, image_k, source.d)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], what: str = "intrinsics") -> "CameraIntrinsics":
        """From ``{width, height, k: [9 values], d: [...]}`` (a calibration file's entry)."""
        try:
            return cls(int(values["width"]), int(values["height"]), np.asarray(values["k"], dtype=np.float64),
                       np.asarray(values.get("d", []), dtype=np.float64))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{what}: need width, height, k (9 values) and optional d: {error}") from None

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {"width": self.width, "height": self.height, "k": [float(v) for v in self.k.ravel()]}
        if self.d.size:  # an empty list has no type in a ROS parameter file
            values["d"] = [float(v) for v in self.d]
        return values

    @property
    def distortion_model(self) -> str:
        """The CameraInfo distortion model name for ``d``."""
        return "rational_polynomial" if self.d.size > DISTORTION_MODELS["plumb_bob"] else "plumb_bob"

    def normalised(self, uv: np.ndarray) -> np.ndarray:
        """Pixels (N, 2) -> undistorted normalised coordinates (X/Z, Y/Z) (N, 2)."""
        uv = np.asarray(uv, dtype=np.float64)
        y = (uv[:, 1] - self.k[1, 2]) / self.k[1, 1]
        x = (uv[:, 0] - self.k[0, 2] - self.k[0, 1] * y) / self.k[0, 0]
        xy = np.column_stack([x, y])
        return undistort(xy, self.d) if self.d.any() else xy

    def rays(self, uv: np.ndarray) -> np.ndarray:
        """Pixels (N, 2) -> unit rays (N, 3) in the optical frame."""
        xy = self.normalised(uv)
        rays = np.column_stack([xy, np.ones(len(xy))])
        return rays / np.linalg.norm(rays, axis=1, keepdims=True)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points (N, 3) in the optical frame -> (pixels (N, 2), depth Z (N,)). Points behind the
        camera (Z <= 0) give NaN pixels."""
        points = np.asarray(points, dtype=np.float64)
        depth = points[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            xy = points[:, :2] / np.where(depth > 0, depth, np.nan)[:, None]
        if self.d.any():
            xy = distort(xy, self.d)
        uv = xy @ self.k[:2, :2].T + self.k[:2, 2]
        return uv, depth

    def inside(self, uv: np.ndarray) -> np.ndarray:
        """(N,) bool: pixel inside the image (NaN: False)."""
        uv = np.asarray(uv, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return (uv[:, 0] >= -0.5) & (uv[:, 0] < self.width - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] < self.height - 0.5)


MMFI_CAMERA = CameraIntrinsics.pinhole(MODEL_CAMERA.width, MODEL_CAMERA.height, MODEL_CAMERA.fx, MODEL_CAMERA.fy,
                                       MODEL_CAMERA.cx, MODEL_CAMERA.cy)
"""MM-Fi's RGB camera as far as it is known (runtime.intrinsics.MODEL_CAMERA): the intrinsics used
when neither a CameraInfo nor a calibration file gives them."""
