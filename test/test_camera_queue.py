"""The camera node keeps one image while its detector is busy, so it always detects on the newest
(issue 15; bench/bench_camera.py measures what that does to the keypoints' age)."""
from __future__ import annotations

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed")
pytest.importorskip("mediapipe", reason="the image path needs the camera extra (mediapipe)")
camera = pytest.importorskip("mmhpe_ros.nodes.camera", reason="the camera node does not import", exc_type=ImportError)

from ros_domain import ros_domain  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import HistoryPolicy, ReliabilityPolicy  # noqa: E402

from mmhpe_ros.modalities import TOPICS  # noqa: E402
from ros_domain import lease_domain  # noqa: E402


@pytest.mark.parametrize("transport, topic", [("raw", TOPICS.camera_image),
                                              ("compressed", TOPICS.camera_image + "/compressed")])
def test_image_subscription_keeps_only_the_newest_image(transport, topic):
    with ros_domain(lease_domain()):
        node = camera.CameraNode(parameter_overrides=[Parameter("use_images", value=True),
                                                      Parameter("image_transport", value=transport)])
        try:
            images = [s for s in node.subscriptions if s.topic_name == "/" + topic]
            assert len(images) == 1, [s.topic_name for s in node.subscriptions]
            qos = images[0].qos_profile
            assert (qos.history, qos.depth, qos.reliability) == (HistoryPolicy.KEEP_LAST, 1, ReliabilityPolicy.BEST_EFFORT)
            assert camera.IMAGE_QUEUE_DEPTH == 1
        finally:
            node.destroy_node()
