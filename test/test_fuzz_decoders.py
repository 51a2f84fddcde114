"""Fuzzing every decoder (issue 6): a malformed message decodes or raises CodecError, nothing else.

Messages start from a valid PointCloud2 / CSI Image and get 0-4 mutations: wrong field names,
datatypes, offsets or counts, point_step / row_step / data length mismatches, width x height
overflow, absurd sizes, empty clouds, byte order flips, NaN/inf values. Every decoder must then
return or raise :class:`CodecError` with a message, within a small memory budget (tracemalloc
traces numpy's allocations). A node-level check feeds fuzzed rclpy messages to a real node's
subscription callback: each bad message is counted as dropped, none raises, the node still works.
"""
from __future__ import annotations

import os
import time
import tracemalloc
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmhpe_ros.data.bag_format import POINT_FIELDS
from mmhpe_ros.geometry.calibration import Calibration
from mmhpe_ros.geometry.transforms import RigidTransform
from mmhpe_ros.modalities import CSI_ANTENNAS, CSI_SUBCARRIERS, KEYPOINT_FIELDS, MMWAVE_FIELDS
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.observe import Rig
from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.cloud_input import CloudInput
from mmhpe_ros.runtime.codecs import POINT_FIELD_DTYPES, CodecError
from mmhpe_ros.runtime.features import read_features
from mmhpe_ros.runtime.sensors import CloudProcessor, CsiProcessor, KeypointProcessor

from hand_geometry import LIDAR_MOUNT, calibration_parameters, floor, person, to_sensor

CONFIG = ModelConfig(lidar_points=64, mmwave_points=16)
# The fuzzed messages' frame "f" and the LiDAR's frame have extrinsics: decoding goes all the way
# through the transform and the localiser.
RIG = Rig(Calibration(extrinsics={"f": RigidTransform.from_xyz_rpy((0.1, 0.2, 1.0), (0.1, 0.2, 0.3)),
                                  "lidar": RigidTransform.from_xyz_rpy(*LIDAR_MOUNT)}))
