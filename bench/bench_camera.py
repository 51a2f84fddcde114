"""Camera images per second on 640 x 480 frames: decode alone, and decode + keypoint detection.

Prints one line per figure:
  camera_cores                              CPU cores the process may use (pinned to --cores)
  camera_decode_<encoding>_images_per_s     image_to_array (compressed_to_array for jpeg / png)
                                            of one 640 x 480 frame, best of --repeat runs
  camera_decode_detect_images_per_s         image_to_array + KeypointDetector.detect on a stream
                                            (tracking mode, what the camera node runs), bgr8
  camera_decode_detect_static_images_per_s  the same with static_image_mode (person detection
                                            on every frame: the worst case, a person entering)
  camera_age_p50_ms / camera_age_p99_ms     added latency of the image path: a 30 Hz publisher (another
                                            process) sends bgr8 Images stamped with the wall clock; when
                                            the keypoints of an image are produced, its age is now - stamp.
                                            Measured on the camera node (its image subscription keeps
                                            IMAGE_QUEUE_DEPTH = 1 image; the sample bag's calibration
                                            as `mmhpe-ros run` gives it) where it imports, else on a probe
                                            subscriber running the node's image path (image_to_rgb,
                                            KeypointDetector.detect in tracking mode, to_model_pixels)
                                            with the same QoS and depth 1
  camera_age_node                           1: measured on the camera node; 0: on the probe
  camera_age_dds_profile                    large-shm (default; see --dds-profile) or default
  camera_age_images_published / _processed  images sent in --latency-seconds / images whose keypoints came
  camera_age_depth5_images_processed,       the probe with 5 images kept (the sensor-data default), for
  camera_age_depth5_p50_ms / _p99_ms        comparison: the detector then works on a stale image

The frame is scikit-image's astronaut photo (a person, so the detector has work to do) scaled to
480 x 480 and centred on a grey 640 x 480 canvas; Image messages carry array.array data, as rclpy
delivers them.

Run it in a network namespace of its own so no other DDS traffic interferes:
  ip netns exec NAME .venv/bin/python bench/bench_camera.py

Usage: .venv/bin/python bench/bench_camera.py [--cores 2] [--repeat 50] [--frames 60] [--latency-seconds 10]
"""
from __future__ import annotations

import argparse
import array
import io
import multiprocessing
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


LATENCY_RATE_HZ = 30.0
LATENCY_DOMAIN_ID = 97  # the bench's own DDS domain
# Fast DDS's default shared-memory segment (512 KiB) cannot carry a 0.9 MB raw image, which then goes
# by UDP, where best-effort samples of that size are mostly lost on a loaded host (docs/camera.md).
LARGE_SHM_PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<profiles xmlns="http://www.eprosima.com">
  <transport_descriptors>
    <transport_descriptor>
      <transport_id>shm_large</transport_id>
      <type>SHM</type>
      <segment_size>16777216</segment_size>
      <maxMessageSize>16777216</maxMessageSize>
    </transport_descriptor>
  </transport_descriptors>
  <participant profile_name="shm_large" is_default_profile="true">
    <rtps>
      <userTransports><transport_id>shm_large</transport_id></userTransports>
      <useBuiltinTransports>true</useBuiltinTransports>
    </rtps>
  </participant>
</profiles>
"""


def use_dds_profile(name: str, folder: str) -> None:
    """``large-shm``: every process of the bench (children inherit the environment) loads
    :data:`LARGE_SHM_PROFILE`; ``default``: Fast DDS as configured."""
    if name == "large-shm":
        path = os.path.join(folder, "fastdds_large_shm.xml")
        with open(path, "w", encoding="utf-8") as file:
            file.write(LARGE_SHM_PROFILE)
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = path


def _publish_images(seconds: float, rate: float, ready: Any, done: Any) -> None:
    """Child process: wait for a subscriber, then publish bgr8 frames at ``rate`` for ``seconds``,
    each stamped with the wall clock (``time.time_ns``, the clock the receiver compares with)."""
    import rclpy
    from builtin_interfaces.msg import Time
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    os.environ["ROS_DOMAIN_ID"] = str(LATENCY_DOMAIN_ID)
    rclpy.init()
    node = rclpy.create_node("bench_camera_source")
    publisher = node.create_publisher(Image, "camera/image_raw", qos_profile_sensor_data)
    rgb = frame()
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="bgr8", is_bigendian=0, step=rgb.shape[1] * 3)
    msg.data = array.array("B", np.ascontiguousarray(rgb[..., ::-1]).tobytes())
    msg.header.frame_id = "camera_optical"
    deadline = time.monotonic() + 30.0
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    ready.set()
    time.sleep(1.0)  # let the receiver settle (detector loaded, first detection done)
    sent, start = 0, time.monotonic()
    while sent < seconds * rate:
        delay = start + sent / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sec, nanosec = divmod(time.time_ns(), 1_000_000_000)
        msg.header.stamp = Time(sec=sec, nanosec=nanosec)
        publisher.publish(msg)
        sent += 1
    done.value = sent
    node.destroy_node()
    rclpy.shutdown()


def image_ages(depth: int, seconds: float, use_node: bool) -> tuple[np.ndarray, int, bool]:
    """Ages (ms) of the images whose keypoints were produced while a 30 Hz publisher ran, how many
    images were published, and whether the camera node (not the probe) was measured."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data

    from mmhpe_ros.nodes.spin import make_executor

    os.environ["ROS_DOMAIN_ID"] = str(LATENCY_DOMAIN_ID)
    rclpy.init()
    context = multiprocessing.get_context("spawn")
    ready, done = context.Event(), context.Value("i", 0)
    ages: list[float] = []
    nodes = []
    node_used = False
    try:
        if use_node:
            node_used = _start_camera_node(nodes, ages)
        if not node_used:
            nodes.append(_image_probe(depth, ages, qos_profile_sensor_data))
        executor = make_executor()
        for node in nodes:
            executor.add_node(node)
        source = context.Process(target=_publish_images, args=(seconds, LATENCY_RATE_HZ, ready, done))
        source.start()
        while source.is_alive():
            executor.spin_once(timeout_sec=0.01)
        source.join()
        for _ in range(50):  # the last images in flight
            executor.spin_once(timeout_sec=0.01)
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.shutdown()
    return np.array(ages[1:]), done.value, node_used  # the first: the detector's first (slower) run


