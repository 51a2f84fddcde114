"""PointCloud2 messages laid out byte for byte as common drivers publish them (for tests).

Offsets and types are spelled out here from the drivers' own sources (cited in docs/bags.md,
"Drivers"), independently of the package's encoders:

* TI mmWave ROS 2 driver: a PCL point ``PCL_ADD_POINT4D`` (x, y, z, 4 bytes padding) then
  ``intensity``, ``velocity`` (FLOAT32), aligned to 16 bytes: offsets 0, 4, 8, 16, 20; point_step 32.
* ouster-ros ``original`` point: x, y, z (+ pad), intensity FLOAT32 16, t UINT32 20, reflectivity
  UINT16 24, ring UINT16 26, ambient UINT16 28, range UINT32 32; point_step 48; organised
  (height = beams, width = columns), NaN x/y/z where there was no return, is_dense false.
* velodyne_pointcloud XYZIRT: x, y, z, intensity FLOAT32 0/4/8/12, ring UINT16 16, time FLOAT32
  18, packed (point_step 22); organised: width = lasers, one row per firing, NaN out of range.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)

TI_FIELDS = (("x", 0, FLOAT32), ("y", 4, FLOAT32), ("z", 8, FLOAT32), ("intensity", 16, FLOAT32),
             ("velocity", 20, FLOAT32))
TI_POINT_STEP = 32
OUSTER_FIELDS = (("x", 0, FLOAT32), ("y", 4, FLOAT32), ("z", 8, FLOAT32), ("intensity", 16, FLOAT32),
                 ("t", 20, UINT32), ("reflectivity", 24, UINT16), ("ring", 26, UINT16),
                 ("ambient", 28, UINT16), ("range", 32, UINT32))
OUSTER_POINT_STEP = 48
VELODYNE_FIELDS = (("x", 0, FLOAT32), ("y", 4, FLOAT32), ("z", 8, FLOAT32), ("intensity", 12, FLOAT32),
                   ("ring", 16, UINT16), ("time", 18, FLOAT32))
VELODYNE_POINT_STEP = 22
_NUMPY = {UINT8: "u1", UINT16: "<u2", UINT32: "<u4", FLOAT32: "<f4", FLOAT64: "<f8", INT8: "i1",
          INT16: "<i2", INT32: "<i4"}


def layout_dtype(fields, point_step: int) -> np.dtype:
    return np.dtype({"names": [n for n, _, _ in fields], "formats": [_NUMPY[d] for _, _, d in fields],
                     "offsets": [o for _, o, _ in fields], "itemsize": point_step})


def driver_cloud(fields, point_step: int, columns: dict[str, np.ndarray], *, height: int = 1,
                 row_padding: int = 0, frame_id: str = "sensor", stamp_ns: int = 10**9,
                 padding_byte: int = 0xAB) -> SimpleNamespace:
    """A duck-typed PointCloud2 of ``height`` rows holding ``columns`` (name -> (height * width,)
    values, row by row); padding bytes (inside points and after rows) hold ``padding_byte``."""
    dtype = layout_dtype(fields, point_step)
    count = len(next(iter(columns.values())))
    width = count // height
    assert width * height == count
    values = np.zeros(count, dtype=dtype)
    raw_points = np.full(count * point_step, padding_byte, dtype=np.uint8).view(dtype)
    for name in dtype.names:
        raw_points[name] = columns.get(name, values[name])
    row_step = width * point_step + row_padding
    data = np.full(row_step * height, padding_byte, dtype=np.uint8)
    bytes_per_row = raw_points.view(np.uint8).reshape(height, width * point_step)
    for row in range(height):
        data[row * row_step: row * row_step + width * point_step] = bytes_per_row[row]
    xyz = [columns[a] for a in ("x", "y", "z") if a in columns]
    dense = bool(np.isfinite(np.asarray(xyz, dtype=np.float64)).all()) if xyz else True
    sec, nanosec = divmod(stamp_ns, 10**9)
    return SimpleNamespace(
        header=SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec), frame_id=frame_id),
        height=height, width=width, point_step=point_step, row_step=row_step, is_bigendian=False,
        fields=[SimpleNamespace(name=n, offset=o, datatype=d, count=1) for n, o, d in fields],
        data=data, is_dense=dense,
    )
