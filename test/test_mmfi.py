"""MmfiDataset reads the real MM-Fi layout exactly; bad files get errors naming them."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mmfi_tree import FRAMES, KEYS, expected_frame, ground_truth, write_tree
from scipy.io import savemat

from mmhpe_ros.data import mmfi
from mmhpe_ros.data.frames import SequenceKey
from mmhpe_ros.data.mmfi import MmfiDataset, MmfiFormatError, PartialDatasetWarning
from mmhpe_ros.modalities import MODALITIES


@pytest.fixture()
def tree(tmp_path):
    return write_tree(tmp_path / "mmfi")


def complete(root, **kwargs) -> MmfiDataset:
    """A dataset of a tree that is complete for the filters given (no partial warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDatasetWarning)
        return MmfiDataset(root, **kwargs)


def assert_frame_equal(frame, key, index, modalities=MODALITIES):
    want = expected_frame(key, index)
    assert (frame.key, frame.index) == (key, index)
    assert sorted(frame.data) == sorted(modalities)
    for modality in modalities:
        got = frame.data[modality]
        assert got.dtype == want[modality].dtype and got.shape == want[modality].shape, modality
        assert got.tobytes() == want[modality].tobytes(), modality  # inf included
    joints = ground_truth(key)[index]
    assert frame.joints.dtype == joints.dtype and np.array_equal(frame.joints, joints)


def test_reads_every_frame_exactly_as_stored(tree):
    dataset = complete(tree)
    assert len(dataset) == len(KEYS) * FRAMES
    assert dataset.keys == tuple(sorted(KEYS))
    assert dataset.index == [(key, i) for key in sorted(KEYS) for i in range(FRAMES)]
    frames = list(dataset)
    for frame, (key, index) in zip(frames, dataset.index):
        assert_frame_equal(frame, key, index)
    assert frames[0].data["wifi"].shape == (2, 3, 114, 10)
    assert frames[0].data["lidar"].dtype == np.float64 and frames[0].data["rgb"].dtype == np.float32
    assert_frame_equal(dataset[-1], sorted(KEYS)[-1], FRAMES - 1)
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_frame_index_n_reads_file_frame_n_plus_1(tree):
    key = KEYS[0]
    (tree / "E01/S01/A02/lidar/frame002.bin").write_bytes(np.arange(6.0).tobytes())
    frame = complete(tree, subjects=["S01"], actions=["A02"])[1]
    assert frame.index == 1 and frame.key == key
    assert np.array_equal(frame.data["lidar"], np.arange(6.0).reshape(2, 3))
    assert np.array_equal(frame.joints, ground_truth(key)[1])
    assert frame.stamp_ns == 100_000_000


def test_filters_and_modalities(tree):
    dataset = complete(tree, modalities=["lidar", "wifi"], environments=["E02"], actions=["A03"])
    assert dataset.keys == (SequenceKey("E02", "S12", "A03"),)
    for frame in dataset:
        assert_frame_equal(frame, frame.key, frame.index, modalities=("lidar", "wifi"))
    selected = complete(tree, select=lambda key: key.action == "A02")
    assert {key.action for key in selected.keys} == {"A02"}
    with pytest.raises(ValueError, match="unknown MM-Fi subjects"):
        MmfiDataset(tree, subjects=["S41"])
    with pytest.raises(ValueError, match="unknown MM-Fi modalities"):
        MmfiDataset(tree, modalities=["depth"])
    with pytest.raises(ValueError, match="missing must be"):
        MmfiDataset(tree, missing="zero")


def test_unknown_folders_and_files_are_ignored(tree):
    sequence = tree / "E01/S01/A02"
    for folder in ("depth", "infra1", "notes"):
        (sequence / folder).mkdir()
        (sequence / folder / "frame001.png").write_bytes(b"x")
    (tree / "E05").mkdir()
    (tree / "README.txt").write_text("MM-Fi")
    (sequence / "rgb" / ".DS_Store").write_bytes(b"junk")
    dataset = complete(tree)
    assert len(dataset) == len(KEYS) * FRAMES
    assert sorted(dataset[0].data) == sorted(MODALITIES)


