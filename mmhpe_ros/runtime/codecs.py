"""Arrays <-> ROS messages: point sets as PointCloud2, CSI packets and float matrices as Image,
joints as PoseArray.

Plain numpy, no rclpy import. Works on rosbags message dataclasses and on rclpy message classes
alike:

* decoders are duck-typed on the message's attribute names (``header``, ``height``, ``width``,
  ``fields``, ``point_step``, ``row_step``, ``data``, ``is_bigendian``, ``encoding``, ``step``,
  ``poses``), so any object shaped like the ROS message decodes;
* encoders build messages through a :class:`MessageTypes` adapter, made by :func:`rosbags_types`
  (a rosbags typestore) or :func:`rclpy_types` (the rclpy message packages), whose classes are
  called with keyword arguments only.

Decoders read fields by name, datatype and offset (never assumed offsets), honour ``point_step``,
``row_step``, ``height`` x ``width``, ``count`` and ``is_bigendian``, and return numpy views of
the message buffer where the layout allows. Encoders keep the source dtype (float64 arrays become
FLOAT64 fields or ``64FC2`` / ``64FC1`` images, float32 ones FLOAT32 / ``32FC2`` / ``32FC1``), so
a round trip is bit-identical, NaN and inf included. Bad input raises :class:`CodecError` saying
what is wrong; sizes are checked against the data before anything is allocated
(test/test_fuzz_decoders.py fuzzes every decoder). A cloud's field layout is validated once per
distinct layout and kept compiled in a small LRU cache, so a decode costs a few microseconds
plus, where a copy is needed, the copy (bench/bench_decode.py).
"""
from __future__ import annotations

import array
import functools
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
from numpy.typing import DTypeLike

NS_PER_S = 1_000_000_000


class CodecError(ValueError):
    """A message or array that cannot be encoded or decoded as asked; the text says why."""


# sensor_msgs/PointField datatype constants -> element type (byte order applied per message).
POINT_FIELD_DTYPES: dict[int, np.dtype] = {
    1: np.dtype(np.int8),  # INT8
    2: np.dtype(np.uint8),  # UINT8
    3: np.dtype(np.int16),  # INT16
    4: np.dtype(np.uint16),  # UINT16
    5: np.dtype(np.int32),  # INT32
    6: np.dtype(np.uint32),  # UINT32
    7: np.dtype(np.float32),  # FLOAT32
    8: np.dtype(np.float64),  # FLOAT64
}
_DATATYPE_OF_KIND: dict[tuple[str, int], int] = {
    (dtype.kind, dtype.itemsize): datatype for datatype, dtype in POINT_FIELD_DTYPES.items()
}

# Field names that mean the same thing across drivers; the first name of a group is ours.
# A request for any name of a group accepts the others (the requested name is tried first).
FIELD_ALIASES: tuple[tuple[str, ...], ...] = (
    ("velocity", "doppler", "v_r"),
    ("intensity", "snr", "power"),
)

# sensor_msgs/Image encodings of a CSI packet, two float channels per element: amplitude (dB) and
# phase (rad) with the standard names, complex I/Q (real, imaginary) with numpy's complex names.
CSI_ENCODINGS: dict[str, np.dtype] = {
    "64FC2": np.dtype(np.float64),
    "32FC2": np.dtype(np.float32),
}
CSI_IQ_ENCODINGS: dict[str, np.dtype] = {
    "complex128": np.dtype(np.float64),
    "complex64": np.dtype(np.float32),
}

_UINT32_MAX = 2**32 - 1
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


# ---------------------------------------------------------------------------------------------
# Message classes: rosbags dataclasses or rclpy classes behind one adapter
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageTypes:
    """The message classes the encoders build, called with keyword arguments only.

    ``uint8_sequence`` turns a contiguous uint8 array into the value a ``uint8[]`` field takes
    (a uint8 ndarray for rosbags, an ``array.array('B')`` for rclpy, its fast setter path).
    """

    Time: Callable[..., Any]
    Header: Callable[..., Any]
    String: Callable[..., Any]
    PointField: Callable[..., Any]
    PointCloud2: Callable[..., Any]
    Image: Callable[..., Any]
    Point: Callable[..., Any]
    Quaternion: Callable[..., Any]
    Pose: Callable[..., Any]
    PoseArray: Callable[..., Any]
    uint8_sequence: Callable[[np.ndarray], Any]


