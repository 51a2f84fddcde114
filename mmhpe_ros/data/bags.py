"""MM-Fi frames <-> rosbag2 MCAP bags: :func:`convert` writes them, :class:`BagDataset` reads them.

Bags are written with the ``rosbags`` library (rosbag2 format 9, MCAP storage, messages typed by
the ROS 2 Kilted typestore) and play with ``ros2 bag play``; they are read back without any ROS
runtime. The message layout, topics and stamps are those of :mod:`mmhpe_ros.data.bag_format`
(docs/bags.md).
"""
from __future__ import annotations

import bisect
import os
import shutil
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import yaml

from mmhpe_ros.data import bag_format as fmt
from mmhpe_ros.data.frames import Frame, SequenceKey
from mmhpe_ros.geometry.calibration import Calibration, calibration_from_text
from mmhpe_ros.geometry.camera import CameraIntrinsics
from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.limits import DEFAULT_BAG_LIMITS, BagLimits, check_bag, check_message, read_bounded
from mmhpe_ros.runtime.paths import resolve_inside

BagName = Callable[[SequenceKey], "str | None"]
JOINTS_DTYPE_KEY = "mmhpe_ros.ground_truth_dtype"  # custom_data entry in metadata.yaml
OPEN_READERS = 8  # bags a BagDataset keeps open per process (least recently used closed first)


def _typestore() -> Any:
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


def sequence_bag_name(key: SequenceKey) -> str:
    """Directory name of a one-sequence bag: ``E01_S01_A01``."""
    return f"{key.environment}_{key.subject}_{key.action}"


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


class _BagWriter:
    """One bag being written: its connections, and the timeline its sequences follow."""

    def __init__(self, path: Path, typestore: Any, types: codecs.MessageTypes,
                 calibrations: Mapping[str, tuple[str, Calibration]]) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path, self.typestore, self.types = path, typestore, types
        self.calibrations = calibrations
        self.environments: set[str] = set()
        self.writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.connections: dict[str, Any] = {}
        self.next_start = fmt.FIRST_SEQUENCE_NS
        self.key: SequenceKey | None = None
        self.start = self.last_index = 0
        self.finished: set[SequenceKey] = set()
        self.joints_dtype: np.dtype | None = None

    def write_frame(self, frame: Frame, modalities: Sequence[str]) -> None:
        if frame.key != self.key:
            self._start_sequence(frame.key)
        elif frame.index <= self.last_index:
            raise fmt.BagFormatError(
                f"{frame.key}: frame {frame.index} comes after frame {self.last_index}; "
                "a source must yield each sequence's frames in increasing index order"
            )
        joints = np.asarray(frame.joints)
        if self.joints_dtype is None:
            self.joints_dtype = joints.dtype
        elif joints.dtype != self.joints_dtype:
            raise fmt.BagFormatError(
                f"{frame.key} frame {frame.index}: joints are {joints.dtype}, earlier frames "
                f"of {self.path.name} were {self.joints_dtype}"
            )
        camera = self._camera(frame.key.environment)
        for stream, stamp, msg in fmt.frame_messages(self.types, frame, self.start, modalities):
            self._write(stream, stamp, msg)
            if stream == fmt.SENSOR_STREAMS["rgb"] and camera is not None:
                header = codecs.make_header(self.types, stamp, fmt.CAMERA_INFO_STREAM.frame_id)
                self._write(fmt.CAMERA_INFO_STREAM, stamp, fmt.camera_info_message(self.typestore, header, camera))
        self.last_index = frame.index

    def _camera(self, environment: str) -> CameraIntrinsics | None:
        """The camera intrinsics of ``environment``'s calibration (None without one)."""
        entry = self.calibrations.get(environment)
        return None if entry is None else entry[1].camera(fmt.CAMERA_INFO_STREAM.frame_id)

    def _start_sequence(self, key: SequenceKey) -> None:
        if key in self.finished:
            raise fmt.BagFormatError(
                f"{key}: its frames are not contiguous in the source; a source must yield each "
                "sequence's frames together"
            )
        if self.key is not None:
            self.finished.add(self.key)
            self.next_start = fmt.next_sequence_start_ns(self.start, self.last_index)
        self.key, self.start, self.last_index = key, self.next_start, -1
        self.environments.add(key.environment)
        self._write(fmt.SEQUENCE_STREAM, self.start, fmt.sequence_message(self.types, key))

    def _write(self, stream: fmt.Stream, stamp: int, msg: Any) -> None:
        connection = self.connections.get(stream.topic)
        if connection is None:
            connection = self.connections[stream.topic] = self.writer.add_connection(
                stream.topic, stream.msgtype, typestore=self.typestore,
                offered_qos_profiles=_offered_qos(stream),
            )
        self.writer.write(connection, stamp, self.typestore.serialize_cdr(msg, stream.msgtype))

    def close(self) -> None:
        if self.joints_dtype is not None:
            self.writer.set_custom_data(JOINTS_DTYPE_KEY, self.joints_dtype.str)
        for environment in sorted(self.environments & set(self.calibrations)):
            self.writer.set_custom_data(fmt.CALIBRATION_KEY + environment, self.calibrations[environment][0])
        self.writer.close()


