"""SensorNode: the shell every sensor node shares (parameters, guarded callbacks, diagnostics).

A sensor node subscribes its raw topics with the sensor-data QoS, hands each message to a
processor of :mod:`mmhpe_ros.runtime.sensors` (which moves the data into the base frame with the
transform of the message's frame, :mod:`.rig_parameters`), and publishes the resulting features
(:mod:`mmhpe_ros.runtime.features`) stamped with the source stamp, in the base frame. Input with
nothing usable (nobody found, no keypoint) is counted as ``empty`` and published as an empty
message, so the fusion node knows the frame was seen. A message that cannot be decoded is dropped
and counted, with a rate-limited error in the log; no exception leaves a callback. A frame with no
transform to the base frame is dropped too, and the diagnostics say so at ERROR level, naming the
frames. Once a second (steady time) it publishes a diagnostic_msgs/DiagnosticArray with each
input's rate, age and counters.

Features are published with ``messages.FEATURES_QOS`` (reliable, keep-last 10), as the fusion node
subscribes them. Parameters are read-only except those ``self.runtime`` applies when set.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image, PointCloud2

from mmhpe_ros.geometry.calibration import MissingTransformError
from mmhpe_ros.modalities import TOPICS
from mmhpe_ros.nodes.messages import FEATURES_QOS, diagnostic_array
from mmhpe_ros.nodes.parameters import RuntimeParameters
from mmhpe_ros.nodes.rig_parameters import SensorTransforms, declare_calibration
from mmhpe_ros.resources import default_model_path
from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.codecs import CodecError
from mmhpe_ros.runtime.diagnostics import Level, Status, StreamMonitor, stream_status
from mmhpe_ros.runtime.features import FEATURE_MESSAGE_TYPES, feature_topic, features_message
from mmhpe_ros.runtime.sensors import Features, model_config

DIAGNOSTICS_QOS = QoSProfile(depth=10)
DIAGNOSTICS_PERIOD_S = 1.0
ERROR_LOG_PERIOD_S = 5.0  # at most one error log line per input per this many seconds
_OUTPUT_CLASSES = {"sensor_msgs/msg/PointCloud2": PointCloud2, "sensor_msgs/msg/Image": Image}


@dataclass
class InputCounters:
    """Per-input counts shown in diagnostics."""

    monitor: StreamMonitor = field(default_factory=StreamMonitor)
    dropped: int = 0  # messages that could not be decoded or processed
    empty: int = 0  # decoded, but nothing usable (no point left, all keypoints NaN)
    published: int = 0
    non_finite_points: int = 0
    last_error: str = ""
    missing_transform: str = ""  # the last MissingTransformError, until a message is transformed again
    resolved_topic: str = ""  # with the node's namespace, as diagnostics name it
    dropped_reported: int = 0  # `dropped` at the last diagnostics message


class SensorNode(Node):
    """Base of the camera, lidar, mmwave and wifi nodes; ``kwargs`` go to ``rclpy.node.Node``."""

    def __init__(self, node_name: str, modality: str, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.modality = modality
        model_path = self.declare("model_path", "", "model weights (.safetensors, card beside it) whose "
                                  "card gives the input constants; empty: the shipped model")
        self.model_path = model_path or str(default_model_path())
        self.config = model_config(self.model_path)
        if modality not in self.config.modalities:
            raise ValueError(f"{self.model_path}: the model fuses {list(self.config.modalities)}, not {modality}")
        output_topic = self.declare("output_topic", feature_topic(modality),
                                    f"topic of the {modality} features for the fusion node")
        self.calibration = declare_calibration(self)
        use_tf = self.declare("use_tf", True, "look sensor frames up on TF when tf2_ros is available (else, and "
                              "for frames TF does not know, the calibration parameters)", read_only=True)
        self.transforms = SensorTransforms(self, self.calibration, use_tf)
        self.stale_after_s = self.declare("stale_after_s", 1.0, "diagnostics report an input STALE after "
                                          "this many seconds without a message", read_only=False)
        self.runtime = RuntimeParameters(self)  # the parameters that apply when set; the rest are read-only
        self.runtime.attribute("stale_after_s", self, "stale_after_s", float)
        self.types = codecs.rclpy_types()
        self.inputs: dict[str, InputCounters] = {}
        self._publisher = self.create_publisher(
            _OUTPUT_CLASSES[FEATURE_MESSAGE_TYPES[modality]], output_topic, FEATURES_QOS)
        self._diagnostics = self.create_publisher(DiagnosticArray, TOPICS.diagnostics, DIAGNOSTICS_QOS)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)  # diagnostics also flow while sim time stands
        self.create_timer(DIAGNOSTICS_PERIOD_S, self.publish_diagnostics, clock=self._steady)

    # -- helpers for subclasses --------------------------------------------------------------

    def declare(self, name: str, default: Any, description: str, read_only: bool = True) -> Any:
        """Declare a parameter with its description (read-only unless ``self.runtime`` applies it);
        returns its value."""
        descriptor = ParameterDescriptor(description=description, read_only=read_only)
        return self.declare_parameter(name, default, descriptor).value

    def subscribe(
        self, msg_type: type, topic: str, handle: Callable[[Any], Iterable[Features] | Features | None],
        depth: int | None = None,
    ) -> None:
        """Subscribe ``topic`` (sensor-data QoS, ``depth`` messages deep if given); ``handle(msg)``
        returns features to publish."""
        counters = self.inputs.setdefault(topic, InputCounters())
        qos = qos_profile_sensor_data
        if depth is not None:
            qos = copy.copy(qos_profile_sensor_data)
            qos.depth = depth
        subscription = self.create_subscription(
            msg_type, topic, lambda msg: self._on_message(topic, counters, handle, msg), qos)
        counters.resolved_topic = subscription.topic_name

    def publish(self, features: Features, counters: InputCounters) -> None:
        """Publish one modality's features (an empty message when nothing usable was observed)."""
        counters.non_finite_points += features.non_finite
        counters.empty += not features.present
        header = codecs.make_header(self.types, features.stamp_ns, features.frame_id)
        arrays = features.arrays if features.present else {}
        self._publisher.publish(features_message(self.types, header, self.modality, arrays))
        counters.published += 1

    def drop(self, counters: InputCounters, topic: str, error: BaseException) -> None:
        """Count a bad message and log why (rate-limited)."""
        counters.dropped += 1
        kind = "" if isinstance(error, CodecError) else f"{type(error).__name__}: "
        counters.last_error = f"{kind}{error}"[:200]
        self.get_logger().error(
            f"{topic}: dropped a message ({counters.dropped} so far): {counters.last_error}",
            throttle_duration_sec=ERROR_LOG_PERIOD_S)

    # -- callbacks ---------------------------------------------------------------------------

    def _on_message(self, topic: str, counters: InputCounters, handle: Callable, msg: Any) -> None:
        try:
            counters.monitor.arrived(self.get_clock().now().nanoseconds, codecs.header_stamp_ns(msg))
            result = handle(msg)
            counters.missing_transform = ""
            for features in ([result] if isinstance(result, Features) else result or ()):
                self.publish(features, counters)
        except MissingTransformError as error:
            counters.missing_transform = str(error)
            self.drop(counters, topic, error)
        except Exception as error:  # noqa: BLE001 - a callback must never raise; the error is counted and logged
            self.drop(counters, topic, error)

    def statuses(self) -> list[Status]:
        """One status per input: OK / STALE from the stream, WARN when messages were dropped since
        the last diagnostics message, ERROR while its frame has no transform to the base frame."""
        now = self.get_clock().now().nanoseconds
        out = []
        for topic, c in self.inputs.items():
            status = stream_status(
                f"{self.get_name()}: {c.resolved_topic or topic}", c.monitor, now, stale_after_s=self.stale_after_s,
                hardware_id=self.modality,
                counters={"published": c.published, "dropped": c.dropped, "empty": c.empty,
                          "non_finite_points": c.non_finite_points,
                          **self.extra_counters(topic)},
            )
            if c.last_error:
                status.values["last_error"] = c.last_error
            if c.missing_transform:
                status = Status(status.name, Level.ERROR, c.missing_transform, status.hardware_id, status.values)
            elif c.dropped > c.dropped_reported and status.level == Level.OK:
                status = Status(status.name, Level.WARN, f"dropped {c.dropped - c.dropped_reported} bad "
                                f"message(s): {c.last_error}", status.hardware_id, status.values)
            out.append(status)
        return out

    def extra_counters(self, topic: str) -> dict[str, int]:
        """Further diagnostics values of one input (subclasses add theirs)."""
        return {}

    def publish_diagnostics(self) -> None:
        try:
            self._diagnostics.publish(diagnostic_array(self.statuses(), self.get_clock().now().to_msg()))
            for counters in self.inputs.values():
                counters.dropped_reported = counters.dropped
        except Exception as error:  # noqa: BLE001 - diagnostics must not take the node down
            self.get_logger().error(f"diagnostics failed: {error}", throttle_duration_sec=ERROR_LOG_PERIOD_S)
