"""lidar_node: sensor_msgs/PointCloud2 of a LiDAR -> the person's points in the base frame, for the fusion node.

Shares :class:`CloudNode` with the mmwave node: read the driver's fields and axes
(``cloud_layout``, ``field_map``, ``axes``) and merge the last ``merge_frames`` clouds
(:mod:`mmhpe_ros.runtime.cloud_input`), move the points into the base frame (TF or the
calibration), then find the person (:mod:`mmhpe_ros.runtime.sensors`): the LiDAR node removes the
floor and the background (``background_file``, written by ``mmhpe-ros background``) inside the
search region and keeps the person-shaped cluster; the radar node keeps its points in the search
region. Nobody found: an empty feature message.
"""
from __future__ import annotations

from typing import Any

from sensor_msgs.msg import PointCloud2

from mmhpe_ros.data.bag_format import POINT_FIELDS
from mmhpe_ros.geometry.background import BackgroundModel
from mmhpe_ros.model.observe import Rig
from mmhpe_ros.modalities import SENSOR_TOPICS
from mmhpe_ros.nodes.rig_parameters import REGION_PARAMETERS, declare_search_region, lidar_settings, search_region
from mmhpe_ros.nodes.sensor_node import SensorNode
from mmhpe_ros.nodes.spin import spin_node
from mmhpe_ros.runtime.cloud_input import INPUT_PARAMETERS, CloudInput
from mmhpe_ros.runtime.sensors import CloudProcessor, Features


class CloudNode(SensorNode):
    """A point-cloud sensor node (lidar or mmwave)."""

    def __init__(self, node_name: str, modality: str, **kwargs: Any) -> None:
        super().__init__(node_name, modality, **kwargs)
        topic = self.declare("input_topic", SENSOR_TOPICS[modality],
                             f"sensor_msgs/PointCloud2 of the {modality} sensor", read_only=True)
        region = declare_search_region(self, settable=True)
        background = None
        if modality == "lidar":
            path = self.declare("background_file", "", "background model of the empty scene (.npz of "
                                "`mmhpe-ros background`); empty: none", read_only=True)
            background = BackgroundModel.load(path) if path else None
        inputs = {name: self.declare(name, default, description, read_only=True)
                  for name, default, description in INPUT_PARAMETERS}
        self.cloud_input = CloudInput.from_parameters(POINT_FIELDS[modality], **inputs)
        self.rig = Rig(self.calibration, background, lidar_settings(region))
        self.processor = CloudProcessor(modality, self.config, self.rig, self.transforms)
        self.subscribe(PointCloud2, topic, self._on_cloud)
        self.runtime.add(REGION_PARAMETERS, lambda values: self._set_rig(
            Rig(self.calibration, background, lidar_settings(search_region(values)))))
        self.get_logger().info(
            f"{topic} -> features of {self.model_path} in {self.calibration.base_frame} (transforms from "
            f"{self.transforms.source}); search region x {region.x}, y {region.y}, height {region.height}"
            + (f", background {path}" if background is not None else ""))

    def _set_rig(self, rig: Rig):
        """The commit of a new search region (``ros2 param set``): the next cloud uses it."""
        def commit() -> None:
            self.rig = self.processor.rig = rig
        return commit

    def _on_cloud(self, msg: PointCloud2) -> Features | None:
        merged = self.cloud_input.read(msg)
        if merged is None:  # a late or repeated radar frame: it joins later windows
            return None
        return self.processor.process_points(merged.points, merged.stamp_ns, merged.frame_id)

    def extra_counters(self, topic: str) -> dict[str, int]:
        if self.modality != "lidar":
            return {}
        counts = self.processor.counts
        return {"points_outside_search": counts.outside, "clusters": counts.clusters}


class LidarNode(CloudNode):
    """The LiDAR node; ``kwargs`` go to ``rclpy.node.Node`` (e.g. ``parameter_overrides``)."""

    def __init__(self, node_name: str = "lidar_node", **kwargs: Any) -> None:
        super().__init__(node_name, "lidar", **kwargs)


def main(args: list[str] | None = None) -> None:
    spin_node(LidarNode, args)


if __name__ == "__main__":
    main()
