"""2D keypoints from camera images (runtime/pose2d.py) on a real photograph, the path Image message
-> keypoints -> rays through the camera's intrinsics, then the camera node over DDS.

The photograph is scikit-image's ``astronaut`` (512 x 512, shipped in its wheel): a woman facing
the camera, head and shoulders in view, her right arm down the left side of the picture, her left
forearm behind a helmet. The pixel regions below were read off the picture (a grid drawn on it),
not from the detector's output.
"""
from __future__ import annotations

import os
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

from mmhpe_ros.runtime.pose2d import BLAZEPOSE_LANDMARKS, COCO_FROM_BLAZEPOSE, landmarks_to_keypoints
from mmhpe_ros.skeleton import KEYPOINT_INDEX, KEYPOINTS_2D
from ros_domain import lease_domain  # noqa: E402

# keypoint: (u_min, u_max, v_min, v_max) in pixels of the 512 x 512 astronaut photo.
ASTRONAUT_REGIONS = {
    "nose": (200, 245, 105, 150),
    "left_eye": (232, 265, 88, 120),  # the person's left: the right of the picture
    "right_eye": (185, 220, 88, 118),
    "left_ear": (255, 290, 90, 135),
    "right_ear": (165, 205, 90, 135),
    "left_shoulder": (270, 360, 210, 300),
    "right_shoulder": (60, 150, 200, 290),
    "right_elbow": (20, 120, 340, 460),
    "left_elbow": (280, 420, 320, 480),  # behind the helmet: a wider region
}
CLEARLY_VISIBLE = ("nose", "left_eye", "right_eye", "left_shoulder", "right_shoulder")


def test_the_coco_keypoints_are_blazepose_landmarks_of_the_same_name():
    assert len(BLAZEPOSE_LANDMARKS) == 33
    assert [BLAZEPOSE_LANDMARKS[i] for i in COCO_FROM_BLAZEPOSE] == list(KEYPOINTS_2D)


def test_landmarks_become_pixels_with_centres_at_integers():
    landmarks = np.zeros((33, 3))
    landmarks[:, 0] = np.linspace(0, 1, 33)  # x = 0 is the left edge of the image, 1 the right edge
    landmarks[:, 1] = 0.5
    landmarks[:, 2] = np.arange(33) / 33
    keypoints = landmarks_to_keypoints(landmarks, width=640, height=480)
    nose, ankle = KEYPOINT_INDEX["nose"], KEYPOINT_INDEX["right_ankle"]
    assert keypoints.shape == (17, 3)
    np.testing.assert_allclose(keypoints[nose], [-0.5, 239.5, 0.0])
    np.testing.assert_allclose(keypoints[ankle], [landmarks[28, 0] * 640 - 0.5, 239.5, 28 / 33])
    with pytest.raises(ValueError, match="expected \\(33, 3\\) landmarks"):
        landmarks_to_keypoints(np.zeros((17, 3)), 640, 480)


def test_without_mediapipe_the_error_says_how_to_install_it(monkeypatch):
    from mmhpe_ros.runtime import pose2d

    for name in ("mediapipe", "mediapipe.python", "mediapipe.python.solutions", "mediapipe.python.solutions.pose"):
        monkeypatch.setitem(sys.modules, name, None)  # import of any of them fails
    with pytest.raises(ImportError, match=r"pip install \.\[camera\]"):
        pose2d.KeypointDetector()


# -- with mediapipe -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mediapipe():
    return pytest.importorskip("mediapipe", reason="mediapipe (pip install .[camera]) not installed")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data", reason="scikit-image (test requirement) not installed")
    return data.astronaut()


@pytest.fixture(scope="module")
def detector(mediapipe):
    from mmhpe_ros.runtime.pose2d import KeypointDetector

    with KeypointDetector(static_image_mode=True) as detector:
        yield detector


def bgr8_message(rgb: np.ndarray, padding: int = 4) -> SimpleNamespace:
    """A sensor_msgs/Image (bgr8, the usual camera driver output) with padded rows."""
    height, width = rgb.shape[:2]
    rows = np.zeros((height, width * 3 + padding), dtype=np.uint8)
    rows[:, :width * 3] = rgb[..., ::-1].reshape(height, -1)
    return SimpleNamespace(height=height, width=width, encoding="bgr8", is_bigendian=0, step=rows.shape[1],
                           data=rows.tobytes(), header=SimpleNamespace(frame_id="camera"))


def test_blazepose_names_match_mediapipes(mediapipe):
    from mediapipe.python.solutions.pose import PoseLandmark

    assert tuple(landmark.name.lower() for landmark in PoseLandmark) == BLAZEPOSE_LANDMARKS


def assert_in_regions(keypoints: np.ndarray | None, names) -> None:
    assert keypoints is not None and keypoints.shape == (17, 3) and np.isfinite(keypoints).all()
    for name in names:
        u_min, u_max, v_min, v_max = ASTRONAUT_REGIONS[name]
        u, v, _ = keypoints[KEYPOINT_INDEX[name]]
        assert u_min <= u <= u_max and v_min <= v <= v_max, f"{name} at ({u:.0f}, {v:.0f})"


