"""`mmhpe-ros render`: pictures of the bundled sample and of a recorded run, checked where the plot's
projection puts the joints; sensor frames moved by a calibration file."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ros_domain import lease_domain
from mmhpe_ros.cli import main
from mmhpe_ros.modalities import TOPICS
from mmhpe_ros.resources import SAMPLE_BAG
from mmhpe_ros.viz.frames import FrameTransforms, pose_matrix, read_calibration, transform_points
from mmhpe_ros.viz.render import GROUND_TRUTH_COLOR, PREDICTED_COLOR, SKELETON_LABEL, View, draw_frame
from mmhpe_ros.viz.sources import evenly_spaced, read_frames

SAMPLE = Path(SAMPLE_BAG).parent  # the sample's bag directory (metadata.yaml beside sample.mcap)
RECORD_DOMAIN_ID = lease_domain()  # this file's own DDS domain for its recorded run


def _rgb(color: str) -> np.ndarray:
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def _read_skeletons(bag: Path, topic: str) -> list[tuple[int, np.ndarray]]:
    """(header stamp ns, joints (17, 3)) of every PoseArray on ``topic``, in bag order: the test's own reading."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    out = []
    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        connections = [c for c in reader.connections if c.topic == "/" + topic]
        for connection, _, raw in reader.messages(connections=connections):
            msg = reader.deserialize(raw, connection.msgtype)
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            out.append((stamp, np.array([[p.position.x, p.position.y, p.position.z] for p in msg.poses])))
    return out


def _joint_pixels(picture_frame, view: View, joints: np.ndarray) -> np.ndarray:
    """(17, 2) column, row of ``joints`` in the PNG of ``picture_frame``: matplotlib's projection of
    the 3D axes the renderer draws that frame in (``view``, the figure's geometry)."""
    from mpl_toolkits.mplot3d import proj3d

    fig = draw_frame(picture_frame, view)
    fig.canvas.draw()
    ax = next(a for a in fig.axes if a.get_label() == SKELETON_LABEL)
    xs, ys, _ = proj3d.proj_transform(joints[:, 0], joints[:, 1], joints[:, 2], ax.M)
    display = ax.transData.transform(np.column_stack([xs, ys]))  # pixels from the bottom left
    return np.column_stack([display[:, 0], fig.bbox.height - display[:, 1]])


def _color_near(image: np.ndarray, pixels: np.ndarray, color: str, radius: int, tolerance: float = 30.0) -> np.ndarray:
    """For each (column, row): is ``color`` within ``radius`` pixels of it in ``image``?"""
    found = []
    for column, row in np.rint(pixels).astype(int):
        window = image[max(row - radius, 0):row + radius + 1, max(column - radius, 0):column + radius + 1]
        found.append(bool((np.linalg.norm(window - _rgb(color), axis=-1) <= tolerance).any()))
    return np.array(found)


def test_evenly_spaced_frames():
    assert evenly_spaced(5, None) == [0, 1, 2, 3, 4] == evenly_spaced(5, 9)
    assert evenly_spaced(50, 1) == [25]
    assert evenly_spaced(50, 3) == [0, 24, 49] or evenly_spaced(50, 3) == [0, 25, 49]
    assert evenly_spaced(0, 1) == []


def test_render_of_the_sample_writes_pngs_and_a_gif_with_the_truth_where_the_projection_puts_it(tmp_path, capsys):
    out = tmp_path / "pictures"
    assert main(["render", str(SAMPLE), "--out", str(out), "--frames", "4", "--no-progress"]) == 0
    pngs = sorted(out.glob("skeleton_*.png"))
    assert [p.name for p in pngs] == [f"skeleton_{i:04d}.png" for i in range(4)]
    with Image.open(out / "skeleton.gif") as gif:
        assert gif.is_animated and gif.n_frames == 4
    assert "picture: " in capsys.readouterr().out

    truth = _read_skeletons(SAMPLE, TOPICS.ground_truth)
    index = evenly_spaced(len(truth), 4)[1]  # the second picture
    frames = read_frames(SAMPLE, 4)
    view = View.fit(frames)  # one view for all pictures of a render
    frame = frames[1]
    np.testing.assert_allclose(frame.ground_truth, truth[index][1])
    image = np.asarray(Image.open(pngs[1]).convert("RGB"), dtype=float)
    at_joints = _color_near(image, _joint_pixels(frame, view, truth[index][1]), GROUND_TRUTH_COLOR, radius=2)
    assert at_joints.all(), f"joints without the ground truth's colour: {np.flatnonzero(~at_joints)}"
    elsewhere = _color_near(image, _joint_pixels(frame, view, truth[index][1] + [0.0, 0.0, 0.6]),
                            GROUND_TRUTH_COLOR, radius=2)
    assert elsewhere.sum() < at_joints.sum()  # the check can fail: 60 cm higher, mostly no skeleton


