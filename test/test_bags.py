"""MM-Fi frames -> rosbag2 MCAP bags -> BagDataset: same arrays, documented topics and stamps."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.interfaces import QosDurability
from rosbags.typesys import Stores, get_typestore

from mmhpe_ros.data import bag_format as fmt
from mmhpe_ros.data.bags import BagDataset, convert
from mmhpe_ros.data.frames import Frame, SequenceKey
from mmhpe_ros.modalities import (
    CSI_PACKETS_PER_FRAME, FRAME_IDS, KEYPOINT_FIELDS, LIDAR_FIELDS, MMWAVE_FIELDS,
)
from mmhpe_ros.runtime import codecs

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
KEYS = (SequenceKey("E01", "S01", "A02"), SequenceKey("E01", "S03", "A02"), SequenceKey("E02", "S12", "A27"))
INDICES = (0, 1, 2, 5, 296)  # MM-Fi frames can be missing: indices need not be contiguous


def make_frame(key: SequenceKey, index: int, rng: np.random.Generator,
               joints_dtype=np.float64) -> Frame:
    """A frame shaped like MM-Fi's files, with the awkward values real data has."""
    wifi = np.stack([rng.uniform(0, 40, (3, 114, 10)), rng.uniform(-np.pi, np.pi, (3, 114, 10))])
    wifi[0, 2, 5, 3] = np.inf  # MM-Fi amplitudes contain inf
    lidar = rng.normal(size=(int(rng.integers(0, 400)), 3))
    mmwave = rng.normal(size=(int(rng.integers(1, 40)), 5))
    mmwave[0, 3] = np.nan
    data = {"rgb": rng.uniform(0, 640, (17, 2)).astype(np.float32), "lidar": lidar,
            "mmwave": mmwave, "wifi": wifi}
    if index == 2:
        del data["lidar"]  # this modality's file is missing for this frame
    if index == 5:
        data["lidar"] = np.empty((0, 3))  # present but empty
    return Frame(key, index, rng.normal(size=(17, 3)).astype(joints_dtype), data)


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    rng = np.random.default_rng(7)
    return [make_frame(key, index, rng) for key in KEYS for index in INDICES]


def assert_same_frame(got: Frame, want: Frame) -> None:
    assert (got.key, got.index) == (want.key, want.index)
    assert got.joints.dtype == want.joints.dtype and np.array_equal(got.joints, want.joints)
    assert sorted(got.data) == sorted(want.data), (want.key, want.index)
    for modality, array in want.data.items():
        decoded = got.data[modality]
        assert decoded.dtype == array.dtype and decoded.shape == array.shape, modality
        assert decoded.tobytes() == array.tobytes(), modality  # bit-identical, NaN/inf included
        assert decoded.flags.writeable


def test_per_sequence_bags_read_back_equal(frames, tmp_path):
    paths = convert(frames, tmp_path / "bags", progress=False)
    assert [p.name for p in paths] == ["E01_S01_A02", "E01_S03_A02", "E02_S12_A27"]
    dataset = BagDataset(tmp_path / "bags")
    assert len(dataset) == len(frames)
    assert dataset.index == [(f.key, f.index) for f in frames]
    for got, want in zip(dataset, frames, strict=True):
        assert_same_frame(got, want)
    for position in (7, 0, len(frames) - 1, 3):  # random access, any order
        assert_same_frame(dataset[position], frames[position])


def test_joints_dtype_is_kept_and_must_not_change_within_a_bag(tmp_path):
    rng = np.random.default_rng(1)
    single = [make_frame(KEYS[0], index, rng, np.float32) for index in (0, 1)]
    convert(single, tmp_path / "f32", progress=False)
    for got, want in zip(BagDataset(tmp_path / "f32"), single, strict=True):
        assert_same_frame(got, want)
    mixed = single + [make_frame(KEYS[1], 0, rng, np.float64)]
    with pytest.raises(fmt.BagFormatError, match="joints are float64"):
        convert(mixed, tmp_path / "mixed", per="split", split=lambda key: "all", progress=False)


def test_per_split_bags_and_regrouping(frames, tmp_path):
    split = {KEYS[0]: "train", KEYS[1]: "val", KEYS[2]: "train"}.get
    paths = convert(frames, tmp_path / "splits", per="split", split=split, progress=False)
    assert sorted(p.name for p in paths) == ["train", "val"]
    train = BagDataset(tmp_path / "splits" / "train")
    want = [f for f in frames if split(f.key) == "train"]
    assert train.index == [(f.key, f.index) for f in want]
    for position, frame in enumerate(want):
        assert_same_frame(train[position], frame)
    both = BagDataset([tmp_path / "splits" / "train", tmp_path / "splits" / "val"])
    assert len(both) == len(frames)


