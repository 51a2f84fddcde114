"""What a driver-shaped bag holds (``mmhpe-ros synth-bag`` options): a light module, no numpy, so
the command line parser does not import the generator."""
from __future__ import annotations

from dataclasses import dataclass

# Subcarrier indices of the CSI layouts the bag can write (ascending; runtime/csi_layout.py's presets).
CSI_LAYOUTS: dict[str, tuple[int, ...]] = {
    "esp32_ht20": tuple(list(range(-26, 0)) + list(range(1, 27))),
    "intel5300": tuple(list(range(-28, -1, 2)) + [-1, 1] + list(range(3, 28, 2)) + [28]),
    "atheros_40mhz": tuple(list(range(-58, -1)) + list(range(2, 59))),
}
CSI_ANTENNAS = {"esp32_ht20": 1, "intel5300": 3, "atheros_40mhz": 3}
LIDAR_DRIVERS = ("ouster", "velodyne")
CAMERA_OUTPUTS = ("images", "keypoints", "both")
IMAGE_FORMATS = ("jpeg", "raw")
CSI_ENCODINGS = ("iq", "amplitude_phase")


@dataclass(frozen=True)
class DriverBagSpec:
    """What :func:`mmhpe_ros.data.driver_bag.write_driver_bag` writes (``mmhpe-ros synth-bag`` options)."""

    subject: str = "S01"
    action: str = "A13"
    seconds: float = 10.0
    seed: int = 0
    radar_rate_hz: float = 20.0
    lidar_rate_hz: float = 10.0
    lidar_driver: str = "ouster"
    camera_rate_hz: float = 30.0
    camera: str = "images"
    image_format: str = "jpeg"
    csi_layout: str = "esp32_ht20"
    csi_rate_hz: tuple[float, float] = (50.0, 150.0)
    csi_encoding: str = "iq"
    placement: tuple[float, float, float] | None = None  # x, y (m), heading (rad); None: the sequence's

    def __post_init__(self) -> None:
        checks = [
            (self.seconds > 0, f"seconds must be > 0, got {self.seconds}"),
            (min(self.radar_rate_hz, self.lidar_rate_hz, self.camera_rate_hz) > 0, "rates must be > 0"),
            (0 < self.csi_rate_hz[0] <= self.csi_rate_hz[1],
             f"csi_rate_hz must be 0 < low <= high, got {self.csi_rate_hz}"),
            (self.lidar_driver in LIDAR_DRIVERS, f"lidar_driver must be one of {LIDAR_DRIVERS}"),
            (self.camera in CAMERA_OUTPUTS, f"camera must be one of {CAMERA_OUTPUTS}"),
            (self.image_format in IMAGE_FORMATS, f"image_format must be one of {IMAGE_FORMATS}"),
            (self.csi_layout in CSI_LAYOUTS, f"csi_layout must be one of {sorted(CSI_LAYOUTS)}"),
            (self.csi_encoding in CSI_ENCODINGS, f"csi_encoding must be one of {CSI_ENCODINGS}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
