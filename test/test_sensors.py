"""Sensor processors: the messages the bags carry -> what each modality observed, in the base frame.

Expected values are computed here by hand from the scene's known geometry (hand_geometry: mounts as
hand-written rotation matrices, a pinhole projection), not by the production code."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mmhpe_ros.data.bag_format import encode_points, frame_messages
from mmhpe_ros.data.frames import Frame, SequenceKey
from mmhpe_ros.geometry.calibration import Calibration, MissingTransformError
from mmhpe_ros.geometry.camera import CameraIntrinsics
from mmhpe_ros.geometry.transforms import RigidTransform
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.inputs import prepare_csi
from mmhpe_ros.model.observe import RADAR_POINTS, Rig, observation_roots
from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.codecs import CodecError
from mmhpe_ros.runtime.sensors import CloudProcessor, CsiProcessor, KeypointProcessor, model_config

from hand_geometry import (
    BASE, CAMERA_MOUNT, LIDAR_MOUNT, RADAR_MOUNT, floor, nearest_distance, person, pinhole_rays, rpy_matrix,
    to_sensor,
)

CONFIG = ModelConfig(lidar_points=256, mmwave_points=32)
TYPES = codecs.rosbags_types()
STAMP_NS = 3_000_000_000
FX, FY, CX, CY = 500.0, 520.0, 320.0, 240.0
CAMERA = CameraIntrinsics.pinhole(640, 480, FX, FY, CX, CY)


def rig(**extra) -> Rig:
    extrinsics = {"lidar": RigidTransform.from_xyz_rpy(*LIDAR_MOUNT), "radar": RigidTransform.from_xyz_rpy(*RADAR_MOUNT),
                  "camera_optical": RigidTransform.from_xyz_rpy(*CAMERA_MOUNT), **extra}
    return Rig(Calibration(BASE, 0.0, extrinsics, {"camera_optical": CAMERA}))


def header(frame_id: str):
    return codecs.make_header(TYPES, STAMP_NS, frame_id)


# -- camera keypoints -> rays --------------------------------------------------------------------


def keypoints(rng: np.random.Generator) -> np.ndarray:
    """17 (u, v, score): inside the image, except #3 (NaN), #5 (off the image), #8 (score 0)."""
    kp = np.column_stack([rng.uniform(20, 620, 17), rng.uniform(20, 460, 17), rng.uniform(0.4, 1.0, 17)])
    kp[3, :2] = np.nan
    kp[5, 0] = 700.0
    kp[8, 2] = 0.0
    return kp


def test_keypoint_rays_are_the_pinhole_rays_turned_into_the_base_frame():
    kp = keypoints(np.random.default_rng(0))
    msg = codecs.create_points(TYPES, header("camera_optical"), kp, ["u", "v", "score"])
    features = KeypointProcessor(CONFIG, rig()).process(msg)
    assert features.present and features.frame_id == BASE and features.stamp_ns == STAMP_NS
    usable = np.ones(17, bool)
    usable[[3, 5, 8]] = False
    expected = pinhole_rays(kp[usable, :2], FX, FY, CX, CY) @ rpy_matrix(CAMERA_MOUNT[1]).T
    got = features.arrays
    np.testing.assert_allclose(got["rgb_rays"][usable], expected, atol=1e-6)
    np.testing.assert_array_equal(got["rgb_rays"][~usable], 0.0)
    np.testing.assert_allclose(got["rgb_origin"], CAMERA_MOUNT[0], atol=1e-6)
    np.testing.assert_allclose(got["rgb_score"], np.where(usable, kp[:, 2], 0.0), atol=1e-6)


