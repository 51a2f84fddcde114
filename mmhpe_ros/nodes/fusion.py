"""fusion_node: synchronise the four feature streams, run the pose model, publish the skeleton.

Subscribes ``mmhpe/features/<modality>`` for the enabled modalities (``messages.FEATURES_QOS``:
reliable, as the sensor nodes publish them), decodes each message
(:func:`~mmhpe_ros.runtime.features.read_features`; an empty message means the sensor saw the frame
and found nobody) and synchronises them by header stamp (:class:`~mmhpe_ros.runtime.sync.FeatureSync`: approximate time with ``queue_size`` and
``slop``, plus a ``deadline`` after which the modalities that are there are fused without the
rest). A set is inferred in the callback that completed it (a feature subscription, or the timer
that flushes pending sets when the inputs go quiet): plain rclpy, one executor thread, nothing
queued beyond the synchroniser.

Each set goes through :class:`~mmhpe_ros.runtime.estimator.PoseEstimator`: the person's root is
fused from the modalities' own estimates and the model's joints are placed back in ``base_frame``
(the rig's calibration parameter; the sensor nodes publish their features in it). Where no modality
found a person there is no skeleton: the markers are deleted (one DELETEALL marker), the joints
topic gets an empty PoseArray, and the diagnostics say "no person".

Publishes, stamped with the set's stamp, in ``base_frame``: visualization_msgs/MarkerArray (joints SPHERE_LIST,
bones LINE_LIST, namespace per person; each joint coloured by the error the model card expects of
it for the set of fused modalities, or by how many were fused), the 17 joints as
geometry_msgs/PoseArray, the running MPJPE (mm, std_msgs/Float64) against ground truth when it is
published (replay), and once a second a diagnostic_msgs/DiagnosticArray: per modality rate, age
and drops, and which modalities the last set fused, forward time and latency (last set, p50 and
p99 of the last 1000).
"""
from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Float64, Header
from visualization_msgs.msg import MarkerArray

from mmhpe_ros.geometry.calibration import GROUND_TRUTH_FRAME
from mmhpe_ros.geometry.transforms import RigidTransform
from mmhpe_ros.modalities import MODALITIES, TOPICS
from mmhpe_ros.nodes.messages import (FEATURES_QOS, MarkerArrayWriter, PoseArrayWriter, delete_all_markers,
                                      diagnostic_array, to_stamp)
from mmhpe_ros.nodes.rig_parameters import declare_calibration, declare_search_region
from mmhpe_ros.nodes.parameters import RuntimeParameters
from mmhpe_ros.nodes.spin import spin_node
from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.diagnostics import Level, Status, StreamMonitor, stream_status
from mmhpe_ros.runtime.estimator import PoseEstimator
from mmhpe_ros.runtime.features import FEATURE_MESSAGE_TYPES, feature_topic, features_present, read_features
from mmhpe_ros.runtime.live_mpjpe import LiveMpjpe
from mmhpe_ros.model.card import EXPECTED_ERRORS_KEY, expected_joint_errors
from mmhpe_ros.runtime.markers import (
    MODALITY_COUNT_COLORS, RGBA, color_for_modalities, error_colors, skeleton_markers,
)
from mmhpe_ros.runtime.sync import FeatureSync, SyncedSet

OUTPUT_QOS = QoSProfile(depth=10)  # reliable: RViz, Foxglove and `ros2 bag record` all match it
DIAGNOSTICS_PERIOD_S = 1.0
ERROR_LOG_PERIOD_S = 5.0
PERCENTILE_WINDOW = 1000  # sets over which diagnostics give forward and latency p50 / p99
COLOR_MODES = ("confidence", "modalities", "fixed")
_MESSAGE_CLASSES = {"sensor_msgs/msg/PointCloud2": PointCloud2, "sensor_msgs/msg/Image": Image}


@dataclass(frozen=True)
class Arrived:
    """One decoded feature message waiting in the synchroniser."""

    arrays: dict[str, np.ndarray]
    arrival_ns: int  # steady clock, for latency


