"""Features messages: prepare_modality's arrays -> standard message -> the same arrays."""
from __future__ import annotations

import numpy as np
import pytest

from mmhpe_ros.modalities import FRAME_IDS, TOPICS
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.inputs import MMWAVE_MASK, absent_modality, prepare_modality
from mmhpe_ros.runtime import codecs, features
from mmhpe_ros.runtime.codecs import CodecError

CONFIG = ModelConfig(lidar_points=128, mmwave_points=16)
ROSBAGS = codecs.rosbags_types()
STAMP_NS = 1_700_000_000_123_456_789


@pytest.fixture(params=["rosbags", "rclpy"])
def types(request) -> codecs.MessageTypes:
    if request.param == "rosbags":
        return ROSBAGS
    pytest.importorskip("sensor_msgs.msg", reason="rclpy message packages not installed")
    return codecs.rclpy_types()


def _raw(modality: str, rng: np.random.Generator, points: int = 300) -> np.ndarray:
    """A raw array as MM-Fi stores it (and the bags carry it)."""
    if modality == "rgb":
        keypoints = rng.uniform(0, 640, size=(17, 2))
        keypoints[4] = np.nan
        return keypoints
    if modality == "lidar":
        return rng.normal(size=(points, 3))
    if modality == "mmwave":
        return rng.normal(size=(points, 5))
    return rng.normal(size=(2, 3, 114, 10))


def _header(types: codecs.MessageTypes, modality: str):
    return codecs.make_header(types, STAMP_NS, FRAME_IDS[modality])