def test_rays_point_at_the_keypoints_they_came_from():
    """Project known base-frame points with the mount and K by hand: the rays go back through them."""
    rng = np.random.default_rng(1)
    points = np.column_stack([rng.uniform(2.5, 3.5, 17), rng.uniform(-0.5, 1.5, 17), rng.uniform(0.1, 1.8, 17)])
    optical = to_sensor(points, CAMERA_MOUNT)
    uv = np.column_stack([FX * optical[:, 0] / optical[:, 2] + CX, FY * optical[:, 1] / optical[:, 2] + CY])
    assert ((uv > 0) & (uv < [640, 480])).all()
    features = KeypointProcessor(CONFIG, rig()).from_keypoints(uv, STAMP_NS, "camera_optical")
    towards = points - np.asarray(CAMERA_MOUNT[0])
    np.testing.assert_allclose(features.arrays["rgb_rays"], towards / np.linalg.norm(towards, axis=1, keepdims=True),
                               atol=1e-6)


def camera_info(width: int, height: int, k, binning: int = 0, roi=(0, 0, 0, 0)) -> SimpleNamespace:
    x_offset, y_offset, roi_width, roi_height = roi
    return SimpleNamespace(width=width, height=height, k=list(k), d=[], distortion_model="plumb_bob",
                           binning_x=binning, binning_y=binning,
                           roi=SimpleNamespace(x_offset=x_offset, y_offset=y_offset, width=roi_width, height=roi_height))


def test_a_camera_info_of_another_resolution_gives_the_rays_of_the_keypoints_scaled():
    kp = keypoints(np.random.default_rng(2))
    kp[5, 0] = 600.0  # inside both images here
    calibrated = KeypointProcessor(CONFIG, rig()).from_keypoints(kp, STAMP_NS, "camera_optical")
    double = KeypointProcessor(CONFIG, rig())  # a 1280 x 960 stream of the same camera (pixel centres at integers)
    double.set_camera_info(camera_info(1280, 960, [2 * FX, 0, 2 * CX + 0.5, 0, 2 * FY, 2 * CY + 0.5, 0, 0, 1]))
    scaled = kp.copy()
    scaled[:, :2] = 2 * kp[:, :2] + 0.5
    got = double.from_keypoints(scaled, STAMP_NS, "camera_optical")
    for key in ("rgb_rays", "rgb_origin", "rgb_score"):
        np.testing.assert_allclose(got.arrays[key], calibrated.arrays[key], atol=1e-6, err_msg=key)
    # the CameraInfo wins over the calibration's intrinsics: unscaled pixels give other rays
    other = double.from_keypoints(kp, STAMP_NS, "camera_optical").arrays["rgb_rays"]
    assert np.abs(other - calibrated.arrays["rgb_rays"]).max() > 0.05
    assert not double.nominal_intrinsics


SENSOR_K = [2 * FX, 0, 2 * CX + 0.5, 0, 2 * FY, 2 * CY + 0.5, 0, 0, 1]  # the calibrated camera's 1280 x 960 sensor


def test_a_binned_camera_info_gives_the_rays_of_the_image_it_describes():
    """REP 104: K of the full 1280 x 960 sensor, images binned 2 x 2 to 640 x 480: keypoints in the
    binned image's pixels give the rays of the calibrated 640 x 480 camera."""
    kp = keypoints(np.random.default_rng(5))
    calibrated = KeypointProcessor(CONFIG, rig()).from_keypoints(kp, STAMP_NS, "camera_optical")
    binned = KeypointProcessor(CONFIG, rig())
    binned.set_camera_info(camera_info(1280, 960, SENSOR_K, binning=2))
    assert (binned.camera_info.width, binned.camera_info.height) == (640, 480)
    got = binned.from_keypoints(kp, STAMP_NS, "camera_optical")
    np.testing.assert_allclose(got.arrays["rgb_rays"], calibrated.arrays["rgb_rays"], atol=1e-6)
    np.testing.assert_array_equal(got.arrays["rgb_score"] > 0, calibrated.arrays["rgb_score"] > 0)


