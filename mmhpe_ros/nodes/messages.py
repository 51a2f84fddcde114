"""Plain runtime data -> rclpy messages: stamps, skeleton markers, diagnostics."""
from __future__ import annotations

from typing import Iterable

from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from mmhpe_ros.runtime.diagnostics import Status
from mmhpe_ros.runtime.markers import SkeletonMarker

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


def marker_array(markers: Iterable[SkeletonMarker], header: Header, lifetime_ns: int) -> MarkerArray:
    """One visualization_msgs/Marker (action ADD) per skeleton marker, all with ``header``."""
    lifetime = to_duration(lifetime_ns)
    out = MarkerArray()
    for spec in markers:
        marker = Marker(header=header, ns=spec.ns, id=spec.id, type=_MARKER_TYPES[spec.kind], action=Marker.ADD)
        marker.pose.orientation.w = 1.0
        marker.scale.x = marker.scale.y = marker.scale.z = spec.scale
        marker.color = ColorRGBA(r=spec.color[0], g=spec.color[1], b=spec.color[2], a=spec.color[3])
        marker.lifetime = lifetime
        marker.points = [Point(x=x, y=y, z=z) for x, y, z in spec.points.tolist()]
        out.markers.append(marker)
    return out


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
