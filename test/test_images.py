"""sensor_msgs/Image and CompressedImage decoding (runtime/images.py) against numpy references,
OpenCV's conversions where OpenCV is installed (it comes with mediapipe) and cv_bridge where a
ROS install provides it."""
from __future__ import annotations

import array
import io
from types import SimpleNamespace

import numpy as np
import pytest

from mmhpe_ros.runtime.codecs import CodecError
from mmhpe_ros.runtime.images import (
    ENCODINGS, MAX_IMAGE_PIXELS, compressed_to_array, image_to_array, image_to_rgb, to_rgb,
)

HEIGHT, WIDTH = 6, 10
PADDING = 5  # odd row padding: rows start at unaligned addresses
RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
ALPHA = RNG.integers(0, 256, size=(HEIGHT, WIDTH, 1), dtype=np.uint8)
GREY16 = RNG.integers(0, 2**16, size=(HEIGHT, WIDTH), dtype=np.uint16)
YUV = RNG.integers(0, 256, size=(HEIGHT, WIDTH, 2), dtype=np.uint8)  # 4:2:2 planes interleaved


def image_msg(encoding: str, pixels: np.ndarray, padding: int = 0, bigendian: bool = False,
              data_type=bytes) -> SimpleNamespace:
    """A duck-typed sensor_msgs/Image of ``pixels`` (H, W, bytes per pixel) with padded rows."""
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1).view(np.uint8)
    padded = np.full((height, rows.shape[1] + padding), 0xEE, dtype=np.uint8)  # padding is garbage
    padded[:, :rows.shape[1]] = rows
    return SimpleNamespace(height=height, width=width, encoding=encoding, is_bigendian=int(bigendian),
                           step=padded.shape[1], data=data_type(padded.tobytes()))