def test_a_camera_info_roi_shifts_the_pixels_onto_the_sensor():
    """A 400 x 300 region at (600, 500) of the 1280 x 960 sensor: image pixel (u, v) is sensor
    pixel (u + 600, v + 500)."""
    rng = np.random.default_rng(6)
    uv = np.column_stack([rng.uniform(0, 399, 17), rng.uniform(0, 299, 17)])
    cropped = KeypointProcessor(CONFIG, rig())
    cropped.set_camera_info(camera_info(1280, 960, SENSOR_K, roi=(600, 500, 400, 300)))
    got = cropped.from_keypoints(uv, STAMP_NS, "camera_optical").arrays
    expected = pinhole_rays(uv + [600, 500], 2 * FX, 2 * FY, 2 * CX + 0.5, 2 * CY + 0.5) @ rpy_matrix(CAMERA_MOUNT[1]).T
    np.testing.assert_allclose(got["rgb_rays"], expected, atol=1e-6)
    outside = cropped.from_keypoints(uv + [0, 300], STAMP_NS, "camera_optical")  # below the 300-row image
    assert not outside.present


def test_an_uncalibrated_camera_info_is_ignored_and_no_intrinsics_fall_back_to_mmfis_camera():
    processor = KeypointProcessor(CONFIG, rig())
    processor.set_camera_info(camera_info(640, 480, [0.0] * 9))  # K all zero: uncalibrated
    kp = keypoints(np.random.default_rng(3))
    np.testing.assert_allclose(processor.from_keypoints(kp, STAMP_NS, "camera_optical").arrays["rgb_rays"][0],
                               pinhole_rays(kp[:1, :2], FX, FY, CX, CY)[0] @ rpy_matrix(CAMERA_MOUNT[1]).T, atol=1e-6)
    assert not processor.nominal_intrinsics
    bare = Rig(Calibration(BASE, 0.0, {"cam": RigidTransform.identity()}))
    nominal = KeypointProcessor(CONFIG, bare)
    nominal.from_keypoints(kp, STAMP_NS, "cam")
    assert nominal.nominal_intrinsics  # the node warns


def test_keypoints_without_score_all_missing_and_malformed():
    processor = KeypointProcessor(CONFIG, rig())
    kp = keypoints(np.random.default_rng(4))[:, :2].astype(np.float32)
    features = processor.process(codecs.create_points(TYPES, header("camera_optical"), kp, ["u", "v"]))
    np.testing.assert_array_equal(features.arrays["rgb_score"] > 0, np.isfinite(kp).all(axis=1) & (kp[:, 0] < 640))
    nobody = processor.process(encode_points(TYPES, header("camera_optical"), "rgb", np.full((17, 2), np.nan)))
    assert not nobody.present and nobody.arrays == {}
    with pytest.raises(CodecError, match=r"expected 17 points.*\(16, 3\)"):
        processor.process(encode_points(TYPES, header("camera_optical"), "rgb", np.zeros((16, 2))))
    with pytest.raises(CodecError, match="no field 'u'"):
        processor.process(codecs.create_points(TYPES, header("camera_optical"), np.zeros((17, 2)), ["x", "v"]))


# -- missing transforms --------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: KeypointProcessor(CONFIG, rig()).process(encode_points(TYPES, header("webcam"), "rgb", np.zeros((17, 2)))),
    lambda: CloudProcessor("lidar", CONFIG, rig()).process(encode_points(TYPES, header("webcam"), "lidar", np.ones((30, 3)))),
    lambda: CloudProcessor("mmwave", CONFIG, rig()).process_points(np.ones((3, 5)), STAMP_NS, "webcam"),
])
def test_a_frame_without_extrinsics_raises_naming_both_frames(make):
    with pytest.raises(MissingTransformError, match=r"no transform from frame 'webcam' to 'base_link'.*lidar"):
        make()