@pytest.mark.parametrize("missing", ["skip", "absent"])
def test_empty_file_marks_a_missing_frame(tree, missing):
    (tree / "E01/S01/A02/mmwave/frame002.bin").write_bytes(b"")
    (tree / "E02/S12/A03/wifi-csi/frame001.mat").write_bytes(b"")
    dataset = complete(tree, missing=missing)
    index = dataset.index
    if missing == "skip":  # the MM-Fi toolbox drops the frame altogether
        assert len(dataset) == len(KEYS) * FRAMES - 2 and dataset.skipped_frames == 2
        assert (SequenceKey("E01", "S01", "A02"), 1) not in index
        assert (SequenceKey("E02", "S12", "A03"), 0) not in index
        assert all(sorted(frame.data) == sorted(MODALITIES) for frame in dataset)
    else:
        assert len(dataset) == len(KEYS) * FRAMES and dataset.skipped_frames == 0
        frame = dataset[index.index((SequenceKey("E01", "S01", "A02"), 1))]
        assert_frame_equal(frame, frame.key, 1, modalities=("rgb", "lidar", "wifi"))
        frame = dataset[index.index((SequenceKey("E02", "S12", "A03"), 0))]
        assert "wifi" not in frame.data and "mmwave" in frame.data
    # An empty file of a modality not asked for does not skip anything.
    assert len(complete(tree, modalities=["rgb", "lidar"], missing=missing)) == len(KEYS) * FRAMES


def test_truncated_bin_names_the_file(tree):
    path = tree / "E01/S01/A03/lidar/frame003.bin"
    path.write_bytes(b"\0" * 100)
    message = r"frame003\.bin: \.bin size 100 bytes is not a multiple of 24 = 3 float64"
    with pytest.raises(MmfiFormatError, match=message):
        MmfiDataset(tree, strict=True)
    tolerant = tolerant_dataset(tree, message, missing="absent")
    assert tolerant.anomalies == {"point file of partial rows": 1} and len(tolerant) == len(KEYS) * FRAMES
    assert "lidar" not in tolerant[tolerant.index.index((SequenceKey("E01", "S01", "A03"), 2))].data
    with pytest.raises(MmfiFormatError, match="not a multiple of 40 = 5 float64"):
        mmfi.load_modality_file("mmwave", path)


def test_missing_frame_file_names_the_file(tree):
    (tree / "E02/S12/A02/rgb/frame002.npy").unlink()
    with pytest.raises(MmfiFormatError, match=r"E02/S12/A02/rgb/frame002\.npy: missing file"):
        MmfiDataset(tree, strict=True)
    # Tolerant: the frame lacks rgb, so the toolbox policy skips it.
    tolerant = tolerant_dataset(tree, r"1 missing frame file\); first: .*frame002\.npy: missing file")
    assert len(tolerant) == len(KEYS) * FRAMES - 1 and tolerant.skipped_frames == 1
    assert (SequenceKey("E02", "S12", "A02"), 1) not in tolerant.index
    np.save(tree / "E02/S12/A02/rgb/frame002.npy", np.zeros((17, 2)))
    np.save(tree / "E02/S12/A02/rgb/frame004.npy", np.zeros((17, 2)))
    with pytest.raises(MmfiFormatError, match=r"frame004\.npy: frame file beyond the 3 frames"):
        MmfiDataset(tree, strict=True)
    tolerant = tolerant_dataset(tree, "1 frame file beyond the ground truth")
    assert len(tolerant) == len(KEYS) * FRAMES and tolerant.anomalies == {"frame file beyond the ground truth": 1}


def tolerant_dataset(tree, message, **kwargs) -> MmfiDataset:
    """The tolerant dataset of ``tree``, which must warn once with ``message``."""
    with pytest.warns(mmfi.AnomalousFilesWarning, match=message) as caught:
        dataset = complete(tree, strict=False, **kwargs)
    assert len([w for w in caught if w.category is mmfi.AnomalousFilesWarning]) == 1
    return dataset