def rosbags_types(typestore: Any = None) -> MessageTypes:
    """Message classes of a rosbags typestore (default: ``Stores.ROS2_KILTED``)."""
    if typestore is None:
        from rosbags.typesys import Stores, get_typestore

        typestore = get_typestore(Stores.ROS2_KILTED)
    types = typestore.types
    return MessageTypes(
        Time=types["builtin_interfaces/msg/Time"],
        Header=types["std_msgs/msg/Header"],
        String=types["std_msgs/msg/String"],
        PointField=types["sensor_msgs/msg/PointField"],
        PointCloud2=types["sensor_msgs/msg/PointCloud2"],
        Image=types["sensor_msgs/msg/Image"],
        Point=types["geometry_msgs/msg/Point"],
        Quaternion=types["geometry_msgs/msg/Quaternion"],
        Pose=types["geometry_msgs/msg/Pose"],
        PoseArray=types["geometry_msgs/msg/PoseArray"],
        uint8_sequence=lambda data: np.array(data, dtype=np.uint8, copy=True),
    )


def rclpy_types() -> MessageTypes:
    """Message classes of the rclpy message packages (imported here, on first use)."""
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import Point, Pose, PoseArray, Quaternion
    from sensor_msgs.msg import Image, PointCloud2, PointField
    from std_msgs.msg import Header, String

    return MessageTypes(
        Time=Time, Header=Header, String=String, PointField=PointField, PointCloud2=PointCloud2,
        Image=Image, Point=Point, Quaternion=Quaternion, Pose=Pose, PoseArray=PoseArray,
        uint8_sequence=_uint8_array,
    )


def _uint8_array(data: np.ndarray) -> array.array:
    """``array.array('B')`` holding a copy of ``data``'s bytes (one memcpy, no Python loop)."""
    out = array.array("B")
    out.frombytes(memoryview(np.ascontiguousarray(data, dtype=np.uint8)))
    return out


# ---------------------------------------------------------------------------------------------
# Stamps and headers
# ---------------------------------------------------------------------------------------------


def stamp_to_ns(stamp: Any) -> int:
    """``builtin_interfaces/Time`` (``sec``, ``nanosec``) -> integer nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def ns_to_stamp(types: MessageTypes, ns: int) -> Any:
    """Integer nanoseconds -> ``builtin_interfaces/Time``; rejects times outside int32 seconds."""
    sec, nanosec = divmod(int(ns), NS_PER_S)
    if not _INT32_MIN <= sec <= _INT32_MAX:
        raise CodecError(f"stamp {ns} ns does not fit builtin_interfaces/Time (int32 seconds)")
    return types.Time(sec=sec, nanosec=nanosec)


def make_header(types: MessageTypes, stamp_ns: int, frame_id: str) -> Any:
    """``std_msgs/Header`` at ``stamp_ns`` in ``frame_id``."""
    return types.Header(stamp=ns_to_stamp(types, stamp_ns), frame_id=frame_id)


def header_stamp_ns(msg: Any) -> int:
    """Stamp of a message with a ``header``, in nanoseconds."""
    return stamp_to_ns(msg.header.stamp)


# ---------------------------------------------------------------------------------------------
# PointCloud2
# ---------------------------------------------------------------------------------------------


def _byte_buffer(data: Any, what: str) -> np.ndarray:
    """The ``uint8[]`` field of a message as a 1-D uint8 array, without copying when possible."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8 or data.ndim != 1:
            raise CodecError(f"{what}: data must be a 1-D uint8 array, got {data.dtype} {data.shape}")
        return data
    if isinstance(data, (bytes, bytearray, memoryview, array.array)):
        if isinstance(data, array.array) and data.typecode not in "Bb":
            raise CodecError(f"{what}: data array has typecode {data.typecode!r}, expected 'B'")
        return np.frombuffer(data, dtype=np.uint8)
    if isinstance(data, (list, tuple)):
        return np.asarray(data, dtype=np.uint8)
    raise CodecError(f"{what}: data of type {type(data).__name__} is not a byte sequence")


def _alias_candidates(name: str) -> tuple[str, ...]:
    """Names accepted for a requested field: the name itself, then its aliases."""
    for group in FIELD_ALIASES:
        if name in group:
            return (name, *(other for other in group if other != name))
    return (name,)


class _Field(NamedTuple):
    """One PointField, validated: element type (with the message's byte order), offset, count."""

    dtype: np.dtype
    offset: int
    count: int


class _Layout(NamedTuple):
    """The selected fields of one cloud layout, validated and compiled once (see :func:`_layout`).

    ``structured`` is the structured dtype of the selected fields (requested names, the message's
    offsets, ``itemsize`` = ``point_step``); ``block`` is the element type when the selected fields
    are adjacent columns of one type in the requested order (one strided view reads them all),
    else None; ``start`` the offset of the first selected field.
    """

    structured: np.dtype
    counts: tuple[int, ...]
    columns: int
    common: np.dtype
    block: np.dtype | None
    start: int


