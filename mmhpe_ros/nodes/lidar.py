"""lidar_node: sensor_msgs/PointCloud2 (x, y, z) -> the LiDAR encoder's input, for the fusion node.

Shares :class:`CloudNode` with the mmwave node: decode fields by name and datatype, drop
non-finite points, crop to the region of interest (``roi_lower`` / ``roi_upper``), resample as
the model's card says (:mod:`mmhpe_ros.runtime.sensors`).
"""
from __future__ import annotations

import math
from typing import Any

from sensor_msgs.msg import PointCloud2

from mmhpe_ros.modalities import SENSOR_TOPICS
from mmhpe_ros.nodes.sensor_node import SensorNode
from mmhpe_ros.nodes.spin import spin_node
from mmhpe_ros.runtime.roi import RegionOfInterest
from mmhpe_ros.runtime.sensors import CloudProcessor


class CloudNode(SensorNode):
    """A point-cloud sensor node (lidar or mmwave)."""

    def __init__(self, node_name: str, modality: str, **kwargs: Any) -> None:
        super().__init__(node_name, modality, **kwargs)
        topic = self.declare("input_topic", SENSOR_TOPICS[modality],
                             f"sensor_msgs/PointCloud2 of the {modality} sensor")
        lower = self.declare("roi_lower", [-math.inf] * 3, "region of interest, lower x, y, z bounds (m, sensor frame)")
        upper = self.declare("roi_upper", [math.inf] * 3, "region of interest, upper x, y, z bounds (m, sensor frame)")
        self.processor = CloudProcessor(modality, self.config, RegionOfInterest.from_parameters(lower, upper))
        self.subscribe(PointCloud2, topic, self.processor.process)
        self.get_logger().info(f"{topic} -> features of {self.model_path}, region of interest "
                               f"{self.processor.roi.lower}..{self.processor.roi.upper}")


class LidarNode(CloudNode):
    """The LiDAR node; ``kwargs`` go to ``rclpy.node.Node`` (e.g. ``parameter_overrides``)."""

    def __init__(self, node_name: str = "lidar_node", **kwargs: Any) -> None:
        super().__init__(node_name, "lidar", **kwargs)


def main(args: list[str] | None = None) -> None:
    spin_node(LidarNode, args)


if __name__ == "__main__":
    main()