class FusionNode(Node):
    """The fusion node; ``kwargs`` go to ``rclpy.node.Node`` (e.g. ``parameter_overrides``)."""

    def __init__(self, node_name: str = "fusion_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        model_path = self._declare("model_path", "", "model weights (.safetensors, card beside it); "
                                   "empty: the shipped model (models/mmhpe_awc.safetensors)")
        modalities = self._declare("modalities", list(MODALITIES), f"modalities to subscribe and fuse, of {MODALITIES}")
        queue_size = self._declare("queue_size", 10, "messages kept per modality while waiting for a match "
                                   "(as message_filters' queue_size)", read_only=False)
        slop = self._declare("slop", 0.05, "largest stamp spread (s, newest - oldest, less than) within a set "
                             "(as message_filters' slop)", read_only=False)
        deadline = self._declare("deadline", 0.25, "stamp time (s) to wait for a late modality before "
                                 "fusing the others without it", read_only=False)
        reset_after = self._declare("reset_after", 1.0, "a stamp this far (s) behind its stream resets the "
                                    "synchroniser (bag loop, restarted sensor)", read_only=False)
        self.idle_flush_s = self._declare("idle_flush", 0.5, "wall seconds without any input after which "
                                          "pending sets are fused with what is there", read_only=False)
        calibration = declare_calibration(self)
        region = declare_search_region(self)
        self.calibration, self.frame_id = calibration, calibration.base_frame
        self.color_mode = self._declare("color_mode", "confidence", f"skeleton colour: one of {COLOR_MODES} "
                                        "(confidence: each joint by the error the model card expects of it for "
                                        "the fused modalities; modalities: by how many were fused)")
        confidence_range = self._declare("confidence_range_mm", [40.0, 160.0], "expected joint error (mm) "
                                         "coloured green (first) and red (second); yellow between")
        lifetime = self._declare("marker_lifetime", 0.5, "seconds a skeleton stays in RViz without an update",
                                 read_only=False)
        tolerance = self._declare("mpjpe_tolerance", 0.02, "largest stamp difference (s) between a prediction "
                                  "and the ground truth it is scored against")
        threads = self._declare("torch_threads", 1, "CPU threads for inference (0: torch's default)")
        device = self._declare("device", "cpu", "torch device for inference (cpu, cuda)")
        self.stale_after_s = self._declare("stale_after_s", 1.0, "diagnostics report a modality STALE after "
                                           "this many seconds without a message", read_only=False)
        if self.color_mode not in COLOR_MODES:
            raise ValueError(f"color_mode must be one of {COLOR_MODES}, got {self.color_mode!r}")
        unknown = [m for m in modalities if m not in MODALITIES]
        if not modalities or unknown:
            raise ValueError(f"modalities must be a non-empty list of {MODALITIES}, got {modalities}")
        self.modalities = tuple(m for m in MODALITIES if m in modalities)

        self.torch_threads = threads
        self._threads_set: set[int] = set()  # threads whose torch thread count is set
        if not model_path:
            from mmhpe_ros.resources import default_model_path

            model_path = str(default_model_path())
        self.estimator = PoseEstimator(model_path, self.modalities, device, calibration.ground_height, region)
        self._joint_colors = self._confidence_colors(model_path, confidence_range)
        self.sync: FeatureSync[Arrived] = FeatureSync(
            self.modalities, queue_size=queue_size, slop_s=slop, deadline_s=deadline, reset_after_s=reset_after)
        self.mpjpe = LiveMpjpe(round(tolerance * 1e9))
        self.lifetime_ns = round(lifetime * 1e9)
        self.monitors = {m: StreamMonitor() for m in self.modalities}
        self.decode_errors = dict.fromkeys(self.modalities, 0)
        self.empty = dict.fromkeys(self.modalities, 0)
        self.fused = self.partial = self.inference_errors = self.no_person = 0
        self.person_seen = False  # whether the last fused set found somebody
        self.last_fused: tuple[str, ...] = ()
        self.latencies_ms: deque[float] = deque(maxlen=10_000)  # last input in -> markers out (ms)
        self.forward_ms: deque[float] = deque(maxlen=10_000)  # model forward per set (ms)
        self._lock = threading.Lock()  # sync and mpjpe: callbacks vs diagnostics read from other threads (tests, run)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._last_arrival_ns = self._steady.now().nanoseconds

        self._marker_writer, self._pose_writer = MarkerArrayWriter(), PoseArrayWriter()  # one inference at a time
        self._markers = self.create_publisher(MarkerArray, TOPICS.markers, OUTPUT_QOS)
        self._joints = self.create_publisher(PoseArray, TOPICS.joints, OUTPUT_QOS)
        self._mpjpe = self.create_publisher(Float64, TOPICS.mpjpe, OUTPUT_QOS)
        self._diagnostics = self.create_publisher(DiagnosticArray, TOPICS.diagnostics, QoSProfile(depth=10))
        for modality in self.modalities:
            self.create_subscription(
                _MESSAGE_CLASSES[FEATURE_MESSAGE_TYPES[modality]], feature_topic(modality),
                lambda msg, m=modality: self._on_features(m, msg), FEATURES_QOS)
        self.create_subscription(PoseArray, TOPICS.ground_truth, self._on_ground_truth, QoSProfile(depth=10))
        self.create_timer(DIAGNOSTICS_PERIOD_S, self.publish_diagnostics, clock=self._steady)
        self.create_timer(max(self.idle_flush_s / 2, 0.01), self._flush_when_idle, clock=self._steady)
        self.runtime = RuntimeParameters(self)  # the parameters that apply when set; the rest are read-only
        self.runtime.add(["queue_size", "slop", "deadline", "reset_after"], self._prepare_sync)
        self.runtime.attribute("idle_flush", self, "idle_flush_s", float)
        self.runtime.attribute("marker_lifetime", self, "lifetime_ns", lambda value: round(float(value) * 1e9))
        self.runtime.attribute("stale_after_s", self, "stale_after_s", float)
        self.get_logger().info(f"fusing {list(self.modalities)} with {model_path} (slop {slop} s, deadline "
                               f"{deadline} s, queue {queue_size}) -> {TOPICS.markers}, {TOPICS.joints}")

    def _confidence_colors(self, model_path: str, range_mm: list[float]) -> dict[frozenset[str], tuple[np.ndarray, RGBA]]:
        """Per subset of fused modalities: (17, 4) joint colours from the card's expected errors,
        and their mean (the markers' overall colour)."""
        if self.color_mode != "confidence":
            return {}
        if len(range_mm) != 2:
            raise ValueError(f"confidence_range_mm must be [green_mm, red_mm], got {list(range_mm)}")
        expected = expected_joint_errors(self.estimator.card)
        if expected is None:
            self.get_logger().warning(f"{model_path}: the model card has no {EXPECTED_ERRORS_KEY}; colouring skeletons "
                                   "by modality count (write it: mmhpe-ros evaluate --model ... --update-card)")
            self.color_mode = "modalities"
            return {}
        colors = {subset: error_colors(errors, *range_mm) for subset, errors in expected.items()}
        return {subset: (c, tuple(c.mean(axis=0))) for subset, c in colors.items()}

    def _declare(self, name: str, default: Any, description: str, read_only: bool = True) -> Any:
        """Declare a parameter (read-only unless ``self.runtime`` applies it); returns its value."""
        return self.declare_parameter(name, default, ParameterDescriptor(description=description,
                                                                         read_only=read_only)).value

    def _prepare_sync(self, values: dict[str, Any]):
        """New synchroniser settings, checked (ValueError) before they apply to the next message."""
        settings = {"queue_size": int(values["queue_size"]), "slop_s": float(values["slop"]),
                    "deadline_s": float(values["deadline"]), "reset_after_s": float(values["reset_after"])}
        FeatureSync(self.modalities, **settings)  # refuses what configure() would

        def commit() -> None:
            with self._lock:
                self.sync.configure(**settings)
        return commit

    # -- callbacks ---------------------------------------------------------------------------

    def _on_features(self, modality: str, msg: Any) -> None:
        try:
            now = self._steady.now().nanoseconds
            stamp = codecs.header_stamp_ns(msg)
            self.monitors[modality].arrived(self.get_clock().now().nanoseconds, stamp)
            if modality != "wifi" and msg.header.frame_id != self.frame_id:
                raise ValueError(f"features in frame '{msg.header.frame_id}', but this node's base_frame is "
                                 f"'{self.frame_id}': give every node the same calibration")
            self.empty[modality] += not features_present(msg)
            arrived = Arrived(read_features(modality, msg, self.estimator.config), now)
            with self._lock:
                self._last_arrival_ns = now
                sets = self.sync.add(modality, stamp, arrived)
        except Exception as error:  # noqa: BLE001 - a callback must never raise; counted and logged
            self.decode_errors[modality] += 1
            self.get_logger().error(f"{feature_topic(modality)}: dropped a message: {error}",
                                    throttle_duration_sec=ERROR_LOG_PERIOD_S)
            return
        self._infer(sets)

    def _on_ground_truth(self, msg: PoseArray) -> None:
        try:
            joints = self._truth_to_base(msg.header.frame_id).apply(codecs.read_pose_array(msg))
            with self._lock:
                mean = self.mpjpe.add_truth(codecs.header_stamp_ns(msg), joints)
            if mean is not None:
                self._publish_mpjpe()
        except Exception as error:  # noqa: BLE001
            self.get_logger().error(f"{TOPICS.ground_truth}: {error}", throttle_duration_sec=ERROR_LOG_PERIOD_S)

    def _truth_to_base(self, frame_id: str) -> RigidTransform:
        """Ground truth's frame -> base frame (the dataset's "mmfi" frame: identity unless calibrated)."""
        if frame_id in ("", self.frame_id, GROUND_TRUTH_FRAME):
            return self.calibration.ground_truth_to_base() if frame_id == GROUND_TRUTH_FRAME else RigidTransform.identity()
        return self.calibration.to_base(frame_id)

    def _flush_when_idle(self) -> None:
        with self._lock:
            idle = self._steady.now().nanoseconds - self._last_arrival_ns > self.idle_flush_s * 1e9
            sets = self.sync.flush() if idle and any(self.sync.pending.values()) else []
        self._infer(sets)

    def _infer(self, sets: list[SyncedSet[Arrived]]) -> None:
        """Fuse the completed sets (one forward pass); an error is counted and logged, never raised."""
        if not sets:
            return
        try:
            self._fuse(sets)
        except Exception as error:  # noqa: BLE001 - a callback must never raise
            self._on_fuse_error(sets, error)

    def _on_fuse_error(self, batch: list[SyncedSet[Arrived]], error: BaseException) -> None:
        if not self.context.ok():  # shutting down (Ctrl-C): publishing stopped working, nothing went wrong
            return
        self.inference_errors += len(batch)
        self.get_logger().error(f"inference on {len(batch)} set(s) from {batch[0].stamp_ns} ns failed: {error}",
                                throttle_duration_sec=ERROR_LOG_PERIOD_S)

    # -- inference ---------------------------------------------------------------------------

    def _fuse(self, batch: list[SyncedSet[Arrived]]) -> None:
        thread = threading.get_ident()
        if thread not in self._threads_set:  # OpenMP thread counts are per calling thread: set it here
            self._threads_set.add(thread)
            if self.torch_threads > 0:
                import torch

                torch.set_num_threads(self.torch_threads)
        estimate = self.estimator.predict_batch(
            [{m: a.arrays for m, a in synced.messages.items()} for synced in batch])
        if estimate.person.any():  # nobody anywhere: the model did not run
            self.forward_ms.append(self.estimator.last_forward_ms / len(batch))
        model_modalities = self.estimator.config.modalities
        for synced, joints, person, present in zip(batch, estimate.joints, estimate.person, estimate.present):
            used = tuple(m for m, p in zip(model_modalities, present) if p)
            if person:
                self._publish(synced, joints, used)
            else:
                self._publish_nobody(synced)

    def _publish_nobody(self, synced: SyncedSet[Arrived]) -> None:
        """No modality found a person: delete the skeleton, publish no joints (an empty PoseArray)."""
        header = Header(stamp=to_stamp(synced.stamp_ns), frame_id=self.frame_id)
        self._markers.publish(delete_all_markers(header))
        self._joints.publish(PoseArray(header=header))
        self.no_person += 1
        self.person_seen = False
        self.fused += 1
        self.partial += not synced.complete
        self.last_fused = tuple(synced.messages)

    def _publish(self, synced: SyncedSet[Arrived], joints: np.ndarray, used: tuple[str, ...]) -> None:
        """The skeleton of one set; ``used``: the modalities that observed the person (colours)."""
        self.person_seen = True
        header = Header(stamp=to_stamp(synced.stamp_ns), frame_id=self.frame_id)
        present = [m in used for m in MODALITIES]
        joint_colors, color = self._joint_colors.get(frozenset(used), (None, None))
        if joint_colors is None:
            color = color_for_modalities(present) if self.color_mode != "fixed" else MODALITY_COUNT_COLORS[4]
        markers = skeleton_markers(joints, color=color, joint_colors=joint_colors)
        self._markers.publish(self._marker_writer.write(markers, header, self.lifetime_ns))
        self._joints.publish(self._pose_writer.write(joints, header))
        done = self._steady.now().nanoseconds
        self.latencies_ms.append((done - max(a.arrival_ns for a in synced.messages.values())) / 1e6)
        self.fused += 1
        self.partial += not synced.complete
        self.last_fused = used
        with self._lock:
            error = self.mpjpe.add_prediction(synced.stamp_ns, joints)
        if error is not None:
            self._publish_mpjpe()

    def _publish_mpjpe(self) -> None:
        mean = self.mpjpe.mean_mm
        if mean is not None:
            self._mpjpe.publish(Float64(data=float(mean)))

    # -- diagnostics -------------------------------------------------------------------------

    def statuses(self) -> list[Status]:
        """One status per modality (rate, age, drops) and one for the fusion itself."""
        now = self.get_clock().now().nanoseconds
        name = self.get_name()
        with self._lock:
            counters = self.sync.counters
            pending = self.sync.pending
            resets = self.sync.resets
            mean_mpjpe, matched = self.mpjpe.mean_mm, self.mpjpe.count
        out = []
        for modality in self.modalities:
            c = counters[modality]
            out.append(stream_status(
                f"{name}: {feature_topic(modality)}", self.monitors[modality], now,
                stale_after_s=self.stale_after_s, hardware_id=modality,
                counters={"used": c.used, "dropped": c.dropped + self.decode_errors[modality],
                          "unmatched": c.unmatched, "late": c.late, "overflow": c.overflow,
                          "decode_errors": self.decode_errors[modality], "empty": self.empty[modality],
                          "missing_from_sets": c.missing, "resets": c.resets, "queued": pending[modality]}))
        values = {
            "fused": str(self.fused), "partial": str(self.partial), "last_fused": ",".join(self.last_fused),
            "no_person": str(self.no_person), "base_frame": self.frame_id,
            "inference_errors": str(self.inference_errors),
            "sync_resets": str(resets),
            "forward_ms": f"{self.forward_ms[-1]:.2f}" if self.forward_ms else "n/a",
            "latency_ms": f"{self.latencies_ms[-1]:.2f}" if self.latencies_ms else "n/a",
            **_percentiles("forward_ms", self.forward_ms), **_percentiles("latency_ms", self.latencies_ms),
            "mpjpe_mm": "n/a" if mean_mpjpe is None else f"{mean_mpjpe:.1f}", "mpjpe_frames": str(matched),
        }
        if not self.fused:
            level, message = Level.STALE, "nothing fused yet"
        elif not self.person_seen:
            level, message = Level.OK, f"no person (fusing {', '.join(self.last_fused)})"
        elif set(self.last_fused) != set(self.modalities):
            missing = [m for m in self.modalities if m not in self.last_fused]
            level, message = Level.WARN, f"fusing without {', '.join(missing)}"
        else:
            level, message = Level.OK, f"fusing {', '.join(self.last_fused)}"
        out.append(Status(f"{name}: fusion", level, message, "fusion", values))
        return out

    def publish_diagnostics(self) -> None:
        try:
            self._diagnostics.publish(diagnostic_array(self.statuses(), self.get_clock().now().to_msg()))
        except Exception as error:  # noqa: BLE001 - diagnostics must not take the node down
            self.get_logger().error(f"diagnostics failed: {error}", throttle_duration_sec=ERROR_LOG_PERIOD_S)


def _percentiles(name: str, values: deque[float], last: int = PERCENTILE_WINDOW) -> dict[str, str]:
    """``{name_p50, name_p99}`` of the newest ``last`` values ("n/a" before the first)."""
    recent = np.fromiter(itertools.islice(reversed(values), last), dtype=np.float64)
    if not len(recent):
        return {f"{name}_p50": "n/a", f"{name}_p99": "n/a"}
    p50, p99 = np.percentile(recent, [50, 99])
    return {f"{name}_p50": f"{p50:.2f}", f"{name}_p99": f"{p99:.2f}"}


def main(args: list[str] | None = None) -> None:
    spin_node(FusionNode, args)


if __name__ == "__main__":
    main()