# (point_step, is_bigendian, ((name, datatype, offset, count), ...)) of a cloud, as the message
# holds them: the key of a compiled layout (validated when compiled, see :func:`_cloud_fields`).
_Signature = tuple[Any, Any, tuple[tuple[Any, Any, Any, Any], ...]]
LAYOUT_CACHE_SIZE = 256  # distinct (layout, requested fields) pairs kept compiled
MAX_POINT_FIELDS = 256  # drivers send a few to a few tens; bounds what one cached layout holds


def _integer(value: Any, what: str) -> int:
    """``value`` as an int when it equals one (so signatures that compare equal validate alike)."""
    try:
        integer = int(value)
        if integer == value:
            return integer
    except (TypeError, ValueError, OverflowError):
        pass
    raise CodecError(f"PointCloud2: {what} is {value!r}, expected an integer")


def _cloud_fields(signature: _Signature) -> dict[str, _Field]:
    """Validated fields of a cloud layout by name."""
    point_step, order = _integer(signature[0], "point_step"), ">" if signature[1] else "<"
    fields: dict[str, _Field] = {}
    for name, datatype, offset, count in signature[2]:
        if not isinstance(name, str):
            raise CodecError(f"PointCloud2: field name {name!r} is not a string")
        datatype = _integer(datatype, f"field {name!r} datatype")
        offset, count = _integer(offset, f"field {name!r} offset"), _integer(count, f"field {name!r} count")
        if name in fields:
            raise CodecError(f"PointCloud2: field {name!r} listed twice")
        if datatype not in POINT_FIELD_DTYPES:
            raise CodecError(
                f"PointCloud2: field {name!r} has unknown datatype {datatype} "
                f"(expected one of {sorted(POINT_FIELD_DTYPES)})"
            )
        if count < 1:
            raise CodecError(f"PointCloud2: field {name!r} has count {count}, expected >= 1")
        dtype = POINT_FIELD_DTYPES[datatype].newbyteorder(order)
        end = offset + dtype.itemsize * count
        if offset < 0 or end > point_step:
            raise CodecError(
                f"PointCloud2: field {name!r} spans bytes {offset}..{end} "
                f"but point_step is {point_step}"
            )
        fields[name] = _Field(dtype, offset, count)
    return fields


def _check_cloud_size(msg: Any, buffer: np.ndarray) -> tuple[int, int, int, int]:
    """Validated (height, width, point_step, row_step) of a PointCloud2 against its data."""
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    if not (0 <= height <= _UINT32_MAX and 0 <= width <= _UINT32_MAX):
        raise CodecError(f"PointCloud2: size {height} x {width} is outside 0..{_UINT32_MAX} (uint32)")
    if height * width > _UINT32_MAX:
        raise CodecError(f"PointCloud2: width*height = {width}*{height} overflows uint32")
    if height * width and point_step <= 0:
        raise CodecError(f"PointCloud2: point_step is {point_step} for {width * height} points")
    if not 0 <= point_step <= _INT32_MAX:
        raise CodecError(f"PointCloud2: point_step {point_step} is outside 0..{_INT32_MAX}")
    if row_step < width * point_step:
        raise CodecError(
            f"PointCloud2: row_step {row_step} < width*point_step = {width}*{point_step}"
        )
    if buffer.size != row_step * height:
        raise CodecError(
            f"PointCloud2: data has {buffer.size} bytes, expected row_step*height = "
            f"{row_step}*{height} = {row_step * height}"
        )
    return height, width, point_step, row_step


def _resolve_fields(
    available: Mapping[str, _Field], names: Sequence[str] | None
) -> list[tuple[str, _Field]]:
    """(requested name, the message's field) for each requested name; all fields when None."""
    if names is None:
        return list(available.items())
    if len(set(names)) != len(names):
        raise CodecError(f"field names requested twice: {list(names)}")
    resolved = []
    for name in names:
        found = next((c for c in _alias_candidates(name) if c in available), None)
        if found is None:
            accepted = " / ".join(_alias_candidates(name))
            raise CodecError(f"PointCloud2: no field {accepted!r}; the message has {list(available)}")
        resolved.append((name, available[found]))
    return resolved