def test_calibration_file_moves_a_sensor_frame(tmp_path):
    calibration = tmp_path / "rig.yaml"
    calibration.write_text("/**:\n  ros__parameters:\n    base_frame: base_link\n    ground_height: 0.0\n"
                           "    extrinsics:\n      lidar: {xyz: [1.0, 2.0, 3.0], rpy: [0.0, 0.0, 1.5707963267948966]}\n"
                           "      radar: {xyz: [0.0, 0.0, 0.5], rpy: [0.0, 0.0, 0.0]}\n")
    transforms = read_calibration(calibration)
    assert transforms.base_frame == "base_link" and set(transforms.poses) == {"lidar", "radar"}
    points = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    # yaw +90 deg: x -> y, y -> -x; then the translation
    expected = np.array([[1.0, 3.0, 3.0], [0.0, 2.0, 3.0]])
    np.testing.assert_allclose(transform_points(transforms.between("base_link", "lidar"), points), expected, atol=1e-12)
    np.testing.assert_allclose(transform_points(transforms.between("radar", "lidar"), points),
                               expected - [0.0, 0.0, 0.5], atol=1e-12)
    with pytest.warns(UserWarning, match="mmfi"):
        np.testing.assert_allclose(transforms.between("mmfi", "lidar"), transforms.pose("lidar"))
    assert np.array_equal(FrameTransforms().between("mmfi", "lidar"), np.eye(4))  # no file: identity, no warning


