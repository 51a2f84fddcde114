"""Fuzzing the camera image decoders (issue 6): a malformed Image or CompressedImage decodes or
raises CodecError with a message, nothing else, and nothing large is allocated for it.

Image messages start valid (random encoding, size, row padding) and get 0-4 mutations: another
or a made-up encoding, step / height / width / data length that disagree, uint32 overflow and
negative or absurd sizes, empty data, byte order flips. CompressedImage messages start as a
valid JPEG or PNG and get byte flips, truncation, junk, or a header that declares a huge image.
"""
from __future__ import annotations

import functools
import importlib.util
import io
import os
import struct
import tracemalloc
import zlib
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmhpe_ros.runtime.codecs import CodecError
from mmhpe_ros.runtime.images import ENCODINGS, MAX_IMAGE_PIXELS, compressed_to_array, image_to_array

MEMORY_BUDGET_BYTES = 16 * 2**20  # inputs are at most ~100 kB; no decode may allocate more
UINT32_MAX = 2**32 - 1
FUZZ_EXAMPLES = int(os.environ.get("MMHPE_FUZZ_EXAMPLES", "150"))  # e.g. 5000 for a long run
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
needs_pillow = pytest.mark.skipif(importlib.util.find_spec("PIL") is None,
                                  reason="Pillow (CompressedImage decoder, camera extra) not installed")
BYTES_PER_PIXEL = {name: spec.bytes_per_pixel for name, spec in ENCODINGS.items()}

sizes = st.one_of(
    st.integers(0, 64), st.integers(0, UINT32_MAX), st.sampled_from([2**31, UINT32_MAX, 2**16 + 1, 2**16]),
    st.integers(-(2**40), -1), st.integers(2**32, 2**64),  # duck-typed messages are not bound to uint32
)


@st.composite
def images(draw) -> SimpleNamespace:
    """A valid Image of random encoding, size and padding, then up to four mutations."""
    encoding = draw(st.sampled_from(sorted(ENCODINGS)))
    height, width = draw(st.integers(1, 12)), 2 * draw(st.integers(1, 12))
    step = width * BYTES_PER_PIXEL[encoding] + draw(st.integers(0, 9))
    rng = np.random.default_rng(draw(st.integers(0, UINT32_MAX)))
    msg = SimpleNamespace(height=height, width=width, encoding=encoding, is_bigendian=0, step=step,
                          data=rng.integers(0, 256, size=step * height, dtype=np.uint8).tobytes())
    for _ in range(draw(st.integers(0, 4))):
        mutation = draw(st.sampled_from(["encoding", "height", "width", "step", "data", "bigendian", "area"]))
        if mutation == "encoding":
            msg.encoding = draw(st.one_of(st.sampled_from(sorted(ENCODINGS) + ["RGB8", "bayer_rggb8", "32FC1",
                                                                               "rgb16", "", "nv21"]),
                                          st.text(max_size=12), st.none(), st.integers()))
        elif mutation in ("height", "width", "step"):
            setattr(msg, mutation, draw(sizes))
        elif mutation == "bigendian":
            msg.is_bigendian = draw(st.sampled_from([0, 1, 255, True]))
        elif mutation == "area":  # a huge frame whose step*height still fits the data claimed
            msg.width, msg.height = draw(st.sampled_from([(2**16, 2**16), (UINT32_MAX, 1), (1, UINT32_MAX),
                                                          (MAX_IMAGE_PIXELS + 2, 1)]))
        else:
            size = len(msg.data)
            cut = draw(st.integers(0, size + 16))
            msg.data = draw(st.sampled_from([b"", msg.data[:cut], msg.data + bytes(cut), bytearray(msg.data)]))
    return msg


def _within_budget(decode, msg):
    """decode(msg) under tracemalloc; returns its result or the CodecError it raised."""
    tracemalloc.start()
    try:
        result = decode(msg)
    except CodecError as error:
        result = error
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < MEMORY_BUDGET_BYTES, f"{peak} bytes allocated for {msg!r:.200}"
    return result


@FUZZ
@given(images())
def test_fuzzed_images_decode_or_raise_codec_error(msg):
    result = _within_budget(image_to_array, msg)
    if isinstance(result, CodecError):
        assert str(result).startswith("Image: ")
        return
    # Decoded: only when every field was consistent, and then to the documented shape.
    encoding = msg.encoding.lower()
    assert msg.step >= msg.width * BYTES_PER_PIXEL[encoding] and len(msg.data) >= msg.step * msg.height
    grey = encoding in ("mono8", "8uc1", "mono16", "16uc1")
    assert result.shape == ((msg.height, msg.width) if grey else (msg.height, msg.width, 3))
    assert result.dtype == (np.uint16 if encoding in ("mono16", "16uc1") else np.uint8)


