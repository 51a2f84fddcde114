"""How an MM-Fi frame becomes ROS messages in our bags, and back (docs/bags.md, "Bag format").

One place for the bag format: which topic and message type carry each modality, its frame id,
and how stamps encode a frame's sequence, index and CSI packet. :mod:`mmhpe_ros.data.bags`
writes and reads files with it; nothing here touches files or rclpy.

Stamps: frame ``i`` of a sequence starting at ``start`` is stamped ``start + i * FRAME_PERIOD_NS``
(MM-Fi's 10 Hz); CSI packet ``k`` of that frame at ``+ k * PACKET_PERIOD_NS`` (100 Hz). A
``/mmfi/sequence`` String ("E01/S01/A01") stamped ``start`` opens each sequence, so a frame's
key and index follow from its stamp alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from mmhpe_ros.data.frames import Frame, SequenceKey
from mmhpe_ros.modalities import (
    CSI_PACKET_RATE_HZ,
    CSI_PACKETS_PER_FRAME,
    FRAME_IDS,
    FRAME_RATE_HZ,
    KEYPOINT_FIELDS,
    LIDAR_FIELDS,
    MMWAVE_FIELDS,
    SENSOR_TOPICS,
    TOPICS,
)
from mmhpe_ros.runtime import codecs

FRAME_PERIOD_NS = round(1e9 / FRAME_RATE_HZ)  # 100 ms
PACKET_PERIOD_NS = round(1e9 / CSI_PACKET_RATE_HZ)  # 10 ms
SEQUENCE_GAP_NS = 1_000_000_000  # silence between two sequences of one bag
FIRST_SEQUENCE_NS = 1_000_000_000  # stamp of the first sequence start in a bag (not 0: "unset")


@dataclass(frozen=True)
class Stream:
    """One topic of a bag: absolute name, message type (rosbags spelling), frame id."""

    topic: str
    msgtype: str
    frame_id: str = ""


POINT_CLOUD2 = "sensor_msgs/msg/PointCloud2"
SENSOR_STREAMS: dict[str, Stream] = {
    "rgb": Stream("/" + SENSOR_TOPICS["rgb"], POINT_CLOUD2, FRAME_IDS["rgb"]),
    "lidar": Stream("/" + SENSOR_TOPICS["lidar"], POINT_CLOUD2, FRAME_IDS["lidar"]),
    "mmwave": Stream("/" + SENSOR_TOPICS["mmwave"], POINT_CLOUD2, FRAME_IDS["mmwave"]),
    "wifi": Stream("/" + SENSOR_TOPICS["wifi"], "sensor_msgs/msg/Image", FRAME_IDS["wifi"]),
}
GROUND_TRUTH_STREAM = Stream("/" + TOPICS.ground_truth, "geometry_msgs/msg/PoseArray", FRAME_IDS["base"])
SEQUENCE_STREAM = Stream("/" + TOPICS.sequence, "std_msgs/msg/String")
# Written with the keypoints when the tree has the environment's calibration (its intrinsics).
CAMERA_INFO_STREAM = Stream("/" + TOPICS.camera_info, "sensor_msgs/msg/CameraInfo", FRAME_IDS["rgb"])
CALIBRATION_KEY = "mmhpe_ros.calibration."  # + environment: custom_data entry with the calibration file's text

# Point fields per point-set modality, in the order of the MM-Fi arrays' columns.
POINT_FIELDS: dict[str, tuple[str, ...]] = {
    "lidar": LIDAR_FIELDS,
    "mmwave": MMWAVE_FIELDS,
}
KEYPOINT_SCORE = 1.0  # MM-Fi ships no detector scores


class BagFormatError(ValueError):
    """A frame that cannot be written in the bag format, or messages that do not form a frame."""


def frame_stamp_ns(sequence_start_ns: int, index: int) -> int:
    """Stamp of frame ``index`` of a sequence starting at ``sequence_start_ns``."""
    return sequence_start_ns + index * FRAME_PERIOD_NS


def locate(stamp_ns: int, sequence_start_ns: int) -> tuple[int, int]:
    """(frame index, CSI packet number) of a stamp in a sequence; inverse of the stamping rule."""
    index, rest = divmod(stamp_ns - sequence_start_ns, FRAME_PERIOD_NS)
    packet, off_grid = divmod(rest, PACKET_PERIOD_NS)
    if index < 0 or off_grid:
        raise BagFormatError(
            f"stamp {stamp_ns} ns is not on the {FRAME_PERIOD_NS} ns frame / {PACKET_PERIOD_NS} ns "
            f"packet grid of the sequence starting at {sequence_start_ns} ns"
        )
    return index, packet


def next_sequence_start_ns(sequence_start_ns: int, last_index: int) -> int:
    """Start of the sequence that follows one whose last frame is ``last_index``."""
    return frame_stamp_ns(sequence_start_ns, last_index + 1) + SEQUENCE_GAP_NS


def sequence_message(types: codecs.MessageTypes, key: SequenceKey) -> Any:
    """The ``/mmfi/sequence`` message that opens a sequence."""
    return types.String(data=str(key))


def sequence_key(msg: Any) -> SequenceKey:
    """Key carried by a ``/mmfi/sequence`` message."""
    return SequenceKey.parse(msg.data)


def frame_messages(
    types: codecs.MessageTypes, frame: Frame, sequence_start_ns: int, modalities: Sequence[str]
) -> Iterator[tuple[Stream, int, Any]]:
    """(stream, stamp, message) for a frame's ground truth and ``modalities``, in stamp order.

    Modalities absent from ``frame.data`` are skipped. Raises :class:`BagFormatError` naming the
    frame for an array of the wrong shape or dtype.
    """
    unknown = [m for m in modalities if m not in SENSOR_STREAMS]
    if unknown:
        raise BagFormatError(f"no bag topic for modalities {unknown}; known: {list(SENSOR_STREAMS)}")
    stamp = frame_stamp_ns(sequence_start_ns, frame.index)
    try:
        yield GROUND_TRUTH_STREAM, stamp, codecs.create_pose_array(
            types, codecs.make_header(types, stamp, GROUND_TRUTH_STREAM.frame_id), frame.joints
        )
        for modality in modalities:
            if modality in frame.data and modality != "wifi":
                stream = SENSOR_STREAMS[modality]
                header = codecs.make_header(types, stamp, stream.frame_id)
                yield stream, stamp, encode_points(types, header, modality, frame.data[modality])
        if "wifi" in modalities and "wifi" in frame.data:  # packets last: 0..90 ms after stamp
            yield from _csi_messages(types, frame.data["wifi"], stamp)
    except (codecs.CodecError, BagFormatError) as error:
        raise BagFormatError(f"{frame.key} frame {frame.index}: {error}") from error


def encode_points(types: codecs.MessageTypes, header: Any, modality: str, array: np.ndarray) -> Any:
    """A keypoint (rgb) or point-set (lidar, mmwave) array as PointCloud2, dtype kept."""
    array = np.asarray(array)
    if modality == "rgb":
        if array.ndim != 2 or array.shape[1] != 2:
            raise BagFormatError(f"rgb keypoints must be (K, 2), got {array.shape}")
        scores = np.full((len(array), 1), KEYPOINT_SCORE, dtype=array.dtype)
        return codecs.create_points(types, header, np.hstack([array, scores]), KEYPOINT_FIELDS)
    fields = POINT_FIELDS[modality]
    if array.ndim != 2 or array.shape[1] != len(fields):
        raise BagFormatError(f"{modality} points must be (N, {len(fields)}), got {array.shape}")
    return codecs.create_points(types, header, array, fields)


def camera_info_message(typestore: Any, header: Any, camera: Any) -> Any:
    """A sensor_msgs/CameraInfo (rosbags ``typestore``) of ``camera``
    (:class:`~mmhpe_ros.geometry.camera.CameraIntrinsics`): K, D, identity R, P = [K | 0]."""
    types = typestore.types
    projection = np.hstack([camera.k, np.zeros((3, 1))])
    roi = types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return types[CAMERA_INFO_STREAM.msgtype](
        header=header, height=camera.height, width=camera.width, distortion_model=camera.distortion_model,
        d=np.array(camera.d, dtype=np.float64), k=camera.k.ravel().copy(), r=np.eye(3).ravel(),
        p=projection.ravel(), binning_x=0, binning_y=0, roi=roi,
    )


def decode_points(modality: str, msg: Any) -> np.ndarray:
    """Inverse of :func:`encode_points`: the MM-Fi array, dtype of the encoded fields."""
    if modality == "rgb":
        return codecs.read_points_array(msg, KEYPOINT_FIELDS[:2])
    return codecs.read_points_array(msg, POINT_FIELDS[modality])


def _csi_messages(
    types: codecs.MessageTypes, csi: np.ndarray, stamp_ns: int
) -> Iterator[tuple[Stream, int, Any]]:
    """One Image per CSI packet of a (2, antennas, subcarriers, packets) frame array."""
    csi = np.asarray(csi)
    if csi.ndim != 4 or csi.shape[0] != 2 or csi.shape[3] != CSI_PACKETS_PER_FRAME:
        raise BagFormatError(
            f"wifi must be (2, antennas, subcarriers, {CSI_PACKETS_PER_FRAME}) = "
            f"[CSIamp, CSIphase], got {csi.shape}"
        )
    stream = SENSOR_STREAMS["wifi"]
    for packet in range(CSI_PACKETS_PER_FRAME):
        packet_stamp = stamp_ns + packet * PACKET_PERIOD_NS
        header = codecs.make_header(types, packet_stamp, stream.frame_id)
        yield stream, packet_stamp, codecs.create_csi_packet(
            types, header, csi[0, :, :, packet], csi[1, :, :, packet]
        )


def decode_csi(packets: Sequence[Any]) -> np.ndarray:
    """The packets of one frame, in packet order, -> (2, antennas, subcarriers, packets) array."""
    if len(packets) != CSI_PACKETS_PER_FRAME:
        raise BagFormatError(f"a frame needs {CSI_PACKETS_PER_FRAME} CSI packets, got {len(packets)}")
    amplitudes, phases = zip(*(codecs.read_csi_packet(msg) for msg in packets))
    return np.stack([np.stack(amplitudes, axis=-1), np.stack(phases, axis=-1)])