MEMORY_BUDGET_BYTES = 32 * 2**20  # inputs are at most a few kB; no decoder may allocate more
UINT32_MAX = 2**32 - 1
# Examples per fuzz test: modest for CI (2 cores); MMHPE_FUZZ_EXAMPLES=5000 for a long run.
FUZZ_EXAMPLES = int(os.environ.get("MMHPE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = ["x", "y", "z", "velocity", "doppler", "intensity", "snr", "u", "v", "score", "", "X", "rgb", "x "]

sizes = st.one_of(
    st.integers(0, 64), st.integers(0, UINT32_MAX), st.sampled_from([2**31, 2**32 - 1, 2**16 + 1]),
    st.integers(-(2**40), -1), st.integers(2**32, 2**64),  # duck-typed messages are not bound to uint32
)


def _header(stamp_ns: int = 10**9) -> Any:
    return SimpleNamespace(stamp=SimpleNamespace(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id="f")


@st.composite
def clouds(draw) -> SimpleNamespace:
    """A valid packed cloud of random layout and values, then up to four mutations."""
    names = draw(st.sampled_from([list(MMWAVE_FIELDS), list(KEYPOINT_FIELDS), ["x", "y", "z"],
                                  ["x", "y", "z", "doppler", "snr"]]))
    datatypes = draw(st.lists(st.sampled_from(sorted(POINT_FIELD_DTYPES)), min_size=len(names), max_size=len(names)))
    fields, offset = [], 0
    for name, datatype in zip(names, datatypes):
        fields.append(SimpleNamespace(name=name, offset=offset, datatype=datatype, count=1))
        offset += POINT_FIELD_DTYPES[datatype].itemsize
    width = draw(st.sampled_from([0, 1, 17, 40]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    data = rng.integers(0, 256, size=width * offset, dtype=np.uint8)
    special = draw(st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1e38]))
    floats = [f for f in fields if f.datatype in (7, 8)]
    if floats and width:  # put NaN/inf (or a plain value) into some float fields
        f = floats[0]
        dtype = POINT_FIELD_DTYPES[f.datatype]
        grid = np.ndarray((width,), dtype=dtype, buffer=data, offset=f.offset, strides=(offset,))
        grid[rng.random(width) < 0.3] = special
    msg = SimpleNamespace(header=_header(), height=1, width=width, fields=fields, is_bigendian=False,
                          point_step=offset, row_step=offset * width, data=data, is_dense=False)
    for _ in range(draw(st.integers(0, 4))):
        _mutate_cloud(draw, msg)
    return msg


def _mutate_cloud(draw, msg: SimpleNamespace) -> None:
    kind = draw(st.sampled_from(["height", "width", "point_step", "row_step", "data", "field", "drop",
                                 "duplicate", "endian", "consistent_size"]))
    if kind in ("height", "width", "point_step", "row_step"):
        setattr(msg, kind, draw(sizes))
    elif kind == "data":
        length = draw(st.integers(0, 4096))
        msg.data = np.resize(msg.data, length).astype(np.uint8) if len(msg.data) else np.zeros(length, np.uint8)
    elif kind == "field" and msg.fields:
        field = draw(st.sampled_from(msg.fields))
        attribute = draw(st.sampled_from(["name", "offset", "datatype", "count"]))
        value = {"name": st.sampled_from(NAMES), "offset": sizes, "datatype": st.integers(0, 255),
                 "count": st.one_of(st.integers(0, 5), sizes)}[attribute]
        setattr(field, attribute, draw(value))
    elif kind == "drop" and msg.fields:
        msg.fields = msg.fields[1:]
    elif kind == "duplicate" and msg.fields:
        msg.fields = msg.fields + [SimpleNamespace(**vars(msg.fields[0]))]
    elif kind == "endian":
        msg.is_bigendian = not msg.is_bigendian
    elif kind == "consistent_size":  # size fields that agree with each other but not with the data
        msg.height, msg.width = draw(sizes), draw(sizes)
        msg.row_step = max(msg.width, 0) * max(msg.point_step, 0)


@st.composite
def csi_images(draw) -> SimpleNamespace:
    """A valid CSI packet Image (or a 32FC1 features image), then up to four mutations."""
    encoding = draw(st.sampled_from(["64FC2", "32FC2", "32FC1"]))
    channels = 1 if encoding.endswith("C1") else 2
    itemsize = 8 if encoding.startswith("64") else 4
    height, width = draw(st.sampled_from([(CSI_ANTENNAS, CSI_SUBCARRIERS), (684, 10), (0, 0), (2, 3)]))
    step = width * channels * itemsize
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.normal(size=height * width * channels).astype(f"<f{itemsize}")
    values[rng.random(values.size) < 0.05] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    msg = SimpleNamespace(header=_header(draw(st.integers(0, 2**40))), height=height, width=width,
                          encoding=encoding, is_bigendian=0, step=step, data=values.view(np.uint8).copy())
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["height", "width", "step", "data", "encoding", "endian"]))
        if kind in ("height", "width", "step"):
            setattr(msg, kind, draw(sizes))
        elif kind == "data":
            msg.data = np.resize(msg.data, draw(st.integers(0, 8192))).astype(np.uint8)
        elif kind == "encoding":
            msg.encoding = draw(st.sampled_from(["64FC2", "32FC2", "32FC1", "64FC1", "rgb8", "", "16UC1"]))
        else:
            msg.is_bigendian = 1 - msg.is_bigendian
    return msg


def _decodes_or_codec_error(decode: Callable[[Any], Any], msg: Any) -> None:
    """``decode(msg)`` returns or raises CodecError with a message, within the memory budget."""
    tracemalloc.start()
    try:
        decode(msg)
    except CodecError as error:
        assert str(error), "CodecError without a message"
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < MEMORY_BUDGET_BYTES, f"{peak} bytes allocated decoding a {len(msg.data)}-byte message"


CLOUD_DECODERS: dict[str, Callable[[Any], Any]] = {
    "read_points": codecs.read_points,
    "read_points[radar]": lambda m: codecs.read_points(m, list(MMWAVE_FIELDS)),
    "read_points_array[radar]": lambda m: codecs.read_points_array(m, list(MMWAVE_FIELDS)),
    "read_points_array[xyz, float32]": lambda m: codecs.read_points_array(m, ["x", "y", "z"], np.float32),
    "lidar": CloudProcessor("lidar", CONFIG, RIG).process,
    "mmwave": CloudProcessor("mmwave", CONFIG, RIG).process,
    "cloud_input[lidar]": CloudInput(POINT_FIELDS["lidar"]).read,  # what the cloud nodes read with
    "cloud_input[mmwave, merged]": CloudInput.from_parameters(POINT_FIELDS["mmwave"], merge_frames=3).read,
    "keypoints": KeypointProcessor(CONFIG, RIG).process,
    "features[rgb]": lambda m: read_features("rgb", m, CONFIG),
    "features[lidar]": lambda m: read_features("lidar", m, CONFIG),
    "features[mmwave]": lambda m: read_features("mmwave", m, CONFIG),
}


@pytest.mark.filterwarnings("error::RuntimeWarning")  # numpy warnings count as failures too
@FUZZ
@given(msg=clouds())
def test_fuzzed_point_clouds_decode_or_raise_codec_error(msg):
    for decode in CLOUD_DECODERS.values():
        _decodes_or_codec_error(decode, msg)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@FUZZ
@given(msg=csi_images())
def test_fuzzed_images_decode_or_raise_codec_error(msg):
    processor = CsiProcessor(CONFIG)
    for decode in (codecs.read_csi_packet, codecs.read_float_image, processor.process,
                   lambda m: read_features("wifi", m, CONFIG)):
        _decodes_or_codec_error(decode, msg)
    _decodes_or_codec_error(lambda _: processor.flush(), msg)


@pytest.mark.parametrize("change, message", [
    ({"height": 2**31, "width": 2**31}, "overflows uint32"),
    ({"width": 2**32 - 1, "row_step": 12 * (2**32 - 1)}, "data has 48 bytes"),
    ({"row_step": 47}, "row_step 47 < width"),
    ({"point_step": 0}, "point_step is 0"),
    ({"fields": []}, "no field 'x'"),
])
def test_named_faults_say_what_is_wrong(change, message):
    data = np.zeros(12 * 4, np.uint8)
    msg = SimpleNamespace(header=_header(), height=1, width=4, is_bigendian=False, point_step=12, row_step=48,
                          fields=[SimpleNamespace(name=n, offset=4 * i, datatype=7, count=1)
                                  for i, n in enumerate("xyz")],
                          data=data, is_dense=True)
    vars(msg).update(change)
    with pytest.raises(CodecError, match=message):
        CloudProcessor("lidar", CONFIG, RIG).process(msg)


def _xyz_cloud(points: np.ndarray, **change: Any) -> SimpleNamespace:
    points = np.ascontiguousarray(points, dtype="<f8")
    msg = SimpleNamespace(header=_header(), height=1, width=len(points), is_bigendian=False, point_step=24,
                          row_step=24 * len(points), data=points.view(np.uint8).reshape(-1), is_dense=False,
                          fields=[SimpleNamespace(name=n, offset=8 * i, datatype=8, count=1)
                                  for i, n in enumerate("xyz")])
    vars(msg).update(change)
    return msg


def test_regression_point_step_beyond_int32_on_an_empty_cloud():
    """Found by the fuzzer: numpy cannot lay out such a point (ValueError before the fix)."""
    with pytest.raises(CodecError, match="point_step 2147483648 is outside"):
        codecs.read_points(_xyz_cloud(np.empty((0, 3)), point_step=2**31))


def test_regression_fields_with_count_above_one():
    """Found by the fuzzer: a field of count 3 gave extra columns and a ValueError in prepare_modality."""
    msg = _xyz_cloud(np.zeros((2, 3)))
    msg.fields[2].count = 2
    msg.fields[2].offset = 8  # z and z[1] overlap y's bytes; still within point_step
    for decode in (CloudProcessor("lidar", CONFIG, RIG).process, lambda m: read_features("lidar", m, CONFIG)):
        with pytest.raises(CodecError, match=r"'z': 2.*expected count 1"):
            decode(msg)


def test_regression_sizes_beyond_uint32_are_refused():
    """Found by the fuzzer: a zero-height image of width 2**62 made numpy raise "array is too big"."""
    image = SimpleNamespace(header=_header(), height=0, width=2**62, encoding="32FC2", is_bigendian=0,
                            step=2**66, data=np.empty(0, np.uint8))
    with pytest.raises(CodecError, match="outside 0..4294967295"):
        codecs.read_csi_packet(image)
    with pytest.raises(CodecError, match="outside 0..4294967295"):
        codecs.read_points(_xyz_cloud(np.empty((0, 3)), height=0, width=2**40))


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_regression_coordinates_near_float32_max_stay_out_of_the_search():
    """Found by the fuzzer: finite float32 coordinates of ~3e38 m overflowed (a RuntimeWarning) when
    moved into the base frame; they are outside the search region."""
    points = np.random.default_rng(2).normal(size=(40, 3))
    points[:20] = 3.0e38
    features = CloudProcessor("lidar", CONFIG, RIG).process(_xyz_cloud(points))
    assert not features.present and features.non_finite == 0
    radar = np.column_stack([points, np.ones((40, 2))])
    radar[:20, :3] = 3.0e38
    features = CloudProcessor("mmwave", CONFIG, RIG).process_points(radar, 10**9, "f")
    valid = features.arrays["mmwave_valid"]
    assert 0 < valid.sum() <= 20 and np.abs(features.arrays["mmwave_points"][valid, :3]).max() < 20  # the others


def test_values_beyond_float32_count_as_non_finite():
    """Found by the fuzzer: finite float64 values became inf in the float32 model inputs."""
    rng = np.random.default_rng(0)
    points = to_sensor(np.vstack([person(3.0, 0.0, rng, points=300), floor(rng, 300)]), LIDAR_MOUNT)
    points[3, 1], points[8, 2] = 1e300, -1e300
    msg = _xyz_cloud(points)
    msg.header.frame_id = "lidar"
    features = CloudProcessor("lidar", CONFIG, RIG).process(msg)
    assert features.present and features.non_finite == 2 and np.isfinite(features.arrays["lidar_points"]).all()
    amplitude = np.random.default_rng(1).normal(size=(CSI_ANTENNAS, CSI_SUBCARRIERS))
    phase = amplitude.copy()
    phase[0, :] *= 1e300  # beyond float32: treated as missing (NaN -> 0 when sanitised)
    types = codecs.rosbags_types()
    processor = CsiProcessor(CONFIG)
    windows = [w for k in range(10) for w in processor.process(codecs.create_csi_packet(
        types, codecs.make_header(types, 10**9 + k * 10**7, "wifi"), amplitude, phase))]
    assert len(windows) == 1 and np.isfinite(windows[0].arrays["wifi"]).all()


# -- node level: bad messages are counted and dropped, the node keeps working ----------------------


@pytest.fixture(scope="module")
def sensor_nodes(tmp_path_factory):
    """A LiDAR node and a WiFi node (rclpy context on this file's own DDS domain)."""
    pytest.importorskip("rclpy", reason="rclpy not installed")
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from rclpy.parameter import Parameter
    from ros_domain import lease_domain, ros_domain

    from mmhpe_ros.model.checkpoint import save_model
    from mmhpe_ros.model.pose_model import PoseModel
    from mmhpe_ros.nodes.lidar import LidarNode
    from mmhpe_ros.nodes.wifi import WifiNode

    path = save_model(tmp_path_factory.mktemp("model") / "m.safetensors",
                      PoseModel(ModelConfig(feature_dim=8, hidden_dim=8, lidar_points=64)))
    overrides = [Parameter("model_path", value=str(path))]
    overrides += [Parameter(k, value=v) for k, v in calibration_parameters(lidar=LIDAR_MOUNT).items()]
    with ros_domain(lease_domain()):
        nodes = {"lidar": LidarNode(parameter_overrides=overrides), "wifi": WifiNode(parameter_overrides=overrides)}
        yield nodes
        for node in nodes.values():
            node.destroy_node()


@pytest.fixture(scope="module")
def lidar_node(sensor_nodes):
    return sensor_nodes["lidar"]


@pytest.fixture(scope="module")
def wifi_node(sensor_nodes):
    return sensor_nodes["wifi"]


def _as_rclpy(msg: SimpleNamespace) -> Any:
    """The fuzzed cloud as a real rclpy PointCloud2 (values clipped to the message's field types)."""
    from sensor_msgs.msg import PointCloud2, PointField

    def u32(value: int) -> int:
        return int(min(max(value, 0), UINT32_MAX))

    fields = [PointField(name=f.name, offset=u32(f.offset), datatype=int(f.datatype) % 256, count=u32(f.count))
              for f in msg.fields]
    types = codecs.rclpy_types()
    return PointCloud2(header=codecs.make_header(types, 10**9, "lidar"), height=u32(msg.height),
                       width=u32(msg.width), fields=fields, is_bigendian=bool(msg.is_bigendian),
                       point_step=u32(msg.point_step), row_step=u32(msg.row_step),
                       data=types.uint8_sequence(np.asarray(msg.data, np.uint8)), is_dense=False)


@settings(max_examples=max(FUZZ_EXAMPLES // 3, 10), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(msg=clouds())
def test_node_counts_bad_messages_and_never_raises(lidar_node, msg):
    rclpy_msg = _as_rclpy(msg)
    (subscription,) = lidar_node.subscriptions
    counters = lidar_node.inputs[subscription.topic_name.lstrip("/")]
    try:  # what the node does: read through its cloud input, then stage 1
        merged = lidar_node.cloud_input.read(rclpy_msg)
        lidar_node.processor.process_points(merged.points, merged.stamp_ns, merged.frame_id)
        bad = False
    except CodecError:
        bad = True
    dropped, published = counters.dropped, counters.published  # published: empty messages (nobody) too
    subscription.callback(rclpy_msg)  # the real callback; must not raise
    assert (counters.dropped - dropped, counters.published - published) == ((1, 0) if bad else (0, 1))


def test_node_keeps_working_after_bad_messages(lidar_node):
    types = codecs.rclpy_types()
    (subscription,) = lidar_node.subscriptions
    counters = lidar_node.inputs[subscription.topic_name.lstrip("/")]
    rng = np.random.default_rng(0)
    good = codecs.create_points(types, codecs.make_header(types, 10**9, "lidar"),
                                to_sensor(np.vstack([person(3.0, 0.5, rng, 200), floor(rng, 200)]), LIDAR_MOUNT),
                                ["x", "y", "z"])
    bad = codecs.create_points(types, codecs.make_header(types, 10**9, "lidar"), np.zeros((3, 2)), ["x", "q"])
    dropped, published, empty = counters.dropped, counters.published, counters.empty
    for msg in (bad, good, bad, good):
        subscription.callback(msg)
    assert (counters.dropped - dropped, counters.published - published, counters.empty - empty) == (2, 2, 0)
    assert "no field 'y'" in counters.last_error
    (status,) = lidar_node.statuses()
    assert status.values["dropped"] == str(counters.dropped) and "no field 'y'" in status.values["last_error"]


def _image_as_rclpy(msg: SimpleNamespace) -> Any:
    """The fuzzed CSI packet as a real rclpy Image (sizes clipped to uint32)."""
    from sensor_msgs.msg import Image

    def u32(value: int) -> int:
        return int(min(max(value, 0), UINT32_MAX))

    types = codecs.rclpy_types()
    return Image(header=codecs.make_header(types, msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec, "wifi"),
                 height=u32(msg.height), width=u32(msg.width), encoding=msg.encoding,
                 is_bigendian=int(msg.is_bigendian), step=u32(msg.step),
                 data=types.uint8_sequence(np.asarray(msg.data, np.uint8)))


@settings(max_examples=max(FUZZ_EXAMPLES // 3, 10), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(msg=csi_images())
def test_wifi_node_counts_bad_packets_and_never_raises(wifi_node, msg):
    """Fuzzed CSI packets through the WiFi node's real callback: a packet that does not decode is
    counted as dropped (and its reason kept for diagnostics); nothing raises."""
    rclpy_msg = _image_as_rclpy(msg)
    (subscription,) = wifi_node.subscriptions
    counters = wifi_node.inputs[subscription.topic_name.lstrip("/")]
    try:
        codecs.read_csi_packet(rclpy_msg)
        undecodable = False
    except CodecError:
        undecodable = True
    dropped = counters.dropped
    subscription.callback(rclpy_msg)  # must not raise
    assert counters.dropped - dropped in (0, 1)
    if undecodable:
        assert counters.dropped - dropped == 1 and counters.last_error
    (status,) = wifi_node.statuses()
    assert status.values["dropped"] == str(counters.dropped)


def test_errors_of_a_flood_of_bad_messages_are_logged_once_per_period(lidar_node, capfd):
    """100 bad clouds in a row: all counted, one error line (rclpy's throttle, ERROR_LOG_PERIOD_S)."""
    from mmhpe_ros.nodes.sensor_node import ERROR_LOG_PERIOD_S

    types = codecs.rclpy_types()
    (subscription,) = lidar_node.subscriptions
    counters = lidar_node.inputs[subscription.topic_name.lstrip("/")]
    bad = codecs.create_points(types, codecs.make_header(types, 10**9, "lidar"), np.zeros((3, 2)), ["x", "w"])
    time.sleep(ERROR_LOG_PERIOD_S)  # earlier tests' errors are out of the throttle window
    capfd.readouterr()
    dropped = counters.dropped
    start = time.monotonic()
    for _ in range(100):
        subscription.callback(bad)
    assert counters.dropped - dropped == 100
    periods = 1 + int((time.monotonic() - start) // ERROR_LOG_PERIOD_S)  # 1 unless the loop was very slow
    lines = [line for line in capfd.readouterr().err.splitlines() if "dropped a message" in line]
    assert 1 <= len(lines) <= periods and "no field 'y'" in lines[0], lines
