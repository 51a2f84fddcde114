"""The driver-shaped bag (`mmhpe-ros synth-bag`): read back with rosbags, each stream checked for
its rate, frame, layout and content against the world it was simulated from."""
from __future__ import annotations

import io

import numpy as np
import pytest
import yaml
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from driver_clouds import OUSTER_FIELDS, TI_FIELDS, VELODYNE_FIELDS
from mmhpe_ros.cli import main
from mmhpe_ros.data import bag_format as fmt
from mmhpe_ros.data.driver_bag import DRIVER_BAG_KEY, RADAR_JITTER_NS, ray_index, write_driver_bag
from mmhpe_ros.data.driver_bag_spec import CSI_LAYOUTS, DriverBagSpec
from mmhpe_ros.data.synth.lidar import FULL_SCAN, scan_grid
from mmhpe_ros.data.synth.scene import environment_scene
from mmhpe_ros.data.synth.sequence import simulate_sequence
from mmhpe_ros.geometry.calibration import calibration_from_text
from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.bag_source import BagSource
from mmhpe_ros.runtime.cloud_layout import PRESETS
from mmhpe_ros.runtime.limits import check_bag

SPEC = DriverBagSpec(subject="S01", action="A13", seconds=1.0, seed=0)
MS = 1_000_000


def _read(path) -> tuple[dict[str, list[tuple[int, object]]], dict[str, str], dict[str, str]]:
    """Messages per topic as (log time, message), the topics' types and the bag's custom_data."""
    messages: dict[str, list] = {}
    with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        for connection, log_ns, raw in reader.messages():
            messages.setdefault(connection.topic, []).append((log_ns, reader.deserialize(raw, connection.msgtype)))
    custom = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]["custom_data"]
    return messages, types, custom


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("driver") / "bag"
    summary = write_driver_bag(path, SPEC, progress=False)
    messages, types, custom = _read(path)
    return path, summary, messages, types, custom


def _stamps(messages) -> np.ndarray:
    return np.array([codecs.header_stamp_ns(m) for _, m in messages])


def test_topics_types_counts_and_stamps(bag):
    path, summary, messages, types, _ = bag
    assert types == {
        "/mmfi/sequence": "std_msgs/msg/String", "/tf_static": "tf2_msgs/msg/TFMessage",
        "/mmfi/ground_truth": "geometry_msgs/msg/PoseArray", "/lidar/points": "sensor_msgs/msg/PointCloud2",
        "/radar/points": "sensor_msgs/msg/PointCloud2", "/camera/image_raw/compressed": "sensor_msgs/msg/CompressedImage",
        "/camera/camera_info": "sensor_msgs/msg/CameraInfo", "/wifi/csi": "sensor_msgs/msg/Image",
    }
    assert {topic: len(m) for topic, m in messages.items()} == summary.messages
    for topic, stream in messages.items():
        if topic != "/mmfi/sequence" and topic != "/tf_static":
            assert [log for log, _ in stream] == _stamps(stream).tolist(), topic  # log time = header stamp
    start = fmt.FIRST_SEQUENCE_NS
    everything = np.concatenate([[log for log, _ in stream] for stream in messages.values()])
    assert everything.min() == start and everything.max() < start + 1000 * MS
    assert summary.bytes == sum(p.stat().st_size for p in path.iterdir())
    check_bag(path)  # within the limits the replayer enforces
    with BagSource(path) as source:  # what `mmhpe-ros run --bag` plays
        assert source.message_count == sum(summary.messages.values())