def _start_camera_node(nodes: list, ages: list[float]) -> bool:
    """The camera node with use_images, and a subscriber timing its features; False if it does not import."""
    try:
        from sensor_msgs.msg import PointCloud2

        from mmhpe_ros.nodes.camera import CameraNode
        from mmhpe_ros.runtime.features import feature_topic
    except ImportError as error:
        print(f"# camera node unavailable ({error}); measuring the probe")
        return False
    from rclpy.parameter import Parameter

    import rclpy

    from mmhpe_ros.nodes.graph import graph_calibration

    # the rig's calibration as `mmhpe-ros run` gives it (the sample bag's): the node needs the camera's pose
    rig = [Parameter(name, value=value) for name, value in graph_calibration(None, None).items()]
    node = CameraNode(parameter_overrides=[Parameter("use_images", value=True), *rig])
    timer = rclpy.create_node("bench_camera_timer")
    timer.create_subscription(PointCloud2, feature_topic("rgb"), lambda msg: ages.append(_age_ms(msg)), 10)
    nodes += [node, timer]
    return True


def _image_probe(depth: int, ages: list[float], sensor_qos: Any) -> Any:
    """A subscriber running the camera node's image path on each image it takes (``depth`` kept)."""
    import copy

    import rclpy
    from sensor_msgs.msg import Image

    from mmhpe_ros.runtime.images import image_to_rgb
    from mmhpe_ros.runtime.intrinsics import to_model_pixels
    from mmhpe_ros.runtime.pose2d import KeypointDetector

    detector = KeypointDetector()
    node = rclpy.create_node("bench_camera_probe")
    qos = copy.copy(sensor_qos)
    qos.depth = depth

    def on_image(msg: Image) -> None:
        rgb = image_to_rgb(msg)
        keypoints = detector.detect(rgb)
        if keypoints is not None:
            to_model_pixels(keypoints, None, rgb.shape[1], rgb.shape[0])
            ages.append(_age_ms(msg))

    node.create_subscription(Image, "camera/image_raw", on_image, qos)
    return node


def _age_ms(msg: Any) -> float:
    return (time.time_ns() - (msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)) / 1e6


def print_latency(seconds: float, dds_profile: str) -> None:
    import tempfile

    try:
        import rclpy  # noqa: F401
    except ImportError as error:
        print(f"# latency skipped: {error}")
        return
    with tempfile.TemporaryDirectory() as folder:
        use_dds_profile(dds_profile, folder)
        ages, published, node_used = image_ages(1, seconds, use_node=True)
        depth5, _, _ = image_ages(5, seconds, use_node=False)
    if len(ages) == 0 or len(depth5) == 0:
        raise SystemExit(f"no keypoints came out of the image path ({len(ages)} with depth 1, {len(depth5)} with 5)")
    print(f"camera_age_node {int(node_used)}")
    print(f"camera_age_dds_profile {dds_profile}")
    print(f"camera_age_images_published {published}")
    print(f"camera_age_images_processed {len(ages) + 1}")
    print(f"camera_age_p50_ms {np.percentile(ages, 50):.1f}")
    print(f"camera_age_p99_ms {np.percentile(ages, 99):.1f}")
    print(f"camera_age_depth5_images_processed {len(depth5) + 1}")
    print(f"camera_age_depth5_p50_ms {np.percentile(depth5, 50):.1f}")
    print(f"camera_age_depth5_p99_ms {np.percentile(depth5, 99):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2, help="pin the process to at most this many cores")
    parser.add_argument("--repeat", type=int, default=50, help="decode repeats (best is reported)")
    parser.add_argument("--frames", type=int, default=60, help="frames per detection figure")
    parser.add_argument("--latency-seconds", type=float, default=10.0,
                        help="seconds of 30 Hz images per latency figure (0: skip the latency figures)")
    parser.add_argument("--dds-profile", choices=("large-shm", "default"), default="large-shm",
                        help="Fast DDS transport for the latency figures: a 16 MiB shared-memory segment "
                             "(raw images then arrive whole), or Fast DDS's default")
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
        return
    if args.latency_seconds > 0:
        print_latency(args.latency_seconds, args.dds_profile)


if __name__ == "__main__":
    main()
