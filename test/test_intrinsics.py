"""Keypoints of another camera -> the model's camera (runtime/intrinsics.py): the rays of known
3D points must land where the model's camera would see them."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mmhpe_ros.runtime.codecs import CodecError
from mmhpe_ros.runtime.intrinsics import (
    MODEL_CAMERA, PinholeCamera, distort, project, rescale, to_model_pixels, undistort,
)

RNG = np.random.default_rng(4)
# 17 points of a person ~3 m in front of the camera (x right, y down, z forward), in view.
POINTS = np.column_stack([RNG.uniform(-0.8, 0.8, 17), RNG.uniform(-0.9, 0.9, 17), RNG.uniform(2.5, 3.5, 17)])
SCORES = RNG.uniform(0, 1, 17)
PLUMB_BOB = np.array([-0.29, 0.087, 0.0012, -0.0007, -0.011])


def camera_info(k: np.ndarray, width: int, height: int, d=(), model: str = "plumb_bob", binning=(0, 0),
                roi=(0, 0, 0, 0)) -> SimpleNamespace:
    """A duck-typed sensor_msgs/CameraInfo."""
    return SimpleNamespace(
        width=width, height=height, k=np.asarray(k, dtype=np.float64).ravel(), d=list(d), distortion_model=model,
        binning_x=binning[0], binning_y=binning[1],
        roi=SimpleNamespace(x_offset=roi[0], y_offset=roi[1], width=roi[2], height=roi[3], do_rectify=False))


def seen_by(k: np.ndarray, d=()) -> np.ndarray:
    """Pixels (17, 2) of POINTS through camera matrix ``k`` and lens ``d``."""
    xy = POINTS[:, :2] / POINTS[:, 2:]
    if len(d):
        xy = distort(xy, np.asarray(d))
    return xy * [k[0, 0], k[1, 1]] + [k[0, 2], k[1, 2]]


MODEL_VIEW = seen_by(MODEL_CAMERA.matrix)  # where the model's camera sees POINTS
HD = np.array([[910.0, 0.0, 641.3], [0.0, 905.0, 357.8], [0.0, 0.0, 1.0]])  # a 1280 x 720 camera


def with_scores(uv: np.ndarray) -> np.ndarray:
    return np.column_stack([uv, SCORES])


def test_a_calibrated_camera_is_reprojected_onto_the_models_camera():
    mapped = to_model_pixels(with_scores(seen_by(HD)), camera_info(HD, 1280, 720), 1280, 720)
    np.testing.assert_allclose(mapped[:, :2], MODEL_VIEW, atol=1e-9)
    np.testing.assert_array_equal(mapped[:, 2], SCORES)


@pytest.mark.parametrize("model, d", [("plumb_bob", PLUMB_BOB),
                                      ("rational_polynomial", [0.4, -0.1, 0.001, 0.0005, 0.02, 0.7, -0.05, 0.06])])
def test_lens_distortion_is_removed(model, d):
    mapped = to_model_pixels(with_scores(seen_by(HD, d)), camera_info(HD, 1280, 720, d, model), 1280, 720)
    np.testing.assert_allclose(mapped[:, :2], MODEL_VIEW, atol=1e-6)


def test_undistort_inverts_distort_and_agrees_with_opencv():
    xy = RNG.uniform(-0.6, 0.6, size=(50, 2))
    np.testing.assert_allclose(undistort(distort(xy, PLUMB_BOB), PLUMB_BOB), xy, atol=1e-10)
    cv2 = pytest.importorskip("cv2", reason="OpenCV (installed with mediapipe) not installed")
    pixels = distort(xy, PLUMB_BOB) * [HD[0, 0], HD[1, 1]] + HD[:2, 2]
    reference = cv2.undistortPoints(pixels.reshape(-1, 1, 2), HD, PLUMB_BOB,
                                    criteria=(cv2.TERM_CRITERIA_COUNT, 20, 0)).reshape(-1, 2)
    np.testing.assert_allclose(undistort(distort(xy, PLUMB_BOB), PLUMB_BOB), reference, atol=1e-6)


def test_binning_and_region_of_interest_follow_rep_104():
    # The published image is the sensor's region at (200, 100), 800 x 600, binned by 2: 400 x 300.
    sensor = seen_by(HD)
    image = (sensor - [200, 100] + 0.5) / 2 - 0.5
    info = camera_info(HD, 1280, 720, binning=(2, 2), roi=(200, 100, 800, 600))
    np.testing.assert_allclose(to_model_pixels(with_scores(image), info, 400, 300)[:, :2], MODEL_VIEW, atol=1e-9)


def test_a_stream_resized_after_calibration_is_scaled_back():
    half = (seen_by(HD) + 0.5) / 2 - 0.5  # 640 x 360 stream of the 1280 x 720 calibration
    mapped = to_model_pixels(with_scores(half), camera_info(HD, 1280, 720), 640, 360)
    np.testing.assert_allclose(mapped[:, :2], MODEL_VIEW, atol=1e-9)


def test_without_calibration_the_image_is_rescaled():
    keypoints = with_scores(RNG.uniform(0, 1280, size=(17, 2)))
    expected = (keypoints[:, :2] + 0.5) * [640 / 1280, 480 / 960] - 0.5
    np.testing.assert_allclose(to_model_pixels(keypoints, None, 1280, 960)[:, :2], expected)
    uncalibrated = camera_info(np.zeros(9), 1280, 960)  # K all zero: "uncalibrated" in CameraInfo
    np.testing.assert_array_equal(to_model_pixels(keypoints, uncalibrated, 1280, 960),
                                  to_model_pixels(keypoints, None, 1280, 960))
    # Pixel centres at integers: image edges map to image edges, the centre to the centre.
    edges = np.array([[-0.5, -0.5], [1279.5, 959.5], [639.5, 479.5]])
    np.testing.assert_allclose(rescale(edges, 1280, 960, 640, 480), [[-0.5, -0.5], [639.5, 479.5], [319.5, 239.5]])
    same = to_model_pixels(keypoints, None, 640, 480)
    np.testing.assert_allclose(same, keypoints)


def test_the_models_own_camera_maps_to_itself():
    info = camera_info(MODEL_CAMERA.matrix, 640, 480)
    np.testing.assert_allclose(to_model_pixels(with_scores(MODEL_VIEW), info, 640, 480)[:, :2], MODEL_VIEW, atol=1e-9)
    other = PinholeCamera(fx=500.0, fy=500.0, cx=100.0, cy=80.0, width=200, height=160)
    np.testing.assert_allclose(to_model_pixels(with_scores(seen_by(HD)), camera_info(HD, 1280, 720), 1280, 720,
                                               model=other)[:, :2], project(POINTS[:, :2] / POINTS[:, 2:], other))


def test_nan_keypoints_stay_nan_and_the_input_is_not_changed():
    keypoints = with_scores(seen_by(HD))
    keypoints[3, :2] = np.nan
    original = keypoints.copy()
    mapped = to_model_pixels(keypoints, camera_info(HD, 1280, 720, PLUMB_BOB), 1280, 720)
    assert np.isnan(mapped[3, :2]).all() and np.isfinite(np.delete(mapped, 3, axis=0)).all()
    np.testing.assert_array_equal(keypoints, original)
    assert to_model_pixels(keypoints[:, :2], None, 1280, 720).shape == (17, 2)


@pytest.mark.parametrize("info, message", [
    (camera_info(np.ones(8), 640, 480), "must hold 9 values"),
    (camera_info([[-5, 0, 1], [0, 5, 1], [0, 0, 1]], 640, 480), "not a camera matrix"),
    (camera_info(HD, 1280, 720, d=[0.1, 0, 0, 0], model="equidistant"), "'equidistant' is not supported"),
    (camera_info(HD, 1280, 720, d=[np.nan, 0, 0, 0, 0]), "not finite"),
])
def test_unusable_camera_info_is_refused(info, message):
    with pytest.raises(CodecError, match=message):
        to_model_pixels(with_scores(seen_by(HD)), info, 1280, 720)


def test_bad_keypoints_or_sizes_are_refused():
    with pytest.raises(ValueError, match="expected \\(17, 2\\) or \\(17, 3\\)"):
        to_model_pixels(np.zeros((16, 3)), None, 640, 480)
    with pytest.raises(ValueError, match="must be positive"):
        to_model_pixels(np.zeros((17, 3)), None, 0, 480)


def test_real_camera_info_messages():
    from rosbags.typesys import Stores, get_typestore

    types = get_typestore(Stores.ROS2_KILTED).types
    roi = types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="c")
    fields = dict(height=720, width=1280, distortion_model="plumb_bob", d=PLUMB_BOB, k=HD.ravel(),
                  r=np.eye(3).ravel(), p=np.zeros(12), binning_x=0, binning_y=0)
    info = types["sensor_msgs/msg/CameraInfo"](header=header, roi=roi, **fields)
    keypoints = with_scores(seen_by(HD, PLUMB_BOB))
    np.testing.assert_allclose(to_model_pixels(keypoints, info, 1280, 720)[:, :2], MODEL_VIEW, atol=1e-6)
    sensor_msgs = pytest.importorskip("sensor_msgs.msg", reason="rclpy message packages not installed")
    rclpy_info = sensor_msgs.CameraInfo(**fields)
    np.testing.assert_allclose(to_model_pixels(keypoints, rclpy_info, 1280, 720)[:, :2], MODEL_VIEW, atol=1e-6)
