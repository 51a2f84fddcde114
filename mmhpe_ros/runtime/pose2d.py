"""2D keypoints of a person in an RGB image: MediaPipe BlazePose -> MM-Fi's 17 COCO keypoints.

The detector is MediaPipe 0.10.14's pose solution (``mediapipe.solutions.pose.Pose``) with the
models shipped inside its wheel (``pose_detection.tflite`` finds the person,
``pose_landmark_full.tflite`` places 33 landmarks), so it runs offline on the CPU. mediapipe is
the optional extra ``camera`` (``pip install .[camera]``) and is imported only when a
:class:`KeypointDetector` is made.

BlazePose's 33 landmarks include the 17 COCO keypoints under the same names (nose, eyes, ears,
shoulders, elbows, wrists, hips, knees, ankles; left/right of the person, as in COCO); they are
taken in :data:`mmhpe_ros.skeleton.KEYPOINTS_2D` order. Coordinates are pixels of the given image
with u right and v down and the centre of pixel (i, j) at (u, v) = (i, j) (the convention of
OpenCV and of sensor_msgs/CameraInfo's K); BlazePose's normalised x in [0, 1] spans the image's
edges, so u = x * width - 0.5. The score is BlazePose's landmark visibility (the likelihood that
the landmark is in the image and not occluded). :func:`mmhpe_ros.runtime.intrinsics.to_model_pixels`
then brings the keypoints to the model's 640 x 480 camera.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from mmhpe_ros.skeleton import KEYPOINTS_2D

# BlazePose's 33 landmarks in model output order (mediapipe.solutions.pose.PoseLandmark).
BLAZEPOSE_LANDMARKS: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)
# Index of each COCO keypoint (KEYPOINTS_2D order) among BlazePose's landmarks.
COCO_FROM_BLAZEPOSE: np.ndarray = np.array([BLAZEPOSE_LANDMARKS.index(name) for name in KEYPOINTS_2D])

INSTALL_HINT = "pip install .[camera]  (mediapipe==0.10.14)"


def landmarks_to_keypoints(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """BlazePose landmarks (33, 3) of normalised (x, y, visibility) -> (17, 3) float64
    (u, v, score) in pixels of a ``width`` x ``height`` image, in KEYPOINTS_2D order."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (len(BLAZEPOSE_LANDMARKS), 3):
        raise ValueError(f"expected ({len(BLAZEPOSE_LANDMARKS)}, 3) landmarks (x, y, visibility), "
                         f"got {landmarks.shape}")
    coco = landmarks[COCO_FROM_BLAZEPOSE]
    pixels = coco[:, :2] * np.array([width, height], dtype=np.float64) - 0.5
    return np.column_stack([pixels, coco[:, 2]])


def _import_mediapipe_pose() -> Any:
    try:
        from mediapipe.python.solutions import pose
    except ImportError as error:
        raise ImportError(f"camera images need the MediaPipe pose detector, which is not installed: "
                          f"{INSTALL_HINT} ({error})") from error
    # mediapipe 0.10.14 calls a protobuf API that protobuf 4.25 marks deprecated, once per frame.
    warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)
    return pose


class KeypointDetector:
    """BlazePose on RGB frames -> (17, 3) COCO keypoints (u, v, score) in pixels.

    ``min_confidence`` is the person-detection confidence below which a frame has nobody in it
    (:meth:`detect` returns None), and, on a stream, the landmark confidence below which tracking
    is dropped and the person detector runs again. ``static_image_mode=False`` (a camera stream)
    tracks the person from frame to frame and smooths the landmarks; True treats every frame as
    an unrelated photo. Not thread-safe: one detector per thread. Use as a context manager or call
    :meth:`close` to free the MediaPipe graph.
    """

    def __init__(self, min_confidence: float = 0.5, static_image_mode: bool = False) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        pose = _import_mediapipe_pose()
        self.min_confidence = float(min_confidence)
        self._pose = pose.Pose(
            static_image_mode=static_image_mode, model_complexity=1,  # pose_landmark_full, in the wheel
            smooth_landmarks=not static_image_mode, enable_segmentation=False,
            min_detection_confidence=self.min_confidence, min_tracking_confidence=self.min_confidence,
        )

    def detect(self, rgb: np.ndarray) -> np.ndarray | None:
        """(17, 3) float64 (u, v, score) keypoints of the most prominent person in an (H, W, 3)
        uint8 RGB image (an (H, W) uint8 grey image is repeated on three channels); None when
        nobody is found."""
        rgb = np.asarray(rgb)
        if rgb.ndim == 2 and rgb.dtype == np.uint8:
            rgb = np.repeat(rgb[..., None], 3, axis=2)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or 0 in rgb.shape:
            raise ValueError(f"KeypointDetector.detect: expected an (H, W, 3) uint8 RGB image, "
                             f"got {rgb.dtype} {rgb.shape}")
        result = self._pose.process(np.ascontiguousarray(rgb))
        if result.pose_landmarks is None:
            return None
        landmarks = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark])
        height, width = rgb.shape[:2]
        return landmarks_to_keypoints(landmarks, width, height)

    def close(self) -> None:
        """Free the MediaPipe graph (idempotent)."""
        if self._pose is not None:
            self._pose.close()
            self._pose = None

    def __enter__(self) -> KeypointDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