def test_the_base_frame_itself_needs_no_extrinsics():
    scan = np.vstack([person(3.0, 1.0, np.random.default_rng(5)), floor(np.random.default_rng(6))])
    features = CloudProcessor("lidar", CONFIG, Rig(Calibration(BASE))).process_points(scan, STAMP_NS, BASE)
    assert features.present
    assert nearest_distance(features.arrays["lidar_points"], scan).max() < 1e-5  # unmoved


# -- LiDAR -----------------------------------------------------------------------------------------


def lidar_scan(x: float, y: float, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """(the scan in the LiDAR's frame, the person's points in the base frame)."""
    rng = np.random.default_rng(seed)
    body = person(x, y, rng)
    return to_sensor(np.vstack([body, floor(rng)]), LIDAR_MOUNT), body


def test_lidar_person_found_and_moved_into_the_base_frame_by_its_extrinsics():
    scan, body = lidar_scan(3.0, -1.0)
    scan[[4, 9]] = np.nan
    msg = encode_points(TYPES, header("lidar"), "lidar", scan)
    features = CloudProcessor("lidar", CONFIG, rig()).process(msg)
    assert features.present and features.frame_id == BASE and features.non_finite == 2
    points = features.arrays["lidar_points"]
    assert points.shape == (CONFIG.lidar_points, 3) and points.dtype == np.float32
    assert nearest_distance(points, body).max() < 1e-4  # each one of the person's points, in the base frame
    assert len(np.unique(points, axis=0)) == CONFIG.lidar_points  # strided over ~1500, no repeats
    observed = {"lidar_points": points, "observed": np.array([True])}
    root = observation_roots(observed, ("lidar",), 0.0)["lidar"]
    assert np.hypot(root[0] - 3.0, root[1] + 1.0) < 0.05 and root[2] == 0.0


def test_lidar_with_a_wrong_extrinsic_does_not_find_the_person_where_it_is():
    scan, _ = lidar_scan(3.0, -1.0)
    wrong = rig(lidar=RigidTransform.from_xyz_rpy(LIDAR_MOUNT[0], (0.0, 0.0, 0.0)))
    features = CloudProcessor("lidar", CONFIG, wrong).process_points(scan, STAMP_NS, "lidar")
    if features.present:  # the tilted floor may be cut into something person-shaped: not at the person
        centre = features.arrays["lidar_points"][:, :2].mean(axis=0)
        assert np.hypot(centre[0] - 3.0, centre[1] + 1.0) > 0.3


def test_an_empty_scene_is_observed_as_nobody():
    rng = np.random.default_rng(8)
    wall = np.column_stack([np.full(2000, 5.5), rng.uniform(-3, 3, 2000), rng.uniform(0, 2.6, 2000)])  # too wide
    scan = to_sensor(np.vstack([floor(rng), wall]), LIDAR_MOUNT)
    processor = CloudProcessor("lidar", CONFIG, rig())
    features = processor.process_points(scan, STAMP_NS, "lidar")
    assert not features.present and features.arrays == {} and features.frame_id == BASE
    assert processor.counts.outside >= 3000 - 50  # the floor
    all_nan = processor.process(encode_points(TYPES, header("lidar"), "lidar", np.full((6, 3), np.nan)))
    assert not all_nan.present and all_nan.non_finite == 6


def test_a_short_person_cluster_is_repeated_to_the_models_point_count():
    rng = np.random.default_rng(9)
    body = person(2.0, 0.5, rng, points=100)
    features = CloudProcessor("lidar", CONFIG, rig()).process_points(to_sensor(body, LIDAR_MOUNT), STAMP_NS, "lidar")
    points = features.arrays["lidar_points"]
    assert len(np.unique(points, axis=0)) == 100 and nearest_distance(points, body).max() < 1e-4


# -- radar -----------------------------------------------------------------------------------------


def test_radar_points_in_the_search_region_of_the_base_frame_keep_doppler_and_intensity():
    rng = np.random.default_rng(10)
    base = np.column_stack([rng.uniform(-1, 8, 60), rng.uniform(-4, 4, 60), rng.uniform(-0.5, 3, 60),
                            rng.normal(0, 1, 60), rng.uniform(5, 30, 60)])
    raw = to_sensor(base, RADAR_MOUNT)
    raw[11, 3] = np.inf
    features = CloudProcessor("mmwave", CONFIG, rig()).process_points(raw, STAMP_NS, "radar")
    x, y, z = base[:, 0], base[:, 1], base[:, 2]
    inside = (x >= 0.2) & (x <= 10) & (y >= -6) & (y <= 6) & (z >= -0.3) & (z <= 2.5)  # SearchRegion()
    inside[11] = False
    valid = features.arrays["mmwave_valid"]
    assert valid.shape == (RADAR_POINTS,) and valid.sum() == inside.sum() > 10 and valid[:inside.sum()].all()
    np.testing.assert_allclose(features.arrays["mmwave_points"][valid], base[inside], atol=1e-4)
    np.testing.assert_array_equal(features.arrays["mmwave_points"][~valid], 0.0)
    assert features.non_finite == 1


def test_a_driver_cloud_decodes_by_name_and_datatype():
    """float32 radar fields in another order, with aliases, padding and an extra field; in the base frame."""
    rng = np.random.default_rng(2)
    raw = np.column_stack([rng.uniform(1, 5, 40), rng.uniform(-2, 2, 40), rng.uniform(0, 2, 40),
                           rng.normal(size=40), rng.uniform(1, 9, 40)]).astype(np.float32)
    cloud = np.zeros(40, dtype=np.dtype({
        "names": ["intensity", "x", "range", "y", "z", "doppler"],
        "formats": ["<f4", "<f4", "<f8", "<f4", "<f4", "<f4"],
        "offsets": [0, 4, 8, 20, 24, 32], "itemsize": 40,
    }))
    cloud["x"], cloud["y"], cloud["z"], cloud["doppler"], cloud["intensity"] = raw.T
    msg = SimpleNamespace(
        header=header(BASE), height=1, width=40, point_step=40, row_step=1600, is_bigendian=False,
        fields=[SimpleNamespace(name=n, offset=cloud.dtype.fields[n][1], datatype=8 if n == "range" else 7, count=1)
                for n in cloud.dtype.names],
        data=cloud.view(np.uint8).reshape(-1), is_dense=True,
    )
    features = CloudProcessor("mmwave", CONFIG, rig()).process(msg)
    np.testing.assert_array_equal(features.arrays["mmwave_points"][:40], raw)
    assert features.arrays["mmwave_valid"].sum() == 40


def test_agrees_with_sensor_msgs_py():
    point_cloud2 = pytest.importorskip(
        "sensor_msgs_py.point_cloud2", reason="sensor_msgs_py ships with a ROS install, not on PyPI")
    types = codecs.rclpy_types()
    raw = np.random.default_rng(3).uniform(0.5, 2, size=(100, 5))
    msg = encode_points(types, codecs.make_header(types, STAMP_NS, BASE), "mmwave", raw)
    theirs = point_cloud2.read_points_numpy(msg, field_names=["x", "y", "z", "velocity", "intensity"])
    got = CloudProcessor("mmwave", CONFIG, rig()).process(msg).arrays
    np.testing.assert_array_equal(got["mmwave_points"][:100], theirs.astype(np.float32))  # features are float32


# -- CSI ---------------------------------------------------------------------------------------------


def test_csi_packets_as_the_bags_carry_them_give_the_windows_csi():
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
        expected, _ = prepare_csi(frame.data["wifi"], CONFIG)
        assert features.present and features.arrays["wifi_mask"].all()
        amplitude = features.arrays["wifi"][0]
        assert amplitude.min() == 0.0 and amplitude.max() == 1.0  # min-max normalised
        for key in ("wifi", "wifi_mask"):
            np.testing.assert_array_equal(features.arrays[key], expected[key])
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