def test_split_can_leave_sequences_out(frames, tmp_path):
    split = lambda key: "val" if key.subject == "S03" else None  # noqa: E731
    convert(frames, tmp_path / "val_only", per="split", split=split, progress=False)
    dataset = BagDataset(tmp_path / "val_only")
    assert {key for key, _ in dataset.index} == {KEYS[1]}


def _raw_messages(bag: Path) -> list[tuple[str, int, object, object]]:
    with AnyReader([bag], default_typestore=TYPESTORE) as reader:
        return [(c.topic, t, reader.deserialize(raw, c.msgtype), c)
                for c, t, raw in reader.messages()]


def test_topics_types_frame_ids_and_stamps(frames, tmp_path):
    split = lambda key: "all"  # noqa: E731
    convert(frames, tmp_path / "one", per="split", split=split, progress=False)
    messages = _raw_messages(tmp_path / "one" / "all")
    types = {c.topic: c.msgtype for _, _, _, c in messages}
    assert types == {
        "/mmfi/sequence": "std_msgs/msg/String",
        "/mmfi/ground_truth": "geometry_msgs/msg/PoseArray",
        "/camera/keypoints": "sensor_msgs/msg/PointCloud2",
        "/lidar/points": "sensor_msgs/msg/PointCloud2",
        "/radar/points": "sensor_msgs/msg/PointCloud2",
        "/wifi/csi": "sensor_msgs/msg/Image",
    }
    stamps = [t for _, t, _, _ in messages]
    assert stamps == sorted(stamps)

    markers = [(t, msg.data) for topic, t, msg, _ in messages if topic == "/mmfi/sequence"]
    assert [data for _, data in markers] == [str(key) for key in KEYS]
    starts = [t for t, _ in markers]
    assert starts[0] == fmt.FIRST_SEQUENCE_NS
    for previous, start in zip(starts, starts[1:]):  # 297 frames at 10 Hz, then a 1 s gap
        assert start == previous + (INDICES[-1] + 1) * 100_000_000 + 1_000_000_000
    marker_connection = next(c for topic, _, _, c in messages if topic == "/mmfi/sequence")
    assert marker_connection.ext.offered_qos_profiles[0].durability == QosDurability.TRANSIENT_LOCAL

    frame_ids = {"/mmfi/ground_truth": FRAME_IDS["base"], "/camera/keypoints": FRAME_IDS["rgb"],
                 "/lidar/points": FRAME_IDS["lidar"], "/radar/points": FRAME_IDS["mmwave"],
                 "/wifi/csi": FRAME_IDS["wifi"]}
    for topic, stamp, msg, _ in messages:
        if topic == "/mmfi/sequence":
            continue
        assert codecs.header_stamp_ns(msg) == stamp  # log time = header stamp
        assert msg.header.frame_id == frame_ids[topic]
        start = starts[max(i for i, s in enumerate(starts) if s <= stamp)]
        offset = stamp - start
        if topic == "/wifi/csi":  # packet k of frame i at start + i*100 ms + k*10 ms
            assert offset % 10_000_000 == 0 and offset // 100_000_000 in INDICES
        else:
            assert offset % 100_000_000 == 0 and offset // 100_000_000 in INDICES

    per_topic = {topic: sum(1 for m in messages if m[0] == topic) for topic in types}
    n = len(frames)
    assert per_topic["/wifi/csi"] == n * CSI_PACKETS_PER_FRAME
    assert per_topic["/lidar/points"] == n - len(KEYS)  # frame 2 of each sequence has no lidar
    assert per_topic["/mmfi/ground_truth"] == per_topic["/camera/keypoints"] == n


def test_message_layouts(frames, tmp_path):
    convert(frames[:2], tmp_path / "bags", progress=False)
    messages = _raw_messages(tmp_path / "bags" / "E01_S01_A02")
    by_topic = {topic: msg for topic, _, msg, _ in messages}
    keypoints = by_topic["/camera/keypoints"]
    assert [f.name for f in keypoints.fields] == list(KEYPOINT_FIELDS)
    assert {f.datatype for f in keypoints.fields} == {7}  # float32 source -> FLOAT32
    assert (keypoints.height, keypoints.width) == (1, 17)
    assert np.all(codecs.read_points_array(keypoints, ["score"]) == 1.0)
    assert [f.name for f in by_topic["/lidar/points"].fields] == list(LIDAR_FIELDS)
    assert [f.name for f in by_topic["/radar/points"].fields] == list(MMWAVE_FIELDS)
    assert {f.datatype for f in by_topic["/radar/points"].fields} == {8}
    assert not by_topic["/radar/points"].is_dense  # the NaN doppler
    csi = by_topic["/wifi/csi"]
    assert (csi.encoding, csi.height, csi.width, csi.step) == ("64FC2", 3, 114, 114 * 16)
    assert len(by_topic["/mmfi/ground_truth"].poses) == 17


