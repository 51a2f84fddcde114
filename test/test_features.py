"""Feature messages: observation arrays -> standard message -> the same arrays; empty = nobody."""
from __future__ import annotations

import numpy as np
import pytest

from mmhpe_ros.geometry.calibration import Calibration
from mmhpe_ros.geometry.transforms import RigidTransform
from mmhpe_ros.modalities import TOPICS
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.observe import RADAR_POINTS, Rig, observe_modality
from mmhpe_ros.runtime import codecs, features
from mmhpe_ros.runtime.codecs import CodecError

from hand_geometry import BASE, floor, person

CONFIG = ModelConfig(lidar_points=128, mmwave_points=16)
ROSBAGS = codecs.rosbags_types()
STAMP_NS = 1_700_000_000_123_456_789


@pytest.fixture(params=["rosbags", "rclpy"])
def types(request) -> codecs.MessageTypes:
    if request.param == "rosbags":
        return ROSBAGS
    pytest.importorskip("sensor_msgs.msg", reason="rclpy message packages not installed")
    return codecs.rclpy_types()


def observation(modality: str, rng: np.random.Generator, count: int = 7) -> dict[str, np.ndarray]:
    """One modality's observation arrays, written out by hand (shapes and dtypes of model/observe.py)."""
    if modality == "rgb":
        rays = rng.normal(size=(17, 3))
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        score = rng.uniform(0.3, 1, 17)
        rays[4], score[4] = 0.0, 0.0  # a missing keypoint
        return {"rgb_rays": rays.astype(np.float32), "rgb_origin": np.array([0.1, -0.2, 1.4], np.float32),
                "rgb_score": score.astype(np.float32)}
    if modality == "lidar":
        return {"lidar_points": rng.normal(size=(CONFIG.lidar_points, 3)).astype(np.float32)}
    if modality == "mmwave":
        points = np.zeros((RADAR_POINTS, 5), np.float32)
        points[:count] = rng.normal(size=(count, 5))
        return {"mmwave_points": points, "mmwave_valid": np.arange(RADAR_POINTS) < count}
    mask = np.ones(10, bool)
    mask[[2, 9]] = False
    return {"wifi": rng.uniform(size=(2, 3, 114, 10)).astype(np.float32), "wifi_mask": mask}


def header(types: codecs.MessageTypes):
    return codecs.make_header(types, STAMP_NS, BASE)


