"""Skeleton message writers: reused Marker/Pose objects go out exactly as freshly built ones.

Compared after a serialisation round trip (what a subscriber gets); the bytes themselves are not
compared, as CDR padding bytes are left uninitialised.
"""
from __future__ import annotations

import numpy as np
import pytest

serialization = pytest.importorskip("rclpy.serialization", reason="rclpy not installed")
from geometry_msgs.msg import Point, Pose, PoseArray  # noqa: E402
from std_msgs.msg import ColorRGBA, Header  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from mmhpe_ros.nodes.messages import MarkerArrayWriter, PoseArrayWriter, to_duration, to_stamp  # noqa: E402
from mmhpe_ros.runtime.markers import MODALITY_COUNT_COLORS, skeleton_markers  # noqa: E402
from mmhpe_ros.skeleton import NUM_JOINTS  # noqa: E402

LIFETIME_NS = 500_000_000


def sent(msg):
    """What a subscriber receives of ``msg``."""
    return serialization.deserialize_message(serialization.serialize_message(msg), type(msg))


def fresh_marker_array(specs, header: Header) -> MarkerArray:
    """The reference: every message object new, field by field."""
    kinds = {"joints": Marker.SPHERE_LIST, "bones": Marker.LINE_LIST}
    out = MarkerArray()
    for spec in specs:
        marker = Marker(header=header, ns=spec.ns, id=spec.id, type=kinds[spec.kind], action=Marker.ADD)
        marker.pose.orientation.w = 1.0
        marker.scale.x = marker.scale.y = marker.scale.z = spec.scale
        marker.color = ColorRGBA(r=spec.color[0], g=spec.color[1], b=spec.color[2], a=spec.color[3])
        marker.lifetime = to_duration(LIFETIME_NS)
        marker.points = [Point(x=x, y=y, z=z) for x, y, z in spec.points.tolist()]
        out.markers.append(marker)
    return out


def skeletons(count: int, people: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.normal(size=(people, NUM_JOINTS, 3)).squeeze(0) if people == 1
            else rng.normal(size=(people, NUM_JOINTS, 3)) for _ in range(count)]


def test_marker_writer_matches_fresh_messages_frame_after_frame():
    writer = MarkerArrayWriter()
    frames = [*skeletons(3), *skeletons(1, people=2), *skeletons(2)]  # the person count grows and shrinks
    colors = list(MODALITY_COUNT_COLORS.values())
    for k, joints in enumerate(frames):
        header = Header(stamp=to_stamp(1_000_000_000 + k * 100_000_000), frame_id="mmfi")
        specs = skeleton_markers(joints, color=colors[k % len(colors)])
        assert sent(writer.write(specs, header, LIFETIME_NS)) == sent(fresh_marker_array(specs, header)), f"frame {k}"


def test_pose_writer_matches_fresh_messages_frame_after_frame():
    writer = PoseArrayWriter()
    for k, joints in enumerate([*skeletons(2), np.zeros((3, 3)), *skeletons(1)]):
        header = Header(stamp=to_stamp(k), frame_id="mmfi")
        fresh = PoseArray(header=header, poses=[Pose() for _ in joints])
        for pose, (x, y, z) in zip(fresh.poses, joints.tolist()):
            pose.position = Point(x=x, y=y, z=z)
            pose.orientation.w = 1.0
        assert sent(writer.write(joints, header)) == sent(fresh), f"frame {k}"
    with pytest.raises(ValueError, match=r"\(J, 3\)"):
        writer.write(np.zeros((17, 2)), Header())
