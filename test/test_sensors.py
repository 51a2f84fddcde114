"""Sensor processors: the messages the bags carry -> exactly what prepare_modality gives offline."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mmhpe_ros.data.bag_format import encode_points, frame_messages
from mmhpe_ros.data.frames import Frame, SequenceKey
from mmhpe_ros.modalities import FRAME_IDS
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.inputs import prepare_modality
from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.codecs import CodecError
from mmhpe_ros.runtime.features import SCORE_KEY
from mmhpe_ros.runtime.roi import RegionOfInterest
from mmhpe_ros.runtime.sensors import CloudProcessor, CsiProcessor, KeypointProcessor, model_config

CONFIG = ModelConfig(lidar_points=256, mmwave_points=32)
TYPES = codecs.rosbags_types()
STAMP_NS = 3_000_000_000


def _header(modality: str):
    return codecs.make_header(TYPES, STAMP_NS, FRAME_IDS[modality])


def _assert_same(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(expected)
    for key in expected:
        assert got[key].dtype == expected[key].dtype and got[key].shape == expected[key].shape
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def _with_faults(points: np.ndarray) -> np.ndarray:
    points = points.copy()
    points[[2, 9], 0], points[5, -1], points[11, 1] = np.nan, np.inf, -np.inf
    return points


@pytest.mark.parametrize("modality, columns", [("lidar", 3), ("mmwave", 5)])
@pytest.mark.parametrize("count", [12, 900])
def test_clouds_as_the_bags_carry_them_equal_prepare_modality(modality, columns, count):
    raw = _with_faults(np.random.default_rng(count).normal(size=(count, columns)))
    features = CloudProcessor(modality, CONFIG).process(encode_points(TYPES, _header(modality), modality, raw))
    expected, present = prepare_modality(modality, raw, CONFIG)
    assert features.present and present and features.stamp_ns == STAMP_NS
    assert features.frame_id == FRAME_IDS[modality] and features.non_finite == 4 and features.outside == 0
    _assert_same(features.arrays, expected)


def test_region_of_interest_crops_before_resampling():
    raw = _with_faults(np.random.default_rng(1).uniform(-5, 5, size=(500, 3)))
    roi = RegionOfInterest((-2.0, -3.0, -1.0), (2.0, 3.0, 4.0))
    features = CloudProcessor("lidar", CONFIG, roi).process(encode_points(TYPES, _header("lidar"), "lidar", raw))
    finite = raw[np.isfinite(raw).all(axis=1)]
    inside = finite[((finite >= roi.lower) & (finite <= roi.upper)).all(axis=1)]
    _assert_same(features.arrays, prepare_modality("lidar", inside, CONFIG)[0])
    assert features.non_finite == 4 and features.outside == len(finite) - len(inside) > 0


def test_a_cloud_with_nothing_usable_is_not_present():
    raw = np.full((6, 3), np.nan)
    features = CloudProcessor("lidar", CONFIG).process(encode_points(TYPES, _header("lidar"), "lidar", raw))
    assert not features.present and features.arrays == {} and features.non_finite == 6


def test_a_driver_cloud_decodes_by_name_and_datatype():
    """float32 radar fields in another order, with aliases, padding and an extra field."""
    rng = np.random.default_rng(2)
    raw = rng.normal(size=(40, 5)).astype(np.float32)
    cloud = np.zeros(40, dtype=np.dtype({
        "names": ["intensity", "x", "range", "y", "z", "doppler"],
        "formats": ["<f4", "<f4", "<f8", "<f4", "<f4", "<f4"],
        "offsets": [0, 4, 8, 20, 24, 32], "itemsize": 40,
    }))
    cloud["x"], cloud["y"], cloud["z"], cloud["doppler"], cloud["intensity"] = raw.T
    msg = SimpleNamespace(
        header=_header("mmwave"), height=1, width=40, point_step=40, row_step=1600, is_bigendian=False,
        fields=[SimpleNamespace(name=n, offset=cloud.dtype.fields[n][1], datatype=8 if n == "range" else 7, count=1)
                for n in cloud.dtype.names],
        data=cloud.view(np.uint8).reshape(-1), is_dense=True,
    )
    features = CloudProcessor("mmwave", CONFIG).process(msg)
    _assert_same(features.arrays, prepare_modality("mmwave", raw.astype(np.float64), CONFIG)[0])


def test_agrees_with_sensor_msgs_py():
    point_cloud2 = pytest.importorskip(
        "sensor_msgs_py.point_cloud2", reason="sensor_msgs_py ships with a ROS install, not on PyPI")
    types = codecs.rclpy_types()
    raw = np.random.default_rng(3).normal(size=(100, 5))
    msg = encode_points(types, codecs.make_header(types, STAMP_NS, "radar"), "mmwave", raw)
    theirs = point_cloud2.read_points_numpy(msg, field_names=["x", "y", "z", "velocity", "intensity"])
    _assert_same(CloudProcessor("mmwave", CONFIG).process(msg).arrays, prepare_modality("mmwave", theirs, CONFIG)[0])


def test_keypoints_as_the_bags_carry_them_equal_prepare_modality():
    raw = np.random.default_rng(4).uniform(0, 640, size=(17, 2))
    raw[3] = np.nan
    features = KeypointProcessor(CONFIG).process(encode_points(TYPES, _header("rgb"), "rgb", raw))
    expected, _ = prepare_modality("rgb", raw, CONFIG)
    assert set(features.arrays) == {"rgb", SCORE_KEY}
    _assert_same({"rgb": features.arrays["rgb"]}, expected)
    np.testing.assert_array_equal(features.arrays[SCORE_KEY], np.where(np.arange(17) == 3, 0.0, 1.0))


def test_keypoints_without_score_and_from_a_detector():
    processor = KeypointProcessor(CONFIG)
    raw = np.random.default_rng(5).uniform(0, 480, size=(17, 2)).astype(np.float32)
    msg = codecs.create_points(TYPES, _header("rgb"), raw, ["u", "v"])
    features = processor.process(msg)
    np.testing.assert_array_equal(features.arrays[SCORE_KEY], np.ones(17, np.float32))
    detected = np.column_stack([raw, np.linspace(0, 1, 17)])
    from_detector = processor.from_keypoints(detected, STAMP_NS, "camera")
    np.testing.assert_array_equal(from_detector.arrays["rgb"], features.arrays["rgb"])
    np.testing.assert_allclose(from_detector.arrays[SCORE_KEY], np.linspace(0, 1, 17), rtol=1e-6)


def test_bad_keypoints_are_refused_and_all_nan_is_absent():
    processor = KeypointProcessor(CONFIG)
    with pytest.raises(CodecError, match=r"expected 17 points.*\(16, 3\)"):
        processor.process(encode_points(TYPES, _header("rgb"), "rgb", np.zeros((16, 2))))
    with pytest.raises(CodecError, match="no field 'u'"):
        processor.process(codecs.create_points(TYPES, _header("rgb"), np.zeros((17, 2)), ["x", "v"]))
    assert not processor.process(encode_points(TYPES, _header("rgb"), "rgb", np.full((17, 2), np.nan))).present


def test_csi_packets_as_the_bags_carry_them_equal_prepare_modality():
    key = SequenceKey("E01", "S01", "A01")
    rng = np.random.default_rng(6)
    frames = [Frame(key, i, np.zeros((17, 3)), {"wifi": rng.normal(size=(2, 3, 114, 10))}) for i in range(3)]
    processor = CsiProcessor(CONFIG)
    out = []
    for frame in frames:
        for stream, _, msg in frame_messages(TYPES, frame, 10**9, ["wifi"]):
            if stream.msgtype.endswith("Image"):
                out += processor.process(msg)
    assert [f.stamp_ns for f in out] == [10**9 + i * 100_000_000 for i in range(3)]
    for frame, features in zip(frames, out):
        assert features.frame_id == FRAME_IDS["wifi"]
        _assert_same(features.arrays, prepare_modality("wifi", frame.data["wifi"], CONFIG)[0])
    assert processor.flush() == []


def test_model_config_comes_from_the_card(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from mmhpe_ros.model.checkpoint import CheckpointError, save_model
    from mmhpe_ros.model.pose_model import PoseModel

    config = ModelConfig(feature_dim=8, hidden_dim=8, lidar_points=77)
    path = save_model(tmp_path / "m.safetensors", PoseModel(config))
    assert model_config(path) == config
    with pytest.raises(CheckpointError, match="card missing"):
        model_config(tmp_path / "other.safetensors")
