"""Files from outside (issue 6): hostile bags are refused by size before they are read, names
never escape their directory, model files are read without pickle and within size bounds."""
from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
import torch

from mmhpe_ros.data.bags import BagDataset
from mmhpe_ros.model.card import CheckpointError, read_card
from mmhpe_ros.model.checkpoint import load_model, save_model
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.pose_model import PoseModel
from mmhpe_ros.resources import SAMPLE_BAG
from mmhpe_ros.runtime import limits
from mmhpe_ros.runtime.bag_source import BagSource
from mmhpe_ros.runtime.limits import BagLimits, LimitError, check_bag
from mmhpe_ros.runtime.paths import PathEscapeError, resolve_inside

torch.set_num_threads(1)
SAMPLE = Path(SAMPLE_BAG)  # the .mcap file of the bundled bag
SAMPLE_DIR = SAMPLE.parent  # its rosbag2 directory (metadata.yaml)


def _copy_bag(tmp_path: Path) -> Path:
    bag = tmp_path / "bag"
    shutil.copytree(SAMPLE_DIR, bag)
    return bag


def _mcap(bag: Path) -> Path:
    return next(bag.glob("*.mcap"))


def _records(data: bytes):
    """(offset, opcode, length) of an MCAP file's top-level records."""
    position = 8
    while position + 9 <= len(data):
        opcode, length = struct.unpack_from("<BQ", data, position)
        yield position, opcode, length
        if opcode == 0x02:
            return
        position += 9 + length


def _patch_first_chunk(bag: Path, **fields: int) -> None:
    """Overwrite fields of the first Chunk record (uncompressed_size, length)."""
    path = _mcap(bag)
    data = bytearray(path.read_bytes())
    offset = next(o for o, op, _ in _records(bytes(data)) if op == 0x06)
    if "length" in fields:
        struct.pack_into("<Q", data, offset + 1, fields["length"])
    if "uncompressed_size" in fields:
        struct.pack_into("<Q", data, offset + 9 + 16, fields["uncompressed_size"])
    path.write_bytes(bytes(data))


# --- bags --------------------------------------------------------------------------------------


def test_the_sample_bag_passes_the_checks():
    assert check_bag(SAMPLE) == [SAMPLE]
    assert [p.suffix for p in check_bag(SAMPLE_DIR)] == [".mcap"]
    with BagSource(SAMPLE) as source:
        assert sum(1 for _ in source.read()) == source.message_count


def test_a_chunk_that_would_decompress_beyond_the_limit_is_refused_before_reading(tmp_path):
    bag = _copy_bag(tmp_path)
    _patch_first_chunk(bag, uncompressed_size=2**40)
    for open_bag in (BagSource, BagDataset):
        with pytest.raises(LimitError, match=r"decompresses to 1099511627776 bytes .* over the"):
            open_bag(bag)


def test_a_record_longer_than_the_file_is_refused(tmp_path):
    bag = _copy_bag(tmp_path)
    _patch_first_chunk(bag, length=2**62)
    with pytest.raises(LimitError, match="past the end"):
        check_bag(bag)


def test_a_message_over_its_type_bound_is_refused_naming_bag_topic_and_size(tmp_path):
    small = BagLimits(message_bytes={"sensor_msgs/msg/PointCloud2": 64})
    with pytest.raises(LimitError, match=r"/(lidar|radar|camera)/\S+ \(sensor_msgs/msg/PointCloud2\) has \d+ bytes"):
        with BagSource(SAMPLE, limits=small) as source:
            for _ in source.read():
                pass
    with pytest.raises(LimitError, match=f"{SAMPLE_DIR}: message on /camera/keypoints .* has \\d+ bytes"):
        dataset = BagDataset(SAMPLE_DIR, limits=small)
        dataset[0]