@pytest.mark.parametrize("write, message", [
    (lambda p: np.save(p, np.zeros((17, 3))), r"\(17, 3\) float64, expected \(17, 2\)"),
    (lambda p: np.save(p, np.array([{"a": 1}] * 34, dtype=object).reshape(17, 2)), "no objects"),
    (lambda p: p.write_bytes(p.read_bytes()[:-8]), "truncated"),
    (lambda p: p.write_bytes(b"not an npy file at all"), "not a readable .npy file"),
])
def test_bad_keypoint_file_names_the_file(tree, write, message):
    path = tree / "E01/S01/A02/rgb/frame003.npy"
    write(path)
    dataset = complete(tree, strict=True)  # content is checked when the frame is read
    with pytest.raises(MmfiFormatError, match=message) as error:
        list(dataset)
    assert str(path) in str(error.value)
    tolerant = complete(tree, strict=False)
    with pytest.warns(mmfi.AnomalousFilesWarning, match=message):
        frames = list(tolerant)
    assert sorted(frames[2].data) == sorted(set(MODALITIES) - {"rgb"}) and frames[2].index == 2
    assert tolerant.anomalies == {"unreadable frame file": 1}


@pytest.mark.parametrize("variables, message", [
    ({"CSIamp": np.zeros((3, 114, 10))}, "no variable 'CSIphase'"),
    ({"CSIamp": np.zeros((3, 114, 9)), "CSIphase": np.zeros((3, 114, 9))},
     r"CSIamp is \(3, 114, 9\) double, expected \(3, 114, 10\) real double or single"),
    ({"CSIamp": np.zeros((3, 114, 10), complex), "CSIphase": np.zeros((3, 114, 10))},
     r"CSIamp is \(3, 114, 10\) complex double, expected"),
    ({"CSIamp": np.zeros((3, 114, 10), np.int32), "CSIphase": np.zeros((3, 114, 10))},
     r"CSIamp is \(3, 114, 10\) int32, expected"),
])
def test_bad_csi_file_names_the_file(tree, variables, message):
    path = tree / "E02/S12/A03/wifi-csi/frame002.mat"
    savemat(path, variables)
    with pytest.raises(MmfiFormatError, match=message) as error:
        mmfi.load_csi(path)
    assert str(path) in str(error.value)
    path.write_bytes(b"garbage" * 10)
    with pytest.raises(MmfiFormatError, match="shorter than a MATLAB v5 header"):
        mmfi.load_modality_file("wifi", path)
    path.write_bytes(b"garbage" * 100)
    with pytest.raises(MmfiFormatError, match="no MATLAB v5 endian indicator"):
        mmfi.load_modality_file("wifi", path)


@pytest.mark.parametrize("offset, value, message", [
    (145, 0x08, "has 1 data parts, its flags say 2"),  # complex flag without an imaginary part
    # a lying small-element tag
    (194, 0x88, "malformed MATLAB v5 file: small element at byte 192 claims 136 > 4 bytes"),
    (132, 0x7F, "claims .* bytes, .* left"),  # matrix longer than the file
])
def test_lying_mat_headers_are_refused_before_scipy(tmp_path, offset, value, message):
    """Refused from the structure walk; scipy 1.17's loadmat segfaults on the first one."""
    path = tmp_path / "frame001.mat"
    savemat(path, {"CSIamp": np.ones((3, 114, 10)), "CSIphase": np.ones((3, 114, 10))})
    blob = bytearray(path.read_bytes())
    assert blob[144] == 6 and blob[192] == 9  # mxDOUBLE_CLASS flags, miDOUBLE data tag of CSIamp
    blob[offset] ^= value
    path.write_bytes(bytes(blob))
    with pytest.raises(MmfiFormatError, match=message):
        mmfi.load_csi(path)


