"""Structure check of untrusted MATLAB v5 (.mat) files, before ``scipy.io.loadmat`` parses them.

A MATLAB v5 file (MathWorks, "MAT-File Format") is a 128-byte header followed by tagged data
elements; each variable is a miMATRIX element (possibly inside a zlib-compressed element) made of
sub-elements: array flags, dimensions, name, then the real (and, if the flags say complex, the
imaginary) data. scipy's reader trusts the byte counts and flags of these tags: a file with one
flipped bit (the complex flag of a variable) crashes scipy 1.17 with a segmentation fault.
:func:`mat_variables` walks every tag with bounds checks and returns what each variable is, so a
caller can refuse a file before scipy sees it.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

HEADER_BYTES = 128
MI_INT8, MI_UINT8, MI_INT32, MI_UINT32, MI_MATRIX, MI_COMPRESSED = 1, 2, 5, 6, 14, 15
ELEMENT_BYTES: dict[int, int] = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8}
TEXT_TYPES = (16, 17, 18)  # miUTF8, miUTF16, miUTF32
COMPLEX_FLAG = 0x800
NUMERIC_CLASSES: dict[int, str] = {6: "double", 7: "single", 8: "int8", 9: "uint8", 10: "int16",
                                   11: "uint16", 12: "int32", 13: "uint32", 14: "int64", 15: "uint64"}
MAX_INFLATED_BYTES = 16 << 20  # a compressed element may not inflate beyond this


class MatFileError(ValueError):
    """A .mat file whose structure is not well-formed MATLAB v5."""


@dataclass(frozen=True)
class MatVariable:
    """What a variable's header says: its MATLAB class, dimensions and complexity."""

    matlab_class: int  # 6 double, 7 single, ... (NUMERIC_CLASSES); others: cell, struct, char...
    dims: tuple[int, ...]
    is_complex: bool

    def describe(self) -> str:
        kind = NUMERIC_CLASSES.get(self.matlab_class, f"class {self.matlab_class}")
        return f"{self.dims} {'complex ' if self.is_complex else ''}{kind}"


@dataclass(frozen=True)
class _Element:
    kind: int
    start: int  # offset of the data
    count: int  # data bytes


def _elements(blob: bytes, start: int, end: int, order: str) -> list[_Element]:
    """The data elements between ``start`` and ``end``, each tag checked to fit."""
    elements, position = [], start
    while position < end:
        if end - position < 8:
            raise MatFileError(f"truncated element tag at byte {position}")
        kind, count = struct.unpack_from(order + "II", blob, position)
        if kind >> 16:  # small data element: byte count and type share the first word
            kind, count, data, size = kind & 0xFFFF, kind >> 16, position + 4, 8
            if count > 4:
                raise MatFileError(f"small element at byte {position} claims {count} > 4 bytes")
        else:
            data = position + 8
            size = 8 + (count if kind == MI_COMPRESSED else -(-count // 8) * 8)  # padded to 8
            if count > end - data:
                raise MatFileError(
                    f"element at byte {position} claims {count} bytes, {end - data} left (truncated?)"
                )
        if kind not in ELEMENT_BYTES and kind not in (MI_MATRIX, MI_COMPRESSED, *TEXT_TYPES):
            raise MatFileError(f"unknown element type {kind} at byte {position}")
        elements.append(_Element(kind, data, count))
        position += min(size, end - position)  # the last element's padding may be cut
    return elements


def _matrix(blob: bytes, matrix: _Element, order: str) -> tuple[str, MatVariable]:
    """Name and header of a miMATRIX element; numeric data checked against dims and flags."""
    parts = _elements(blob, matrix.start, matrix.start + matrix.count, order)
    if len(parts) < 3 or parts[0].kind != MI_UINT32 or parts[0].count != 8 or parts[1].kind != MI_INT32 \
            or parts[1].count < 8 or parts[1].count % 4 or parts[2].kind not in (MI_INT8, MI_UINT8):
        raise MatFileError(f"array at byte {matrix.start} lacks flags, dimensions or name")
    flags = struct.unpack_from(order + "I", blob, parts[0].start)[0]
    dims = struct.unpack_from(f"{order}{parts[1].count // 4}i", blob, parts[1].start)
    name = blob[parts[2].start:parts[2].start + parts[2].count].decode("latin-1")
    variable = MatVariable(flags & 0xFF, tuple(dims), bool(flags & COMPLEX_FLAG))
    if min(dims) < 0:
        raise MatFileError(f"array {name!r} has negative dimensions {dims}")
    if variable.matlab_class in NUMERIC_CLASSES:
        data = parts[3:]
        if len(data) != 1 + variable.is_complex:
            raise MatFileError(
                f"array {name!r} has {len(data)} data parts, its flags say {1 + variable.is_complex}"
            )
        elements = int(np.prod(dims, dtype=np.int64))
        for part in data:
            if part.kind not in ELEMENT_BYTES or part.count != elements * ELEMENT_BYTES[part.kind]:
                raise MatFileError(
                    f"array {name!r} {dims} has a data part of {part.count} bytes of type {part.kind}"
                )
    return name, variable


def _inflate(blob: bytes, element: _Element) -> bytes:
    inflater = zlib.decompressobj()
    try:
        inner = inflater.decompress(blob[element.start:element.start + element.count], MAX_INFLATED_BYTES)
    except zlib.error as error:
        raise MatFileError(f"corrupt compressed element at byte {element.start} ({error})") from error
    if inflater.unconsumed_tail:
        raise MatFileError(f"a compressed element inflates beyond {MAX_INFLATED_BYTES} bytes")
    return inner


def mat_variables(blob: bytes) -> dict[str, MatVariable]:
    """The variables of a MATLAB v5 file's bytes, after checking every tag; raises MatFileError."""
    if len(blob) < HEADER_BYTES:
        raise MatFileError(f"{len(blob)} bytes, shorter than a MATLAB v5 header")
    if blob.startswith(b"MATLAB 7.3") or blob[:8] == b"\x89HDF\r\n\x1a\n":
        raise MatFileError("MATLAB v7.3 (HDF5) file, expected MATLAB v5")
    order = {b"IM": "<", b"MI": ">"}.get(blob[126:128])
    if order is None:
        raise MatFileError("no MATLAB v5 endian indicator (IM/MI) in the header")
    variables = {}
    for element in _elements(blob, HEADER_BYTES, len(blob), order):
        buffer = blob
        if element.kind == MI_COMPRESSED:
            buffer = _inflate(blob, element)
            inner = _elements(buffer, 0, len(buffer), order)
            if len(inner) != 1:
                raise MatFileError(f"a compressed element holds {len(inner)} elements, expected 1")
            element = inner[0]
        if element.kind != MI_MATRIX:
            raise MatFileError(f"top-level element of type {element.kind}, expected an array")
        name, variable = _matrix(buffer, element, order)
        variables[name] = variable
    return variables