@pytest.mark.parametrize("topic, period_ms, count, frame_id", [
    ("/mmfi/ground_truth", 100.0, 10, "base_link"),
    ("/lidar/points", 100.0, 10, "lidar"),
    ("/camera/image_raw/compressed", 1000 / 30, 30, "camera_optical"),
    ("/camera/camera_info", 1000 / 30, 30, "camera_optical"),
    ("/radar/points", 50.0, 20, "radar"),
])
def test_each_sensor_at_its_own_rate_and_frame(bag, topic, period_ms, count, frame_id):
    stream = bag[2][topic]
    stamps = _stamps(stream)
    assert len(stream) == count and {m.header.frame_id for _, m in stream} == {frame_id}
    periods = np.diff(stamps) / MS
    jitter = 2 * 3 * RADAR_JITTER_NS / MS if topic == "/radar/points" else 0.001  # stamped on receipt
    np.testing.assert_allclose(periods, period_ms, atol=jitter)
    assert abs(periods.mean() - period_ms) < 1.0
    assert (periods > 0).all()


def test_csi_irregular_rate_in_the_esp32_layout(bag):
    stream = bag[2]["/wifi/csi"]
    periods = np.diff(_stamps(stream)) / 1e9
    assert 50 <= len(stream) <= 150
    assert periods.min() >= 1 / 150 - 1e-9 and periods.max() <= 1 / 50 + 1e-9
    assert periods.std() > 0.002  # irregular, not a fixed rate
    msg = stream[0][1]
    assert (msg.encoding, msg.height, msg.width, msg.step, msg.header.frame_id) == ("complex64", 1, 52, 52 * 8, "wifi")
    iq = np.frombuffer(bytes(msg.data), dtype="<f4").reshape(1, 52, 2)
    magnitude = np.hypot(iq[..., 0], iq[..., 1])
    assert np.isfinite(iq).all() and (magnitude > 0).mean() > 0.9
    description = yaml.safe_load(bag[4][DRIVER_BAG_KEY])
    assert description["csi_subcarriers"] == list(range(-26, 0)) + list(range(1, 27))
    assert description["csi_antennas"] == 1 and description["csi_layout"] == "esp32_ht20"


def test_radar_frames_in_the_ti_driver_layout_see_the_person(bag):
    calibration = calibration_from_text(bag[4][fmt.CALIBRATION_KEY + "E01"])
    truth = {codecs.header_stamp_ns(m): codecs.read_pose_array(m) for _, m in bag[2]["/mmfi/ground_truth"]}
    near = total = 0
    for _, msg in bag[2]["/radar/points"]:
        assert [(f.name, f.offset, f.datatype) for f in msg.fields] == list(TI_FIELDS)
        assert (msg.point_step, msg.height, msg.is_bigendian) == (32, 1, False)
        points = PRESETS["ti_mmwave"].read(msg)
        base = calibration.to_base("radar").apply(points[:, :3])
        joints = truth[min(truth, key=lambda t: abs(t - codecs.header_stamp_ns(msg)))]
        distance = np.linalg.norm(base[:, None, :] - joints[None], axis=-1).min(axis=1)
        near += int((distance < 0.4).sum())
        total += len(points)
    assert total > 0 and near / total > 0.25  # many detections are the person (the rest: clutter, ghosts)


def test_lidar_full_scan_organised_in_its_own_frame(bag):
    calibration = calibration_from_text(bag[4][fmt.CALIBRATION_KEY + "E01"])
    _, msg = bag[2]["/lidar/points"][0]
    assert [(f.name, f.offset, f.datatype) for f in msg.fields] == list(OUSTER_FIELDS)
    assert (msg.height, msg.width, msg.point_step, msg.is_dense) == (32, 1024, 48, False)
    points = PRESETS["ouster"].read(msg, ("x", "y", "z"))
    returned = np.isfinite(points).all(axis=1)
    assert 10_000 < returned.sum() < 32 * 1024
    azimuth = np.degrees(np.arctan2(points[returned, 1], points[returned, 0]))
    assert np.ptp(azimuth) > 350  # 360 degrees, not MM-Fi's sector
    base = calibration.to_base("lidar").apply(points[returned])
    floor = base[:, 2] < 0.05
    assert floor.sum() > 1000 and abs(np.median(base[floor, 2])) < 0.03  # the room's floor lands at z = 0
    joints = codecs.read_pose_array(bag[2]["/mmfi/ground_truth"][0][1])
    on_body = np.linalg.norm(base[:, None] - joints[None], axis=-1).min(axis=1) < 0.25
    assert on_body.sum() > 30
    rings = codecs.read_point_columns(msg, ["ring"]).reshape(32, 1024)
    assert (rings == np.arange(32)[:, None]).all()  # row = beam, as ouster-ros organises it


