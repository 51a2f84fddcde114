"""Modalities, their MM-Fi file formats, ROS topic names and frame rates: one place for each fact."""
from __future__ import annotations

from dataclasses import dataclass

# The four modalities the model fuses, in the fixed order used for masks, Shapley values and files.
MODALITIES: tuple[str, ...] = ("rgb", "lidar", "mmwave", "wifi")
NUM_MODALITIES = len(MODALITIES)


@dataclass(frozen=True)
class MmfiFormat:
    """How MM-Fi stores one modality per frame: ``<seq>/<folder>/frameNNN.<ext>``."""

    folder: str
    extension: str
    description: str


MMFI_FORMATS: dict[str, MmfiFormat] = {
    "rgb": MmfiFormat("rgb", "npy", "2D keypoints (17, 2) in COCO order, pixels"),
    "infra1": MmfiFormat("infra1", "npy", "2D keypoints (17, 2), left infrared camera"),
    "infra2": MmfiFormat("infra2", "npy", "2D keypoints (17, 2), right infrared camera"),
    "depth": MmfiFormat("depth", "png", "16-bit depth image, millimetres"),
    "lidar": MmfiFormat("lidar", "bin", "float64 (N, 3): x, y, z"),
    "mmwave": MmfiFormat("mmwave", "bin", "float64 (N, 5): x, y, z, doppler, intensity"),
    "wifi": MmfiFormat("wifi-csi", "mat", "CSIamp and CSIphase, (3, 114, 10)"),
}
GROUND_TRUTH_FILE = "ground_truth.npy"

# MM-Fi's numbering and rates.
FRAME_RATE_HZ = 10.0  # every modality and the ground truth are synchronised at 10 Hz
FRAMES_PER_SEQUENCE = 297
ENVIRONMENTS: tuple[str, ...] = ("E01", "E02", "E03", "E04")
SUBJECTS: tuple[str, ...] = tuple(f"S{i:02d}" for i in range(1, 41))
ACTIONS: tuple[str, ...] = tuple(f"A{i:02d}" for i in range(1, 28))
ACTION_NAMES: dict[str, str] = dict(zip(ACTIONS, (
    "stretching and relaxing", "chest expanding horizontally", "chest expanding vertically",
    "left side twist", "right side twist", "mark time", "left limb extension",
    "right limb extension", "left front lunge", "right front lunge", "both upper limbs extension",
    "squat", "raising left hand", "raising right hand", "left side lunge", "right side lunge",
    "waving left hand", "waving right hand", "picking up things", "throwing toward left side",
    "throwing toward right side", "kicking toward left direction", "kicking toward right direction",
    "body extension to the left", "body extension to the right", "jumping up", "bowing",
)))

# WiFi CSI layout in MM-Fi: antennas x subcarriers x packets per frame.
CSI_ANTENNAS = 3
CSI_SUBCARRIERS = 114
CSI_PACKETS_PER_FRAME = 10
CSI_PACKET_RATE_HZ = FRAME_RATE_HZ * CSI_PACKETS_PER_FRAME  # 100 Hz

# Field layouts of the point sets.
LIDAR_FIELDS: tuple[str, ...] = ("x", "y", "z")
MMWAVE_FIELDS: tuple[str, ...] = ("x", "y", "z", "velocity", "intensity")
KEYPOINT_FIELDS: tuple[str, ...] = ("u", "v", "score")

# Camera convention of MM-Fi's RGB keypoints (pixels of a 640 x 480 image).
IMAGE_WIDTH = 640
IMAGE_HEIGHT = 480


def environment_of(subject: str) -> str:
    """MM-Fi fixes each subject's environment: S01-S10 in E01, S11-S20 in E02, and so on."""
    number = int(subject[1:])
    if not 1 <= number <= 40:
        raise ValueError(f"MM-Fi subjects are S01..S40, got {subject!r}")
    return ENVIRONMENTS[(number - 1) // 10]


@dataclass(frozen=True)
class Topics:
    """ROS topic names (relative, so a launch namespace applies)."""

    # Raw sensor streams, as the replayer and `mmhpe-ros convert` bags publish them.
    camera_image: str = "camera/image_raw"
    camera_info: str = "camera/camera_info"
    camera_keypoints: str = "camera/keypoints"
    lidar_points: str = "lidar/points"
    mmwave_points: str = "radar/points"
    wifi_csi: str = "wifi/csi"
    ground_truth: str = "mmfi/ground_truth"
    sequence: str = "mmfi/sequence"  # std_msgs/String "E01/S01/A01" at each sequence start
    # Model-ready features from the sensor nodes to the fusion node.
    features: str = "mmhpe/features"  # + "/<modality>"
    # Fusion outputs.
    markers: str = "mmhpe/markers"
    joints: str = "mmhpe/joints"
    mpjpe: str = "mmhpe/mpjpe"
    diagnostics: str = "/diagnostics"

    def feature(self, modality: str) -> str:
        """Topic of one modality's model-ready features."""
        return f"{self.features}/{modality}"


TOPICS = Topics()

# Raw input topic of each modality.
SENSOR_TOPICS: dict[str, str] = {
    "rgb": TOPICS.camera_keypoints,
    "lidar": TOPICS.lidar_points,
    "mmwave": TOPICS.mmwave_points,
    "wifi": TOPICS.wifi_csi,
}

# Frame ids: each sensor's own frame (as its driver stamps it) and the base frame of the rig, in
# which the skeleton is published and the ground truth is given. The camera's is an optical frame
# (REP 103: z forward, x right, y down), the frame CameraInfo describes.
FRAME_IDS: dict[str, str] = {
    "rgb": "camera_optical",
    "lidar": "lidar",
    "mmwave": "radar",
    "wifi": "wifi",
    "base": "base_link",
}