@functools.lru_cache(maxsize=LAYOUT_CACHE_SIZE)
def _compile_layout(signature: _Signature, names: tuple[str, ...] | None) -> _Layout:
    """Validate a layout and select ``names`` from it (cached: a sensor repeats its layout)."""
    selected = _resolve_fields(_cloud_fields(signature), names)
    counts = tuple(field.count for _, field in selected)
    structured = np.dtype({
        "names": [name for name, _ in selected],
        "formats": [f.dtype if f.count == 1 else (f.dtype, (f.count,)) for _, f in selected],
        "offsets": [f.offset for _, f in selected],
        "itemsize": _integer(signature[0], "point_step"),
    })
    if not selected:
        return _Layout(structured, (), 0, np.dtype(np.float64), None, 0)
    common = np.result_type(*(f.dtype.newbyteorder("=") for _, f in selected))
    first, start = selected[0][1].dtype, selected[0][1].offset
    starts = start + first.itemsize * np.cumsum((0, *counts[:-1]))
    adjacent = all(f.dtype == first and f.offset == s for (_, f), s in zip(selected, starts.tolist()))
    return _Layout(structured, counts, sum(counts), common, first if adjacent else None, start)


def _layout(msg: Any, names: Sequence[str] | None) -> _Layout:
    """The validated layout of ``msg``'s fields, selected by ``names`` (all when None).

    Only the signature is read per message; validation runs once per distinct signature.
    """
    if isinstance(names, str):
        raise CodecError(f"field names must be a sequence of names, got the string {names!r}")
    if len(msg.fields) > MAX_POINT_FIELDS:
        raise CodecError(f"PointCloud2: {len(msg.fields)} fields, at most {MAX_POINT_FIELDS} accepted")
    signature = (msg.point_step, msg.is_bigendian,
                 tuple([(f.name, f.datatype, f.offset, f.count) for f in msg.fields]))
    requested = None if names is None else tuple(names)
    try:
        return _compile_layout(signature, requested)
    except TypeError:
        hash(requested)  # our caller's mistake: let it raise
        try:
            hash(signature)
        except TypeError:
            raise CodecError(f"PointCloud2: fields hold unhashable values: {signature[2]!r}"[:300]) from None
        raise


def _decode_layout(
    msg: Any, fields: Sequence[str] | None
) -> tuple[np.ndarray, tuple[int, int, int, int], _Layout]:
    """Validated buffer, (height, width, point_step, row_step) and selected fields of a cloud."""
    buffer = _byte_buffer(msg.data, "PointCloud2")
    size = _check_cloud_size(msg, buffer)
    return buffer, size, _layout(msg, fields)


def _point_grid(
    buffer: np.ndarray, size: tuple[int, int, int, int], dtype: np.dtype, offset: int = 0,
    columns: int = 0,
) -> np.ndarray:
    """(height * width,) array of ``dtype`` over ``buffer``, one element per point, or
    (height * width, columns) of consecutive elements when ``columns``.

    A view when rows are unpadded (or there is one row), otherwise a copy without the padding.
    """
    height, width, point_step, row_step = size
    inner, strides = ((columns,), (dtype.itemsize,)) if columns else ((), ())
    if height == 1 or row_step == width * point_step:
        return np.ndarray((height * width, *inner), dtype=dtype, buffer=buffer, offset=offset,
                          strides=(point_step, *strides))
    grid = np.ndarray((height, width, *inner), dtype=dtype, buffer=buffer, offset=offset,
                      strides=(row_step, point_step, *strides))
    return grid.reshape(height * width, *inner)


def read_points(msg: Any, fields: Sequence[str] | None = None) -> np.ndarray:
    """Decode a PointCloud2 into a structured array of shape (height * width,).

    ``fields`` selects fields by name (aliases accepted, see :data:`FIELD_ALIASES`); the result's
    field names are the requested ones, with the message's datatype, byte order and ``count``
    (count > 1 gives a sub-array field). All fields when ``fields`` is None.
    The result is a view of the message buffer when rows are unpadded (``row_step ==
    width * point_step``), otherwise a copy; it may be read-only.

    Raises :class:`CodecError` for a missing field, an unknown datatype, a repeated field name,
    a field outside ``point_step``, ``row_step`` shorter than a row, data length !=
    ``row_step * height`` or ``width * height`` beyond uint32.
    """
    buffer, size, layout = _decode_layout(msg, fields)
    if size[0] * size[1] == 0:
        return np.empty(0, dtype=layout.structured)
    return _point_grid(buffer, size, layout.structured)