def test_oversized_metadata_and_escaping_storage_files_are_refused(tmp_path):
    bag = _copy_bag(tmp_path)
    metadata = (bag / "metadata.yaml").read_text()
    (bag / "metadata.yaml").write_text(metadata + "#" * 2**20)
    with pytest.raises(LimitError, match="metadata.yaml is larger"):
        check_bag(bag)
    storage = _mcap(bag)
    outside = tmp_path / "elsewhere.mcap"
    shutil.copy(storage, outside)
    (bag / "link.mcap").symlink_to(outside)
    (bag / "metadata.yaml").write_text(metadata.replace(f"- {storage.name}", "- link.mcap"))
    with pytest.raises(LimitError, match="outside"):
        check_bag(bag)


def test_compressed_chunks_must_declare_their_true_size(tmp_path):
    pytest.importorskip("backports.zstd", reason="zstd module of rosbags not installed")
    from backports import zstd

    payload = zstd.compress(bytes(10_000))
    assert limits._frame_content_size("zstd", payload) == 10_000
    assert limits._frame_content_size("zstd", payload + payload) is None  # a second frame hides more
    assert limits._frame_content_size("zstd", b"not zstd") is None
    import lz4.frame

    assert limits._frame_content_size("lz4", lz4.frame.compress(bytes(1000), store_size=True)) == 1000
    assert limits._frame_content_size("lz4", lz4.frame.compress(bytes(1000), store_size=False)) is None


# --- paths -------------------------------------------------------------------------------------


def test_resolve_inside_refuses_escapes(tmp_path):
    base = tmp_path / "out"
    (base / "runs").mkdir(parents=True)
    assert resolve_inside(base, "runs/best.safetensors") == (base / "runs/best.safetensors").resolve()
    assert resolve_inside(base, "runs/../last.safetensors") == (base / "last.safetensors").resolve()
    for name in ("../x", "runs/../../x", "/etc/passwd", "", "a\x00b"):
        with pytest.raises(PathEscapeError):
            resolve_inside(base, name, "checkpoint")
    (base / "link").symlink_to(tmp_path)
    with pytest.raises(PathEscapeError, match="outside"):
        resolve_inside(base, "link/secret")


# --- model files -------------------------------------------------------------------------------


@pytest.fixture()
def model_file(tmp_path) -> Path:
    torch.manual_seed(0)
    return save_model(tmp_path / "model.safetensors", PoseModel(ModelConfig(lidar_points=32, mmwave_points=8)))


def test_model_files_load_without_pickle(model_file, monkeypatch):
    import pickle

    def refuse(*args, **kwargs):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    model, card = load_model(model_file)
    assert card["joints"] and not model.training


def test_oversized_card_is_refused(model_file):
    card = model_file.with_suffix(".json")
    text = json.loads(card.read_text())
    text["notes"] = "x" * limits.CARD_BYTES
    card.write_text(json.dumps(text))
    with pytest.raises(CheckpointError, match="larger than"):
        read_card(model_file)


@pytest.mark.parametrize("header", [2**62, 0, 10**9])
def test_absurd_safetensors_header_is_refused(model_file, header):
    data = bytearray(model_file.read_bytes())
    struct.pack_into("<Q", data, 0, header)
    model_file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_model(model_file)


def test_extra_tensors_are_refused_before_anything_is_loaded(model_file):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(model_file))
    tensors["payload"] = torch.zeros(4)
    save_file(tensors, str(model_file), metadata={"format": read_card(model_file)["format"]})
    with pytest.raises(CheckpointError, match="unexpected \\['payload'\\]"):
        load_model(model_file)


def test_truncated_weights_are_refused(model_file):
    data = model_file.read_bytes()
    model_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_model(model_file)


def test_convert_refuses_a_bag_name_that_climbs_out(tmp_path):
    import numpy as np

    from mmhpe_ros.data.bags import convert
    from mmhpe_ros.data.frames import Frame, SequenceKey

    frame = Frame(SequenceKey("E01", "S01", "A01"), 0, np.zeros((17, 3)), {"rgb": np.zeros((17, 2))})
    with pytest.raises(PathEscapeError, match="bag name '../escaped'"):
        convert([frame], tmp_path / "bags", per="split", split=lambda key: "../escaped", progress=False)
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "bags").exists()


