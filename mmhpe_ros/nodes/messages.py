"""Plain runtime data -> rclpy messages: stamps, skeleton markers and joints, diagnostics."""
from __future__ import annotations

from typing import Iterable

from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
from geometry_msgs.msg import Point, Pose, PoseArray
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from mmhpe_ros.runtime.diagnostics import Status
from mmhpe_ros.runtime.markers import SkeletonMarker

# The feature topics between the sensor nodes and the fusion node: reliable on both sides (a set
# is only as complete as its least delivered stream; a best-effort reader silently loses what a
# busy moment drops), keep-last 10 (one second at 10 Hz: a stalled fusion node holds the sensor
# nodes' publishers back by no more). Raw sensor inputs are subscribed with the sensor-data QoS
# (best effort, matching drivers' best-effort and reliable publishers alike).
FEATURES_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)

NS_PER_S = 1_000_000_000
_MARKER_TYPES = {"joints": Marker.SPHERE_LIST, "bones": Marker.LINE_LIST}


def stamp_ns(stamp: Time) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return stamp.sec * NS_PER_S + stamp.nanosec


def to_stamp(ns: int) -> Time:
    """Integer nanoseconds -> builtin_interfaces/Time."""
    sec, nanosec = divmod(int(ns), NS_PER_S)
    return Time(sec=sec, nanosec=nanosec)


def to_duration(ns: int) -> Duration:
    sec, nanosec = divmod(int(ns), NS_PER_S)
    return Duration(sec=sec, nanosec=nanosec)


def _set_points(points: list[Point], xyz: np.ndarray) -> list[Point]:
    """``points`` (grown as needed, then cut) holding the rows of ``xyz`` (K, 3)."""
    values = np.asarray(xyz, dtype=np.float64).tolist()
    points.extend(Point() for _ in range(len(values) - len(points)))
    del points[len(values):]
    for point, (x, y, z) in zip(points, values):
        point.x, point.y, point.z = x, y, z
    return points


def _set_colors(colors: list[ColorRGBA], rgba: np.ndarray | None) -> list[ColorRGBA]:
    """``colors`` (grown as needed, then cut) holding the rows of ``rgba`` (K, 4); empty if None.

    The twin of :func:`_set_points` on purpose: one generic version setting fields by name
    (``setattr``) made a frame's markers twice as slow to write (76 against 39 us)."""
    values = [] if rgba is None else np.asarray(rgba, dtype=np.float64).tolist()
    colors.extend(ColorRGBA() for _ in range(len(values) - len(colors)))
    del colors[len(values):]
    for color, (r, g, b, a) in zip(colors, values):
        color.r, color.g, color.b, color.a = r, g, b, a
    return colors


class MarkerArrayWriter:
    """Skeleton markers -> one visualization_msgs/MarkerArray, reusing its Marker and Point objects.

    Building a frame's markers anew costs ~50 Python message objects; this fills the same ones
    (about half the time). rclpy serialises a message in ``publish()``, so the array may be filled
    again once that returns; use one writer per thread.
    """

    def __init__(self) -> None:
        self._markers: dict[tuple[str, int], Marker] = {}
        self._points: dict[tuple[str, int], list[Point]] = {}
        self._colors: dict[tuple[str, int], list[ColorRGBA]] = {}

    def write(self, markers: Iterable[SkeletonMarker], header: Header, lifetime_ns: int) -> MarkerArray:
        """One Marker (action ADD) per skeleton marker, all with ``header``."""
        lifetime = to_duration(lifetime_ns)
        out = MarkerArray()
        for spec in markers:
            key = (spec.ns, spec.id)
            marker = self._markers.get(key)
            if marker is None:
                marker = self._markers[key] = Marker(ns=spec.ns, id=spec.id, action=Marker.ADD)
                marker.pose.orientation.w = 1.0
                self._points[key], self._colors[key] = [], []
            marker.header = header
            marker.type = _MARKER_TYPES[spec.kind]
            marker.scale.x = marker.scale.y = marker.scale.z = spec.scale
            marker.color = ColorRGBA(r=spec.color[0], g=spec.color[1], b=spec.color[2], a=spec.color[3])
            marker.lifetime = lifetime
            marker.points = _set_points(self._points[key], spec.points)
            marker.colors = _set_colors(self._colors[key], spec.colors)
            out.markers.append(marker)
        return out


def delete_all_markers(header: Header) -> MarkerArray:
    """A MarkerArray that removes every marker of the publisher (nobody there)."""
    return MarkerArray(markers=[Marker(header=header, action=Marker.DELETEALL)])


class PoseArrayWriter:
    """(J, 3) joints -> one geometry_msgs/PoseArray (identity orientations), reusing its Poses;
    the same rules as :class:`MarkerArrayWriter`."""

    def __init__(self) -> None:
        self._poses: list[Pose] = []

    def write(self, joints: np.ndarray, header: Header) -> PoseArray:
        values = np.asarray(joints, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != 3:
            raise ValueError(f"joints must be (J, 3), got {values.shape}")
        while len(self._poses) < len(values):
            pose = Pose()
            pose.orientation.w = 1.0
            self._poses.append(pose)
        poses = self._poses[:len(values)]
        for pose, (x, y, z) in zip(poses, values.tolist()):
            position = pose.position
            position.x, position.y, position.z = x, y, z
        return PoseArray(header=header, poses=poses)


def diagnostic_array(statuses: Iterable[Status], stamp: Time) -> DiagnosticArray:
    """diagnostic_msgs/DiagnosticArray of plain statuses."""
    array = DiagnosticArray()
    array.header.stamp = stamp
    for status in statuses:
        array.status.append(DiagnosticStatus(
            level=bytes([int(status.level)]), name=status.name, message=status.message,
            hardware_id=status.hardware_id,
            values=[KeyValue(key=key, value=value) for key, value in status.values.items()],
        ))
    return array