def test_camera_images_and_camera_info(bag):
    from PIL import Image as PilImage

    scene = environment_scene("E01", SPEC.seed)
    _, image = bag[2]["/camera/image_raw/compressed"][0]
    _, info = bag[2]["/camera/camera_info"][0]
    assert image.format == "rgb8; jpeg compressed bgr8"
    picture = np.asarray(PilImage.open(io.BytesIO(bytes(image.data))))
    assert picture.shape == (scene.intrinsics.height, scene.intrinsics.width, 3)
    np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3), scene.intrinsics.k)
    assert (info.width, info.height) == (scene.intrinsics.width, scene.intrinsics.height)


def test_ground_truth_is_the_generated_sequence_and_calibration_is_stored(bag):
    sequence = simulate_sequence(SPEC.subject, SPEC.action, 10, SPEC.seed)
    joints = np.stack([codecs.read_pose_array(m) for _, m in bag[2]["/mmfi/ground_truth"]])
    np.testing.assert_allclose(joints, sequence.joints, atol=1e-9)
    assert [m.data for _, m in bag[2]["/mmfi/sequence"]] == ["E01/S01/A13"]
    stored = calibration_from_text(bag[4][fmt.CALIBRATION_KEY + "E01"])
    for frame, transform in sequence.calibration.extrinsics.items():
        np.testing.assert_allclose(stored.to_base(frame).matrix, transform.matrix, atol=1e-5)
    (_, tf), = bag[2]["/tf_static"]
    by_child = {t.child_frame_id: t for t in tf.transforms}
    assert set(by_child) == set(sequence.calibration.extrinsics)
    for frame, t in by_child.items():
        assert t.header.frame_id == "base_link"
        xyz = [t.transform.translation.x, t.transform.translation.y, t.transform.translation.z]
        np.testing.assert_allclose(xyz, sequence.calibration.extrinsics[frame].translation, atol=1e-9)


def test_velodyne_layout_amplitude_phase_csi_and_keypoints(tmp_path):
    spec = DriverBagSpec(seconds=0.25, lidar_driver="velodyne", camera="keypoints", csi_encoding="amplitude_phase",
                         csi_layout="intel5300", csi_rate_hz=(100.0, 100.0))
    write_driver_bag(tmp_path / "bag", spec, progress=False)
    messages, types, _ = _read(tmp_path / "bag")
    assert "/camera/image_raw/compressed" not in types and types["/camera/keypoints"] == "sensor_msgs/msg/PointCloud2"
    _, msg = messages["/lidar/points"][0]
    assert [(f.name, f.offset, f.datatype) for f in msg.fields] == list(VELODYNE_FIELDS)
    assert (msg.width, msg.height, msg.point_step) == (32, 1024, 22)  # a row per firing, a column per laser
    values = codecs.read_point_columns(msg, ["x", "y", "z", "ring"])
    elevation = np.degrees(np.arcsin(values[:, 2] / np.linalg.norm(values[:, :3], axis=1)))
    ring0, ring31 = values[:, 3] == 0, values[:, 3] == 31
    assert np.nanmax(elevation[ring0]) < np.nanmin(elevation[ring31])  # ring 0: the lowest laser
    amplitude, phase = codecs.read_csi_packet(messages["/wifi/csi"][0][1])
    assert amplitude.shape == phase.shape == (3, len(CSI_LAYOUTS["intel5300"]))
    np.testing.assert_allclose(np.diff(_stamps(messages["/wifi/csi"])), 10 * MS, atol=1)
    keypoints = codecs.read_points_array(messages["/camera/keypoints"][0][1], ["u", "v", "score"])
    assert keypoints.shape == (17, 3)