def assert_same_arrays(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(expected)
    for key, array in expected.items():
        assert got[key].dtype == array.dtype and got[key].shape == array.shape, key
        np.testing.assert_array_equal(got[key], array, err_msg=key)


@pytest.mark.parametrize("modality", ["rgb", "lidar", "mmwave", "wifi"])
@pytest.mark.parametrize("count", [1, 7, RADAR_POINTS])
def test_round_trip_gives_the_same_arrays(types, modality, count):
    arrays = observation(modality, np.random.default_rng(count), count)
    msg = features.features_message(types, header(types), modality, arrays)
    assert codecs.header_stamp_ns(msg) == STAMP_NS and msg.header.frame_id == BASE
    assert features.features_present(msg)
    assert_same_arrays(features.read_features(modality, msg, CONFIG), arrays)


def test_observe_modalitys_arrays_round_trip():
    """What a sensor node computes (stage 1) reads back unchanged in the fusion node."""
    rng = np.random.default_rng(5)
    rig = Rig(Calibration(BASE, 0.0, {"lidar": RigidTransform.from_xyz_rpy((0, 0, 1.0), (0, 0, 0.3))}))
    scan = np.vstack([person(3.0, 0.5, rng), floor(rng)]) - [0, 0, 1.0]
    arrays, present = observe_modality("lidar", scan, rig, CONFIG, "lidar")
    assert present
    msg = features.features_message(ROSBAGS, header(ROSBAGS), "lidar", arrays)
    assert_same_arrays(features.read_features("lidar", msg, CONFIG), arrays)


def test_carriers_are_the_documented_standard_messages():
    rng = np.random.default_rng(1)
    mmwave = observation("mmwave", rng, 7)
    msg = features.features_message(ROSBAGS, header(ROSBAGS), "mmwave", mmwave)
    assert [f.name for f in msg.fields] == ["x", "y", "z", "velocity", "intensity"]
    assert {f.datatype for f in msg.fields} == {7} and msg.width * msg.height == 7  # float32, only the real points
    np.testing.assert_array_equal(codecs.read_points_array(msg, ["velocity"])[:, 0], mmwave["mmwave_points"][:7, 3])

    lidar = observation("lidar", rng)
    msg = features.features_message(ROSBAGS, header(ROSBAGS), "lidar", lidar)
    assert [f.name for f in msg.fields] == ["x", "y", "z"] and msg.width * msg.height == CONFIG.lidar_points

    wifi = observation("wifi", rng)
    image = features.features_message(ROSBAGS, header(ROSBAGS), "wifi", wifi)
    assert (image.encoding, image.height, image.width) == ("32FC1", 685, 10)
    rows = codecs.read_float_image(image)
    # row = (channel * 3 + antenna) * 114 + subcarrier, column = packet; the last row is the mask
    channel, antenna, subcarrier, packet = 1, 2, 57, 6
    assert rows[(channel * 3 + antenna) * 114 + subcarrier, packet] == wifi["wifi"][channel, antenna, subcarrier, packet]
    assert rows[684].tolist() == [0.0 if k in (2, 9) else 1.0 for k in range(10)]

    rgb = observation("rgb", rng)
    msg = features.features_message(ROSBAGS, header(ROSBAGS), "rgb", rgb)
    assert [f.name for f in msg.fields] == ["ox", "oy", "oz", "dx", "dy", "dz", "score"]
    assert msg.width * msg.height == 17
    columns = codecs.read_points_array(msg, ["ox", "oy", "oz", "dx", "dy", "dz", "score"])
    np.testing.assert_array_equal(columns[:, :3], np.tile(rgb["rgb_origin"], (17, 1)))  # the centre on every row
    np.testing.assert_array_equal(columns[:, 3:6], rgb["rgb_rays"])
    np.testing.assert_array_equal(columns[:, 6], rgb["rgb_score"])


def test_cdr_round_trip_over_rclpy_serialisation():
    serialization = pytest.importorskip("rclpy.serialization", reason="rclpy not installed")
    from sensor_msgs.msg import Image, PointCloud2

    types = codecs.rclpy_types()
    rng = np.random.default_rng(2)
    for modality, cls in (("rgb", PointCloud2), ("lidar", PointCloud2), ("mmwave", PointCloud2), ("wifi", Image)):
        arrays = observation(modality, rng)
        msg = features.features_message(types, header(types), modality, arrays)
        received = serialization.deserialize_message(serialization.serialize_message(msg), cls)
        assert_same_arrays(features.read_features(modality, received, CONFIG), arrays)


EMPTY_SHAPES = {  # what "observed nothing" reads back as: zeros of the model's shapes
    "rgb": {"rgb_rays": (17, 3), "rgb_origin": (3,), "rgb_score": (17,)},
    "lidar": {"lidar_points": (CONFIG.lidar_points, 3)},
    "mmwave": {"mmwave_points": (RADAR_POINTS, 5), "mmwave_valid": (RADAR_POINTS,)},
    "wifi": {"wifi": (2, 3, 114, 10), "wifi_mask": (10,)},
}


@pytest.mark.parametrize("modality", ["rgb", "lidar", "mmwave", "wifi"])
def test_an_empty_message_stands_for_nobody_and_reads_as_zeros(types, modality):
    msg = features.features_message(types, header(types), modality, {})
    assert not features.features_present(msg) and msg.height * msg.width == 0
    got = features.read_features(modality, msg, CONFIG)
    assert {k: v.shape for k, v in got.items()} == EMPTY_SHAPES[modality]
    assert all(not v.any() for v in got.values())


def test_topics_come_from_modalities():
    assert features.feature_topic("lidar") == TOPICS.feature("lidar") == "mmhpe/features/lidar"
    with pytest.raises(CodecError, match="unknown modality 'depth'"):
        features.feature_topic("depth")


def test_messages_that_do_not_fit_the_model_are_refused():
    rng = np.random.default_rng(3)
    other = ModelConfig(lidar_points=64, mmwave_points=4)
    msg = features.features_message(ROSBAGS, header(ROSBAGS), "lidar", observation("lidar", rng))
    with pytest.raises(CodecError, match="128 points, the model takes 64"):
        features.read_features("lidar", msg, other)
    too_many = codecs.create_points(ROSBAGS, header(ROSBAGS), np.zeros((RADAR_POINTS + 1, 5), np.float32),
                                    ("x", "y", "z", "velocity", "intensity"))
    with pytest.raises(CodecError, match=f"{RADAR_POINTS + 1} points, at most {RADAR_POINTS}"):
        features.read_features("mmwave", too_many, CONFIG)
    rays = codecs.create_points(ROSBAGS, header(ROSBAGS), np.zeros((16, 7), np.float32),
                                ("ox", "oy", "oz", "dx", "dy", "dz", "score"))
    with pytest.raises(CodecError, match="16 keypoint rays, expected 17"):
        features.read_features("rgb", rays, CONFIG)
    bad_wifi = codecs.create_float_image(ROSBAGS, header(ROSBAGS), np.zeros((685, 9), np.float32))
    with pytest.raises(CodecError, match=r"expected \(685, 10\)"):
        features.read_features("wifi", bad_wifi, CONFIG)
    with pytest.raises(CodecError, match="fuses only"):
        features.read_features("wifi", bad_wifi, ModelConfig(modalities=("lidar",)))


def test_non_finite_values_are_refused():
    points = observation("lidar", np.random.default_rng(4))["lidar_points"]
    points[5, 1] = np.nan
    msg = codecs.create_points(ROSBAGS, header(ROSBAGS), points, ("x", "y", "z"))
    with pytest.raises(CodecError, match="non-finite values in \\['lidar_points'\\]"):
        features.read_features("lidar", msg, CONFIG)


@pytest.mark.parametrize("modality, arrays, message", [
    ("lidar", {"rgb_rays": np.zeros((17, 3))}, "missing 'lidar_points'"),
    ("rgb", {"rgb_rays": np.zeros((16, 3)), "rgb_origin": np.zeros(3), "rgb_score": np.zeros(17)},
     r"rgb_rays features: expected shape \(17, 3\)"),
    ("rgb", {"rgb_rays": np.zeros((17, 3)), "rgb_origin": np.zeros(3), "rgb_score": np.ones(3)},
     r"rgb_score features: expected shape \(17\)"),
    ("mmwave", {"mmwave_points": np.zeros((4, 5)), "mmwave_valid": np.ones(3, bool)}, "mmwave_valid must be"),
    ("wifi", {"wifi": np.zeros((2, 3, 114, 9))}, r"expected shape \(2, 3, 114, 10\)"),
    ("wifi", {"wifi": np.zeros((2, 3, 114, 10)), "wifi_mask": np.ones(9, bool)}, "wifi_mask must be"),
])
def test_features_message_checks_its_arrays(modality, arrays, message):
    with pytest.raises(CodecError, match=message):
        features.features_message(ROSBAGS, header(ROSBAGS), modality, arrays)


def test_a_wifi_mask_row_other_than_0_and_1_is_refused():
    image = features.features_message(ROSBAGS, header(ROSBAGS), "wifi", observation("wifi", np.random.default_rng(3)))
    rows = codecs.read_float_image(image).copy()
    rows[684, 0] = 0.5
    with pytest.raises(CodecError, match="only 0 and 1"):
        features.read_features("wifi", codecs.create_float_image(ROSBAGS, image.header, rows), CONFIG)
