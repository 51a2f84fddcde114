"""Camera images per second on 640 x 480 frames: decode alone, and decode + keypoint detection.

Prints one line per figure:
  camera_cores                              CPU cores the process may use (pinned to --cores)
  camera_decode_<encoding>_images_per_s     image_to_array (compressed_to_array for jpeg / png)
                                            of one 640 x 480 frame, best of --repeat runs
  camera_decode_detect_images_per_s         image_to_array + KeypointDetector.detect on a stream
                                            (tracking mode, what the camera node runs), bgr8
  camera_decode_detect_static_images_per_s  the same with static_image_mode (person detection
                                            on every frame: the worst case, a person entering)

The frame is scikit-image's astronaut photo (a person, so the detector has work to do) scaled to
480 x 480 and centred on a grey 640 x 480 canvas; Image messages carry array.array data, as rclpy
delivers them.

Usage: .venv/bin/python bench/bench_camera.py [--cores 2] [--repeat 50] [--frames 60]
"""
from __future__ import annotations

import argparse
import array
import io
import os
import time
import timeit
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from mmhpe_ros.modalities import IMAGE_HEIGHT, IMAGE_WIDTH
from mmhpe_ros.runtime.images import compressed_to_array, image_to_array


def frame() -> np.ndarray:
    """(480, 640, 3) uint8 RGB: the astronaut photo centred on grey."""
    from PIL import Image as PilImage
    from skimage.data import astronaut

    photo = np.asarray(PilImage.fromarray(astronaut()).resize((IMAGE_HEIGHT, IMAGE_HEIGHT), PilImage.BILINEAR))
    canvas = np.full((IMAGE_HEIGHT, IMAGE_WIDTH, 3), 128, dtype=np.uint8)
    left = (IMAGE_WIDTH - IMAGE_HEIGHT) // 2
    canvas[:, left:left + IMAGE_HEIGHT] = photo
    return canvas


def image_messages(rgb: np.ndarray) -> dict[str, SimpleNamespace]:
    """One 640 x 480 message per encoding a camera driver commonly sends."""
    height, width = rgb.shape[:2]
    grey = (rgb @ np.array([0.299, 0.587, 0.114])).astype(np.uint16) * 257
    yuyv = np.empty((height, width, 2), dtype=np.uint8)  # any bytes: decode cost does not depend on them
    yuyv[..., 0], yuyv[..., 1] = rgb[..., 1], rgb[..., 2]
    layouts = {"rgb8": rgb, "bgr8": rgb[..., ::-1], "yuyv": yuyv, "mono16": grey.astype(">u2")[..., None]}
    messages = {}
    for encoding, pixels in layouts.items():
        raw = np.ascontiguousarray(pixels).tobytes()
        messages[encoding] = SimpleNamespace(height=height, width=width, encoding=encoding,
                                             is_bigendian=int(encoding == "mono16"),
                                             step=len(raw) // height, data=array.array("B", raw))
    return messages


def compressed_messages(rgb: np.ndarray) -> dict[str, SimpleNamespace]:
    from PIL import Image as PilImage

    messages = {}
    for name, options in (("jpeg", {"format": "JPEG", "quality": 90}), ("png", {"format": "PNG"})):
        buffer = io.BytesIO()
        PilImage.fromarray(rgb).save(buffer, **options)
        messages[name] = SimpleNamespace(format=name, data=np.frombuffer(buffer.getvalue(), dtype=np.uint8))
    return messages


def per_second(call: Callable[[], Any], repeat: int) -> float:
    """Calls per second, best of ``repeat`` single calls (after one warm-up)."""
    call()
    return 1.0 / min(timeit.repeat(call, number=1, repeat=repeat))


def detect_rate(msg: SimpleNamespace, frames: int, static: bool) -> float:
    from mmhpe_ros.runtime.pose2d import KeypointDetector

    with KeypointDetector(static_image_mode=static) as detector:
        assert detector.detect(image_to_array(msg)) is not None, "no person found in the bench frame"
        start = time.perf_counter()
        for _ in range(frames):
            detector.detect(image_to_array(msg))
        return frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2, help="pin the process to at most this many cores")
    parser.add_argument("--repeat", type=int, default=50, help="decode repeats (best is reported)")
    parser.add_argument("--frames", type=int, default=60, help="frames per detection figure")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.cores])
        print(f"camera_cores {len(os.sched_getaffinity(0))}")
    rgb = frame()
    images = image_messages(rgb)
    for encoding, msg in images.items():
        print(f"camera_decode_{encoding}_images_per_s {per_second(lambda: image_to_array(msg), args.repeat):.1f}")
    for name, msg in compressed_messages(rgb).items():
        print(f"camera_decode_{name}_images_per_s {per_second(lambda: compressed_to_array(msg), args.repeat):.1f}")
    try:
        print(f"camera_decode_detect_images_per_s {detect_rate(images['bgr8'], args.frames, static=False):.1f}")
        print(f"camera_decode_detect_static_images_per_s {detect_rate(images['bgr8'], args.frames, static=True):.1f}")
    except ImportError as error:
        print(f"# detection skipped: {error}")


if __name__ == "__main__":
    main()
