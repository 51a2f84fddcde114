"""The topics a viewer needs, with their message types: what `mmhpe-ros run --record` records (and
`mmhpe-ros render` draws) and what `mmhpe-ros run --foxglove` serves."""
from __future__ import annotations

from dataclasses import dataclass

from mmhpe_ros.modalities import TOPICS


@dataclass(frozen=True)
class ViewedTopic:
    """A topic name (relative, as in :data:`~mmhpe_ros.modalities.TOPICS`), its message type
    (``pkg/msg/Name``) and whether it is published with the sensor-data QoS (best effort)."""

    name: str
    msgtype: str
    sensor_data: bool = False


POSE_ARRAY = "geometry_msgs/msg/PoseArray"
POINT_CLOUD2 = "sensor_msgs/msg/PointCloud2"

FUSION_OUTPUTS: tuple[ViewedTopic, ...] = (
    ViewedTopic(TOPICS.markers, "visualization_msgs/msg/MarkerArray"),
    ViewedTopic(TOPICS.joints, POSE_ARRAY),
    ViewedTopic(TOPICS.mpjpe, "std_msgs/msg/Float64"),
)
# What a picture shows beside the prediction: the ground truth and the sensors' points and keypoints.
SCENE_INPUTS: tuple[ViewedTopic, ...] = (
    ViewedTopic(TOPICS.ground_truth, POSE_ARRAY),
    ViewedTopic(TOPICS.lidar_points, POINT_CLOUD2, sensor_data=True),
    ViewedTopic(TOPICS.mmwave_points, POINT_CLOUD2, sensor_data=True),
    ViewedTopic(TOPICS.camera_keypoints, POINT_CLOUD2, sensor_data=True),
)
RECORDED_TOPICS: tuple[ViewedTopic, ...] = FUSION_OUTPUTS + SCENE_INPUTS
DIAGNOSTICS = ViewedTopic(TOPICS.diagnostics, "diagnostic_msgs/msg/DiagnosticArray")