def _offered_qos(stream: fmt.Stream) -> list[Any]:
    """QoS that ``ros2 bag play`` should offer: transient local for the sequence topic, so late
    joiners learn the current sequence; the player's default (reliable, volatile) otherwise."""
    if stream != fmt.SEQUENCE_STREAM:
        return []
    from rosbags.interfaces import (
        Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime,
    )

    unspecified = QosTime(0, 0)
    return [Qos(
        QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL,
        unspecified, unspecified, QosLiveliness.AUTOMATIC, unspecified, False,
    )]


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse an existing ``out_dir`` unless ``overwrite``; then remove it only if it holds bags."""
    if not out_dir.exists():
        return
    if not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass overwrite=True (--overwrite) to replace it")
    foreign = [p.name for p in out_dir.iterdir() if not (p / "metadata.yaml").is_file()]
    if foreign:
        raise FileExistsError(
            f"{out_dir} holds entries that are not rosbag2 bags ({', '.join(sorted(foreign)[:5])}); "
            "not removing it"
        )
    shutil.rmtree(out_dir)


def convert(
    source: Iterable[Frame], out_dir: str | Path, per: str = "sequence", *,
    split: BagName | None = None, modalities: Sequence[str] | None = None,
    overwrite: bool = False, progress: bool = True, calibrations: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write the frames of ``source`` (e.g. an ``MmfiDataset``) as rosbag2 MCAP bags in ``out_dir``.

    ``per="sequence"``: one bag per sequence, named ``E01_S01_A01``. ``per="split"``: one bag per
    name that ``split(key)`` returns (e.g. ``train``, ``val``); sequences for which it returns
    None are left out. Within a bag, sequences follow each other in source order with a gap of
    ``bag_format.SEQUENCE_GAP_NS``. ``modalities`` (default: every modality with a bag topic)
    selects what is written; modalities without a bag topic found in the frames are reported by
    a warning. The source must yield each sequence's frames together, in increasing index.

    ``calibrations`` maps environments to the text of their calibration file
    (:func:`mmhpe_ros.data.mmfi.tree_calibrations`): each bag then stores the text of the
    environments it holds in its metadata (``custom_data``, :meth:`BagDataset.calibration` reads it
    back) and, with the keypoints, a CameraInfo of the camera's intrinsics on ``camera/camera_info``.

    ``out_dir`` must not exist unless ``overwrite`` (then it is replaced, if it holds only bags).
    On error no partial output is left. Returns the bag directories written.
    """
    if per not in ("sequence", "split"):
        raise ValueError(f"per must be 'sequence' or 'split', got {per!r}")
    if per == "split" and split is None:
        raise ValueError("per='split' needs split: a function SequenceKey -> bag name or None")
    if modalities is not None:
        unknown = [m for m in modalities if m not in fmt.SENSOR_STREAMS]
        if unknown:
            raise ValueError(f"no bag topic for modalities {unknown}; known: {list(fmt.SENSOR_STREAMS)}")
    bag_name: BagName = sequence_bag_name if per == "sequence" else split  # type: ignore[assignment]
    parsed = {environment: (text, calibration_from_text(text, f"the calibration of {environment}"))
              for environment, text in (calibrations or {}).items()}
    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir, overwrite)
    out_dir.mkdir(parents=True)

    typestore = _typestore()
    types = codecs.rosbags_types(typestore)
    writers: dict[str, _BagWriter] = {}
    written: list[Path] = []
    unwritten: set[str] = set()
    try:
        for frame in _progress(source, progress):
            name = bag_name(frame.key)
            if name is None:
                continue
            writer = writers.get(name)
            if writer is None:
                if per == "sequence":  # one sequence at a time: close the previous bag
                    for other in writers.values():
                        other.close()
                    writers.clear()
                resolve_inside(out_dir, name, "bag name")  # a split name must not climb out of out_dir
                bag_dir = out_dir / name
                if bag_dir.exists():
                    raise fmt.BagFormatError(
                        f"{frame.key}: bag {name} was already written; a source must yield each "
                        "sequence's frames together"
                    )
                writer = writers[name] = _BagWriter(bag_dir, typestore, types, parsed)
                written.append(writer.path)
            chosen = [m for m in fmt.SENSOR_STREAMS if m in frame.data] if modalities is None \
                else modalities
            unwritten.update(m for m in frame.data if m not in fmt.SENSOR_STREAMS)
            writer.write_frame(frame, chosen)
        for writer in writers.values():
            writer.close()
    except BaseException:
        for writer in writers.values():
            writer.writer.abort()
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    if unwritten:
        warnings.warn(f"modalities without a bag topic were not written: {sorted(unwritten)}",
                      stacklevel=2)
    return written