def test_ray_index_recovers_every_ray_of_the_full_scan():
    grid = scan_grid(environment_scene("E01", 0).lidar, FULL_SCAN)
    ring, column = ray_index(grid.local * 3.7, FULL_SCAN)
    expected_ring, expected_column = np.divmod(np.arange(len(grid.local)), FULL_SCAN.columns)
    np.testing.assert_array_equal(ring, expected_ring)
    np.testing.assert_array_equal(column, expected_column)


def test_command_line(tmp_path, capsys):
    out = tmp_path / "bag"
    assert main(["synth-bag", str(out), "--seconds", "0.15", "--camera", "keypoints", "--no-progress"]) == 0
    assert "wrote" in capsys.readouterr().out and (out / "metadata.yaml").is_file()
    assert main(["synth-bag", str(out), "--seconds", "0.15", "--no-progress"]) == 2  # exists
    assert "exists" in capsys.readouterr().err
    assert main(["synth-bag", str(tmp_path / "x"), "--subject", "S99", "--no-progress"]) == 2
    assert main(["synth-bag", str(tmp_path / "x"), "--csi-rate", "150", "50", "--no-progress"]) == 2
    assert not (tmp_path / "x").exists()


def test_raw_images_decode_to_the_rendered_size(tmp_path):
    from mmhpe_ros.runtime.images import image_to_array

    write_driver_bag(tmp_path / "bag", DriverBagSpec(seconds=0.05, image_format="raw"), progress=False)
    messages, types, _ = _read(tmp_path / "bag")
    assert types["/camera/image_raw"] == "sensor_msgs/msg/Image" and "/camera/image_raw/compressed" not in types
    _, image = messages["/camera/image_raw"][0]
    rgb = image_to_array(image)
    assert image.encoding == "rgb8" and rgb.shape == (480, 640, 3) and rgb.std() > 10  # a picture, not a blank


DRIVER_PARAMETERS = {  # the drivers' settings docs/bags.md lists for running the graph on such a bag
    "lidar_node": {"cloud_layout": "ouster"},
    "mmwave_node": {"cloud_layout": "ti_mmwave", "merge_frames": 2},
    "camera_node": {"use_images": True, "image_transport": "compressed"},
    "wifi_node": {"csi_layout": "esp32_ht20", "anchor_first_packet": True},
}


def test_the_graph_fuses_all_four_modalities_of_a_driver_shaped_bag(bag, tmp_path):
    """`mmhpe-ros run --bag` on the driver-shaped bag (its /tf_static skipped where tf2_msgs is not
    installed; the calibration the bag stores): fused frames with an MPJPE, the sets complete."""
    import os
    import subprocess
    import sys

    import yaml

    pytest.importorskip("mediapipe", reason="the camera node's image path needs mediapipe")
    from ros_domain import lease_domain
    from mmhpe_ros.resources import default_params_path

    path, *_ = bag
    document = yaml.safe_load(default_params_path().read_text())
    for node, values in DRIVER_PARAMETERS.items():
        document[f"/**/{node}"]["ros__parameters"].update(values)
    params = tmp_path / "driver.yaml"
    params.write_text(yaml.safe_dump(document))
    env = dict(os.environ, ROS_DOMAIN_ID=lease_domain(), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "mmhpe_ros", "run", "--bag", str(path), "--params", str(params)],
                          env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = next(line for line in done.stdout.splitlines() if line.startswith("fused "))
    fused, partial = int(summary.split()[1]), int(summary.split("(")[1].split(",")[1].split()[0])
    assert fused >= 6 and partial <= fused // 3, summary  # 10 frames in the 1 s bag
    assert "MPJPE" in summary and "n/a" not in summary, summary
