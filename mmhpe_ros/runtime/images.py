"""Camera images as numpy arrays: sensor_msgs/Image and sensor_msgs/CompressedImage decoding.

Plain numpy (Pillow for CompressedImage, imported on first use), no rclpy. Messages are
duck-typed: rclpy and rosbags messages alike (``height``, ``width``, ``encoding``,
``is_bigendian``, ``step``, ``data``; ``format``, ``data`` for CompressedImage).

* colour encodings (``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``yuv422`` = ``uyvy``,
  ``yuv422_yuy2`` = ``yuyv``) decode to (H, W, 3) uint8 **RGB**; alpha is dropped; YUV 4:2:2
  converts with BT.601 video-range coefficients in the same fixed-point arithmetic as OpenCV's
  ``cvtColor`` (what cv_bridge calls), so the pixels are identical;
* ``mono8`` / ``8UC1`` decode to (H, W) uint8, ``mono16`` / ``16UC1`` to (H, W) uint16 in the
  message's byte order (``is_bigendian``); :func:`to_rgb` makes three channels of them
  (16 bits scaled to 8 as cv_bridge does: ``round(x * 255 / 65535)``).

``step`` (row padding) is honoured; every size is checked against the data before anything is
allocated, and a bad message raises :class:`~mmhpe_ros.runtime.codecs.CodecError` saying what is
wrong (test/test_fuzz_images.py fuzzes both decoders). Results are new, writeable, C-contiguous
arrays that never alias the message buffer.
"""
from __future__ import annotations

import io
from typing import Any, Callable, NamedTuple

import numpy as np

from mmhpe_ros.runtime.codecs import CodecError, _byte_buffer

MAX_IMAGE_PIXELS = 7680 * 4320  # 8K UHD; larger frames are refused as absurd
_UINT32_MAX = 2**32 - 1

# OpenCV's BT.601 video-range YUV -> RGB in Q20 fixed point (imgproc's YUV 4:2:2 conversion), as
# lookup tables over the 256 byte values: luma term, and the chroma terms of R, G (U and V), B.
_SHIFT = 20
_CY, _CVR, _CVG, _CUG, _CUB = 1220542, 1673527, -852492, -409993, 2116026
_BYTE = np.arange(256, dtype=np.int32)
_LUMA = np.maximum(_BYTE - 16, 0) * _CY
_ROUND = 1 << (_SHIFT - 1)
_RED_V, _GREEN_U, _GREEN_V, _BLUE_U = (_ROUND + _CVR * (_BYTE - 128), _CUG * (_BYTE - 128),
                                        _ROUND + _CVG * (_BYTE - 128), _ROUND + _CUB * (_BYTE - 128))