def read_points_array(
    msg: Any, fields: Sequence[str], dtype: DTypeLike | None = None
) -> np.ndarray:
    """Decode the named fields of a PointCloud2 into a plain (N, k) array, N = height * width.

    Columns follow ``fields`` (aliases accepted); a field with ``count`` c gives c columns.
    ``dtype`` None keeps the fields' common type (FLOAT64 fields give float64, bit-identical to
    what was encoded); values are in native byte order. When the fields are adjacent in that
    order, of one native-endian datatype, rows are unpadded and the dtype matches, the result is
    a zero-copy strided view of the buffer (possibly read-only).

    Casting is numpy's ``astype``: a float ``dtype`` narrower than a field's values turns values
    beyond its range into +-inf; NaN cast to an integer ``dtype`` is undefined.

    Raises :class:`CodecError` as :func:`read_points` does, and for an empty ``fields``.
    """
    if not fields:
        raise CodecError("read_points_array needs at least one field name")
    buffer, size, layout = _decode_layout(msg, fields)
    return _columns(buffer, size, layout, dtype)


def _columns(
    buffer: np.ndarray, size: tuple[int, int, int, int], layout: _Layout, dtype: DTypeLike | None
) -> np.ndarray:
    """The selected fields of a validated cloud as an (N, columns) array of ``dtype``."""
    out_dtype = layout.common if dtype is None else np.dtype(dtype)
    points = size[0] * size[1]
    if points == 0:
        return np.empty((0, layout.columns), dtype=out_dtype)
    block = layout.block
    with np.errstate(over="ignore", invalid="ignore"):  # documented: out of the dtype's range
        if block is not None:
            return _block_columns(buffer, size, layout, block, out_dtype)
        structured = _point_grid(buffer, size, layout.structured)
        out = np.empty((points, layout.columns), dtype=out_dtype)
        column = 0
        for name, count in zip(layout.structured.names, layout.counts):
            out[:, column:column + count] = structured[name].reshape(points, count)
            column += count
    return out


def _block_columns(
    buffer: np.ndarray, size: tuple[int, int, int, int], layout: _Layout, block: np.dtype,
    out_dtype: np.dtype,
) -> np.ndarray:
    """Adjacent columns of one element type ``block`` as (N, columns) ``out_dtype``: a strided view
    where rows are unpadded and no cast is needed, otherwise one copy (and one cast)."""
    height, width, point_step, row_step = size
    points, run = height * width, layout.columns * block.itemsize
    if height == 1 or row_step == width * point_step:
        view = np.ndarray((points, layout.columns), dtype=block, buffer=buffer, offset=layout.start,
                          strides=(point_step, block.itemsize))
        if block == out_dtype:
            return view
        if point_step == run:  # packed points: one contiguous cast
            return view.astype(out_dtype)
    # Copy each point's run of bytes at once (numpy's strided copy of short rows is slow), then cast.
    runs = np.ascontiguousarray(_point_grid(buffer, size, np.dtype((np.void, run)), layout.start))
    values = runs.view(block).reshape(points, layout.columns)
    return values if block == out_dtype else values.astype(out_dtype)


def read_point_columns(msg: Any, fields: Sequence[str], dtype: DTypeLike | None = None) -> np.ndarray:
    """:func:`read_points_array` for fields of one value each: an (N, len(fields)) array.

    Raises :class:`CodecError` as :func:`read_points_array` does, and when a requested field has
    ``count`` != 1 (e.g. a driver packing x, y, z into one field of count 3).
    """
    if not fields:
        raise CodecError("read_point_columns needs at least one field name")
    buffer, size, layout = _decode_layout(msg, fields)
    if layout.columns != len(fields):
        counts = dict(zip(layout.structured.names, layout.counts))
        raise CodecError(f"PointCloud2: fields {counts} (name: count), expected count 1 each")
    return _columns(buffer, size, layout, dtype)


def _datatype_dtype(datatype: int) -> np.dtype:
    if datatype not in POINT_FIELD_DTYPES:
        raise CodecError(
            f"unknown PointField datatype {datatype} (expected one of {sorted(POINT_FIELD_DTYPES)})"
        )
    return POINT_FIELD_DTYPES[datatype]


def _datatype_of(dtype: np.dtype, name: str) -> int:
    datatype = _DATATYPE_OF_KIND.get((dtype.kind, dtype.itemsize))
    if datatype is None:
        raise CodecError(
            f"field {name!r}: dtype {dtype} has no PointField datatype "
            "(int8/16/32, uint8/16/32, float32/64)"
        )
    return datatype