def test_compressed_csi_loads_and_inflation_is_bounded(tmp_path, monkeypatch):
    from mmhpe_ros.data import matfile

    csi = expected_frame(KEYS[0], 0)["wifi"]
    path = tmp_path / "frame001.mat"
    savemat(path, {"CSIamp": csi[0], "CSIphase": csi[1], "note": np.zeros((300, 300))},
            do_compression=True)
    assert mmfi.load_csi(path).tobytes() == csi.tobytes()
    assert matfile.mat_variables(path.read_bytes())["note"].describe() == "(300, 300) double"
    monkeypatch.setattr(matfile, "MAX_INFLATED_BYTES", 300 * 300 * 8)  # "note" inflates beyond
    with pytest.raises(MmfiFormatError, match="compressed element inflates beyond 720000 bytes"):
        mmfi.load_csi(path)


@pytest.mark.parametrize("array, message", [
    (np.zeros((FRAMES, 17, 2)), r"expected \(frames >= 1, 17, 3\)"),
    (np.zeros((FRAMES, 17, 3), dtype=np.int64), "floating point"),
    (np.zeros((0, 17, 3)), r"expected \(frames >= 1, 17, 3\)"),
])
def test_mis_shaped_ground_truth_names_the_file(tree, array, message):
    path = tree / "E01/S01/A03/ground_truth.npy"
    np.save(path, array)
    with pytest.raises(MmfiFormatError, match=message) as error:
        MmfiDataset(tree, strict=True)
    assert str(path) in str(error.value)
    tolerant = tolerant_dataset(tree, "1 unreadable ground truth")
    assert len(tolerant) == (len(KEYS) - 1) * FRAMES
    assert SequenceKey("E01", "S01", "A03") not in {key for key, _ in tolerant.index}


def test_ground_truth_sets_the_frame_count(tmp_path):
    root = write_tree(tmp_path / "mmfi", keys=KEYS[:1], frames=5)
    dataset = complete(root)
    assert dataset.index == [(KEYS[0], i) for i in range(5)]
    assert np.array_equal(dataset[4].joints, ground_truth(KEYS[0], 5)[4])


def test_size_limit_refuses_before_reading(tree, monkeypatch):
    monkeypatch.setitem(mmfi.MAX_FILE_BYTES, "bin", 1000)
    big = tree / "E01/S01/A02/lidar/frame001.bin"
    np.zeros((50, 3)).tofile(big)  # 1200 bytes
    with pytest.raises(MmfiFormatError, match=r"frame001\.bin: 1200 bytes, more than the 1000-byte limit"):
        MmfiDataset(tree, strict=True)
    tolerant = tolerant_dataset(tree, "file over the size limit")
    assert set(tolerant.anomalies) == {"file over the size limit"} and big in [a.path for a in tolerant.anomalous_files]
    with pytest.raises(MmfiFormatError, match="1000-byte limit"):
        mmfi.load_points(big, 3)
    monkeypatch.setattr(mmfi, "MAX_GROUND_TRUTH_BYTES", 100)
    with pytest.raises(MmfiFormatError, match="ground_truth.npy: .* bytes, more than the 100-byte limit"):
        mmfi.load_ground_truth(tree / "E01/S01/A03/ground_truth.npy")


def test_partial_tree_loads_what_is_there_and_warns_once(tree):
    import shutil

    (tree / "E02/S12/A03/ground_truth.npy").unlink()
    shutil.rmtree(tree / "E01/S01/A03/mmwave")
    with pytest.warns(PartialDatasetWarning) as record:
        dataset = MmfiDataset(tree, subjects=["S01", "S12", "S13"], actions=["A02", "A03"])
    assert len(record) == 1
    message = str(record[0].message)
    assert "E02/S12/A03" in message and "ground_truth.npy" in message
    assert "E01/S01/A03" in message and "mmwave/" in message
    assert "2 of the 6 MM-Fi sequences selected are not in the tree (E02/S13)" in message
    assert SequenceKey("E02", "S12", "A03") not in dataset.keys
    assert len(dataset) == 3 * FRAMES
    for frame in dataset:
        want = ("rgb", "lidar", "wifi") if frame.key == SequenceKey("E01", "S01", "A03") else MODALITIES
        assert_frame_equal(frame, frame.key, frame.index, modalities=want)


def test_no_warning_for_a_complete_selection(tree):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MmfiDataset(tree, subjects=["S01", "S12"], actions=["A02", "A03"])