def _yuv422_to_rgb(pairs: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Luma of pixel pairs (H, W/2, 2) and their chroma (H, W/2), uint8 -> (H, W, 3) uint8 RGB."""
    luma = _LUMA[pairs]
    rgb = np.empty(pairs.shape + (3,), dtype=np.uint8)
    channel = np.empty(pairs.shape, dtype=np.int32)
    for index, chroma in enumerate((_RED_V[v], _GREEN_U[u] + _GREEN_V[v], _BLUE_U[u])):
        np.add(luma, chroma[..., None], out=channel)  # one chroma for both pixels of a pair
        channel >>= _SHIFT
        np.clip(channel, 0, 255, out=channel)
        rgb[..., index] = channel
    return rgb.reshape(pairs.shape[0], -1, 3)


def _uyvy(rows: np.ndarray, height: int, width: int, big_endian: bool) -> np.ndarray:
    quads = rows.reshape(height, width // 2, 4)  # U Y0 V Y1
    return _yuv422_to_rgb(quads[..., 1::2], quads[..., 0], quads[..., 2])


def _yuyv(rows: np.ndarray, height: int, width: int, big_endian: bool) -> np.ndarray:
    quads = rows.reshape(height, width // 2, 4)  # Y0 U Y1 V
    return _yuv422_to_rgb(quads[..., 0::2], quads[..., 1], quads[..., 3])


def _channels(order: tuple[int, int, int]) -> Callable[[np.ndarray, int, int, bool], np.ndarray]:
    """Decoder taking byte channels ``order`` of each pixel ((2, 1, 0): BGR -> RGB) into a new
    array, one strided copy per channel (several times faster than fancy indexing)."""

    def decode(rows: np.ndarray, height: int, width: int, big_endian: bool) -> np.ndarray:
        pixels = rows.reshape(height, width, -1)
        if order == (0, 1, 2) and pixels.shape[2] == 3:  # rgb8: one copy
            return np.array(pixels, order="C")
        rgb = np.empty((height, width, 3), dtype=np.uint8)
        for channel, source in enumerate(order):
            rgb[..., channel] = pixels[..., source]
        return rgb

    return decode


def _mono8(rows: np.ndarray, height: int, width: int, big_endian: bool) -> np.ndarray:
    return np.array(rows).reshape(height, width)


def _mono16(rows: np.ndarray, height: int, width: int, big_endian: bool) -> np.ndarray:
    element = np.dtype(np.uint16).newbyteorder(">" if big_endian else "<")
    return np.array(rows).view(element).reshape(height, width).astype(np.uint16)


class _Encoding(NamedTuple):
    """How one ``sensor_msgs/Image`` encoding decodes: bytes per pixel, then
    ``decode(rows, height, width, is_bigendian)`` of the (height, width * bytes) rows."""

    bytes_per_pixel: int
    decode: Callable[[np.ndarray, int, int, bool], np.ndarray]
    pixel_pairs: bool = False  # 4:2:2 chroma: the width must be even


ENCODINGS: dict[str, _Encoding] = {
    "rgb8": _Encoding(3, _channels((0, 1, 2))),
    "bgr8": _Encoding(3, _channels((2, 1, 0))),
    "rgba8": _Encoding(4, _channels((0, 1, 2))),
    "bgra8": _Encoding(4, _channels((2, 1, 0))),
    "mono8": _Encoding(1, _mono8),
    "8uc1": _Encoding(1, _mono8),
    "mono16": _Encoding(2, _mono16),
    "16uc1": _Encoding(2, _mono16),
    "yuv422": _Encoding(2, _uyvy, pixel_pairs=True),
    "uyvy": _Encoding(2, _uyvy, pixel_pairs=True),
    "yuv422_yuy2": _Encoding(2, _yuyv, pixel_pairs=True),
    "yuyv": _Encoding(2, _yuyv, pixel_pairs=True),
}
"""Supported encodings, lower case (matched case-insensitively); see the module docstring."""


def _size(value: Any, what: str) -> int:
    """A uint32 message field as an int, or CodecError."""
    try:
        integer = int(value)
    except (TypeError, ValueError, OverflowError):
        raise CodecError(f"Image: {what} is {value!r}, expected an integer") from None
    if integer != value or not 0 <= integer <= _UINT32_MAX:
        raise CodecError(f"Image: {what} is {value!r}, expected an integer in 0..{_UINT32_MAX} (uint32)")
    return integer


def check_image_size(height: int, width: int, what: str = "Image") -> None:
    """Refuse empty frames and frames over :data:`MAX_IMAGE_PIXELS`."""
    if height == 0 or width == 0:
        raise CodecError(f"{what}: empty ({width} x {height} pixels)")
    if height * width > MAX_IMAGE_PIXELS:
        raise CodecError(f"{what}: {width} x {height} pixels is over the {MAX_IMAGE_PIXELS}-pixel limit")


def image_to_array(msg: Any) -> np.ndarray:
    """Decode a ``sensor_msgs/Image``: (H, W, 3) uint8 RGB for colour encodings, (H, W) uint8 for
    ``mono8``, (H, W) uint16 for ``mono16`` (see the module docstring). Raises CodecError."""
    encoding = msg.encoding
    if not isinstance(encoding, str) or encoding.lower() not in ENCODINGS:
        raise CodecError(f"Image: encoding {encoding!r} is not supported; expected one of {sorted(ENCODINGS)}")
    spec = ENCODINGS[encoding.lower()]
    height, width, step = _size(msg.height, "height"), _size(msg.width, "width"), _size(msg.step, "step")
    check_image_size(height, width)
    if spec.pixel_pairs and width % 2:
        raise CodecError(f"Image: {encoding} packs pixel pairs, but width {width} is odd")
    row_bytes = width * spec.bytes_per_pixel
    if step < row_bytes:
        raise CodecError(f"Image: step {step} < width*{spec.bytes_per_pixel} = {row_bytes} bytes ({encoding})")
    buffer = _byte_buffer(msg.data, "Image")
    if buffer.size < step * height:
        raise CodecError(f"Image: data has {buffer.size} bytes, expected step*height = {step}*{height} = "
                         f"{step * height}")
    rows = np.ndarray((height, row_bytes), dtype=np.uint8, buffer=buffer, strides=(step, 1))
    return spec.decode(rows, height, width, bool(msg.is_bigendian))


# ---------------------------------------------------------------------------------------------
# CompressedImage
# ---------------------------------------------------------------------------------------------

COMPRESSED_FORMATS = ("JPEG", "PNG")  # what image_transport's "compressed" plugin writes
# Pillow mode -> (mode to convert to, None to keep; output dtype)
_PIL_MODES: dict[str, tuple[str | None, type]] = {
    "RGB": (None, np.uint8), "RGBA": ("RGB", np.uint8), "P": ("RGB", np.uint8), "PA": ("RGB", np.uint8),
    "CMYK": ("RGB", np.uint8), "YCbCr": ("RGB", np.uint8),
    "L": (None, np.uint8), "LA": ("L", np.uint8), "1": ("L", np.uint8),
    "I;16": (None, np.uint16), "I;16B": (None, np.uint16), "I": (None, np.uint16),
}


def compressed_to_array(msg: Any) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` holding a JPEG or PNG (told by its content;
    ``format`` as image_transport writes it, e.g. ``"jpeg"`` or ``"rgb8; jpeg compressed bgr8"``):
    (H, W, 3) uint8 RGB for colour, (H, W) uint8 or uint16 for grey. Raises CodecError."""
    try:
        from PIL import Image as PilImage
    except ImportError as error:
        raise ImportError("compressed_to_array needs Pillow: pip install .[camera]") from error
    fmt = msg.format
    if not isinstance(fmt, str):
        raise CodecError(f"CompressedImage: format is {fmt!r}, expected a string")
    if "compresseddepth" in fmt.lower():
        raise CodecError(f"CompressedImage: format {fmt!r} is a compressedDepth image, not a camera image")
    data = _byte_buffer(msg.data, "CompressedImage")
    if data.size == 0:
        raise CodecError("CompressedImage: data is empty")
    try:
        with PilImage.open(io.BytesIO(data.tobytes()), formats=COMPRESSED_FORMATS) as image:
            width, height = image.size  # from the header: checked before any pixel is decoded
            check_image_size(height, width, "CompressedImage")
            if image.mode not in _PIL_MODES:
                raise CodecError(f"CompressedImage: {image.format} of mode {image.mode!r} is not a camera image")
            convert, dtype = _PIL_MODES[image.mode]
            image.load()
            pixels = np.asarray(image.convert(convert) if convert else image)
    except CodecError:
        raise
    except PilImage.DecompressionBombError as error:  # Pillow's own check, made in open()
        raise CodecError(f"CompressedImage: over the {MAX_IMAGE_PIXELS}-pixel limit ({error})") from None
    except Exception as error:  # Pillow's plugins raise many types (OSError, SyntaxError, ...) for bad data
        raise CodecError(f"CompressedImage: cannot decode {data.size} bytes of {fmt!r} "
                         f"(only {'/'.join(COMPRESSED_FORMATS)}): {error}") from None
    if pixels.dtype.kind == "i" and pixels.size and (pixels.min() < 0 or pixels.max() > 65535):
        raise CodecError(f"CompressedImage: grey values {pixels.min()}..{pixels.max()} outside uint16")
    return np.array(pixels, dtype=dtype, order="C")


# ---------------------------------------------------------------------------------------------
# Any image -> RGB for a detector
# ---------------------------------------------------------------------------------------------


def to_rgb(pixels: np.ndarray) -> np.ndarray:
    """A decoded image -> (H, W, 3) uint8 RGB: colour passes through, grey is repeated on three
    channels (uint16 grey scaled to 8 bits by ``round(x * 255 / 65535)``, as cv_bridge does)."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.dtype == np.uint8:
        return pixels
    if pixels.ndim != 2 or pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"to_rgb: expected (H, W, 3) uint8, or (H, W) uint8 / uint16 grey; "
                         f"got {pixels.dtype} {pixels.shape}")
    if pixels.dtype == np.uint16:  # x / 257 never falls halfway between integers: exact rounding
        pixels = ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return np.repeat(pixels[..., None], 3, axis=2)


def image_to_rgb(msg: Any) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a ``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage`` (told
    apart by their ``encoding`` / ``format`` field), grey images repeated on three channels."""
    if hasattr(msg, "encoding"):
        return to_rgb(image_to_array(msg))
    return to_rgb(compressed_to_array(msg))
