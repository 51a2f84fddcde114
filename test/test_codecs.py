"""Codecs: arrays <-> PointCloud2 / Image / PoseArray for rosbags and rclpy message classes."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.codecs import CodecError

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
ROSBAGS = codecs.rosbags_types(TYPESTORE)
FLOAT64, FLOAT32, UINT16, INT8 = 8, 7, 4, 1


def _rclpy_types() -> codecs.MessageTypes:
    pytest.importorskip("sensor_msgs.msg", reason="rclpy message packages not installed")
    return codecs.rclpy_types()


@pytest.fixture(params=["rosbags", "rclpy"])
def types(request) -> codecs.MessageTypes:
    return ROSBAGS if request.param == "rosbags" else _rclpy_types()


def _points(dtype=np.float64, n=50, seed=0) -> np.ndarray:
    points = np.random.default_rng(seed).normal(size=(n, 5)).astype(dtype)
    points[3, 1], points[7, 4], points[9, 0] = np.nan, np.inf, -np.inf
    return points


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _cloud(fields, data: bytes, *, height=1, width, point_step, row_step=None, bigendian=False):
    """A duck-typed PointCloud2: (name, offset, datatype, count) fields over raw bytes."""
    return SimpleNamespace(
        header=None, height=height, width=width, point_step=point_step,
        row_step=width * point_step if row_step is None else row_step, is_bigendian=bigendian,
        fields=[SimpleNamespace(name=n, offset=o, datatype=d, count=c) for n, o, d, c in fields],
        data=np.frombuffer(data, dtype=np.uint8), is_dense=False,
    )


# --- PointCloud2 round trips --------------------------------------------------------------------


@pytest.mark.parametrize("dtype, datatype", [(np.float64, FLOAT64), (np.float32, FLOAT32)])
def test_points_round_trip_keeps_dtype_and_bits(types, dtype, datatype):
    points = _points(dtype)
    header = codecs.make_header(types, 1_234_567_890_123, "radar")
    msg = codecs.create_points(types, header, points, ["x", "y", "z", "velocity", "intensity"])
    assert [f.datatype for f in msg.fields] == [datatype] * 5
    assert [f.offset for f in msg.fields] == [i * points.itemsize for i in range(5)]
    assert (msg.height, msg.width, msg.point_step) == (1, 50, 5 * points.itemsize)
    assert msg.row_step == msg.width * msg.point_step and not msg.is_dense
    assert codecs.header_stamp_ns(msg) == 1_234_567_890_123 and msg.header.frame_id == "radar"
    decoded = codecs.read_points_array(msg, ["x", "y", "z", "velocity", "intensity"])
    assert _same_bits(decoded, points)
    structured = codecs.read_points(msg, ["intensity", "x"])
    assert structured.dtype.names == ("intensity", "x")
    assert _same_bits(structured["x"].copy(), points[:, 0].copy())


def test_rclpy_data_is_a_byte_array_and_rosbags_data_an_ndarray():
    import array

    rclpy_msg = codecs.create_points(_rclpy_types(), None, _points(), list("abcde"))
    rosbags_msg = codecs.create_points(ROSBAGS, None, _points(), list("abcde"))
    assert isinstance(rclpy_msg.data, array.array) and rclpy_msg.data.typecode == "B"
    assert isinstance(rosbags_msg.data, np.ndarray) and rosbags_msg.data.dtype == np.uint8
    assert bytes(rclpy_msg.data) == rosbags_msg.data.tobytes()


def test_dense_flag_follows_nan_and_inf(types):
    clean = np.arange(12, dtype=np.float64).reshape(4, 3)
    assert codecs.create_points(types, None, clean, ["x", "y", "z"]).is_dense
    for bad in (np.nan, np.inf):
        dirty = clean.copy()
        dirty[2, 1] = bad
        assert not codecs.create_points(types, None, dirty, ["x", "y", "z"]).is_dense
    ints = {"ring": np.arange(4, dtype=np.uint16), "x": clean[:, 0]}
    assert codecs.create_points(types, None, ints).is_dense


def test_mixed_dtypes_and_count_round_trip(types):
    columns = {
        "x": np.array([1.5, np.nan, -2.0], dtype=np.float32),
        "ring": np.array([3, 65535, 0], dtype=np.uint16),
        "rgb": np.arange(9, dtype=np.float64).reshape(3, 3),
    }
    msg = codecs.create_points(types, None, columns)
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, FLOAT32, 1), ("ring", 4, UINT16, 1), ("rgb", 6, FLOAT64, 3)]
    assert msg.point_step == 30
    cloud = codecs.read_points(msg)
    assert cloud.dtype["rgb"].shape == (3,)
    assert _same_bits(np.ascontiguousarray(cloud["ring"]), columns["ring"])
    both = codecs.read_points_array(msg, ["ring", "rgb"])
    assert both.dtype == np.float64 and both.shape == (3, 4)
    np.testing.assert_array_equal(both[:, 0], columns["ring"])
    np.testing.assert_array_equal(both[:, 1:], columns["rgb"])


def test_structured_input_and_datatype_override(types):
    structured = np.zeros(4, dtype=[("y", "<f8"), ("x", "<f8")])
    structured["x"], structured["y"] = [1, 2, 3, 4], [5, 6, 7, 8]
    msg = codecs.create_points(types, None, structured, ["x", "y"], datatype=FLOAT32)
    assert [f.name for f in msg.fields] == ["x", "y"] and msg.fields[0].datatype == FLOAT32
    np.testing.assert_array_equal(codecs.read_points_array(msg, ["x"])[:, 0], [1, 2, 3, 4])


def test_empty_cloud(types):
    msg = codecs.create_points(types, None, np.empty((0, 3)), ["x", "y", "z"])
    assert msg.width == 0 and msg.row_step == 0 and msg.is_dense
    decoded = codecs.read_points_array(msg, ["x", "y", "z"])
    assert decoded.shape == (0, 3) and decoded.dtype == np.float64


def test_decoding_is_zero_copy_when_layout_allows():
    msg = codecs.create_points(ROSBAGS, None, _points(), ["x", "y", "z", "velocity", "intensity"])
    assert np.shares_memory(codecs.read_points_array(msg, ["y", "z", "velocity"]), msg.data)
    assert np.shares_memory(codecs.read_points(msg), msg.data)
    # Columns out of buffer order need a gather: a fresh array, same values.
    gathered = codecs.read_points_array(msg, ["z", "x"])
    assert not np.shares_memory(gathered, msg.data)
    assert _same_bits(gathered, _points()[:, [2, 0]].copy())


# --- layouts written by other drivers -----------------------------------------------------------


def test_field_order_offsets_padding_and_row_padding():
    """Fields listed out of offset order, padding inside each point and after each row."""
    rng = np.random.default_rng(1)
    height, width, point_step, row_step = 3, 4, 32, 4 * 32 + 16
    layout = np.dtype({"names": ["intensity", "z", "x", "y"],
                       "formats": ["<f4", "<f8", "<f8", "<f4"],
                       "offsets": [0, 8, 16, 24], "itemsize": point_step})
    values = np.zeros((height, width), dtype=layout)
    for name in layout.names:
        values[name] = rng.normal(size=(height, width))
    raw = np.full(row_step * height, 0xAB, dtype=np.uint8)  # garbage in every padding byte
    for row in range(height):
        raw[row * row_step: row * row_step + width * point_step] = values[row].view(np.uint8)
    fields = [("x", 16, FLOAT64, 1), ("y", 24, FLOAT32, 1), ("z", 8, FLOAT64, 1),
              ("intensity", 0, FLOAT32, 1)]
    msg = _cloud(fields, raw.tobytes(), height=height, width=width, point_step=point_step,
                 row_step=row_step)
    xyz = codecs.read_points_array(msg, ["x", "y", "z"])
    assert xyz.shape == (12, 3) and xyz.dtype == np.float64
    np.testing.assert_array_equal(xyz[:, 0], values["x"].reshape(-1))
    np.testing.assert_array_equal(xyz[:, 1], values["y"].reshape(-1).astype(np.float64))
    np.testing.assert_array_equal(xyz[:, 2], values["z"].reshape(-1))
    cloud = codecs.read_points(msg)
    assert cloud.shape == (12,) and cloud.dtype.names == ("x", "y", "z", "intensity")
    np.testing.assert_array_equal(cloud["intensity"], values["intensity"].reshape(-1))


def test_big_endian_cloud():
    values = _points()[:, :3]
    msg = _cloud([("x", 0, FLOAT64, 1), ("y", 8, FLOAT64, 1), ("z", 16, FLOAT64, 1)],
                 values.astype(">f8").tobytes(), width=len(values), point_step=24, bigendian=True)
    decoded = codecs.read_points_array(msg, ["x", "y", "z"])
    assert decoded.dtype == np.dtype("=f8") and _same_bits(decoded, values)
    assert np.array_equal(codecs.read_points(msg)["y"], values[:, 1], equal_nan=True)


def test_big_endian_unsigned_count_field():
    ring = np.array([[1, 2], [300, 65535]], dtype=">u2")
    msg = _cloud([("ring", 0, UINT16, 2)], ring.tobytes(), width=2, point_step=4, bigendian=True)
    np.testing.assert_array_equal(codecs.read_points_array(msg, ["ring"]), ring.astype(np.uint16))


@pytest.mark.parametrize("velocity, intensity", [("doppler", "snr"), ("v_r", "power"),
                                                 ("velocity", "intensity")])
def test_radar_field_aliases(types, velocity, intensity):
    points = _points()
    msg = codecs.create_points(types, None, points, ["x", "y", "z", velocity, intensity])
    decoded = codecs.read_points_array(msg, ["x", "y", "z", "velocity", "intensity"])
    assert _same_bits(decoded, points)
    assert codecs.read_points(msg, ["intensity"]).dtype.names == ("intensity",)
    # Any spelling of a group finds the others.
    assert _same_bits(codecs.read_points_array(msg, ["doppler"]), points[:, 3:4].copy())


def test_any_object_with_the_attributes_decodes():
    """rclpy message -> CDR (rclpy) -> rosbags message: both decode to the same points."""
    from rclpy.serialization import serialize_message

    points = _points(np.float32)
    rclpy_types = _rclpy_types()
    header = codecs.make_header(rclpy_types, 7, "lidar")
    rclpy_msg = codecs.create_points(rclpy_types, header, points, list("xyzab"))
    rosbags_msg = TYPESTORE.deserialize_cdr(serialize_message(rclpy_msg), "sensor_msgs/msg/PointCloud2")
    for msg in (rclpy_msg, rosbags_msg):
        assert _same_bits(codecs.read_points_array(msg, list("xyzab")), points)


# --- rejections ---------------------------------------------------------------------------------


XYZ = [("x", 0, FLOAT64, 1), ("y", 8, FLOAT64, 1), ("z", 16, FLOAT64, 1)]


@pytest.mark.parametrize("change, message", [
    (dict(fields=XYZ[:2]), "no field 'z'"),
    (dict(fields=[*XYZ[:2], ("z", 16, 9, 1)]), "unknown datatype 9"),
    (dict(fields=[*XYZ[:2], ("z", 16, 0, 1)]), "unknown datatype 0"),
    (dict(data=bytes(24 * 4 - 1)), "expected row_step*height"),
    (dict(row_step=24 * 4 + 8), "expected row_step*height"),
    (dict(point_step=20, row_step=80, data=bytes(80)), "point_step is 20"),
    (dict(row_step=24 * 3, data=bytes(72)), "row_step 72 < width*point_step"),
    (dict(width=2**16, height=2**16, data=bytes(0)), "overflows uint32"),
    (dict(fields=[*XYZ, ("x", 0, FLOAT64, 1)]), "listed twice"),
    (dict(fields=[*XYZ[:2], ("z", 16, FLOAT64, 0)]), "count 0"),
    (dict(point_step=0, row_step=0, data=b""), "point_step is 0"),
    (dict(data=12345), "not a byte sequence"),
])
def test_malformed_clouds_are_rejected(change, message):
    arguments = dict(fields=XYZ, data=bytes(24 * 4), width=4, point_step=24)
    arguments.update(change)
    data = arguments.pop("data")
    msg = _cloud(arguments.pop("fields"), b"", **arguments)
    msg.data = data
    with pytest.raises(CodecError, match=message.replace("*", r"\*")):
        codecs.read_points_array(msg, ["x", "y", "z"])
    with pytest.raises(CodecError):
        codecs.read_points(msg, ["x", "y", "z"])


def test_field_requests_are_checked():
    msg = codecs.create_points(ROSBAGS, None, _points(), list("xyzab"))
    with pytest.raises(CodecError, match="at least one field"):
        codecs.read_points_array(msg, [])
    with pytest.raises(CodecError, match="string"):
        codecs.read_points(msg, "xyz")
    with pytest.raises(CodecError, match="velocity / doppler / v_r"):
        codecs.read_points(msg, ["velocity"])
    with pytest.raises(CodecError, match="requested twice"):
        codecs.read_points_array(msg, ["x", "y", "x"])
    msg.data = msg.data.astype(np.uint16)
    with pytest.raises(CodecError, match="uint8"):
        codecs.read_points(msg)


@pytest.mark.parametrize("points, names, datatype, message", [
    (np.zeros((3, 2), dtype=np.int64), ["a", "b"], None, "no PointField datatype"),
    (np.zeros((3, 2), dtype=bool), ["a", "b"], None, "no PointField datatype"),
    (np.zeros((3, 2)), ["a"], None, "2 columns"),
    (np.zeros((3, 2)), ["a", "a"], None, "repeat"),
    (np.zeros(3), ["a"], None, r"\(N, k\)"),
    (np.zeros((3, 2)), ["a", "b"], 11, "unknown PointField datatype 11"),
    ({"a": np.zeros(3), "b": np.zeros(4)}, None, None, "differ in length"),
    ({"a": np.zeros((3, 2, 2))}, None, None, r"\(N,\) or \(N, count\)"),
])
def test_create_points_rejects(points, names, datatype, message):
    with pytest.raises(CodecError, match=message):
        codecs.create_points(ROSBAGS, None, points, names, datatype)


# --- CSI packets --------------------------------------------------------------------------------


def _csi(dtype=np.float64):
    rng = np.random.default_rng(2)
    amplitude, phase = rng.uniform(0, 40, (3, 114)).astype(dtype), rng.uniform(-np.pi, np.pi, (3, 114)).astype(dtype)
    amplitude[1, 7], phase[2, 3] = np.inf, np.nan
    return amplitude, phase


@pytest.mark.parametrize("dtype, encoding", [(np.float64, "64FC2"), (np.float32, "32FC2")])
def test_csi_round_trip(types, dtype, encoding):
    amplitude, phase = _csi(dtype)
    msg = codecs.create_csi_packet(types, codecs.make_header(types, 10**9, "wifi"), amplitude, phase)
    assert (msg.encoding, msg.height, msg.width, msg.is_bigendian) == (encoding, 3, 114, 0)
    assert msg.step == 114 * 2 * np.dtype(dtype).itemsize
    pixels = np.frombuffer(bytes(msg.data), dtype=dtype).reshape(3, 114, 2)
    assert _same_bits(pixels[..., 0].copy(), amplitude) and _same_bits(pixels[..., 1].copy(), phase)
    got_amplitude, got_phase = codecs.read_csi_packet(msg)
    assert _same_bits(got_amplitude.copy(), amplitude) and _same_bits(got_phase.copy(), phase)


def test_csi_row_padding_and_big_endian():
    amplitude, phase = _csi()
    step = 114 * 16 + 24
    rows = np.full((3, step), 0x7F, dtype=np.uint8)
    rows[:, :114 * 16] = np.stack([amplitude, phase], axis=-1).astype(">f8").reshape(3, -1).view(np.uint8)
    msg = SimpleNamespace(encoding="64FC2", height=3, width=114, step=step, is_bigendian=1,
                          data=rows.reshape(-1).tobytes())
    got_amplitude, got_phase = codecs.read_csi_packet(msg)
    assert got_amplitude.dtype == np.dtype("=f8")
    assert _same_bits(got_amplitude.copy(), amplitude) and _same_bits(got_phase.copy(), phase)


@pytest.mark.parametrize("change, message", [
    (dict(encoding="rgb8"), "encoding 'rgb8'"),
    (dict(encoding="64FC1"), "encoding '64FC1'"),
    (dict(data=bytes(3 * 114 * 16 - 8)), "expected step\\*height"),
    (dict(height=4), "expected step\\*height"),
    (dict(step=114 * 16 - 16, data=bytes(3 * (114 * 16 - 16))), "step 1808 < width"),
])
def test_malformed_csi_is_rejected(change, message):
    fields = dict(encoding="64FC2", height=3, width=114, step=114 * 16, is_bigendian=0,
                  data=bytes(3 * 114 * 16))
    fields.update(change)
    with pytest.raises(CodecError, match=message):
        codecs.read_csi_packet(SimpleNamespace(**fields))


def test_create_csi_rejects():
    amplitude, phase = _csi()
    with pytest.raises(CodecError, match="equal"):
        codecs.create_csi_packet(ROSBAGS, None, amplitude, phase[:2])
    with pytest.raises(CodecError, match="equal"):
        codecs.create_csi_packet(ROSBAGS, None, amplitude[None], phase[None])
    with pytest.raises(CodecError, match="float32 or float64"):
        codecs.create_csi_packet(ROSBAGS, None, np.ones((3, 114), np.int32), np.ones((3, 114), np.int32))


@pytest.mark.parametrize("dtype, encoding", [(np.float64, "64FC1"), (np.float32, "32FC1")])
def test_float_image_round_trip(types, dtype, encoding):
    matrix = np.random.default_rng(5).normal(size=(684, 10)).astype(dtype)
    matrix[3, 4], matrix[9, 0] = np.nan, -np.inf
    msg = codecs.create_float_image(types, codecs.make_header(types, 10**9, "wifi"), matrix)
    assert (msg.encoding, msg.height, msg.width, msg.step) == (encoding, 684, 10, 10 * np.dtype(dtype).itemsize)
    assert _same_bits(codecs.read_float_image(msg).copy(), matrix)


def test_float_image_row_padding_and_big_endian():
    matrix = np.arange(12, dtype=np.float32).reshape(3, 4)
    rows = np.zeros((3, 20), dtype=np.uint8)
    rows[:, :16] = matrix.astype(">f4").view(np.uint8)
    msg = SimpleNamespace(encoding="32FC1", height=3, width=4, step=20, is_bigendian=1, data=rows.tobytes())
    assert _same_bits(codecs.read_float_image(msg).copy(), matrix)
    with pytest.raises(CodecError, match="encoding '64FC2'"):
        codecs.read_float_image(SimpleNamespace(**{**vars(msg), "encoding": "64FC2"}))
    with pytest.raises(CodecError, match="2-D float32 or float64"):
        codecs.create_float_image(ROSBAGS, None, np.zeros((2, 3, 4), np.float32))


# --- joints, stamps, CDR ------------------------------------------------------------------------


def test_pose_array_round_trip(types):
    joints = np.random.default_rng(3).normal(size=(17, 3))
    msg = codecs.create_pose_array(types, codecs.make_header(types, 5, "mmfi"), joints)
    assert len(msg.poses) == 17
    assert all((p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w) == (0, 0, 0, 1)
               for p in msg.poses)
    assert _same_bits(codecs.read_pose_array(msg), joints)
    as_float32 = codecs.read_pose_array(msg, np.float32)
    assert as_float32.dtype == np.float32 and np.array_equal(as_float32, joints.astype(np.float32))
    with pytest.raises(CodecError, match=r"\(J, 3\)"):
        codecs.create_pose_array(types, None, joints[:, :2])


@pytest.mark.parametrize("ns", [0, 1, 999_999_999, 10**9, 1_700_000_000_123_456_789, -1, -(10**9) - 5])
def test_stamp_round_trip(types, ns):
    stamp = codecs.ns_to_stamp(types, ns)
    assert 0 <= stamp.nanosec < 10**9 and codecs.stamp_to_ns(stamp) == ns


def test_stamp_out_of_range():
    with pytest.raises(CodecError, match="int32"):
        codecs.ns_to_stamp(ROSBAGS, 2**31 * 10**9)


def test_cdr_round_trip_through_the_typestore():
    header = codecs.make_header(ROSBAGS, 1_500_000_000_000_000_001, "lidar")
    points = _points()
    amplitude, phase = _csi()
    joints = points[:17, :3]
    messages = {
        "sensor_msgs/msg/PointCloud2": codecs.create_points(ROSBAGS, header, points, list("xyzvi")),
        "sensor_msgs/msg/Image": codecs.create_csi_packet(ROSBAGS, header, amplitude, phase),
        "geometry_msgs/msg/PoseArray": codecs.create_pose_array(ROSBAGS, header, joints),
    }
    back = {t: TYPESTORE.deserialize_cdr(TYPESTORE.serialize_cdr(m, t), t) for t, m in messages.items()}
    for msg in back.values():
        assert codecs.header_stamp_ns(msg) == 1_500_000_000_000_000_001
        assert msg.header.frame_id == "lidar"
    assert _same_bits(codecs.read_points_array(back["sensor_msgs/msg/PointCloud2"], list("xyzvi")), points)
    assert not back["sensor_msgs/msg/PointCloud2"].is_dense
    got_amplitude, got_phase = codecs.read_csi_packet(back["sensor_msgs/msg/Image"])
    assert _same_bits(got_amplitude.copy(), amplitude) and _same_bits(got_phase.copy(), phase)
    assert _same_bits(codecs.read_pose_array(back["geometry_msgs/msg/PoseArray"]), joints.copy())


def test_rclpy_and_rosbags_messages_cross_deserialise():
    """CDR written from either message class reads back in the other, to the same arrays."""
    from rclpy.serialization import deserialize_message, serialize_message

    rclpy_types = _rclpy_types()
    amplitude, phase = _csi(np.float32)
    points, joints = _points(), _points()[:17, :3].copy()

    def build(types_: codecs.MessageTypes) -> dict[str, object]:
        header = codecs.make_header(types_, 42_000_000_123, "wifi")
        return {
            "sensor_msgs/msg/Image": codecs.create_csi_packet(types_, header, amplitude, phase),
            "sensor_msgs/msg/PointCloud2": codecs.create_points(types_, header, points, list("xyzvi")),
            "geometry_msgs/msg/PoseArray": codecs.create_pose_array(types_, header, joints),
        }

    rclpy_classes = {"sensor_msgs/msg/Image": rclpy_types.Image,
                     "sensor_msgs/msg/PointCloud2": rclpy_types.PointCloud2,
                     "geometry_msgs/msg/PoseArray": rclpy_types.PoseArray}
    ours, theirs = build(ROSBAGS), build(rclpy_types)
    for msgtype in ours:
        crossed = (
            deserialize_message(bytes(TYPESTORE.serialize_cdr(ours[msgtype], msgtype)), rclpy_classes[msgtype]),
            TYPESTORE.deserialize_cdr(serialize_message(theirs[msgtype]), msgtype),
        )
        for msg in crossed:
            assert codecs.header_stamp_ns(msg) == 42_000_000_123 and msg.header.frame_id == "wifi"
            if msgtype.endswith("Image"):
                got_amplitude, got_phase = codecs.read_csi_packet(msg)
                assert _same_bits(got_amplitude.copy(), amplitude) and _same_bits(got_phase.copy(), phase)
            elif msgtype.endswith("PointCloud2"):
                assert _same_bits(codecs.read_points_array(msg, list("xyzvi")), points)
            else:
                assert _same_bits(codecs.read_pose_array(msg), joints)


def test_agrees_with_sensor_msgs_py():
    """Where a ROS install provides sensor_msgs_py, both codecs agree on the same messages."""
    point_cloud2 = pytest.importorskip(
        "sensor_msgs_py.point_cloud2", reason="sensor_msgs_py ships with a ROS install, not on PyPI")
    rclpy_types = _rclpy_types()
    header = codecs.make_header(rclpy_types, 10**9, "radar")
    points = _points(np.float32)
    ours = codecs.create_points(rclpy_types, header, points, list("xyzvi"))
    theirs_decoded = point_cloud2.read_points_numpy(ours, field_names=list("xyzvi"))
    assert _same_bits(np.ascontiguousarray(theirs_decoded), points)
    fields = [rclpy_types.PointField(name=n, offset=4 * i, datatype=FLOAT32, count=1)
              for i, n in enumerate("xyzvi")]
    theirs = point_cloud2.create_cloud(header, fields, points)
    assert _same_bits(codecs.read_points_array(theirs, list("xyzvi")), points)


@pytest.mark.parametrize("seed", range(12))
def test_random_clouds_decode_as_sensor_msgs_py_decodes_them(seed):
    """Random layouts (field datatypes, order, padding, row padding, organised clouds, NaN): the
    columns we read are the values sensor_msgs_py.point_cloud2.read_points reads, as float64."""
    point_cloud2 = pytest.importorskip(
        "sensor_msgs_py.point_cloud2", reason="sensor_msgs_py is not on PyPI: install ../shared/ros-tools")
    rclpy_types = _rclpy_types()
    rng = np.random.default_rng(seed)
    datatypes = {1: np.int8, 2: np.uint8, 3: np.int16, 4: np.uint16, 5: np.int32, 6: np.uint32,
                 7: np.float32, 8: np.float64}
    names = list(rng.permutation(["x", "y", "z", "intensity", "ring"])[:rng.integers(1, 6)])
    fields, offset = [], 0
    for name in names:
        datatype = int(rng.choice(list(datatypes)))
        size = np.dtype(datatypes[datatype]).itemsize
        offset = -(-offset // size) * size + size * int(rng.integers(0, 2))  # aligned, sometimes a gap
        fields.append(rclpy_types.PointField(name=str(name), offset=offset, datatype=datatype, count=1))
        offset += size
    point_step = offset + int(rng.integers(0, 9))
    height, width = (int(rng.integers(1, 4)), int(rng.integers(1, 40)))
    structured = np.zeros(height * width, dtype=point_cloud2.dtype_from_fields(fields, point_step=point_step))
    for field in fields:
        kind = np.dtype(datatypes[field.datatype])
        if kind.kind == "f":
            values = rng.normal(scale=50.0, size=len(structured)).astype(kind)
            values[rng.random(len(values)) < 0.1] = np.nan
        else:
            info = np.iinfo(kind)
            values = rng.integers(info.min, info.max, size=len(structured), endpoint=True, dtype=kind)
        structured[field.name] = values
    header = codecs.make_header(rclpy_types, 10**9, "lidar")
    msg = point_cloud2.create_cloud(header, fields, structured, point_step=point_step)
    msg.height, msg.width, msg.row_step = height, width, width * point_step
    wanted = list(rng.permutation(names))
    theirs = point_cloud2.read_points(msg, field_names=wanted, skip_nans=False)
    expected = np.stack([np.asarray(theirs[n], dtype=np.float64) for n in wanted], axis=1)
    ours = codecs.read_points_array(msg, wanted, dtype=np.float64)
    assert ours.shape == expected.shape
    np.testing.assert_array_equal(ours, expected)


# --- compiled layouts (validated once per layout, never reused for another) ---------------------


def test_a_cached_layout_is_not_reused_for_a_changed_message():
    msg = _cloud(XYZ, bytes(24 * 4), width=4, point_step=24)
    assert codecs.read_points_array(msg, ["x", "y", "z"]).shape == (4, 3)
    msg.fields[2].datatype = 9  # same object, now invalid: must not hit the valid layout's entry
    with pytest.raises(CodecError, match="unknown datatype 9"):
        codecs.read_points_array(msg, ["x", "y", "z"])
    msg.fields[2].datatype = FLOAT64
    msg.is_bigendian = True  # same fields, other byte order: other values
    msg.data = np.frombuffer(np.arange(12, dtype=">f8").tobytes(), dtype=np.uint8)
    np.testing.assert_array_equal(codecs.read_points_array(msg, ["x", "y", "z"]).ravel(), np.arange(12))


@pytest.mark.parametrize("value, accepted", [(FLOAT64, True), (8.0, True), (np.int64(8), True), (8.5, False),
                                             ("8", False), (None, False)])
def test_field_attributes_must_be_integers_whatever_the_cache_holds(value, accepted):
    for _ in range(2):  # the second call hits the cache when the first compiled a layout
        msg = _cloud(XYZ, bytes(24 * 4), width=4, point_step=24)
        msg.fields[1].datatype = value
        if accepted:
            assert codecs.read_points_array(msg, ["x", "y", "z"]).dtype == np.float64
        else:
            with pytest.raises(CodecError, match="'y' datatype"):
                codecs.read_points_array(msg, ["x", "y", "z"])


def test_layouts_and_field_counts_are_bounded():
    msg = _cloud([(f"f{i}", 0, INT8, 1) for i in range(codecs.MAX_POINT_FIELDS + 1)], b"\0", width=1, point_step=1)
    with pytest.raises(CodecError, match="at most"):
        codecs.read_points(msg)
    for step in range(1, codecs.LAYOUT_CACHE_SIZE + 50):  # many distinct layouts: the cache stays bounded
        codecs.read_points(_cloud([("x", 0, INT8, 1)], bytes(step), width=1, point_step=step))
    assert codecs._compile_layout.cache_info().currsize <= codecs.LAYOUT_CACHE_SIZE


def test_padded_points_cast_through_one_gather_equal_the_field_values():
    layout = np.dtype({"names": ["x", "y", "z", "ring"], "formats": ["<f4"] * 3 + ["<u2"],
                       "offsets": [0, 4, 8, 16], "itemsize": 32})
    cloud = np.zeros(6, dtype=layout)
    for i, name in enumerate("xyz"):
        cloud[name] = np.arange(6) + 10 * i
    fields = [("x", 0, FLOAT32, 1), ("y", 4, FLOAT32, 1), ("z", 8, FLOAT32, 1), ("ring", 16, UINT16, 1)]
    raw = cloud.tobytes()
    for height, row_step, data in ((1, 192, raw), (2, 100, b"".join(raw[r * 96:(r + 1) * 96] + bytes(4) for r in range(2)))):
        msg = _cloud(fields, data, height=height, width=6 // height, point_step=32, row_step=row_step)
        expected = np.stack([cloud[n] for n in "xyz"], axis=1)
        np.testing.assert_array_equal(codecs.read_points_array(msg, ["x", "y", "z"], dtype=np.float64), expected)
        np.testing.assert_array_equal(codecs.read_point_columns(msg, ["x", "y", "z"]), expected)
