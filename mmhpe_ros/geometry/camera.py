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
        """From a sensor_msgs/CameraInfo (rclpy or rosbags); None when uncalibrated (K all zero).

        ValueError (a CodecError) for a K or D that cannot be used."""
        source = SourceCamera.from_camera_info(info, int(info.width) or 1, int(info.height) or 1)
        if source is None:
            return None
        return cls(int(info.width), int(info.height), source.k, source.d)

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
