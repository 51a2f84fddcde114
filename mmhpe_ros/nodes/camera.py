"""camera_node: 2D keypoints (or camera images) -> the RGB encoder's input, for the fusion node.

Always subscribes the keypoints topic: a sensor_msgs/PointCloud2 of 17 COCO keypoints with fields
``u``, ``v`` (pixels of MM-Fi's 640 x 480 image) and optional ``score``, as the bags carry them.
With ``use_images`` it also subscribes the camera's images (and CameraInfo when published):
sensor_msgs/Image on ``image_topic`` with ``image_transport: raw``, sensor_msgs/CompressedImage
(JPEG / PNG) on ``<image_topic>/compressed`` with ``image_transport: compressed``, as
image_transport names them. It detects the keypoints itself (``runtime.pose2d``, needs mediapipe)
on the image as RGB (grey and 16-bit images included) and maps them to the model's pixel
convention (``runtime.intrinsics``). Those modules are imported only then, so the node runs
without them. Without ``use_images``, a warning says so if images are published while no
keypoints come (a forgotten ``use_images: true``).
"""
from __future__ import annotations

from typing import Any

from rclpy.clock import Clock, ClockType
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from mmhpe_ros.modalities import TOPICS
from mmhpe_ros.nodes.sensor_node import SensorNode
from mmhpe_ros.nodes.spin import spin_node
from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.sensors import Features, KeypointProcessor

IMAGE_TRANSPORTS = {"raw": (Image, ""), "compressed": (CompressedImage, "/compressed")}  # message, topic suffix
UNUSED_IMAGES_CHECK_S = 2.0  # without use_images: how often to look for images published in vain
IMAGE_QUEUE_DEPTH = 1  # images kept while the detector is busy: 1, so it always takes the newest


class CameraNode(SensorNode):
    """The camera node; ``kwargs`` go to ``rclpy.node.Node`` (e.g. ``parameter_overrides``)."""

    def __init__(self, node_name: str = "camera_node", **kwargs: Any) -> None:
        super().__init__(node_name, "rgb", **kwargs)
        keypoints_topic = self.declare("keypoints_topic", TOPICS.camera_keypoints,
                                       "sensor_msgs/PointCloud2 of 17 keypoints (u, v[, score]) in pixels")
        use_images = self.declare("use_images", False, "also detect keypoints on camera images (needs mediapipe)")
        image_topic = self.declare("image_topic", TOPICS.camera_image, "camera images (base topic), when use_images")
        transport = self.declare("image_transport", "raw", f"one of {tuple(IMAGE_TRANSPORTS)}: sensor_msgs/Image "
                                 "on image_topic, or sensor_msgs/CompressedImage on image_topic/compressed")
        info_topic = self.declare("camera_info_topic", TOPICS.camera_info, "sensor_msgs/CameraInfo, when use_images")
        if transport not in IMAGE_TRANSPORTS:
            raise ValueError(f"image_transport must be one of {tuple(IMAGE_TRANSPORTS)}, got {transport!r}")
        self.processor = KeypointProcessor(self.config)
        self.subscribe(PointCloud2, keypoints_topic, self.processor.process)
        self._camera_info: CameraInfo | None = None
        self._detector = None
        message_type, suffix = IMAGE_TRANSPORTS[transport]
        image_topic += suffix
        self.images_ignored = False  # images are published, no keypoints come, and use_images is false
        if use_images:
            self._start_image_path(message_type, image_topic, info_topic)
        else:
            keypoints = self.inputs[keypoints_topic]
            self._unused_images_timer = self.create_timer(
                UNUSED_IMAGES_CHECK_S, lambda: self._check_unused_images(image_topic, keypoints),
                clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(f"{keypoints_topic}{' + ' + image_topic if self._detector else ''} -> "
                               f"features of {self.model_path}")

    def _start_image_path(self, message_type: type, image_topic: str, info_topic: str) -> None:
        try:
            from mmhpe_ros.runtime.images import image_to_rgb
            from mmhpe_ros.runtime.intrinsics import to_model_pixels
            from mmhpe_ros.runtime.pose2d import KeypointDetector

            self._detector = KeypointDetector()
        except ImportError as error:
            self.get_logger().error(f"use_images is set but the image path is unavailable ({error}); "
                                    f"only {TOPICS.camera_keypoints} is used")
            return
        self._image_to_rgb, self._to_model_pixels = image_to_rgb, to_model_pixels
        self.subscribe(message_type, image_topic, self._on_image, depth=IMAGE_QUEUE_DEPTH)
        self.create_subscription(CameraInfo, info_topic, self._on_camera_info, qos_profile_sensor_data)

    def _check_unused_images(self, image_topic: str, keypoints: Any) -> None:
        if keypoints.monitor.count:  # keypoints flow: images beside them are someone else's business
            self._unused_images_timer.cancel()
        elif self.count_publishers(image_topic):
            self.images_ignored = True
            self._unused_images_timer.cancel()
            self.get_logger().warning(f"images are published on {image_topic} but no keypoints arrive on "
                                      f"{keypoints.resolved_topic} and use_images is false: set use_images: true "
                                      "to detect keypoints on the images")

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _on_image(self, msg: Image | CompressedImage) -> Features | None:
        rgb = self._image_to_rgb(msg)
        keypoints = self._detector.detect(rgb)
        if keypoints is None:  # nobody in view: counted as empty
            return Features("rgb", codecs.header_stamp_ns(msg), msg.header.frame_id, {}, False)
        height, width = rgb.shape[:2]
        keypoints = self._to_model_pixels(keypoints, self._camera_info, width, height)
        return self.processor.from_keypoints(keypoints, codecs.header_stamp_ns(msg), msg.header.frame_id)


def main(args: list[str] | None = None) -> None:
    spin_node(CameraNode, args)


if __name__ == "__main__":
    main()