@pytest.fixture(scope="module")
def small_mcap(tmp_path_factory) -> bytes:
    import numpy as np

    from mmhpe_ros.data.bags import convert
    from mmhpe_ros.data.frames import Frame, SequenceKey

    rng = np.random.default_rng(0)
    frames = [Frame(SequenceKey("E01", "S01", "A01"), i, rng.normal(size=(17, 3)),
                    {"rgb": rng.uniform(0, 640, (17, 2)), "lidar": rng.normal(size=(20, 3))}) for i in range(3)]
    out = tmp_path_factory.mktemp("bags") / "bags"
    [bag] = convert(frames, out, per="split", split=lambda key: "all", progress=False)
    return _mcap(bag).read_bytes()


def test_corrupted_mcap_files_pass_or_raise_limit_error(small_mcap, tmp_path):
    """Random byte and length corruptions: the walker never crashes with another error."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    path = tmp_path / "x.mcap"
    offsets = [o for o, _, _ in _records(small_mcap)]

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.integers(0, len(small_mcap) - 1), st.integers(0, 255)), max_size=8),
           st.sampled_from(offsets), st.integers(0, 2**64 - 1), st.integers(0, len(small_mcap)))
    def check(changes, record, length, cut):
        data = bytearray(small_mcap)
        for offset, value in changes:
            data[offset] = value
        struct.pack_into("<Q", data, record + 1, length)
        path.write_bytes(bytes(data[:cut]))
        try:
            limits.check_mcap(path)
        except LimitError as error:
            assert str(path) in str(error)

    check()


def _mcap_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<I", len(data)) + data


def _record(opcode: int, body: bytes) -> bytes:
    return struct.pack("<BQ", opcode, len(body)) + body


def _hand_made_mcap(path: Path, type_name: str, message_bytes: int = 0) -> None:
    """An unchunked MCAP: one schema, one channel on /lidar/points, optionally one message."""
    schema = struct.pack("<H", 1) + _mcap_string(type_name) + _mcap_string("ros2msg") + _mcap_string("int32 a")
    channel = struct.pack("<HH", 1, 1) + _mcap_string("/lidar/points") + _mcap_string("cdr") + struct.pack("<I", 0)
    message = struct.pack("<HIQQ", 1, 0, 1, 1) + bytes(message_bytes)
    path.write_bytes(limits.MCAP_MAGIC + _record(0x03, schema) + _record(0x04, channel)
                     + (_record(0x05, message) if message_bytes else b"") + _record(0x02, bytes(20)) + limits.MCAP_MAGIC)


def test_an_unchunked_message_over_its_bound_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.mcap"
    _hand_made_mcap(path, "sensor_msgs/msg/PointCloud2", message_bytes=100)
    assert check_bag(path, BagLimits(message_bytes={"sensor_msgs/msg/PointCloud2": 100})) == [path]
    with pytest.raises(LimitError, match=r"/lidar/points \(sensor_msgs/msg/PointCloud2\) has 100 bytes, over the 99"):
        check_bag(path, BagLimits(message_bytes={"sensor_msgs/msg/PointCloud2": 99}))


def test_a_schema_type_name_carrying_code_is_refused(tmp_path):
    """A hand-made MCAP whose schema names a type with Python in it (rosbags generates code from it)."""
    name = 'pkg/msg/A:\n    pass\nimport os\nclass B'
    path = tmp_path / "evil.mcap"
    _hand_made_mcap(path, name)
    with pytest.raises(LimitError, match="expected pkg/msg/Name"):
        check_bag(path)
    path.write_bytes(path.read_bytes().replace(name.encode(), b"pkg/msg/A" + b"_" * (len(name) - 9)))
    assert check_bag(path) == [path]
