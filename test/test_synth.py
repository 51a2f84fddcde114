"""`mmhpe-ros synth`: MM-Fi layout and formats, determinism, sensor plausibility, modality quality."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat

from mmhpe_ros.cli import main
from mmhpe_ros.data.mmfi import MmfiDataset, PartialDatasetWarning
from mmhpe_ros.data.synth.camera import coco_points, project
from mmhpe_ros.data.synth.motion import sequence_motion, subject_body
from mmhpe_ros.data.synth.scene import environment_scene
from mmhpe_ros.data.synth.sequence import simulate_sequence
from mmhpe_ros.data.synth.surface import SURFACE
from mmhpe_ros.metrics import mpjpe
from mmhpe_ros.modalities import ACTION_NAMES, IMAGE_HEIGHT, IMAGE_WIDTH, MODALITIES
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.inputs import prepare_modality
from mmhpe_ros.skeleton import BONES, JOINT_INDEX

SUBJECTS, ACTIONS, FRAMES = ("S01", "S11"), ("A06", "A13"), 3


def synth(out: Path, *extra: str) -> int:
    return main(["synth", str(out), "--subjects", ",".join(SUBJECTS), "--actions", ",".join(ACTIONS),
                 "--frames", str(FRAMES), *extra])


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read(root: Path, **kwargs) -> MmfiDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDatasetWarning)  # a small tree is a partial MM-Fi
        return MmfiDataset(root, **kwargs)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "mmfi"
    assert synth(root) == 0
    return root


def test_tree_has_the_mmfi_layout_and_formats(tree):
    assert sorted(p.name for p in tree.iterdir()) == ["E01", "E02"]
    for environment, subject in (("E01", "S01"), ("E02", "S11")):
        for action in ACTIONS:
            sequence = tree / environment / subject / action
            assert sorted(p.name for p in sequence.iterdir()) == [
                "ground_truth.npy", "lidar", "mmwave", "rgb", "wifi-csi"]
            truth = np.load(sequence / "ground_truth.npy", allow_pickle=False)
            assert truth.shape == (FRAMES, 17, 3) and truth.dtype == np.float64
            folders = (("rgb", "npy"), ("lidar", "bin"), ("mmwave", "bin"), ("wifi-csi", "mat"))
            for folder, extension in folders:
                assert sorted(p.name for p in (sequence / folder).iterdir()) == [
                    f"frame{i:03d}.{extension}" for i in range(1, FRAMES + 1)]
            keypoints = np.load(sequence / "rgb/frame001.npy", allow_pickle=False)
            assert keypoints.shape == (17, 2) and keypoints.dtype == np.float64
            for folder, columns in (("lidar", 3), ("mmwave", 5)):
                size = (sequence / folder / "frame002.bin").stat().st_size
                assert size > 0 and size % (8 * columns) == 0
            mat = loadmat(sequence / "wifi-csi/frame003.mat")
            for name in ("CSIamp", "CSIphase"):
                assert mat[name].shape == (3, 114, 10) and mat[name].dtype == np.float64


def test_reader_loads_every_frame(tree):
    dataset = read(tree)
    assert len(dataset) == len(SUBJECTS) * len(ACTIONS) * FRAMES and dataset.skipped_frames == 0
    frame = dataset[len(dataset) - 1]
    assert str(frame.key) == "E02/S11/A13" and frame.index == FRAMES - 1
    assert sorted(frame.data) == sorted(MODALITIES)
    assert frame.data["rgb"].shape == (17, 2) and frame.data["wifi"].shape == (2, 3, 114, 10)
    assert frame.data["lidar"].shape[1] == 3 and frame.data["mmwave"].shape[1] == 5
    truth = np.load(tree / "E02/S11/A13/ground_truth.npy")
    np.testing.assert_array_equal(frame.joints, truth[FRAMES - 1])


def test_same_seed_same_bytes_and_subsets_match(tree, tmp_path):
    assert synth(tmp_path / "again") == 0
    assert tree_bytes(tmp_path / "again") == tree_bytes(tree)
    assert main(["synth", str(tmp_path / "subset"), "--subjects", "S11", "--actions", "A13",
                 "--frames", str(FRAMES), "--workers", "2"]) == 0
    subset = tree_bytes(tmp_path / "subset")
    assert subset and all(subset[name] == tree_bytes(tree)[name] for name in subset)
    assert synth(tmp_path / "other", "--seed", "1") == 0
    assert tree_bytes(tmp_path / "other") != tree_bytes(tree)


def test_output_folder_is_protected(tree, tmp_path, capsys):
    assert synth(tree) == 2 and "--overwrite" in capsys.readouterr().err
    foreign = tmp_path / "home"
    (foreign / "notes").mkdir(parents=True)
    assert synth(foreign, "--overwrite") == 2 and "refusing" in capsys.readouterr().err
    assert (foreign / "notes").is_dir()
    assert main(["synth", str(tmp_path / "x"), "--subjects", "S41"]) == 2
    assert "S41" in capsys.readouterr().err


def test_convert_round_trip_reads_back_the_source_files(tree, tmp_path):
    """synth -> `mmhpe-ros convert` -> BagDataset: the same arrays, byte for byte, as the files."""
    from mmhpe_ros.data.bags import BagDataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDatasetWarning)
        assert main(["convert", str(tree), str(tmp_path / "bags")]) == 0
    source, bags = list(read(tree)), list(BagDataset(tmp_path / "bags"))
    assert [(f.key, f.index) for f in bags] == [(f.key, f.index) for f in source]
    for got, want in zip(bags, source):
        assert got.joints.tobytes() == want.joints.tobytes()
        assert sorted(got.data) == sorted(want.data)
        for modality, array in want.data.items():
            assert got.data[modality].dtype == array.dtype and got.data[modality].shape == array.shape
            assert got.data[modality].tobytes() == array.tobytes(), (want.key, want.index, modality)


def test_every_action_moves_a_rigid_skeleton_standing_on_the_floor():
    body = subject_body(7, 0)
    times = np.arange(40) / 10.0
    ranges = {}
    for action in ACTION_NAMES:
        joints = sequence_motion(body, action, np.random.default_rng(0)).joints(times)
        bones = np.array([np.linalg.norm(joints[:, c] - joints[:, p], axis=-1) for p, c in BONES])
        np.testing.assert_allclose(bones, bones[:, :1].repeat(len(times), 1), atol=1e-9, err_msg=action)
        lowest = joints[:, [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]], 2].min(axis=1)
        assert (lowest > 0.05).all() and (np.median(lowest) < 0.1), action  # feet down, except jumps
        assert (joints[:, JOINT_INDEX["head"], 2] > joints[:, JOINT_INDEX["pelvis"], 2]).all(), action
        ranges[action] = np.ptp(joints, axis=0).max()
    assert min(ranges.values()) > 0.2  # every action moves some joint by more than 20 cm
    mirrored = sequence_motion(body, "A13", np.random.default_rng(0)).joints(times)
    assert np.ptp(mirrored[:, JOINT_INDEX["left_wrist"], 2]) > 0.5  # A13 raises the left hand
    assert np.ptp(mirrored[:, JOINT_INDEX["right_wrist"], 2]) < 0.2


@pytest.fixture(scope="module")
def moving() -> list:
    """Sequences of still-ish and lively actions."""
    return [simulate_sequence(s, a, 12, 0) for s in ("S03", "S24") for a in ("A27", "A06", "A17")]


def test_keypoints_lie_in_the_image_near_the_projected_joints(moving):
    for data in moving:
        assert np.isfinite(data.rgb).all()
        assert (data.rgb >= 0).all() and (data.rgb <= [IMAGE_WIDTH, IMAGE_HEIGHT]).all()
        scene = environment_scene(data.key.environment, 0)
        exact, _ = project(scene, coco_points(data.joints))
        error = np.linalg.norm(data.rgb - exact, axis=-1)
        assert 1.0 < np.median(error) < 15.0  # detector noise of a few pixels
        # Hips (COCO 11, 12) straddle the image centre column for a person in front of the camera.
        assert abs(np.median(data.rgb[:, 11:13, 0]) - IMAGE_WIDTH / 2) < 120


def test_lidar_points_lie_on_the_body_or_in_the_room(moving):
    for data in moving:
        scene = environment_scene(data.key.environment, 0)
        for joints, points in zip(data.joints, data.lidar):
            centres = SURFACE.centres(joints)
            gap = np.linalg.norm(points[:, None] - centres[None], axis=-1) - SURFACE.radii
            on_body = gap.min(axis=1) < 0.1
            assert on_body.sum() > 100  # hundreds of returns on a person 3 m away
            assert (points[:, 0] > 0).all() and (points[:, 0] < scene.room[0] + 0.2).all()
            assert (points[:, 2] > -0.2).all() and (points[:, 2] < scene.room[2] + 0.2).all()


def test_mmwave_is_sparse_and_its_doppler_follows_motion(moving):
    counts = [len(points) for data in moving for points in data.mmwave]
    assert np.median(counts) < 64 and max(counts) < 128
    speed, doppler = [], []
    for data in moving:
        scene = environment_scene(data.key.environment, 0)
        velocities = np.gradient(data.joints, 0.1, axis=0)
        for joints, velocity, points in zip(data.joints, velocities, data.mmwave):
            toward = joints - scene.radar.position
            radial = (velocity * toward).sum(-1) / np.linalg.norm(toward, axis=-1)
            speed.append(np.abs(radial).max())
            doppler.append(np.abs(points[:, 3]).max() if len(points) else 0.0)
    assert np.corrcoef(speed, doppler)[0, 1] > 0.5


def test_csi_has_the_mmfi_shape_and_inf_amplitudes_are_handled(moving):
    amplitude = np.concatenate([data.csi_amplitude for data in moving])
    phase = np.concatenate([data.csi_phase for data in moving])
    assert amplitude.shape[1:] == (3, 114, 10) and np.isinf(amplitude).any()
    assert np.isfinite(phase).all() and np.abs(phase).max() <= np.pi
    frame = int(np.flatnonzero(np.isinf(amplitude).any(axis=(1, 2, 3)))[0])
    arrays, present = prepare_modality("wifi", np.stack([amplitude[frame], phase[frame]]), ModelConfig())
    assert present and np.isfinite(arrays["wifi"]).all()


# -- quality ordering: ridge regression from each modality alone --------------------------------

TRAIN = ("S01", "S02", "S03", "S11", "S12", "S13", "S21", "S22", "S23", "S31", "S32", "S33")
VALIDATION = ("S04", "S14", "S24", "S34")  # choose the ridge strength
TEST = ("S05", "S15", "S25", "S35")  # held out, as in MM-Fi's cross-subject setting
QUALITY_ACTIONS = ("A01", "A03", "A06", "A09", "A12", "A13", "A17", "A19", "A22", "A27")
QUALITY_FRAMES = 3
CONFIG = ModelConfig(lidar_points=256, mmwave_points=32)


def features(subjects: tuple[str, ...]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    inputs: dict[str, list[np.ndarray]] = {m: [] for m in MODALITIES}
    joints = []
    for subject in subjects:
        for action in QUALITY_ACTIONS:
            data = simulate_sequence(subject, action, QUALITY_FRAMES, 0)
            for i in range(data.num_frames):
                raw = {"rgb": data.rgb[i], "lidar": data.lidar[i], "mmwave": data.mmwave[i],
                       "wifi": np.stack([data.csi_amplitude[i], data.csi_phase[i]])}
                for modality in MODALITIES:
                    arrays, _ = prepare_modality(modality, raw[modality], CONFIG)
                    flat = np.concatenate([a.ravel() for a in arrays.values()])
                    inputs[modality].append(flat.astype(np.float64))
                joints.append(data.joints[i].ravel())
    return {m: np.array(v) for m, v in inputs.items()}, np.array(joints)


def ridge_path(x: np.ndarray, y: np.ndarray, strengths: tuple[float, ...]) -> list:
    """Closed-form ridge regressions (dual form, standardised features), one per strength
    (penalty = strength x feature count), sharing one eigendecomposition of the Gram matrix."""
    mean, scale = x.mean(0), x.std(0) + 1e-6
    a = (x - mean) / scale
    eigenvalues, vectors = np.linalg.eigh(a @ a.T)
    projected = vectors.T @ (y - y.mean(0))
    predictors = []
    for strength in strengths:
        coefficients = a.T @ (vectors @ (projected / (eigenvalues + strength * a.shape[1])[:, None]))
        predictors.append(lambda z, c=coefficients: ((z - mean) / scale) @ c + y.mean(0))
    return predictors


def error_mm(predicted: np.ndarray, joints: np.ndarray) -> float:
    return mpjpe(predicted.reshape(-1, 17, 3), joints.reshape(-1, 17, 3))


def test_wifi_is_the_weakest_modality_and_camera_or_lidar_the_strongest():
    """Per modality: ridge fitted on training subjects, strength chosen on validation subjects,
    MPJPE on held-out subjects."""
    (train, y_train), (val, y_val), (test, y_test) = features(TRAIN), features(VALIDATION), features(TEST)
    error = {}
    for modality in MODALITIES:
        predictors = ridge_path(train[modality], y_train, (0.1, 1.0, 10.0))
        best = min(predictors, key=lambda predict: error_mm(predict(val[modality]), y_val))
        error[modality] = error_mm(best(test[modality]), y_test)
    mean_pose = error_mm(np.broadcast_to(y_train.mean(0), y_test.shape), y_test)
    assert max(error, key=error.get) == "wifi", error
    assert min(error, key=error.get) in ("rgb", "lidar"), error
    assert error["rgb"] < mean_pose and error["lidar"] < mean_pose, (error, mean_pose)