def test_modality_subsets(frames, tmp_path):
    convert(frames[:5], tmp_path / "lidar", modalities=["lidar", "wifi"], progress=False)
    dataset = BagDataset(tmp_path / "lidar")
    assert [sorted(f.data) for f in dataset] == [
        sorted(m for m in ("lidar", "wifi") if m in f.data) for f in frames[:5]]
    rgb_only = BagDataset(tmp_path / "lidar", modalities=["rgb"])  # not in the bag: absent
    assert all(f.data == {} for f in rgb_only)
    just_wifi = BagDataset(tmp_path / "lidar", modalities=["wifi"])
    assert np.array_equal(just_wifi[4].data["wifi"], frames[4].data["wifi"])
    with pytest.raises(ValueError, match="depth"):
        convert(frames, tmp_path / "nope", modalities=["depth"], progress=False)
    with pytest.raises(ValueError, match="depth"):
        BagDataset(tmp_path / "lidar", modalities=["depth"])


def test_modalities_without_a_topic_warn(tmp_path):
    frame = make_frame(KEYS[0], 0, np.random.default_rng(0))
    frame.data["depth"] = np.zeros((4, 4), np.uint16)
    with pytest.warns(UserWarning, match="depth"):
        convert([frame], tmp_path / "bags", progress=False)
    assert "depth" not in BagDataset(tmp_path / "bags")[0].data


def test_output_directory_rules(frames, tmp_path):
    out = tmp_path / "bags"
    convert(frames[:1], out, progress=False)
    with pytest.raises(FileExistsError, match="overwrite"):
        convert(frames[:1], out, progress=False)
    convert(frames[5:6], out, overwrite=True, progress=False)
    assert [p.name for p in out.iterdir()] == ["E01_S03_A02"]
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not rosbag2 bags"):
        convert(frames[:1], out, overwrite=True, progress=False)
    assert (out / "notes.txt").exists()


@pytest.mark.parametrize("order", ["interleaved", "backwards"])
def test_source_order_is_checked_and_nothing_partial_is_left(frames, tmp_path, order):
    if order == "interleaved":
        source = [frames[0], frames[5], frames[1]]  # sequence 1, 2, then 1 again
        match = "together"
    else:
        source = [frames[1], frames[0]]
        match = "increasing index"
    for per in ("sequence", "split"):
        out = tmp_path / per
        with pytest.raises(fmt.BagFormatError, match=match):
            convert(source, out, per=per, split=lambda key: "all", progress=False)
        assert not out.exists()


def test_bad_arrays_name_the_frame(frames, tmp_path):
    bad = Frame(KEYS[0], 3, frames[0].joints, {"lidar": np.zeros((10, 4))})
    with pytest.raises(fmt.BagFormatError, match=r"E01/S01/A02 frame 3: lidar points must be \(N, 3\)"):
        convert([frames[0], bad], tmp_path / "bags", progress=False)
    assert not (tmp_path / "bags").exists()
    short_csi = Frame(KEYS[0], 0, frames[0].joints, {"wifi": np.zeros((2, 3, 114, 9))})
    with pytest.raises(fmt.BagFormatError, match="wifi must be"):
        convert([short_csi], tmp_path / "bags", progress=False)
    with pytest.raises(ValueError, match="per"):
        convert(frames, tmp_path / "bags", per="subject")
    with pytest.raises(ValueError, match="split"):
        convert(frames, tmp_path / "bags", per="split")


