"""Foxglove live view without a ROS install: serves the graph's topics over the Foxglove WebSocket
protocol (foxglove-sdk), so the Foxglove app shows the skeleton, the joints, the point clouds and
the MPJPE live (`mmhpe-ros run --foxglove [HOST:]PORT`, or `python -m mmhpe_ros.nodes.foxglove_bridge`).

A thin shell over :mod:`mmhpe_ros.viz.foxglove_channels`: each served topic is subscribed raw (CDR
bytes, best effort, so any publisher matches) and its messages are logged unchanged on a channel of
the same name; ``/tf_static`` is sent once a second (a viewer that connects later gets it too).
On a ROS install use foxglove_bridge (`ros2 launch foxglove_bridge foxglove_bridge_launch.xml`) or
RViz instead: docs/viewing.md.
"""
from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from mmhpe_ros.nodes.replayer import _message_class  # pkg/msg/Name -> the rclpy class
from mmhpe_ros.nodes.spin import spin_node
from mmhpe_ros.viz.foxglove_channels import (DEFAULT_HOST, DEFAULT_PORT, MESSAGE_ENCODING, SCHEMA_ENCODING,
                                             SENSOR_FRAMES, SERVED_TOPICS, TF_STATIC, channel_spec,
                                             parse_address, static_transforms)

NODE_NAME = "mmhpe_foxglove"  # not foxglove_bridge: that is the ROS package's node
SUBSCRIPTION_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)  # matches every publisher
TF_PERIOD_S = 1.0
INSTALL_HINT = "pip install foxglove-sdk==0.30.3  (or pip install .[foxglove])"


class FoxgloveBridge(Node):
    """Forwards :data:`~mmhpe_ros.viz.foxglove_channels.SERVED_TOPICS` to a Foxglove WebSocket server."""

    def __init__(self, **kwargs: Any) -> None:
        try:
            import foxglove
        except ImportError:
            raise ValueError(f"the Foxglove live view needs foxglove-sdk: {INSTALL_HINT}") from None

        from mmhpe_ros.nodes.rig_parameters import declare_calibration
        from mmhpe_ros.viz.frames import frames_of

        super().__init__(NODE_NAME, **kwargs)
        host = self._declare("host", DEFAULT_HOST, "address to serve on (0.0.0.0: every interface)")
        port = self._declare("port", DEFAULT_PORT, "WebSocket port (0: any free one; the log line names it)")
        calibration = declare_calibration(self)  # the rig's extrinsics, served on /tf_static
        transforms = frames_of(calibration)
        self._foxglove = foxglove.Context()  # Node.context is rclpy's
        try:
            self.server = foxglove.start_server(name="mmhpe_ros", host=host, port=port, context=self._foxglove)
        except RuntimeError as error:  # the SDK's error for an address in use or unknown
            raise ValueError(f"cannot serve Foxglove on {host}:{port}: {error}") from None
        self.channels = {}
        for topic in SERVED_TOPICS:
            spec = channel_spec(self.resolve_topic_name(topic.name), topic.msgtype)
            channel = self._channel(foxglove, spec)
            self.channels[spec.topic] = channel
            self.create_subscription(_message_class(topic.msgtype), topic.name,
                                     lambda data, c=channel: c.log(data), SUBSCRIPTION_QOS, raw=True)
        parent = transforms.base_frame
        children = sorted({*transforms.poses, *SENSOR_FRAMES} - {parent})
        self._tf = static_transforms(transforms, parent, children)
        self._tf_channel = self._channel(foxglove, channel_spec(TF_STATIC.name, TF_STATIC.msgtype))
        self._tf_channel.log(self._tf)
        self.create_timer(TF_PERIOD_S, lambda: self._tf_channel.log(self._tf))
        self.url = f"ws://{host}:{self.server.port}"
        self.get_logger().info(f"Foxglove: {self.url} ({len(self.channels) + 1} channels; in the Foxglove app: "
                               "Open connection, Foxglove WebSocket)")

    def _declare(self, name: str, default: Any, description: str) -> Any:
        return self.declare_parameter(name, default, ParameterDescriptor(description=description)).value

    def _channel(self, foxglove: Any, spec: Any) -> Any:
        schema = foxglove.Schema(name=spec.schema_name, encoding=SCHEMA_ENCODING, data=spec.schema.encode())
        return foxglove.Channel(spec.topic, message_encoding=MESSAGE_ENCODING, schema=schema, context=self._foxglove)

    def destroy_node(self) -> None:
        server = getattr(self, "server", None)  # None: __init__ failed before serving
        if server is not None:
            server.stop()
        super().destroy_node()


def bridge_for(address: str, calibration: dict[str, Any] | None = None) -> FoxgloveBridge:
    """The bridge serving on ``address`` ("PORT" or "HOST:PORT") with the rig's ``calibration``
    parameters, as `mmhpe-ros run --foxglove` makes it."""
    from rclpy.parameter import Parameter

    host, port = parse_address(address)
    values = {**(calibration or {}), "host": host, "port": port}
    return FoxgloveBridge(parameter_overrides=[Parameter(name, value=value) for name, value in values.items()])


def main(args: list[str] | None = None) -> None:
    spin_node(FoxgloveBridge, args)


if __name__ == "__main__":
    main()