def yuv422_reference(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """BT.601 video-range YUV -> RGB in floating point (the textbook formula)."""
    u, v = np.repeat(u, 2, axis=1) - 128.0, np.repeat(v, 2, axis=1) - 128.0
    luma = 1.164 * np.maximum(y - 16.0, 0.0)
    rgb = np.stack([luma + 1.596 * v, luma - 0.813 * v - 0.391 * u, luma + 2.018 * u], axis=-1)
    return np.clip(np.rint(rgb), 0, 255)


def yuv_planes(order: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Y, U, V) planes of :data:`YUV` read as pixel pairs packed in ``order`` ('UYVY' / 'YUYV')."""
    quads = YUV.reshape(HEIGHT, WIDTH // 2, 4).astype(np.float64)
    luma = quads[..., [i for i, c in enumerate(order) if c == "Y"]].reshape(HEIGHT, WIDTH)
    return luma, quads[..., order.index("U")], quads[..., order.index("V")]


COLOUR_CASES = {
    "rgb8": RGB,
    "bgr8": RGB[..., ::-1],
    "rgba8": np.concatenate([RGB, ALPHA], axis=2),
    "bgra8": np.concatenate([RGB[..., ::-1], ALPHA], axis=2),
}


@pytest.mark.parametrize("padding", [0, PADDING])
@pytest.mark.parametrize("encoding", sorted(COLOUR_CASES))
def test_colour_encodings_decode_to_rgb(encoding, padding):
    msg = image_msg(encoding, np.ascontiguousarray(COLOUR_CASES[encoding]), padding)
    decoded = image_to_array(msg)
    assert decoded.dtype == np.uint8 and decoded.flags.c_contiguous and decoded.flags.writeable
    np.testing.assert_array_equal(decoded, RGB)
    np.testing.assert_array_equal(image_to_array(image_msg(encoding.upper(), COLOUR_CASES[encoding])), RGB)


@pytest.mark.parametrize("padding", [0, PADDING])
@pytest.mark.parametrize("encoding, order", [("yuv422", "UYVY"), ("uyvy", "UYVY"),
                                             ("yuv422_yuy2", "YUYV"), ("yuyv", "YUYV")])
def test_yuv422_decodes_to_bt601_rgb(encoding, order, padding):
    decoded = image_to_array(image_msg(encoding, YUV, padding))
    assert decoded.shape == (HEIGHT, WIDTH, 3) and decoded.dtype == np.uint8
    # Fixed-point (OpenCV's Q20 constants) vs floating point: at most one level apart.
    assert np.abs(decoded.astype(int) - yuv422_reference(*yuv_planes(order))).max() <= 1


@pytest.mark.parametrize("encoding, code", [("yuv422", "COLOR_YUV2RGB_UYVY"), ("yuyv", "COLOR_YUV2RGB_YUYV")])
def test_yuv422_matches_opencv_exactly(encoding, code):
    cv2 = pytest.importorskip("cv2", reason="OpenCV (installed with mediapipe, the camera extra) not installed")
    frame = np.random.default_rng(3).integers(0, 256, size=(48, 64, 2), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_array(image_msg(encoding, frame, PADDING)),
                                  cv2.cvtColor(frame, getattr(cv2, code)))


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono8_decodes_to_a_grey_plane(encoding):
    grey = RGB[..., 1]
    decoded = image_to_array(image_msg(encoding, grey[..., None], PADDING))
    assert decoded.shape == (HEIGHT, WIDTH)
    np.testing.assert_array_equal(decoded, grey)
    np.testing.assert_array_equal(to_rgb(decoded), np.stack([grey] * 3, axis=-1))


@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
@pytest.mark.parametrize("bigendian", [False, True])
def test_mono16_honours_the_byte_order(encoding, bigendian):
    stored = GREY16.astype(">u2" if bigendian else "<u2")
    decoded = image_to_array(image_msg(encoding, stored[..., None], PADDING, bigendian))
    assert decoded.dtype == np.uint16 and decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, GREY16)
    # The other byte order reads byte-swapped values: the flag is really used.
    swapped = image_to_array(image_msg(encoding, stored[..., None], PADDING, not bigendian))
    np.testing.assert_array_equal(swapped, GREY16.byteswap())


def test_mono16_to_rgb_scales_to_eight_bits_with_rounding():
    values = np.array([[0, 128, 129, 257, 385, 386, 65535]], dtype=np.uint16)
    rgb = to_rgb(values)
    expected = np.floor(values * 255.0 / 65535.0 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(rgb[..., 0], expected)
    np.testing.assert_array_equal(rgb, np.repeat(expected[..., None], 3, axis=2))
    np.testing.assert_array_equal(to_rgb(GREY16)[..., 2], np.floor(GREY16 * 255.0 / 65535.0 + 0.5))


@pytest.mark.parametrize("data_type", [bytes, bytearray, lambda b: array.array("B", b),
                                       lambda b: np.frombuffer(b, dtype=np.uint8)])
def test_every_buffer_type_a_message_may_carry(data_type):
    np.testing.assert_array_equal(image_to_array(image_msg("bgr8", RGB[..., ::-1], PADDING, data_type=data_type)), RGB)


def test_data_longer_than_step_times_height_is_accepted_and_result_owns_its_memory():
    msg = image_msg("rgb8", RGB)
    buffer = bytearray(msg.data + b"\0" * 7)
    msg.data = buffer
    decoded = image_to_array(msg)
    np.testing.assert_array_equal(decoded, RGB)
    buffer[:3] = b"\1\2\3"  # changing the message later does not change the image
    np.testing.assert_array_equal(decoded, RGB)


def test_real_message_classes_decode():
    from rosbags.typesys import Stores, get_typestore

    types = get_typestore(Stores.ROS2_KILTED).types
    Image, Header, Time = (types[name] for name in ("sensor_msgs/msg/Image", "std_msgs/msg/Header",
                                                          "builtin_interfaces/msg/Time"))
    plain = image_msg("bgr8", RGB[..., ::-1], PADDING)
    header = Header(stamp=Time(sec=1, nanosec=0), frame_id="camera")
    rosbags_msg = Image(header=header, height=plain.height, width=plain.width, encoding="bgr8", is_bigendian=0,
                        step=plain.step, data=np.frombuffer(plain.data, dtype=np.uint8))
    np.testing.assert_array_equal(image_to_array(rosbags_msg), RGB)
    sensor_msgs = pytest.importorskip("sensor_msgs.msg", reason="rclpy message packages not installed")
    rclpy_msg = sensor_msgs.Image(height=plain.height, width=plain.width, encoding="bgr8", is_bigendian=0,
                                  step=plain.step, data=array.array("B", plain.data))
    np.testing.assert_array_equal(image_to_array(rclpy_msg), RGB)


@pytest.mark.parametrize("change, message", [
    (dict(encoding="bayer_rggb8"), "encoding 'bayer_rggb8' is not supported"),
    (dict(encoding=None), "encoding None is not supported"),
    (dict(step=WIDTH * 3 - 1), "step 29 < width\\*3 = 30"),
    (dict(data=b"\0" * (HEIGHT * WIDTH * 3 - 1)), "data has 179 bytes, expected step\\*height = 30\\*6 = 180"),
    (dict(height=0), "empty \\(10 x 0 pixels\\)"),
    (dict(width=0), "empty \\(0 x 6 pixels\\)"),
    (dict(height=2**32), "height is 4294967296, expected an integer in 0..4294967295"),
    (dict(step=-3), "step is -3"),
    (dict(width="10"), "width is '10'"),
    (dict(height=2**16, width=2**16, step=3 * 2**16), f"over the {MAX_IMAGE_PIXELS}-pixel limit"),
    (dict(data=[1, 2, 3] * 2), "data has 6 bytes"),
    (dict(data=12), "data of type int is not a byte sequence"),
])
def test_bad_images_are_refused_with_a_clear_message(change, message):
    msg = image_msg("rgb8", RGB)
    for name, value in change.items():
        setattr(msg, name, value)
    with pytest.raises(CodecError, match=message):
        image_to_array(msg)


def test_odd_width_yuv422_is_refused():
    msg = image_msg("yuyv", RNG.integers(0, 256, size=(2, 3, 2), dtype=np.uint8))
    with pytest.raises(CodecError, match="width 3 is odd"):
        image_to_array(msg)


def test_every_encoding_is_covered_by_a_test():
    tested = set(COLOUR_CASES) | {"yuv422", "uyvy", "yuv422_yuy2", "yuyv", "mono8", "8uc1", "mono16", "16uc1"}
    assert set(ENCODINGS) == tested


# -- CompressedImage ----------------------------------------------------------------------------


def compressed_msg(pixels: np.ndarray, fmt: str, pil_format: str, **save) -> SimpleNamespace:
    from PIL import Image as PilImage

    buffer = io.BytesIO()
    PilImage.fromarray(pixels).save(buffer, format=pil_format, **save)
    return SimpleNamespace(format=fmt, data=np.frombuffer(buffer.getvalue(), dtype=np.uint8))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A natural 128 x 128 RGB photo (JPEG error is meaningful on real images, not on noise)."""
    data = pytest.importorskip("skimage.data", reason="scikit-image (test extra) not installed")
    return np.ascontiguousarray(data.astronaut()[::4, ::4])


def test_png_round_trips_exactly(photo):
    pytest.importorskip("PIL", reason="Pillow not installed")
    np.testing.assert_array_equal(compressed_to_array(compressed_msg(photo, "png", "PNG")), photo)
    grey = photo[..., 0]
    np.testing.assert_array_equal(compressed_to_array(compressed_msg(grey, "mono8; png compressed", "PNG")), grey)
    decoded16 = compressed_to_array(compressed_msg(GREY16, "16UC1; png compressed", "PNG"))
    assert decoded16.dtype == np.uint16
    np.testing.assert_array_equal(decoded16, GREY16)
    rgba = np.concatenate([photo, np.full(photo.shape[:2] + (1,), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(compressed_to_array(compressed_msg(rgba, "png", "PNG")), photo)


def test_jpeg_decodes_close_to_the_original_and_as_opencv_does(photo):
    pytest.importorskip("PIL", reason="Pillow not installed")
    msg = compressed_msg(photo, "rgb8; jpeg compressed bgr8", "JPEG", quality=95)
    decoded = compressed_to_array(msg)
    assert decoded.shape == photo.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - photo).mean() < 4.0
    np.testing.assert_array_equal(image_to_rgb(msg), decoded)
    cv2 = pytest.importorskip("cv2", reason="OpenCV (installed with mediapipe) not installed")
    reference = cv2.imdecode(msg.data, cv2.IMREAD_COLOR)[..., ::-1]
    assert np.abs(decoded.astype(int) - reference).max() <= 2  # two libjpeg builds, IDCT rounding


@pytest.mark.parametrize("fmt, data, message", [
    ("jpeg", b"", "data is empty"),
    ("jpeg", b"\xff\xd8\xff\xe0 not really a jpeg", "cannot decode"),
    ("png", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "only JPEG/PNG"),
    ("16UC1; compressedDepth png", b"\0" * 40, "compressedDepth image, not a camera image"),
    (None, b"\0", "format is None"),
])
def test_bad_compressed_images_are_refused(fmt, data, message):
    pytest.importorskip("PIL", reason="Pillow not installed")
    with pytest.raises(CodecError, match=message):
        compressed_to_array(SimpleNamespace(format=fmt, data=data))


def test_truncated_jpeg_is_refused(photo):
    pytest.importorskip("PIL", reason="Pillow not installed")
    msg = compressed_msg(photo, "jpeg", "JPEG")
    msg.data = msg.data[: msg.data.size // 2]
    with pytest.raises(CodecError, match="cannot decode"):
        compressed_to_array(msg)


def test_image_to_rgb_takes_both_message_types():
    grey = image_msg("mono8", RGB[..., :1])
    np.testing.assert_array_equal(image_to_rgb(grey), np.repeat(RGB[..., :1], 3, axis=2))
    np.testing.assert_array_equal(image_to_rgb(image_msg("bgra8", COLOUR_CASES["bgra8"])), RGB)


# -- cv_bridge, the ROS reference ---------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "yuv422", "yuv422_yuy2"])
def test_same_arrays_as_cv_bridge(encoding):
    cv_bridge = pytest.importorskip(
        "cv_bridge", reason="cv_bridge comes with a ROS distribution (not on PyPI); the OpenCV "
        "comparisons above check the same conversions it makes")
    from sensor_msgs.msg import Image

    pixels = {"mono8": RGB[..., :1], "mono16": GREY16[..., None], "yuv422": YUV, "yuv422_yuy2": YUV}.get(
        encoding, COLOUR_CASES.get(encoding))
    plain = image_msg(encoding, np.ascontiguousarray(pixels), PADDING)
    msg = Image(height=plain.height, width=plain.width, encoding=encoding, is_bigendian=0, step=plain.step,
                data=array.array("B", plain.data))
    bridge = cv_bridge.CvBridge()
    desired = "passthrough" if encoding.startswith("mono") else "rgb8"
    np.testing.assert_array_equal(image_to_array(msg), bridge.imgmsg_to_cv2(msg, desired_encoding=desired))