def test_head_shoulders_and_elbows_are_where_they_are_in_the_photo(detector, astronaut):
    from mmhpe_ros.runtime.images import image_to_array

    keypoints = detector.detect(image_to_array(bgr8_message(astronaut)))
    assert_in_regions(keypoints, ASTRONAUT_REGIONS)
    for name in CLEARLY_VISIBLE:
        assert keypoints[KEYPOINT_INDEX[name], 2] > 0.9, name
    assert ((0.0 <= keypoints[:, 2]) & (keypoints[:, 2] <= 1.0)).all()
    # Legs are out of the picture: BlazePose says so with a low visibility.
    assert keypoints[[KEYPOINT_INDEX["left_ankle"], KEYPOINT_INDEX["right_ankle"]], 2].max() < 0.5


def test_grey_and_half_size_frames_find_the_same_places(detector, astronaut):
    from mmhpe_ros.runtime.images import image_to_rgb

    grey = np.rint(astronaut @ [0.299, 0.587, 0.114]).astype(np.uint8)
    mono = SimpleNamespace(height=512, width=512, encoding="mono8", is_bigendian=0, step=512, data=grey.tobytes())
    assert_in_regions(detector.detect(image_to_rgb(mono)), CLEARLY_VISIBLE)
    half = detector.detect(np.ascontiguousarray(astronaut[::2, ::2]))  # 256 x 256: pixels of half size
    assert half is not None
    half[:, :2] = (half[:, :2] + 0.5) * 2 - 0.5
    assert_in_regions(half, CLEARLY_VISIBLE)


def test_nobody_in_view_gives_none(detector):
    flat = np.full((480, 640, 3), 128, dtype=np.uint8)
    assert detector.detect(flat) is None
    with pytest.raises(ValueError, match="expected an \\(H, W, 3\\) uint8 RGB image"):
        detector.detect(np.zeros((480, 640, 3), dtype=np.float32))


def test_a_stream_detector_tracks_the_person_over_frames(mediapipe, astronaut):
    from mmhpe_ros.runtime.pose2d import KeypointDetector

    with KeypointDetector() as stream:
        frames = [stream.detect(astronaut) for _ in range(3)]
    assert all(f is not None for f in frames)
    u, v, _ = frames[-1][KEYPOINT_INDEX["nose"]]
    assert 200 <= u <= 245 and 105 <= v <= 150


def test_image_message_to_rays_with_the_camera_infos_intrinsics(detector, astronaut):
    """Image message -> image_to_array -> detect -> rays through the CameraInfo's pinhole, in the
    base frame (a camera 1.5 m up looking along base +x)."""
    from mmhpe_ros.geometry.calibration import Calibration
    from mmhpe_ros.geometry.transforms import RigidTransform
    from mmhpe_ros.model.config import ModelConfig
    from mmhpe_ros.model.observe import Rig
    from mmhpe_ros.runtime.images import image_to_array
    from mmhpe_ros.runtime.sensors import KeypointProcessor

    msg = bgr8_message(astronaut)
    keypoints = detector.detect(image_to_array(msg))
    k = [600.0, 0.0, 255.5, 0.0, 600.0, 255.5, 0.0, 0.0, 1.0]  # a 512 x 512 camera, ~46 deg wide
    info = SimpleNamespace(width=512, height=512, k=k, d=[], distortion_model="", binning_x=0, binning_y=0,
                           roi=SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0))
    optical = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # optical z -> base x, y -> -z
    mount = RigidTransform(optical, [0.0, 0.0, 1.5])
    processor = KeypointProcessor(ModelConfig(), Rig(Calibration(extrinsics={"camera": mount})))
    processor.set_camera_info(info)
    features = processor.from_keypoints(keypoints, 0, "camera")
    nose = KEYPOINT_INDEX["nose"]
    u, v = keypoints[nose, :2]
    by_hand = np.array([1.0, -(u - 255.5) / 600.0, -(v - 255.5) / 600.0])  # base x, y, z of the nose's ray
    np.testing.assert_allclose(features.arrays["rgb_rays"][nose], by_hand / np.linalg.norm(by_hand), atol=1e-6)
    np.testing.assert_allclose(features.arrays["rgb_origin"], [0.0, 0.0, 1.5])
    assert features.arrays["rgb_rays"][nose, 2] > 0.1  # the face is above the image centre: the ray rises
    inside = ((keypoints[:, :2] >= -0.5) & (keypoints[:, :2] < 511.5)).all(axis=1)
    assert inside.sum() >= 7 and not inside.all()  # the legs, extrapolated below the picture, have no ray
    np.testing.assert_allclose(features.arrays["rgb_score"], np.where(inside, keypoints[:, 2], 0.0), atol=1e-6)
    np.testing.assert_array_equal(features.arrays["rgb_rays"][~inside], 0.0)


# -- the camera node over DDS -------------------------------------------------------------------

ROS_DOMAIN_ID = lease_domain()  # this file's own DDS domain