# -- CompressedImage ----------------------------------------------------------------------------


def _encoded(pil_format: str, mode: str) -> bytes:
    from PIL import Image as PilImage

    rng = np.random.default_rng(5)
    shape = (24, 32, 3) if mode == "RGB" else (24, 32)
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    buffer = io.BytesIO()
    PilImage.fromarray(pixels).convert(mode).save(buffer, format=pil_format)
    return buffer.getvalue()


@functools.lru_cache(maxsize=1)
def _originals() -> list[bytes]:
    """Valid 32 x 24 JPEGs and PNGs of each mode a camera sends (made once; a plain function so
    that hypothesis reports only the corruption, not these bytes)."""
    return [_encoded("JPEG", "RGB"), _encoded("JPEG", "L"), _encoded("PNG", "RGB"), _encoded("PNG", "P"),
            _encoded("PNG", "I;16")]


@st.composite
def corruptions(draw) -> tuple[int, list]:
    """Which original, and a list of byte-level mutations to apply to it."""
    edits = draw(st.lists(st.one_of(
        st.tuples(st.just("set"), st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
        st.tuples(st.just("truncate"), st.floats(0, 1)),
        st.tuples(st.just("insert"), st.floats(0, 1), st.binary(max_size=32)),
    ), max_size=6))
    return draw(st.integers(0, 4)), edits


def _apply(data: bytes, edits: list) -> bytes:
    data = bytearray(data)
    for edit in edits:
        at = int(edit[1] * len(data)) if data else 0
        if edit[0] == "set" and data:
            data[min(at, len(data) - 1)] = edit[2]
        elif edit[0] == "truncate":
            del data[at:]
        elif edit[0] == "insert":
            data[at:at] = edit[2]
    return bytes(data)


@needs_pillow
@FUZZ
@given(corruptions(), st.sampled_from(["jpeg", "png", "rgb8; jpeg compressed bgr8", "", "tiff"]))
def test_fuzzed_compressed_images_decode_or_raise_codec_error(corruption, fmt):
    index, edits = corruption
    msg = SimpleNamespace(format=fmt, data=np.frombuffer(_apply(_originals()[index], edits), dtype=np.uint8))
    result = _within_budget(compressed_to_array, msg)
    if isinstance(result, CodecError):
        assert str(result).startswith("CompressedImage: ")
    else:  # a flipped header byte may change the size: any decoded image has the documented form
        assert result.ndim == 2 or (result.ndim == 3 and result.shape[2] == 3)
        assert 0 < result.shape[0] * result.shape[1] <= MAX_IMAGE_PIXELS
        assert result.dtype in (np.uint8, np.uint16) and result.flags.c_contiguous


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header (with a valid CRC) declares ``width`` x ``height`` RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    body = zlib.compress(b"\0" * 1024)
    idat = struct.pack(">I", len(body)) + b"IDAT" + body + struct.pack(">I", zlib.crc32(b"IDAT" + body))
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


def _jpeg_declaring(width: int, height: int) -> bytes:
    """The fuzz JPEG with its frame header (SOF0) changed to declare ``width`` x ``height``."""
    data = bytearray(_originals()[0])
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@needs_pillow
@pytest.mark.parametrize("width, height", [(100_000, 100_000), (2**31 - 1, 1), (MAX_IMAGE_PIXELS + 1, 1)])
def test_a_png_declaring_a_huge_image_is_refused_before_decoding(width, height):
    msg = SimpleNamespace(format="png", data=np.frombuffer(_png_declaring(width, height), dtype=np.uint8))
    result = _within_budget(compressed_to_array, msg)
    assert isinstance(result, CodecError) and "-pixel limit" in str(result)


@needs_pillow
def test_a_jpeg_declaring_a_huge_image_is_refused_before_decoding():
    msg = SimpleNamespace(format="jpeg", data=np.frombuffer(_jpeg_declaring(65535, 65535), np.uint8))
    result = _within_budget(compressed_to_array, msg)
    assert isinstance(result, CodecError) and "-pixel limit" in str(result)