def _named_columns(
    points: np.ndarray | Mapping[str, Any], names: Sequence[str] | None, cast: np.dtype | None
) -> tuple[list[str], list[np.ndarray]]:
    """Field names and their (N,) or (N, count) columns from a mapping or structured array."""
    if isinstance(points, Mapping):
        if names is not None:
            raise CodecError("give field names as the mapping's keys or as names, not both")
        names = list(points)
    elif names is None:
        names = list(points.dtype.names)
    columns = [np.asarray(points[name], dtype=cast) for name in names]
    for name, column in zip(names, columns):
        if column.ndim not in (1, 2):
            raise CodecError(f"column {name!r} must be (N,) or (N, count), got {column.shape}")
    lengths = {len(column) for column in columns}
    if len(lengths) > 1:
        raise CodecError(f"point columns differ in length: {dict(zip(names, map(len, columns)))}")
    return list(names), columns


def create_points(
    types: MessageTypes, header: Any, points: np.ndarray | Mapping[str, Any],
    names: Sequence[str] | None = None, datatype: int | None = None,
) -> Any:
    """Build an unorganised PointCloud2 (height 1, width N) of packed little-endian fields.

    ``points`` is an (N, k) array with ``names`` (k field names), a structured array (its
    fields, or the subset ``names``), or a mapping of field name -> (N,) or (N, count) column.
    Each field keeps its column's dtype, or takes ``datatype`` (a PointField constant, e.g. 8
    for FLOAT64) when given. Fields are laid out in the given order without padding.
    ``is_dense`` is False when any floating value is NaN or +-inf.

    Raises :class:`CodecError` for a dtype without a PointField datatype (e.g. int64, bool),
    an unknown ``datatype``, repeated names, a names/columns mismatch or columns of different
    lengths.
    """
    cast = None if datatype is None else _datatype_dtype(datatype)
    if isinstance(points, Mapping) or getattr(getattr(points, "dtype", None), "names", None):
        names, columns = _named_columns(points, names, cast)
        matrix = None
    else:
        matrix = np.asarray(points, dtype=cast)
        if matrix.ndim != 2:
            raise CodecError(f"points must be an (N, k) array, got shape {matrix.shape}")
        if names is None or isinstance(names, str) or len(names) != matrix.shape[1]:
            raise CodecError(f"points have {matrix.shape[1]} columns but names are {names!r}")
        names, columns = list(names), [matrix[:, j] for j in range(matrix.shape[1])]
    if len(set(names)) != len(names):
        raise CodecError(f"field names repeat: {names}")

    formats, point_fields, offset = [], [], 0
    for name, column in zip(names, columns):
        element = column.dtype.newbyteorder("<")
        count = 1 if column.ndim == 1 else column.shape[1]
        point_fields.append(types.PointField(
            name=name, offset=offset, datatype=_datatype_of(column.dtype, name), count=count,
        ))
        formats.append(element if count == 1 else (element, (count,)))
        offset += element.itemsize * count
    point_step, width = offset, (len(columns[0]) if columns else 0)

    if matrix is not None:  # one dtype, k columns: the packed layout is the C-order matrix
        packed = np.ascontiguousarray(matrix, dtype=matrix.dtype.newbyteorder("<"))
        dense = matrix.dtype.kind != "f" or bool(np.isfinite(matrix).all())
    else:
        packed = np.empty(width, dtype=np.dtype({
            "names": names, "formats": formats,
            "offsets": [field.offset for field in point_fields], "itemsize": point_step,
        }))
        for name, column in zip(names, columns):
            packed[name] = column
        dense = all(bool(np.isfinite(c).all()) for c in columns if c.dtype.kind == "f")
    return types.PointCloud2(
        header=header, height=1, width=width, fields=point_fields, is_bigendian=False,
        point_step=point_step, row_step=point_step * width,
        data=types.uint8_sequence(packed.reshape(-1).view(np.uint8)), is_dense=dense,
    )


# ---------------------------------------------------------------------------------------------
# CSI packets as sensor_msgs/Image
# ---------------------------------------------------------------------------------------------


