"""Size limits for files from outside: bags, model cards, safetensors headers.

A bag from elsewhere is checked before the ``rosbags`` reader touches it (:func:`check_bag`):
``metadata.yaml`` size, storage files inside the bag directory, and every MCAP record's declared
size (chunks, their compressed and decompressed sizes as the chunk and its zstd / lz4 frame
declare them, top-level messages). ``rosbags`` decompresses a whole chunk before yielding its
messages, so the chunk bound is what bounds memory; each message is then checked against the
bound of its type (:func:`check_message`) before it is deserialised. Errors name the file, the
topic where known, and the size.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Mapping

from mmhpe_ros.runtime.paths import PathEscapeError, resolve_inside

KIB, MIB = 2**10, 2**20
MCAP_MAGIC = b"\x89MCAP0\r\n"
_OP_FOOTER, _OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK = 0x02, 0x03, 0x04, 0x05, 0x06
_RECORD = struct.Struct("<BQ")
_TYPE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)+")  # pkg/msg/Name
_CHUNK_HEAD = struct.Struct("<QQQII")  # start, end, uncompressed size, crc, compression name length


class LimitError(ValueError):
    """A file from outside that exceeds a size limit or declares impossible sizes."""


def _default_message_bytes() -> dict[str, int]:
    return {
        "sensor_msgs/msg/PointCloud2": 32 * MIB,  # a 128-beam LiDAR scan is ~10 MiB
        "sensor_msgs/msg/Image": 32 * MIB,  # 4K RGB is ~25 MiB; a CSI packet ~5 KiB
        "geometry_msgs/msg/PoseArray": 1 * MIB,
        "std_msgs/msg/String": 64 * KIB,
    }


@dataclass(frozen=True)
class BagLimits:
    """Bounds for a bag from outside (bytes). ``message_bytes`` maps a message type to its bound;
    other types get ``default_message_bytes``."""

    message_bytes: Mapping[str, int] = field(default_factory=_default_message_bytes)
    default_message_bytes: int = 8 * MIB
    chunk_bytes: int = 256 * MIB  # rosbag2 writes ~1 MiB chunks
    metadata_bytes: int = 1 * MIB

    def message_limit(self, msgtype: str) -> int:
        return self.message_bytes.get(msgtype, self.default_message_bytes)


DEFAULT_BAG_LIMITS = BagLimits()
CARD_BYTES = 1 * MIB  # a model card is a few KiB of JSON
TRAIN_STATE_BYTES = 16 * MIB  # a checkpoint's state.json: config and per-epoch history (tensors are elsewhere)
SAFETENSORS_HEADER_BYTES = 16 * MIB  # the JSON header of tensor names, dtypes, shapes, offsets


def read_bounded(path: str | Path, limit: int, what: str) -> bytes:
    """The bytes of ``path``, refused (before reading) when larger than ``limit``."""
    path = Path(path)
    with open(path, "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise LimitError(f"{path}: {what} is larger than {limit} bytes; refusing to read it")
    return data


def check_message(bag: str | Path, topic: str, msgtype: str, size: int,
                  limits: BagLimits = DEFAULT_BAG_LIMITS) -> None:
    """Refuse a ``size``-byte message of ``topic`` when over the bound of its type."""
    limit = limits.message_limit(msgtype)
    if size > limit:
        raise LimitError(f"{bag}: message on {topic} ({msgtype}) has {size} bytes, over the {limit}-byte limit")


def check_bag(path: str | Path, limits: BagLimits = DEFAULT_BAG_LIMITS) -> list[Path]:
    """Check a rosbag2 directory (or a bare ``.mcap`` file) against ``limits``; returns its
    storage files. Raises :class:`LimitError` naming the file and the offending size."""
    import yaml

    path = Path(path)
    if path.is_file():
        files = [path]
    else:
        text = read_bounded(path / "metadata.yaml", limits.metadata_bytes, "metadata.yaml")
        try:
            info = yaml.safe_load(text)["rosbag2_bagfile_information"]
            names = [str(name) for name in info["relative_file_paths"]]
        except (yaml.YAMLError, KeyError, TypeError) as error:
            raise LimitError(f"{path}/metadata.yaml: not rosbag2 metadata ({error})") from None
        try:
            files = [resolve_inside(path, name, "bag storage file") for name in names]
        except PathEscapeError as error:
            raise LimitError(f"{path}: {error}") from None
    for file in files:
        if file.suffix == ".mcap":
            check_mcap(file, limits)
        elif file.suffix != ".db3":  # SQLite3 rows are read one message at a time
            raise LimitError(f"{file}: unknown storage (expected .mcap or .db3)")
    return files


def check_mcap(path: Path, limits: BagLimits = DEFAULT_BAG_LIMITS) -> None:
    """Walk an MCAP file's top-level records (no decompression) and check every declared size."""
    size = path.stat().st_size
    schemas: dict[int, str] = {}  # schema id -> message type
    channels: dict[int, tuple[str, int]] = {}  # channel id -> (topic, schema id)
    largest: dict[int, int] = {}  # channel id -> bytes of its largest message outside chunks
    with open(path, "rb") as file:
        if file.read(8) != MCAP_MAGIC:
            raise LimitError(f"{path}: not an MCAP file (bad magic)")
        position = 8
        while position + _RECORD.size <= size:
            opcode, length = _RECORD.unpack(file.read(_RECORD.size))
            body = position + _RECORD.size
            if length > size - body:
                raise LimitError(f"{path}: record 0x{opcode:02x} at byte {position} declares {length} bytes, "
                                 f"past the end of the {size}-byte file")
            if opcode == _OP_FOOTER:
                break
            if opcode == _OP_CHUNK:
                _check_chunk(path, file, body, length, limits)
            elif opcode == _OP_MESSAGE:
                if length < 22:
                    raise LimitError(f"{path}: message record at byte {position} is shorter than its header")
                (channel,) = struct.unpack("<H", file.read(2))
                largest[channel] = max(largest.get(channel, 0), length - 22)
            elif opcode in (_OP_SCHEMA, _OP_CHANNEL):
                if not 8 <= length <= limits.metadata_bytes:
                    raise LimitError(f"{path}: schema or channel record at byte {position} has {length} bytes "
                                     f"(8..{limits.metadata_bytes} accepted)")
                record = file.read(length)
                (key,) = struct.unpack_from("<H", record)
                if opcode == _OP_SCHEMA:
                    schemas[key] = _type_name(path, _string(record, 2))
                else:
                    channels[key] = (_string(record, 4), struct.unpack_from("<H", record, 2)[0])
            position = body + length
            file.seek(position)
    for channel, bytes_ in largest.items():
        topic, schema = channels.get(channel, (f"channel {channel}", -1))
        check_message(path, topic, schemas.get(schema, ""), bytes_, limits)


