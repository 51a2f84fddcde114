"""camera_node: 2D keypoints (or camera images) -> keypoint rays in the base frame, for the fusion node.

Always subscribes the keypoints topic: a sensor_msgs/PointCloud2 of 17 COCO keypoints with fields
``u``, ``v`` (pixels of the camera's image) and optional ``score`` (the detector's confidence), as
the bags carry them, and the camera's CameraInfo: the intrinsics turn pixels into rays on both
paths (without CameraInfo: the calibration's ``intrinsics.<frame>``, else MM-Fi's nominal camera,
with a warning). The extrinsics of the keypoints' frame (TF or the calibration) turn the rays into
the base frame.

With ``use_images`` it also subscribes the camera's images: sensor_msgs/Image on ``image_topic``
with ``image_transport: raw``, sensor_msgs/CompressedImage (JPEG / PNG) on
``<image_topic>/compressed`` with ``image_transport: compressed``, as image_transport names them,
one message deep so the detector always takes the newest image. It detects the keypoints itself
(``runtime.pose2d``, needs mediapipe) on the image as RGB (grey and 16-bit images included). Those
modules are imported only then, so the node runs without them. Without ``use_images``, a warning
says so if images are published while no keypoints come (a forgotten ``use_images: true``).
"""
from __future__ import annotations

from typing import Any

from rclpy.clock import Clock, ClockType
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from mmhpe_ros.model.observe import Rig
from mmhpe_ros.modalities import TOPICS
from mmhpe_ros.nodes.sensor_node import ERROR_LOG_PERIOD_S, SensorNode
from mmhpe_ros.nodes.spin import spin_node
from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.intrinsics import rescale
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
        info_topic = self.declare("camera_info_topic", TOPICS.camera_info, "sensor_msgs/CameraInfo of the camera "
                                  "(intrinsics of the keypoints and images)", read_only=True)
        if transport not in IMAGE_TRANSPORTS:
            raise ValueError(f"image_transport must be one of {tuple(IMAGE_TRANSPORTS)}, got {transport!r}")
        self.rig = Rig(self.calibration)
        self.processor = KeypointProcessor(self.config, self.rig, self.transforms)
        self.subscribe(PointCloud2, keypoints_topic, self._on_keypoints)
        self.bad_camera_info = 0  # CameraInfo messages that could not be used (the previous intrinsics stay)
        self.create_subscription(CameraInfo, info_topic, self._on_camera_info, qos_profile_sensor_data)
        self._nominal_warned = False
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
        self.get_logger().info(f"{keypoints_topic}{' + ' + image_topic if self._detector else ''} + {info_topic} "
                               f"-> rays in {self.calibration.base_frame} for {self.model_path} (transforms from "
                               f"{self.transforms.source})")

    def _start_image_path(self, message_type: type, image_topic: str, info_topic: str) -> None:
        try:
            from mmhpe_ros.runtime.images import image_to_rgb
            from mmhpe_ros.runtime.pose2d import KeypointDetector

            self._detector = KeypointDetector()
        except ImportError as error:
            self.get_logger().error(f"use_images is set but the image path is unavailable ({error}); "
                                    f"only {TOPICS.camera_keypoints} is used")
            return
        self._image_to_rgb = image_to_rgb
        self.subscribe(message_type, image_topic, self._on_image, depth=IMAGE_QUEUE_DEPTH)

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
        try:
            self.processor.set_camera_info(msg)
        except Exception as error:  # noqa: BLE001 - a callback must never raise; counted and logged
            self.bad_camera_info += 1
            self.get_logger().error(f"unusable CameraInfo ({self.bad_camera_info} so far), keeping the previous "
                                    f"intrinsics: {error}", throttle_duration_sec=ERROR_LOG_PERIOD_S)

    def _on_keypoints(self, msg: PointCloud2) -> Features:
        return self._checked(self.processor.process(msg))

    def _on_image(self, msg: Image | CompressedImage) -> Features:
        rgb = self._image_to_rgb(msg)
        keypoints = self._detector.detect(rgb)
        stamp = codecs.header_stamp_ns(msg)
        if keypoints is None:  # nobody in view: an empty feature message
            return Features("rgb", stamp, self.calibration.base_frame, {}, False)
        camera = self.processor.intrinsics(msg.header.frame_id)
        height, width = rgb.shape[:2]
        if (width, height) != (camera.width, camera.height):  # the image was scaled after calibration
            keypoints = keypoints.copy()
            keypoints[:, :2] = rescale(keypoints[:, :2], width, height, camera.width, camera.height)
        return self._checked(self.processor.from_keypoints(keypoints, stamp, msg.header.frame_id))

    def _checked(self, features: Features) -> Features:
        """``features``, warning once when MM-Fi's nominal intrinsics had to stand in."""
        if self.processor.nominal_intrinsics and not self._nominal_warned:
            self._nominal_warned = True
            self.get_logger().warning("no CameraInfo received and no intrinsics in the calibration: using MM-Fi's "
                                      "nominal 640x480 camera for the keypoints")
        return features


def main(args: list[str] | None = None) -> None:
    spin_node(CameraNode, args)


if __name__ == "__main__":
    main()