def create_csi_packet(
    types: MessageTypes, header: Any, amplitude: np.ndarray | None = None, phase: np.ndarray | None = None,
    *, iq: np.ndarray | None = None,
) -> Any:
    """One CSI packet as a two-channel float ``sensor_msgs/Image``: amplitude/phase or complex I/Q.

    Either ``amplitude`` (dB, ``20 log10 |H|``) and ``phase`` (radians), (antennas, subcarriers)
    arrays of one float dtype (MM-Fi: (3, 114)): encoding ``64FC2`` for float64, ``32FC2`` for
    float32, channels (amplitude, phase). Or ``iq``, one complex (antennas, subcarriers) array:
    encoding ``complex128`` / ``complex64``, channels (real I, imaginary Q). Rows = antennas
    (``height``), columns = subcarriers (``width``) in ascending subcarrier index, channels
    interleaved; little-endian, ``step = width * 2 * itemsize``.

    Raises :class:`CodecError` for shapes that differ or are not 2-D, a wrong dtype, or both or
    neither of amplitude/phase and ``iq``.
    """
    if iq is not None:
        if amplitude is not None or phase is not None:
            raise CodecError("CSI packet: give amplitude and phase, or iq, not both")
        iq = np.asarray(iq)
        if iq.ndim != 2 or iq.dtype.kind != "c" or iq.dtype.itemsize not in (8, 16):
            raise CodecError(f"CSI iq must be a complex64 / complex128 (antennas, subcarriers) array, "
                             f"got {iq.dtype} {iq.shape}")
        return _two_channel_image(types, header, iq.real, iq.imag, iq.dtype.name)
    if amplitude is None or phase is None:
        raise CodecError("CSI packet: give amplitude and phase (or iq)")
    amplitude, phase = np.asarray(amplitude), np.asarray(phase)
    if amplitude.ndim != 2 or amplitude.shape != phase.shape:
        raise CodecError(
            f"CSI amplitude and phase must be equal (antennas, subcarriers) arrays, "
            f"got {amplitude.shape} and {phase.shape}"
        )
    dtype = np.result_type(amplitude, phase)
    encoding = next((name for name, d in CSI_ENCODINGS.items() if d == dtype), None)
    if encoding is None:
        raise CodecError(f"CSI arrays must be float32 or float64, got {dtype}")
    return _two_channel_image(types, header, amplitude, phase, encoding)


def _two_channel_image(types: MessageTypes, header: Any, first: np.ndarray, second: np.ndarray,
                       encoding: str) -> Any:
    dtype = np.result_type(first, second)
    height, width = first.shape
    pixels = np.stack([first, second], axis=-1).astype(dtype.newbyteorder("<"), copy=False)
    return types.Image(
        header=header, height=height, width=width, encoding=encoding, is_bigendian=0,
        step=width * 2 * dtype.itemsize,
        data=types.uint8_sequence(np.ascontiguousarray(pixels).reshape(-1).view(np.uint8)),
    )


def csi_packet_is_iq(msg: Any) -> bool:
    """True for a complex I/Q CSI packet (encoding ``complex64`` / ``complex128``)."""
    return msg.encoding in CSI_IQ_ENCODINGS


def read_csi_packet(msg: Any) -> tuple[np.ndarray, np.ndarray]:
    """Decode a CSI Image into (amplitude, phase), each (height, width).

    Amplitude/phase packets (``64FC2`` / ``32FC2``) come back in the encoding's dtype, views of the
    buffer where possible (possibly read-only). Complex I/Q packets (``complex128`` /
    ``complex64``) are converted: amplitude ``20 log10 |H|`` in dB (``-inf`` where ``H`` is 0, as
    MM-Fi's CSIamp), phase ``angle(H)``, float64. Honours ``step`` (row padding) and
    ``is_bigendian``. Raises :class:`CodecError` for another encoding, ``step`` shorter than a
    row, or data length != ``step * height``.
    """
    if csi_packet_is_iq(msg):
        iq = read_csi_iq(msg).astype(np.complex128)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return 20.0 * np.log10(np.abs(iq)), np.angle(iq)
    pixels = _float_pixels(msg, "CSI Image", CSI_ENCODINGS, channels=2)
    return pixels[..., 0], pixels[..., 1]


def read_csi_iq(msg: Any) -> np.ndarray:
    """Decode a CSI Image into complex (height, width) values ``H``, whatever its encoding.

    I/Q packets as they are (complex128, or complex64 for ``complex64``); amplitude/phase packets
    as ``10 ** (amplitude / 20) * exp(1j * phase)``. Raises :class:`CodecError` as
    :func:`read_csi_packet` does.
    """
    if csi_packet_is_iq(msg):
        pixels = _float_pixels(msg, "CSI Image", CSI_IQ_ENCODINGS, channels=2)
        complex_type = np.complex64 if pixels.dtype == np.float32 else np.complex128
        return (pixels[..., 0] + 1j * pixels[..., 1]).astype(complex_type)
    amplitude, phase = read_csi_packet(msg)
    with np.errstate(over="ignore", invalid="ignore"):
        return 10.0 ** (amplitude.astype(np.float64) / 20.0) * np.exp(1j * phase.astype(np.float64))