def _progress(source: Iterable[Frame], enabled: bool) -> Iterable[Frame]:
    from mmhpe_ros.progress import progress_bar

    total = len(source) if hasattr(source, "__len__") else None  # type: ignore[arg-type]
    return progress_bar(source, enabled=enabled, total=total, unit="frame", desc="convert")


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FrameRef:
    """Where one frame lives: bag number, sequence, index, stamps."""

    bag: int
    key: SequenceKey
    index: int
    sequence_start_ns: int
    stamp_ns: int


def bag_paths(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """Bag directories named by ``paths``: bags themselves, or folders searched for bags."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    found: list[Path] = []
    for path in map(Path, paths):
        if (path / "metadata.yaml").is_file():
            found.append(path)
        elif path.is_dir():
            bags = sorted(p.parent for p in path.rglob("metadata.yaml"))
            if not bags:
                raise FileNotFoundError(f"{path}: no rosbag2 bag (metadata.yaml) in this folder")
            found.extend(bags)
        else:
            raise FileNotFoundError(f"{path}: not a rosbag2 bag directory")
    return found


def _custom_data(path: Path, limits: BagLimits = DEFAULT_BAG_LIMITS) -> dict[str, str]:
    """``custom_data`` of a bag's metadata.yaml (rosbag2 format >= 6)."""
    text = read_bounded(path / "metadata.yaml", limits.metadata_bytes, "metadata.yaml")
    info = yaml.safe_load(text).get("rosbag2_bagfile_information", {})
    return info.get("custom_data") or {}


def _calibration_texts(paths: Sequence[Path], custom: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """Calibration file texts by environment from the bags' custom_data; two bags that disagree
    about one environment are an error."""
    texts: dict[str, str] = {}
    for path, data in zip(paths, custom):
        for key, text in data.items():
            if not key.startswith(fmt.CALIBRATION_KEY):
                continue
            environment = key[len(fmt.CALIBRATION_KEY):]
            if texts.setdefault(environment, text) != text:
                raise fmt.BagFormatError(f"{path}: its calibration of {environment} differs from another bag's")
    return texts


def bag_calibration(path: str | Path) -> Calibration | None:
    """The calibration a bag stores (``mmhpe-ros convert`` of a tree with calibration files): None
    when it stores none or has no metadata.yaml (a bare .mcap); ValueError when it stores several
    environments' (the caller must choose one)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if not (folder / "metadata.yaml").is_file():
        return None
    texts = _calibration_texts([folder], [_custom_data(folder)])
    if len(texts) > 1:
        raise ValueError(f"{path} stores the calibrations of {sorted(texts)}: choose one with --calibration")
    if not texts:
        return None
    (environment, text), = texts.items()
    return calibration_from_text(text, f"{path}'s calibration of {environment}")


class BagDataset:
    """Frames read back from bags written by :func:`convert` (a ``FrameSource``; no ROS needed).

    Frames come in bag order, then stamp order, each with ``data`` arrays equal to those that
    were converted (values, dtype, shape) for the ``modalities`` asked (default: all recorded);
    a modality missing in a bag or frame is absent from ``Frame.data``. The bags are indexed
    once (sequence markers and ground-truth stamps); ``dataset[i]`` reads one frame lazily and
    iteration streams each bag once. Readers open per process, so DataLoader workers work.

    Bags from outside are safe to open: each is checked against ``limits`` first (record and
    chunk sizes, :func:`~mmhpe_ros.runtime.limits.check_bag`) and every message against the
    bound of its type before it is deserialised; a violation raises ``LimitError``.
    """

    def __init__(
        self, paths: str | Path | Sequence[str | Path], modalities: Sequence[str] | None = None,
        limits: BagLimits = DEFAULT_BAG_LIMITS,
    ) -> None:
        self.paths = bag_paths(paths)
        self.limits = limits
        for path in self.paths:
            check_bag(path, limits)
        if modalities is not None:
            unknown = [m for m in modalities if m not in fmt.SENSOR_STREAMS]
            if unknown:
                raise ValueError(f"no bag topic for modalities {unknown}; known: {list(fmt.SENSOR_STREAMS)}")
        self.modalities = tuple(fmt.SENSOR_STREAMS if modalities is None else modalities)
        self._topic_modality = {fmt.SENSOR_STREAMS[m].topic: m for m in self.modalities}
        self._typestore = _typestore()
        self._readers: OrderedDict[int, Any] = OrderedDict()
        self._pid = os.getpid()
        custom = [_custom_data(path, limits) for path in self.paths]
        self._joints_dtypes = [np.dtype(data.get(JOINTS_DTYPE_KEY, "<f8")) for data in custom]
        self._calibration_texts = _calibration_texts(self.paths, custom)
        self._bag_refs = [self._index_bag(number) for number in range(len(self.paths))]
        self._refs = [ref for refs in self._bag_refs for ref in refs]

    # -- FrameSource -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._refs)

    def __getitem__(self, index: int) -> Frame:
        ref = self._refs[index]
        reader = self._reader(ref.bag)
        messages = reader.messages(
            connections=self._frame_connections(reader), start=ref.stamp_ns,
            stop=ref.stamp_ns + fmt.FRAME_PERIOD_NS,
        )
        return self._assemble(ref, reader, list(messages))

    def __iter__(self) -> Iterator[Frame]:
        for number, refs in enumerate(self._bag_refs):
            reader = self._reader(number)
            pending: list[tuple[Any, int, bytes]] = []
            position = 0
            for message in reader.messages(connections=self._frame_connections(reader)):
                while position < len(refs) and message[1] >= refs[position].stamp_ns + fmt.FRAME_PERIOD_NS:
                    yield self._assemble(refs[position], reader, pending)
                    pending, position = [], position + 1
                pending.append(message)
            while position < len(refs):
                yield self._assemble(refs[position], reader, pending)
                pending, position = [], position + 1

    @property
    def index(self) -> list[tuple[SequenceKey, int]]:
        """(sequence key, frame index) of every frame, in dataset order."""
        return [(ref.key, ref.index) for ref in self._refs]

    def calibration(self, environment: str) -> Calibration | None:
        """The calibration of ``environment`` stored in the bags' metadata (None if none is)."""
        text = self._calibration_texts.get(environment)
        return None if text is None else calibration_from_text(text, f"the bags' calibration of {environment}")

    def close(self) -> None:
        """Close the bag readers of this process (they reopen on demand)."""
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_readers"] = OrderedDict()
        return state

    # -- internals ---------------------------------------------------------------------------

    def _reader(self, number: int) -> Any:
        """The open reader of bag ``number`` in this process."""
        from rosbags.highlevel import AnyReader

        if self._pid != os.getpid():  # forked (DataLoader worker): the parent's handles are not ours
            self._readers, self._pid = OrderedDict(), os.getpid()
        reader = self._readers.get(number)
        if reader is None:
            reader = AnyReader([self.paths[number]], default_typestore=self._typestore)
            reader.open()
            self._readers[number] = reader
            if len(self._readers) > OPEN_READERS:
                self._readers.popitem(last=False)[1].close()
        self._readers.move_to_end(number)
        return reader

    def _frame_connections(self, reader: Any) -> list[Any]:
        topics = {fmt.GROUND_TRUTH_STREAM.topic, *self._topic_modality}
        return [c for c in reader.connections if c.topic in topics]

    def _index_bag(self, number: int) -> list[_FrameRef]:
        path = self.paths[number]
        reader = self._reader(number)
        marker_conns = [c for c in reader.connections if c.topic == fmt.SEQUENCE_STREAM.topic]
        truth_conns = [c for c in reader.connections if c.topic == fmt.GROUND_TRUTH_STREAM.topic]
        if not marker_conns or not truth_conns:
            raise fmt.BagFormatError(
                f"{path}: needs topics {fmt.SEQUENCE_STREAM.topic} and "
                f"{fmt.GROUND_TRUTH_STREAM.topic}; is it a bag written by `mmhpe-ros convert`?"
            )
        starts: list[int] = []
        keys: list[SequenceKey] = []
        for connection, stamp, raw in reader.messages(connections=marker_conns):
            check_message(path, connection.topic, connection.msgtype, len(raw), self.limits)
            msg = reader.deserialize(raw, fmt.SEQUENCE_STREAM.msgtype)
            starts.append(stamp)
            keys.append(fmt.sequence_key(msg))
        refs = []
        for _, stamp, _ in reader.messages(connections=truth_conns):
            sequence = bisect.bisect_right(starts, stamp) - 1
            if sequence < 0:
                raise fmt.BagFormatError(
                    f"{path}: ground truth at {stamp} ns precedes every {fmt.SEQUENCE_STREAM.topic}"
                )
            index, packet = fmt.locate(stamp, starts[sequence])
            if packet:
                raise fmt.BagFormatError(f"{path}: ground truth at {stamp} ns is between frames")
            if refs and refs[-1].stamp_ns == stamp:
                raise fmt.BagFormatError(f"{path}: two ground truth messages at {stamp} ns")
            refs.append(_FrameRef(number, keys[sequence], index, starts[sequence], stamp))
        return refs

    def _assemble(self, ref: _FrameRef, reader: Any, messages: list[tuple[Any, int, bytes]]) -> Frame:
        """The frame ``ref`` from its messages (those stamped within its 100 ms)."""
        where = f"{self.paths[ref.bag]}: {ref.key} frame {ref.index}"
        joints: np.ndarray | None = None
        data: dict[str, np.ndarray] = {}
        packets: dict[int, Any] = {}
        for connection, stamp, raw in messages:
            check_message(self.paths[ref.bag], connection.topic, connection.msgtype, len(raw), self.limits)
            msg = reader.deserialize(raw, connection.msgtype)
            if codecs.header_stamp_ns(msg) != stamp:
                raise fmt.BagFormatError(
                    f"{where}: {connection.topic} header stamp {codecs.header_stamp_ns(msg)} ns "
                    f"differs from its log time {stamp} ns"
                )
            index, packet = fmt.locate(stamp, ref.sequence_start_ns)
            if index != ref.index:
                raise fmt.BagFormatError(
                    f"{where}: {connection.topic} at {stamp} ns belongs to no frame with ground truth"
                )
            modality = self._topic_modality.get(connection.topic)
            if modality == "wifi":
                if packet in packets:
                    raise fmt.BagFormatError(f"{where}: CSI packet {packet} recorded twice")
                packets[packet] = msg
            elif packet:
                raise fmt.BagFormatError(f"{where}: {connection.topic} at {stamp} ns is off the frame stamp")
            elif connection.topic == fmt.GROUND_TRUTH_STREAM.topic:
                joints = codecs.read_pose_array(msg, self._joints_dtypes[ref.bag])
            elif modality in data:
                raise fmt.BagFormatError(f"{where}: {connection.topic} recorded twice")
            else:
                data[modality] = fmt.decode_points(modality, msg).copy()
        if packets:
            try:
                data["wifi"] = fmt.decode_csi([packets[k] for k in sorted(packets)])
            except fmt.BagFormatError as error:
                raise fmt.BagFormatError(f"{where}: {error}") from error
        if joints is None:
            raise fmt.BagFormatError(f"{where}: no ground truth message")
        return Frame(key=ref.key, index=ref.index, joints=joints, data=data)