def test_a_bad_calibration_file_is_refused_with_its_name(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("/**:\n  ros__parameters:\n    extrinsics:\n      lidar: {xyz: [0.0, 1.0], rpy: [0, 0, 0]}\n")
    with pytest.raises(ValueError, match="bad.yaml.*lidar"):
        read_calibration(bad)
    assert main(["render", str(SAMPLE), "--out", str(tmp_path / "x"), "--calibration", str(bad)]) == 2
    with pytest.raises(ValueError, match="3 finite"):
        pose_matrix([0, 0, float("nan")], [0, 0, 0])


def test_clouds_are_drawn_in_the_skeleton_frame_through_the_calibration(tmp_path):
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    from mmhpe_ros.runtime.codecs import read_points_array

    calibration = tmp_path / "rig.yaml"
    calibration.write_text("/**:\n  ros__parameters:\n    base_frame: mmfi\n    extrinsics:\n"
                           "      lidar: {xyz: [0.5, 0.0, 1.0], rpy: [0.0, 0.0, 3.141592653589793]}\n")
    with pytest.warns(UserWarning, match="radar"):  # the file names no radar pose
        frame = read_frames(SAMPLE, 1, read_calibration(calibration))[0]
    plain = read_frames(SAMPLE, 1)[0]
    with AnyReader([SAMPLE], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        connection = next(c for c in reader.connections if c.topic == "/" + TOPICS.lidar_points)
        clouds = [read_points_array(reader.deserialize(raw, connection.msgtype), ("x", "y", "z"))
                  for _, _, raw in reader.messages(connections=[connection])]
    cloud = clouds[evenly_spaced(len(clouds), 1)[0]]
    np.testing.assert_allclose(plain.points["lidar"], cloud)
    # yaw 180 deg: (x, y, z) -> (-x, -y, z), then + (0.5, 0, 1)
    np.testing.assert_allclose(frame.points["lidar"], np.column_stack([0.5 - cloud[:, 0], -cloud[:, 1],
                                                                       cloud[:, 2] + 1.0]), atol=1e-9)
    np.testing.assert_allclose(frame.points["radar"], plain.points["radar"])  # not in the file: identity


def test_a_missing_or_unreadable_source_exits_2(tmp_path, capsys):
    assert main(["render", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert main(["render", str(tmp_path / "junk.npz"), "--out", str(tmp_path / "o")]) == 2
    assert "not an evaluation" in capsys.readouterr().err


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A bag of `mmhpe-ros run --record` (its own process and DDS domain) over the sample at x4."""
    pytest.importorskip("rclpy", reason="rclpy not installed")
    out = tmp_path_factory.mktemp("run") / "bag"
    env = dict(os.environ, ROS_DOMAIN_ID=RECORD_DOMAIN_ID, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "mmhpe_ros", "run", "--rate", "4", "--record", str(out)],
                          env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_a_recorded_run_holds_what_a_picture_needs(recorded):
    from rosbags.highlevel import AnyReader

    with AnyReader([recorded]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    for topic in (TOPICS.joints, TOPICS.ground_truth, TOPICS.lidar_points, TOPICS.mmwave_points, TOPICS.camera_keypoints):
        assert counts.get("/" + topic, 0) >= 40, counts  # about all 50 frames of the sample


def test_a_recorded_run_stores_the_rig_it_ran_with(recorded):
    """The run's calibration (the sample bag's) goes into the recording, so render can place the points."""
    from mmhpe_ros.data.bags import bag_calibration
    from mmhpe_ros.resources import SAMPLE_BAG

    stored, ran_with = bag_calibration(recorded), bag_calibration(SAMPLE_BAG)
    assert stored is not None and ran_with is not None
    assert stored.base_frame == ran_with.base_frame and sorted(stored.extrinsics) == sorted(ran_with.extrinsics)
    for frame, transform in ran_with.extrinsics.items():
        np.testing.assert_allclose(stored.extrinsics[frame].matrix, transform.matrix, atol=1e-5)


def test_render_of_a_recorded_run_shows_the_prediction_where_the_projection_puts_its_joints(recorded, tmp_path, capsys):
    out = tmp_path / "one"
    assert main(["render", str(recorded), "--out", str(out), "--frames", "1", "--name", "demo", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"picture: {out / 'demo_0000.png'}" in printed and "MPJPE" in printed
    assert not (out / "demo.gif").exists()  # one frame: no animation

    predicted = _read_skeletons(recorded, TOPICS.joints)
    stamp, joints = predicted[len(predicted) // 2]  # --frames 1: the middle one
    truth = dict(_read_skeletons(recorded, TOPICS.ground_truth))[stamp]
    frame = read_frames(recorded, 1)[0]
    np.testing.assert_allclose(frame.predicted, joints)
    np.testing.assert_allclose(frame.ground_truth, truth)
    assert frame.keypoints is not None and frame.keypoints.shape == (17, 2) and set(frame.points) == {"lidar", "radar"}
    mpjpe = np.linalg.norm(joints - truth, axis=1).mean() * 1000.0
    assert f"MPJPE {mpjpe:.1f} mm" in printed

    image = np.asarray(Image.open(out / "demo_0000.png").convert("RGB"), dtype=float)
    view = View.fit([frame])
    pixels = _joint_pixels(frame, view, joints)
    assert ((pixels >= 0) & (pixels < image.shape[1::-1])).all()
    on_prediction = _color_near(image, pixels, PREDICTED_COLOR, radius=1)
    assert on_prediction.all(), f"joints without the prediction's colour: {np.flatnonzero(~on_prediction)}"
    assert _color_near(image, _joint_pixels(frame, view, truth), GROUND_TRUTH_COLOR, radius=4).sum() >= 12
    share = (np.linalg.norm(image - _rgb(PREDICTED_COLOR), axis=-1) <= 30).mean()
    assert 0 < share < 0.05  # a skeleton, not a painted picture


def test_render_of_an_evaluation(tmp_path):
    from mmhpe_ros.data.frames import SequenceKey
    from mmhpe_ros.viz.sources import EVALUATION_FRAMES, write_evaluation_frames

    rng = np.random.default_rng(0)
    truth = rng.normal(0, 0.3, (3, 17, 3)) + [3.0, 0.0, 1.0]
    predicted = truth + rng.normal(0, 0.02, truth.shape)
    keys = [(SequenceKey("E01", "S01", "A13"), i) for i in range(3)]
    write_evaluation_frames(tmp_path / EVALUATION_FRAMES, predicted, truth, keys, ["lidar"])
    frames = read_frames(tmp_path, None)
    assert [f.label for f in frames] == ["E01/S01/A13 frame 1", "E01/S01/A13 frame 2", "E01/S01/A13 frame 3"]
    assert frames[2].mpjpe_mm == pytest.approx(np.linalg.norm(predicted[2] - truth[2], axis=1).mean() * 1000, abs=1e-3)
    assert main(["render", str(tmp_path), "--out", str(tmp_path / "p"), "--no-progress"]) == 0
    assert len(list((tmp_path / "p").glob("skeleton_*.png"))) == 3 and (tmp_path / "p" / "skeleton.gif").is_file()