def test_not_our_bags_are_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="no rosbag2 bag"):
        BagDataset(tmp_path)
    with pytest.raises(FileNotFoundError):
        BagDataset(tmp_path / "missing")
    from rosbags.rosbag2 import StoragePlugin, Writer

    types = codecs.rosbags_types(TYPESTORE)
    with Writer(tmp_path / "foreign", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection("/lidar/points", "sensor_msgs/msg/PointCloud2", typestore=TYPESTORE)
        msg = codecs.create_points(types, codecs.make_header(types, 10**9, "lidar"), np.zeros((1, 3)), ["x", "y", "z"])
        writer.write(connection, 10**9, TYPESTORE.serialize_cdr(msg, "sensor_msgs/msg/PointCloud2"))
    with pytest.raises(fmt.BagFormatError, match="mmhpe-ros convert"):
        BagDataset(tmp_path / "foreign")


def test_incomplete_csi_frame_is_an_error(frames, tmp_path):
    """A bag missing one CSI packet of a frame: reading that frame says so."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    types = codecs.rosbags_types(TYPESTORE)
    path = tmp_path / "cut"
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {}
        messages = [(fmt.SEQUENCE_STREAM, fmt.FIRST_SEQUENCE_NS, fmt.sequence_message(types, KEYS[0]))]
        messages += list(fmt.frame_messages(types, frames[0], fmt.FIRST_SEQUENCE_NS, ["wifi"]))
        for stream, stamp, msg in messages[:-1]:  # drop the last packet
            if stream.topic not in connections:
                connections[stream.topic] = writer.add_connection(stream.topic, stream.msgtype, typestore=TYPESTORE)
            writer.write(connections[stream.topic], stamp, TYPESTORE.serialize_cdr(msg, stream.msgtype))
    dataset = BagDataset(path)
    with pytest.raises(fmt.BagFormatError, match="E01/S01/A02 frame 0: a frame needs 10 CSI packets, got 9"):
        dataset[0]


def test_dataset_pickles_for_dataloader_workers(frames, tmp_path):
    convert(frames[:5], tmp_path / "bags", progress=False)
    dataset = BagDataset(tmp_path / "bags")
    dataset[0]  # opens a reader
    clone = pickle.loads(pickle.dumps(dataset))
    assert_same_frame(clone[3], frames[3])
    dataset.close()
    assert_same_frame(dataset[1], frames[1])  # reopens on demand


def test_locate_inverts_the_stamping_rule():
    start = 5_000_000_000
    for index in (0, 1, 296):
        for packet in (0, 9):
            stamp = fmt.frame_stamp_ns(start, index) + packet * fmt.PACKET_PERIOD_NS
            assert fmt.locate(stamp, start) == (index, packet)
    with pytest.raises(fmt.BagFormatError):
        fmt.locate(start + 5, start)
    with pytest.raises(fmt.BagFormatError):
        fmt.locate(start - fmt.FRAME_PERIOD_NS, start)


CALIBRATION_TEXT = """# a test rig
/**:
  ros__parameters:
    base_frame: base_link
    ground_height: 0.0
    extrinsics:
      lidar: {xyz: [0.1, 0.0, 1.2], rpy: [0.0, 0.1, 0.3]}
      camera_optical: {xyz: [0.0, 0.1, 1.4], rpy: [-1.6, 0.0, -1.5]}
    intrinsics:
      camera_optical: {width: 640, height: 480, k: [600.0, 0.0, 321.0, 0.0, 602.0, 238.0, 0.0, 0.0, 1.0]}
"""


def test_calibration_goes_into_the_bags_as_camera_info_and_metadata(frames, tmp_path):
    """An environment's calibration: a CameraInfo with every keypoint message (same stamp, frame
    id, the calibration's K), the file's text in the metadata, read back by BagDataset."""
    convert(frames, tmp_path / "bags", progress=False, calibrations={"E01": CALIBRATION_TEXT})
    for bag, calibrated in (("E01_S01_A02", True), ("E02_S12_A27", False)):
        messages = _raw_messages(tmp_path / "bags" / bag)
        keypoints = [t for topic, t, _, _ in messages if topic == "/camera/keypoints"]
        infos = [(t, msg) for topic, t, msg, _ in messages if topic == "/camera/camera_info"]
        assert [t for t, _ in infos] == (keypoints if calibrated else [])
        for stamp, info in infos:
            assert codecs.header_stamp_ns(info) == stamp and info.header.frame_id == FRAME_IDS["rgb"]
            assert (info.width, info.height) == (640, 480)
            np.testing.assert_array_equal(info.k, [600.0, 0.0, 321.0, 0.0, 602.0, 238.0, 0.0, 0.0, 1.0])
            np.testing.assert_array_equal(info.p, [600.0, 0.0, 321.0, 0.0, 0.0, 602.0, 238.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    dataset = BagDataset(tmp_path / "bags")
    calibration = dataset.calibration("E01")
    np.testing.assert_allclose(calibration.to_base("lidar").xyz, [0.1, 0.0, 1.2])
    assert calibration.camera("camera_optical").k[1, 1] == 602.0 and dataset.calibration("E02") is None
    for got, want in zip(dataset, frames, strict=True):  # the frames are unchanged
        assert_same_frame(got, want)
    with pytest.raises(ValueError, match="E01"):
        convert(frames, tmp_path / "bad", progress=False, calibrations={"E01": "/**: {ros__parameters: [1]}"})
    assert not (tmp_path / "bad").exists()


def test_bags_that_disagree_about_a_calibration_are_refused(frames, tmp_path):
    other = CALIBRATION_TEXT.replace("1.2]", "1.3]")
    convert(frames[:2], tmp_path / "a", progress=False, calibrations={"E01": CALIBRATION_TEXT})
    convert(frames[len(INDICES):len(INDICES) + 2], tmp_path / "b", progress=False, calibrations={"E01": other})
    with pytest.raises(fmt.BagFormatError, match="calibration of E01"):
        BagDataset([tmp_path / "a", tmp_path / "b"])
