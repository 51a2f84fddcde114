"""mmwave_node: radar sensor_msgs/PointCloud2 -> the mmWave encoder's input, for the fusion node.

Fields ``x``, ``y``, ``z``, ``velocity``, ``intensity`` by name (``doppler`` / ``snr`` and other
driver spellings accepted, see ``codecs.FIELD_ALIASES``); otherwise as the lidar node.
"""
from __future__ import annotations

from typing import Any

from mmhpe_ros.nodes.lidar import CloudNode
from mmhpe_ros.nodes.spin import spin_node


class MmwaveNode(CloudNode):
    """The mmWave radar node; ``kwargs`` go to ``rclpy.node.Node`` (e.g. ``parameter_overrides``)."""

    def __init__(self, node_name: str = "mmwave_node", **kwargs: Any) -> None:
        super().__init__(node_name, "mmwave", **kwargs)


def main(args: list[str] | None = None) -> None:
    spin_node(MmwaveNode, args)


if __name__ == "__main__":
    main()