def test_bad_roots(tmp_path, tree):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        MmfiDataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MmfiFormatError, match="no MM-Fi sequence folders"):
        MmfiDataset(tmp_path / "empty")
    (tree / "E01" / "S12" / "A01").mkdir(parents=True)
    with pytest.raises(MmfiFormatError, match="S12 belongs to E02, not E01"):
        MmfiDataset(tree)


def test_pickles_for_dataloader_workers(tree):
    dataset = complete(tree)
    dataset[0]  # fills the ground-truth cache
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone.index == dataset.index
    assert_frame_equal(clone[5], *dataset.index[5])


def test_paths_match_the_layout(tmp_path):
    key = SequenceKey("E03", "S27", "A14")
    assert mmfi.frame_path(tmp_path, key, "wifi", 0) == tmp_path / "E03/S27/A14/wifi-csi/frame001.mat"
    assert mmfi.frame_path(tmp_path, key, "mmwave", 296).name == "frame297.bin"
    assert mmfi.frame_file_name("rgb", 9) == "frame010.npy"


MUTATIONS = st.lists(st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 1 << 17)),
    st.tuples(st.just("flip"), st.one_of(st.integers(0, 512), st.integers(0, 1 << 17)), st.integers(1, 255)),
    st.tuples(st.just("append"), st.binary(max_size=64)),
), min_size=1, max_size=4)


def mutate(blob: bytes, mutations) -> bytes:
    data = bytearray(blob)
    for kind, *args in mutations:
        if kind == "truncate":
            del data[args[0] % (len(data) + 1):]
        elif kind == "flip" and data:
            data[args[0] % len(data)] ^= args[1]
        elif kind == "append":
            data += args[0]
    return bytes(data)


def test_fuzzed_files_load_or_raise_mmfi_format_error(tmp_path_factory):
    """Untrusted files (issue 6): any corruption of a valid file gives the MM-Fi array or
    MmfiFormatError naming the file, never another exception (nor a crash)."""
    root = write_tree(tmp_path_factory.mktemp("fuzz") / "mmfi", keys=KEYS[:1], frames=1)
    sequence = root / "E01/S01/A02"
    originals = {
        "rgb": sequence / "rgb/frame001.npy", "lidar": sequence / "lidar/frame001.bin",
        "mmwave": sequence / "mmwave/frame001.bin", "wifi": sequence / "wifi-csi/frame001.mat",
        "ground_truth": sequence / "ground_truth.npy",
    }
    blobs = {name: path.read_bytes() for name, path in originals.items()}
    target = tmp_path_factory.mktemp("fuzzed")
    shapes = {"rgb": (17, 2), "wifi": (2, 3, 114, 10), "ground_truth": (1, 17, 3)}

    @settings(max_examples=120, deadline=None)
    @given(name=st.sampled_from(sorted(originals)), mutations=MUTATIONS)
    def check(name, mutations):
        path = target / originals[name].name
        path.write_bytes(mutate(blobs[name], mutations))
        try:
            array = mmfi.load_ground_truth(path) if name == "ground_truth" \
                else mmfi.load_modality_file(name, path)
        except MmfiFormatError as error:
            assert str(path) in str(error)
            return
        if name in shapes:
            assert array.shape == shapes[name]
        else:
            assert array.dtype == np.float64 and array.shape[1] == mmfi.POINT_COLUMNS[name]

    check()


def test_threads_read_the_same_frames(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(mmfi, "GROUND_TRUTH_CACHE", 1)  # evictions on nearly every read
    dataset = complete(write_tree(tmp_path / "mmfi", frames=4))
    order = np.random.default_rng(3).permutation(np.repeat(np.arange(len(dataset)), 3))
    with ThreadPoolExecutor(4) as pool:
        frames = list(pool.map(dataset.__getitem__, order.tolist()))
    for frame, position in zip(frames, order):
        key, index = dataset.index[position]
        assert (frame.key, frame.index) == (key, index)
        assert np.array_equal(frame.joints, ground_truth(key, 4)[index])