@pytest.mark.parametrize("transport", ["bgr8", "mono16", "png"])
def test_camera_node_turns_published_images_into_model_features(mediapipe, astronaut, tmp_path, transport):
    """Image (bgr8, and 16-bit grey) and CompressedImage (PNG, lossless) through the node: the
    features are those of the detector on the same picture."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy not installed")
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    import array

    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CompressedImage, Image, PointCloud2

    from mmhpe_ros.model.checkpoint import save_model
    from mmhpe_ros.model.config import ModelConfig
    from mmhpe_ros.model.pose_model import PoseModel
    from mmhpe_ros.modalities import TOPICS
    from mmhpe_ros.nodes.camera import CameraNode
    from mmhpe_ros.runtime import codecs
    from mmhpe_ros.runtime.features import feature_topic, read_features
    from mmhpe_ros.runtime.pose2d import KeypointDetector

    config = ModelConfig(feature_dim=8, hidden_dim=8, lidar_points=64, mmwave_points=16)
    model_path = save_model(tmp_path / "m.safetensors", PoseModel(config))
    from mmhpe_ros.runtime.images import to_rgb

    grey16 = (astronaut.astype(np.uint32) @ np.array([299, 587, 114]) * 65535 // 255_000).astype(np.uint16)
    picture = to_rgb(grey16) if transport == "mono16" else astronaut  # what the node's detector sees
    with KeypointDetector() as fresh:  # the node's detector sees the same first frame: same output
        detected = fresh.detect(picture)
        assert detected is not None
    # the calibration's 512 x 512 camera (f 600 px), 1.5 m up looking along base +x: rays by hand
    rays = np.column_stack([np.ones(17), -(detected[:, 0] - 255.5) / 600.0, -(detected[:, 1] - 255.5) / 600.0])
    expected_rays = rays / np.linalg.norm(rays, axis=1, keepdims=True)
    calibration = {"extrinsics.camera.xyz": [0.0, 0.0, 1.5], "extrinsics.camera.rpy": [-np.pi / 2, 0.0, -np.pi / 2],
                   "intrinsics.camera.width": 512, "intrinsics.camera.height": 512,
                   "intrinsics.camera.k": [600.0, 0.0, 255.5, 0.0, 600.0, 255.5, 0.0, 0.0, 1.0]}

    previous = os.environ.get("ROS_DOMAIN_ID")
    os.environ["ROS_DOMAIN_ID"] = ROS_DOMAIN_ID
    rclpy.init()
    try:
        executor = SingleThreadedExecutor()
        helper = rclpy.create_node("camera_image_test")
        node = CameraNode(parameter_overrides=[
            Parameter("model_path", value=str(model_path)), Parameter("use_images", value=True),
            Parameter("image_transport", value="compressed" if transport == "png" else "raw")]
            + [Parameter(name, value=value) for name, value in calibration.items()])
        for n in (helper, node):
            executor.add_node(n)
        assert node._detector is not None, "the camera node did not start its image path"
        received = []
        helper.create_subscription(PointCloud2, feature_topic("rgb"), received.append, 10)
        types = codecs.rclpy_types()
        header = codecs.make_header(types, 5_000_000_000, "camera")
        if transport == "png":
            import io

            from PIL import Image as PilImage

            encoded = io.BytesIO()
            PilImage.fromarray(astronaut).save(encoded, format="PNG")
            publisher = helper.create_publisher(CompressedImage, TOPICS.camera_image + "/compressed",
                                                qos_profile_sensor_data)
            msg = CompressedImage(header=header, format="png", data=array.array("B", encoded.getvalue()))
        else:
            publisher = helper.create_publisher(Image, TOPICS.camera_image, qos_profile_sensor_data)
            if transport == "mono16":
                msg = Image(header=header, height=512, width=512, encoding="mono16", is_bigendian=0, step=1024,
                            data=array.array("B", grey16.astype("<u2").tobytes()))
            else:
                plain = bgr8_message(astronaut)
                msg = Image(header=header, height=plain.height, width=plain.width, encoding="bgr8",
                            is_bigendian=0, step=plain.step, data=array.array("B", plain.data))
        deadline = time.monotonic() + 20.0
        while not received and time.monotonic() < deadline:
            publisher.publish(msg)
            executor.spin_once(timeout_sec=0.1)
        assert received, "no features from the camera node within 20 s"
        assert codecs.header_stamp_ns(received[0]) == 5_000_000_000
        assert received[0].header.frame_id == "base_link"
        got = read_features("rgb", received[0], config)
        inside = ((detected[:, :2] >= -0.5) & (detected[:, :2] < 511.5)).all(axis=1)
        np.testing.assert_allclose(got["rgb_rays"][inside], expected_rays[inside], atol=1e-4)
        np.testing.assert_allclose(got["rgb_score"], np.where(inside, detected[:, 2], 0.0), atol=1e-4)
        executor.shutdown()
        node.destroy_node()
        helper.destroy_node()
    finally:
        rclpy.try_shutdown()
        if previous is None:
            os.environ.pop("ROS_DOMAIN_ID", None)
        else:
            os.environ["ROS_DOMAIN_ID"] = previous