def _type_name(path: Path, name: str) -> str:
    """A schema's message type name, refused unless it looks like ``pkg/msg/Name`` (rosbags turns
    names into generated Python code; its parser refuses odd names too, this is a second guard)."""
    if not _TYPE_NAME.fullmatch(name):
        raise LimitError(f"{path}: schema names message type {name[:80]!r}, expected pkg/msg/Name")
    return name


def _string(record: bytes, offset: int) -> str:
    """The MCAP string (uint32 length + UTF-8) of ``record`` at ``offset``."""
    (length,) = struct.unpack_from("<I", record, offset)
    return record[offset + 4:offset + 4 + length].decode("utf-8", "replace")


def _check_chunk(path: Path, file: BinaryIO, body: int, length: int, limits: BagLimits) -> None:
    """A Chunk record: its declared sizes, and those its compressed frame declares."""
    head = file.read(_CHUNK_HEAD.size)
    if length < _CHUNK_HEAD.size + 8 or len(head) < _CHUNK_HEAD.size:
        raise LimitError(f"{path}: chunk at byte {body - 9} is truncated")
    _, _, uncompressed, _, name_length = _CHUNK_HEAD.unpack(head)
    if name_length > min(16, length - _CHUNK_HEAD.size - 8):
        raise LimitError(f"{path}: chunk at byte {body - 9} names a {name_length}-byte compression")
    compression = file.read(name_length).decode("ascii", "replace")
    (compressed,) = struct.unpack("<Q", file.read(8))
    where = f"{path}: chunk at byte {body - 9}"
    if compressed > length - _CHUNK_HEAD.size - name_length - 8:
        raise LimitError(f"{where} declares {compressed} compressed bytes, more than its record holds")
    if max(uncompressed, compressed) > limits.chunk_bytes:
        raise LimitError(f"{where} decompresses to {uncompressed} bytes ({compressed} compressed), "
                         f"over the {limits.chunk_bytes}-byte limit")
    if compression == "":
        if compressed != uncompressed:
            raise LimitError(f"{where}: uncompressed chunk of {compressed} bytes declares {uncompressed}")
        return
    if compression not in ("zstd", "lz4"):
        raise LimitError(f"{where}: unknown compression {compression!r}")
    declared = _frame_content_size(compression, file.read(compressed))
    if declared != uncompressed:
        raise LimitError(f"{where}: its {compression} frame decompresses to {declared} bytes, "
                         f"the chunk declares {uncompressed}")


def _frame_content_size(compression: str, data: bytes) -> int | None:
    """Decompressed size a single zstd / lz4 frame declares for all of ``data`` (None: unknown,
    several frames or not a frame)."""
    try:
        if compression == "zstd":
            try:
                from compression import zstd  # type: ignore[import-not-found]
            except ImportError:
                from backports import zstd  # type: ignore[import-not-found,no-redef]
            if zstd.get_frame_size(data) != len(data):
                return None
            return zstd.get_frame_info(data).decompressed_size
        import lz4.frame  # type: ignore[import-untyped]

        info = lz4.frame.get_frame_info(data)
        return info["content_size"] or None
    except Exception:  # the libraries raise their own error types for a bad frame
        return None