# sensor_msgs/Image encodings of a single-channel float matrix.
FLOAT_IMAGE_ENCODINGS: dict[str, np.dtype] = {
    "32FC1": np.dtype(np.float32),
    "64FC1": np.dtype(np.float64),
}


def create_float_image(types: MessageTypes, header: Any, matrix: np.ndarray) -> Any:
    """A 2-D float32 / float64 array as a ``32FC1`` / ``64FC1`` ``sensor_msgs/Image``.

    Rows are ``height``, columns ``width``; little-endian, unpadded (``step = width * itemsize``).
    Raises :class:`CodecError` for an array that is not 2-D or not float32 / float64.
    """
    matrix = np.asarray(matrix)
    encoding = next((name for name, d in FLOAT_IMAGE_ENCODINGS.items() if d == matrix.dtype), None)
    if matrix.ndim != 2 or encoding is None:
        raise CodecError(f"a float image needs a 2-D float32 or float64 array, got {matrix.dtype} {matrix.shape}")
    height, width = matrix.shape
    pixels = np.ascontiguousarray(matrix, dtype=matrix.dtype.newbyteorder("<"))
    return types.Image(
        header=header, height=height, width=width, encoding=encoding, is_bigendian=0,
        step=width * matrix.dtype.itemsize, data=types.uint8_sequence(pixels.reshape(-1).view(np.uint8)),
    )


def read_float_image(msg: Any) -> np.ndarray:
    """Decode a ``32FC1`` / ``64FC1`` Image into a native-endian (height, width) array.

    Honours ``step`` and ``is_bigendian``; a view of the buffer where possible (possibly
    read-only). Raises :class:`CodecError` as :func:`read_csi_packet` does.
    """
    return _float_pixels(msg, "float Image", FLOAT_IMAGE_ENCODINGS, channels=1)[..., 0]


def _float_pixels(msg: Any, what: str, encodings: Mapping[str, np.dtype], channels: int) -> np.ndarray:
    """Validated (height, width, channels) native-endian view of a float Image's pixels."""
    encoding = msg.encoding
    if encoding not in encodings:
        raise CodecError(f"{what}: encoding {encoding!r}, expected one of {list(encodings)}"
                         + (f" or {list(CSI_IQ_ENCODINGS)}" if encodings is CSI_ENCODINGS else ""))
    element = encodings[encoding].newbyteorder(">" if msg.is_bigendian else "<")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    buffer = _byte_buffer(msg.data, what)
    if not (0 <= height <= _UINT32_MAX and 0 <= width <= _UINT32_MAX):
        raise CodecError(f"{what}: size {height} x {width} is outside 0..{_UINT32_MAX} (uint32)")
    row_bytes = width * channels * element.itemsize
    if step < row_bytes:
        raise CodecError(f"{what}: step {step} < width*{channels}*{element.itemsize} = {row_bytes}")
    if buffer.size != step * height:
        raise CodecError(
            f"{what}: data has {buffer.size} bytes, expected step*height = "
            f"{step}*{height} = {step * height}"
        )
    native = element.newbyteorder("=")
    if height * width == 0:
        return np.empty((height, width, channels), dtype=native)
    pixels = np.ndarray(
        (height, width, channels), dtype=element, buffer=buffer,
        strides=(step, channels * element.itemsize, element.itemsize),
    )
    return pixels.astype(native, copy=False)


# ---------------------------------------------------------------------------------------------
# Joints as geometry_msgs/PoseArray
# ---------------------------------------------------------------------------------------------


def create_pose_array(types: MessageTypes, header: Any, joints: np.ndarray) -> Any:
    """(J, 3) joint positions -> ``geometry_msgs/PoseArray`` with identity orientations."""
    joints = np.asarray(joints)
    if joints.ndim != 2 or joints.shape[1] != 3:
        raise CodecError(f"joints must be (J, 3), got {joints.shape}")
    poses = [
        types.Pose(
            position=types.Point(x=x, y=y, z=z),
            orientation=types.Quaternion(x=0.0, y=0.0, z=0.0, w=1.0),
        )
        for x, y, z in joints.astype(np.float64).tolist()
    ]
    return types.PoseArray(header=header, poses=poses)


def read_pose_array(msg: Any, dtype: DTypeLike = np.float64) -> np.ndarray:
    """``geometry_msgs/PoseArray`` -> (J, 3) positions (orientations are ignored)."""
    positions = [(p.position.x, p.position.y, p.position.z) for p in msg.poses]
    return np.array(positions, dtype=np.float64).reshape(len(positions), 3).astype(dtype)