def _assert_same_arrays(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(expected)
    for key, array in expected.items():
        assert got[key].dtype == array.dtype and got[key].shape == array.shape, key
        np.testing.assert_array_equal(got[key], array, err_msg=key)


@pytest.mark.parametrize("modality", ["rgb", "lidar", "mmwave", "wifi"])
@pytest.mark.parametrize("points", [5, 300])
def test_round_trip_gives_prepare_modalitys_arrays(types, modality, points):
    prepared, present = prepare_modality(modality, _raw(modality, np.random.default_rng(points), points), CONFIG)
    assert present
    msg = features.features_message(types, _header(types, modality), modality, prepared)
    assert codecs.header_stamp_ns(msg) == STAMP_NS and msg.header.frame_id == FRAME_IDS[modality]
    assert features.features_present(msg)
    _assert_same_arrays(features.read_features(modality, msg, CONFIG), prepared)


def test_carriers_are_the_documented_standard_messages():
    rng = np.random.default_rng(1)
    mmwave, _ = prepare_modality("mmwave", _raw("mmwave", rng, 7), CONFIG)
    msg = features.features_message(ROSBAGS, _header(ROSBAGS, "mmwave"), "mmwave", mmwave)
    assert [f.name for f in msg.fields] == ["x", "y", "z", "velocity", "intensity"]
    assert {f.datatype for f in msg.fields} == {7} and msg.width == 7  # float32, only the real points

    wifi, _ = prepare_modality("wifi", _raw("wifi", rng), CONFIG)
    image = features.features_message(ROSBAGS, _header(ROSBAGS, "wifi"), "wifi", wifi)
    assert (image.encoding, image.height, image.width) == ("32FC1", 685, 10)
    rows = codecs.read_float_image(image)
    # row = (channel * 3 + antenna) * 114 + subcarrier, column = packet
    channel, antenna, subcarrier, packet = 1, 2, 57, 6
    row = (channel * 3 + antenna) * 114 + subcarrier
    assert rows[row, packet] == wifi["wifi"][channel, antenna, subcarrier, packet]

    rgb, _ = prepare_modality("rgb", _raw("rgb", rng), CONFIG)
    rgb[features.SCORE_KEY] = np.linspace(0, 1, 17, dtype=np.float32)
    keypoints = features.features_message(ROSBAGS, _header(ROSBAGS, "rgb"), "rgb", rgb)
    assert [f.name for f in keypoints.fields] == ["u", "v", "score"] and keypoints.width == 17
    np.testing.assert_array_equal(codecs.read_points_array(keypoints, ["score"])[:, 0], rgb[features.SCORE_KEY])


def test_cdr_round_trip_over_rclpy_serialisation():
    serialization = pytest.importorskip("rclpy.serialization", reason="rclpy not installed")
    from sensor_msgs.msg import Image, PointCloud2

    types = codecs.rclpy_types()
    rng = np.random.default_rng(2)
    for modality, cls in (("lidar", PointCloud2), ("mmwave", PointCloud2), ("wifi", Image)):
        prepared, _ = prepare_modality(modality, _raw(modality, rng, 40), CONFIG)
        msg = features.features_message(types, _header(types, modality), modality, prepared)
        received = serialization.deserialize_message(serialization.serialize_message(msg), cls)
        _assert_same_arrays(features.read_features(modality, received, CONFIG), prepared)


@pytest.mark.parametrize("modality", ["rgb", "lidar", "mmwave", "wifi"])
def test_empty_message_reads_as_an_absent_modality(types, modality):
    msg = features.features_message(types, _header(types, modality), modality, {})
    assert not features.features_present(msg)
    _assert_same_arrays(features.read_features(modality, msg, CONFIG), absent_modality(modality, CONFIG))


def test_topics_come_from_modalities():
    assert features.feature_topic("lidar") == TOPICS.feature("lidar") == "mmhpe/features/lidar"
    with pytest.raises(CodecError, match="unknown modality 'depth'"):
        features.feature_topic("depth")


def test_messages_that_do_not_fit_the_model_are_refused():
    rng = np.random.default_rng(3)
    other = ModelConfig(lidar_points=64, mmwave_points=4)
    lidar, _ = prepare_modality("lidar", _raw("lidar", rng), CONFIG)
    msg = features.features_message(ROSBAGS, _header(ROSBAGS, "lidar"), "lidar", lidar)
    with pytest.raises(CodecError, match="128 points, the model takes 64"):
        features.read_features("lidar", msg, other)
    mmwave, _ = prepare_modality("mmwave", _raw("mmwave", rng), CONFIG)
    msg = features.features_message(ROSBAGS, _header(ROSBAGS, "mmwave"), "mmwave", mmwave)
    with pytest.raises(CodecError, match="16 points, the model takes at most 4"):
        features.read_features("mmwave", msg, other)
    bad_wifi = codecs.create_float_image(ROSBAGS, _header(ROSBAGS, "wifi"), np.zeros((685, 9), np.float32))
    with pytest.raises(CodecError, match=r"expected \(685, 10\)"):
        features.read_features("wifi", bad_wifi, CONFIG)
    with pytest.raises(CodecError, match="fuses only"):
        features.read_features("wifi", bad_wifi, ModelConfig(modalities=("lidar",)))


@pytest.mark.parametrize("modality, arrays, message", [
    ("lidar", {"rgb": np.zeros((17, 2))}, "missing 'lidar'"),
    ("rgb", {"rgb": np.zeros((16, 2))}, r"expected shape \(17, 2\)"),
    ("rgb", {"rgb": np.zeros((17, 2)), features.SCORE_KEY: np.ones(3)}, "rgb_score must be"),
    ("mmwave", {"mmwave": np.zeros((4, 5)), MMWAVE_MASK: np.ones(3, bool)}, "mmwave_mask must be"),
    ("wifi", {"wifi": np.zeros((2, 3, 114, 9))}, r"expected shape \(2, 3, 114, 10\)"),
])
def test_features_message_checks_its_arrays(modality, arrays, message):
    with pytest.raises(CodecError, match=message):
        features.features_message(ROSBAGS, _header(ROSBAGS, modality), modality, arrays)


def test_wifi_mask_travels_in_the_last_row():
    raw = _raw("wifi", np.random.default_rng(3))
    raw[0, ..., [2, 9]] = np.nan  # two packets missing: filled and marked
    prepared, present = prepare_modality("wifi", raw, CONFIG)
    assert present and prepared["wifi_mask"].tolist() == [k not in (2, 9) for k in range(10)]
    image = features.features_message(ROSBAGS, _header(ROSBAGS, "wifi"), "wifi", prepared)
    assert codecs.read_float_image(image)[684].tolist() == [0.0 if k in (2, 9) else 1.0 for k in range(10)]
    _assert_same_arrays(features.read_features("wifi", image, CONFIG), prepared)
    rows = codecs.read_float_image(image).copy()
    rows[684, 0] = 0.5
    with pytest.raises(CodecError, match="only 0 and 1"):
        features.read_features("wifi", codecs.create_float_image(ROSBAGS, image.header, rows), CONFIG)
