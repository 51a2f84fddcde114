"""`mmhpe-ros synth`: MM-Fi layout and formats, calibration files, sensor frames, placements,
overrides, determinism, sensor plausibility, modality quality."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat

from mmhpe_ros.cli import main
from mmhpe_ros.data.mmfi import MmfiDataset, PartialDatasetWarning
from mmhpe_ros.data.synth.camera import coco_points
from mmhpe_ros.data.synth.lidar import FULL_SCAN
from mmhpe_ros.data.synth.motion import NOMINAL_PLACEMENT, Placement, sequence_motion, subject_body
from mmhpe_ros.data.synth.scene import (
    MOUNT_FIELDS, OPTICAL_IN_CAMERA, MountChange, environment_scene,
)
from mmhpe_ros.data.synth.sequence import simulate_sequence
from mmhpe_ros.data.synth.surface import SURFACE
from mmhpe_ros.geometry.calibration import load_calibration
from mmhpe_ros.geometry.transforms import RigidTransform
from mmhpe_ros.metrics import mpjpe
from mmhpe_ros.modalities import ACTION_NAMES, FRAME_IDS, IMAGE_HEIGHT, IMAGE_WIDTH, MODALITIES, SUBJECTS
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.inputs import prepare_csi
from mmhpe_ros.skeleton import BONES, JOINT_INDEX

SUBJECTS_RUN, ACTIONS, FRAMES = ("S01", "S11"), ("A06", "A13"), 3
SENSOR_FRAMES = {"camera_optical", "lidar", "radar", "wifi"}


def synth(out: Path, *extra: str) -> int:
    return main(["synth", str(out), "--subjects", ",".join(SUBJECTS_RUN), "--actions", ",".join(ACTIONS),
                 "--frames", str(FRAMES), *extra])


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read(root: Path, **kwargs) -> MmfiDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDatasetWarning)  # a small tree is a partial MM-Fi
        return MmfiDataset(root, **kwargs)


def body_gap(points: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """Distance (N,) of base-frame points to the body's surface (the spheres of surface.py)."""
    centres = SURFACE.centres(joints)
    return (np.linalg.norm(points[:, None, :3] - centres[None], axis=-1) - SURFACE.radii).min(axis=1)


def visible(data) -> dict[str, np.ndarray]:
    """(F,) bool per sensor: the camera reports keypoints, >= 10 LiDAR points / >= 1 radar
    detection lie on the person."""
    return {"camera": ~np.isnan(data.rgb).all(axis=(1, 2)),
            "lidar": np.array([m.sum() >= 10 for m in data.lidar_on_person]),
            "radar": np.array([m.sum() >= 1 for m in data.mmwave_on_person])}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "mmfi"
    assert synth(root) == 0
    return root


def test_tree_has_the_mmfi_layout_and_formats(tree):
    assert sorted(p.name for p in tree.iterdir()) == ["E01", "E02", "background", "calibration"]
    assert sorted(p.name for p in (tree / "calibration").iterdir()) == ["E01.yaml", "E02.yaml"]
    assert sorted(p.name for p in (tree / "background").iterdir()) == ["E01.npz", "E02.npz"]
    from mmhpe_ros.geometry.background import BackgroundModel

    for environment in ("E01", "E02"):  # each environment's empty room, as `mmhpe-ros background` builds one
        assert BackgroundModel.load(tree / "background" / f"{environment}.npz").occupied.any()
    for environment, subject in (("E01", "S01"), ("E02", "S11")):
        assert sorted(p.name for p in (tree / environment).iterdir()) == [subject]
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


def test_calibration_files_describe_each_rig(tree):
    for environment in ("E01", "E02"):
        calibration = load_calibration(tree / "calibration" / f"{environment}.yaml")
        assert calibration.base_frame == "base_link" and calibration.ground_height == 0.0
        assert set(calibration.extrinsics) == SENSOR_FRAMES
        camera = calibration.camera("camera_optical")
        assert (camera.width, camera.height) == (IMAGE_WIDTH, IMAGE_HEIGHT) and 450 < camera.k[0, 0] < 700
        scene = environment_scene(environment, 0)
        for frame, field in MOUNT_FIELDS.items():  # the file holds the mounts the data was made with
            mount = getattr(scene, field).transform
            if frame == "camera_optical":
                mount = mount @ OPTICAL_IN_CAMERA
            assert calibration.to_base(frame).angle_to(mount) < 1e-5, frame
            np.testing.assert_allclose(calibration.to_base(frame).translation, mount.translation, atol=1e-6)
    first, second = (load_calibration(tree / "calibration" / f"E0{i}.yaml") for i in (1, 2))
    assert first.to_base("lidar").angle_to(second.to_base("lidar")) > 1e-3  # rigs differ


def test_reader_loads_every_frame_and_ignores_the_calibration_folder(tree):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = MmfiDataset(tree)
    assert not [w for w in caught if "calibration" in str(w.message)]
    assert len(dataset) == len(SUBJECTS_RUN) * len(ACTIONS) * FRAMES and dataset.skipped_frames == 0
    assert {key.environment for key in dataset.keys} == {"E01", "E02"}
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
    assert "calibration/E02.yaml" in subset and "calibration/E01.yaml" not in subset
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


def test_overwrite_replaces_a_generated_tree_with_its_calibration_folder(tmp_path, capsys):
    out = tmp_path / "tree"
    args = ["synth", str(out), "--subjects", "S31", "--actions", "A01", "--frames", "1"]
    assert main(args) == 0
    assert main([*args[:3], "S21", *args[4:], "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["E03", "background", "calibration"]
    assert sorted(p.name for p in (out / "calibration").iterdir()) == ["E03.yaml"]
    assert sorted(p.name for p in (out / "background").iterdir()) == ["E03.npz"]
    for folder in ("calibration", "background"):
        (out / folder / "notes.txt").write_text("mine")
        assert main([*args, "--overwrite"]) == 2 and "refusing" in capsys.readouterr().err
        assert (out / folder / "notes.txt").read_text() == "mine"
        (out / folder / "notes.txt").unlink()


def test_convert_round_trip_reads_back_the_source_files_and_the_calibration(tree, tmp_path):
    """synth -> `mmhpe-ros convert` -> BagDataset: the same arrays, byte for byte, as the files,
    and each environment's calibration file."""
    from mmhpe_ros.data.bags import BagDataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDatasetWarning)
        assert main(["convert", str(tree), str(tmp_path / "bags")]) == 0
    source, bags = list(read(tree)), BagDataset(tmp_path / "bags")
    assert [(f.key, f.index) for f in bags] == [(f.key, f.index) for f in source]
    for got, want in zip(bags, source):
        assert got.joints.tobytes() == want.joints.tobytes()
        assert sorted(got.data) == sorted(want.data)
        for modality, array in want.data.items():
            assert got.data[modality].dtype == array.dtype and got.data[modality].shape == array.shape
            assert got.data[modality].tobytes() == array.tobytes(), (want.key, want.index, modality)
    for environment in ("E01", "E02"):
        stored, written = bags.calibration(environment), load_calibration(tree / f"calibration/{environment}.yaml")
        assert stored.to_document() == written.to_document()
    assert bags.calibration("E03") is None


def test_bad_calibration_file_in_a_tree_is_a_clear_convert_error(tmp_path, capsys):
    tree = tmp_path / "tree"
    assert main(["synth", str(tree), "--subjects", "S01", "--actions", "A01", "--frames", "1"]) == 0
    (tree / "calibration/E01.yaml").write_text("/**: {ros__parameters: {extrinsics: {lidar: 3}}}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDatasetWarning)
        assert main(["convert", str(tree), str(tmp_path / "bags")]) == 2
    assert "E01.yaml" in capsys.readouterr().err and not (tmp_path / "bags").exists()


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


# -- frames, mounts and placements ----------------------------------------------------------------


def test_camera_optical_frame_is_the_mount_turned_z_forward_x_right_y_down():
    np.testing.assert_allclose(
        OPTICAL_IN_CAMERA.rotation, RigidTransform.from_xyz_rpy([0, 0, 0], [-np.pi / 2, 0, -np.pi / 2]).rotation,
        atol=1e-12)  # the usual camera_link -> camera_optical_frame rotation
    scene = environment_scene("E02", 0)
    mount, optical = scene.camera.transform.rotation, scene.camera_optical().rotation
    np.testing.assert_allclose(optical[:, 2], mount[:, 0], atol=1e-12)  # z: the mount's forward
    np.testing.assert_allclose(optical[:, 0], -mount[:, 1], atol=1e-12)  # x: right (mount's -y)
    np.testing.assert_allclose(optical[:, 1], -mount[:, 2], atol=1e-12)  # y: down (mount's -z)
    camera, k = scene.camera.transform, scene.intrinsics.k
    ahead, left, up = (camera.apply(np.array([[3.0, *offset]])) for offset in ((0, 0), (0.5, 0), (0, 0.5)))
    pixels = {name: scene_pixel(scene, p) for name, p in (("ahead", ahead), ("left", left), ("up", up))}
    np.testing.assert_allclose(pixels["ahead"], k[:2, 2], atol=1e-9)  # the principal point
    assert pixels["left"][0] < k[0, 2] - 50 and abs(pixels["left"][1] - k[1, 2]) < 1e-6
    assert pixels["up"][1] < k[1, 2] - 50 and abs(pixels["up"][0] - k[0, 2]) < 1e-6


def scene_pixel(scene, point: np.ndarray) -> np.ndarray:
    """The pixel of a base-frame point (1, 3), through the scene's calibration (no generator code)."""
    calibration = scene.calibration()
    optical = calibration.to_base("camera_optical").inverse().apply(point)
    return calibration.camera("camera_optical").project(optical)[0][0]


def test_mounts_vary_per_environment_and_per_sensor_within_a_rig():
    heights, yaws, pitches = [], [], []
    for seed in range(3):
        for environment in ("E01", "E02", "E03", "E04"):
            scene = environment_scene(environment, seed)
            mounts = [scene.camera, scene.lidar, scene.radar, scene.wifi_receiver]
            heights.append([m.position[2] for m in mounts])
            yaws.append([m.yaw for m in mounts])
            pitches.append([m.pitch for m in mounts])
    heights, yaws, pitches = map(np.array, (heights, yaws, pitches))
    assert heights.min() >= 0.6 and heights.max() <= 1.6 and np.ptp(heights) > 0.6
    assert np.abs(yaws).max() <= np.deg2rad(30) + 1e-9 and np.ptp(yaws) > np.deg2rad(30)
    assert pitches.min() >= np.deg2rad(-5) - 1e-9 and pitches.max() <= np.deg2rad(15) + 1e-9
    assert (np.ptp(yaws, axis=1) > np.deg2rad(5)).mean() > 0.5  # sensors of one rig point their own ways


def test_people_stand_anywhere_in_the_region_facing_any_way_for_a_whole_sequence():
    headings = []
    for subject in SUBJECTS:
        data = simulate_sequence(subject, "A27", 4, 0)
        placement = data.placement
        assert 1.0 <= placement.x <= 4.0 and -1.5 <= placement.y <= 1.5
        assert simulate_sequence(subject, "A27", 1, 0).placement == placement  # deterministic
        pelvis = data.joints[:, JOINT_INDEX["pelvis"], :2]
        assert np.linalg.norm(pelvis - [placement.x, placement.y], axis=1).max() < 0.3  # stays there
        left = data.joints[:, JOINT_INDEX["left_hip"], :2] - data.joints[:, JOINT_INDEX["right_hip"], :2]
        facing = np.arctan2(-left[:, 0], left[:, 1])  # forward = left turned -90 degrees
        assert np.abs(np.angle(np.exp(1j * (facing - placement.heading)))).max() < 0.35
        headings.append(placement.heading)
    assert len({int(h // (np.pi / 2)) for h in headings}) == 4  # every quadrant
    assert simulate_sequence("S01", "A02", 1, 0).placement != simulate_sequence("S01", "A27", 1, 0).placement


@pytest.fixture(scope="module")
def moving() -> list:
    """Sequences of still-ish and lively actions."""
    return [simulate_sequence(s, a, 12, 0) for s in ("S03", "S24") for a in ("A27", "A06", "A17")]


def test_tree_points_match_the_ground_truth_through_the_calibration_file(tree):
    """LiDAR points of the files, moved into base_link with the calibration file, lie on the
    ground truth's body or on the room; keypoints are the projections of the ground truth."""
    on_body = 0
    for frame in read(tree):
        calibration = load_calibration(tree / "calibration" / f"{frame.key.environment}.yaml")
        room = environment_scene(frame.key.environment, 0).room
        points = calibration.to_base("lidar").apply(frame.data["lidar"])
        near_body = body_gap(points, frame.joints) < 0.1
        assert (near_body | (room.surface_distance(points) < 0.1)).all()
        on_body += int(near_body.sum())
        keypoints = frame.data["rgb"]
        if np.isfinite(keypoints).any():
            optical = calibration.to_base("camera_optical").inverse().apply(coco_points(frame.joints))
            exact, _ = calibration.camera("camera_optical").project(optical)
            assert np.nanmedian(np.linalg.norm(keypoints - exact, axis=-1)) < 20.0
    assert on_body > 100


def test_lidar_points_lie_on_the_body_or_in_the_room_in_the_lidar_frame(moving):
    for data in moving:
        to_base = data.calibration.to_base("lidar")
        for joints, points, person in zip(data.joints, data.lidar, data.lidar_on_person):
            base = to_base.apply(points)
            assert (body_gap(base[person], joints) < 0.1).all()
            assert (data.scene.room.surface_distance(base[~person]) < 0.1).all()
            assert (np.linalg.norm(points, axis=1) < 12.5).all()
            azimuth = np.degrees(np.arctan2(points[:, 1], points[:, 0]))  # the recorded sector
            assert (np.abs(azimuth) <= 30.0 + 1e-6).all()
    people = np.array([m.sum() for data in moving for m in data.lidar_on_person])
    assert np.median(people[people > 0]) > 100  # hundreds of returns on a person in view


def test_keypoints_are_pixels_of_the_camera_or_nan(moving):
    for data in moving:
        calibration = data.calibration
        optical = calibration.to_base("camera_optical").inverse().apply(coco_points(data.joints))
        camera = calibration.camera("camera_optical")
        exact, depth = camera.project(optical.reshape(-1, 3))
        exact, depth = exact.reshape(-1, 17, 2), depth.reshape(-1, 17)
        reported = np.isfinite(data.rgb).all(axis=-1)
        assert (np.isfinite(data.rgb).all(axis=-1) == np.isfinite(data.rgb).any(axis=-1)).all()
        assert camera.inside(data.rgb[reported]).all()
        assert (depth[reported] > 0).all()
        centre, half = np.array([IMAGE_WIDTH, IMAGE_HEIGHT]) / 2, np.array([IMAGE_WIDTH, IMAGE_HEIGHT]) / 2 + 80
        far_out = (np.abs(exact - centre) > half).any(-1)  # 80 px (many noise sigmas) outside the image
        assert not (reported & far_out).any()
        counts = reported.sum(axis=1)
        assert ((counts == 0) | (counts >= 5)).all()  # fewer than 5 in the image: nothing reported
        error = np.linalg.norm(data.rgb[reported] - exact[reported], axis=-1)
        assert len(error) == 0 or 1.0 < np.median(error) < 15.0  # detector noise of a few pixels


def test_mmwave_is_sparse_in_the_radar_frame_and_its_doppler_follows_motion(moving):
    counts = [len(points) for data in moving for points in data.mmwave]
    assert np.median(counts) < 64 and max(counts) < 128
    speed, doppler = [], []
    for data in moving:
        radar = data.calibration.to_base("radar")
        velocities = np.gradient(data.joints, 0.1, axis=0)
        for joints, velocity, points, person in zip(data.joints, velocities, data.mmwave, data.mmwave_on_person):
            np.testing.assert_array_equal(np.argsort(np.linalg.norm(points[:, :3], axis=1), kind="stable"),
                                          np.arange(len(points)))  # sorted by range from the radar
            toward = joints - radar.translation
            radial = (velocity * toward).sum(-1) / np.linalg.norm(toward, axis=-1)
            speed.append(np.abs(radial).max())
            doppler.append(np.abs(points[person, 3]).max() if person.any() else 0.0)
            if person.any():  # detections of the person lie near it (coarse: 0.12 / 0.25 rad noise)
                centre = radar.inverse().apply(joints[JOINT_INDEX["pelvis"]][None])[0]
                assert np.median(np.linalg.norm(points[person, :3] - centre, axis=1)) < 1.5
    assert np.corrcoef(speed, doppler)[0, 1] > 0.5


def test_csi_has_the_mmfi_shape_and_inf_amplitudes_are_handled(moving):
    amplitude = np.concatenate([data.csi_amplitude for data in moving])
    phase = np.concatenate([data.csi_phase for data in moving])
    assert amplitude.shape[1:] == (3, 114, 10) and np.isinf(amplitude).any()
    assert np.isfinite(phase).all() and np.abs(phase).max() <= np.pi
    frame = int(np.flatnonzero(np.isinf(amplitude).any(axis=(1, 2, 3)))[0])
    arrays, present = prepare_csi(np.stack([amplitude[frame], phase[frame]]), ModelConfig())
    assert present and np.isfinite(arrays["wifi"]).all()


def test_most_frames_see_the_person_with_lidar_or_camera():
    frames = [visible(simulate_sequence(s, a, 2, 0)) for s in SUBJECTS for a in ("A03", "A17")]
    seen = {sensor: np.concatenate([f[sensor] for f in frames]) for sensor in ("camera", "lidar", "radar")}
    assert 0.5 < seen["camera"].mean() < 0.95 and 0.5 < seen["lidar"].mean() < 0.95  # some leave the view
    assert (seen["camera"] | seen["lidar"]).mean() > 0.7
    assert seen["radar"].mean() > 0.9  # the radar's +-60 degrees cover most of the region


# -- overrides for benchmarks ---------------------------------------------------------------------


def test_placement_override_puts_the_person_there():
    placement = Placement(2.0, -1.0, 0.5)
    data = simulate_sequence("S05", "A27", 3, 0, placement=placement)
    assert data.placement == placement
    np.testing.assert_allclose(data.joints[:, JOINT_INDEX["pelvis"], :2], [[2.0, -1.0]] * 3, atol=0.3)
    drawn = simulate_sequence("S05", "A27", 3, 0)
    np.testing.assert_array_equal(data.csi_phase.shape, drawn.csi_phase.shape)
    assert not np.allclose(data.joints, drawn.joints)


def test_mount_changes_move_the_sensor_and_the_returned_calibration():
    placement = Placement(2.5, 0.0, np.pi)
    nominal = simulate_sequence("S12", "A27", 2, 0, placement=placement)
    change = {"lidar": MountChange(height=0.3, yaw=np.deg2rad(20)), "camera_optical": MountChange(height=-0.2)}
    moved = simulate_sequence("S12", "A27", 2, 0, placement=placement, mounts=change)
    before, after = nominal.calibration.to_base("lidar"), moved.calibration.to_base("lidar")
    np.testing.assert_allclose(after.translation - before.translation, [0.0, 0.0, 0.3], atol=1e-12)
    assert after.rpy[2] - before.rpy[2] == pytest.approx(np.deg2rad(20), abs=1e-9)
    lift = [data.calibration.to_base("camera_optical").translation for data in (moved, nominal)]
    np.testing.assert_allclose(lift[0] - lift[1], [0.0, 0.0, -0.2], atol=1e-12)
    np.testing.assert_allclose(moved.calibration.to_base("radar").matrix, nominal.calibration.to_base("radar").matrix)
    for joints, points, person in zip(moved.joints, moved.lidar, moved.lidar_on_person):
        assert person.sum() > 50
        assert (body_gap(after.apply(points[person]), joints) < 0.1).all()
    assert environment_scene("E02", 0).lidar.position[2] == pytest.approx(before.translation[2])  # cache untouched
    with pytest.raises(ValueError, match="camera"):
        simulate_sequence("S12", "A27", 1, 0, mounts={"camera": MountChange(height=0.1)})


def test_full_scan_sees_a_dense_room_all_around():
    data = simulate_sequence("S21", "A06", 2, 0, lidar=FULL_SCAN, placement=Placement(2.0, 0.5, 1.0))
    for points, person in zip(data.lidar, data.lidar_on_person):
        assert len(points) >= 20_000 and person.sum() > 50
        azimuth = np.degrees(np.arctan2(points[:, 1], points[:, 0]))
        assert azimuth.min() < -170 and azimuth.max() > 170
        room = data.scene.room.surface_distance(data.calibration.to_base("lidar").apply(points[~person]))
        assert (room < 0.15).all()  # 5 sigma of the worst range noise (3 cm) over 32k points


def test_empty_room_has_no_person_anywhere():
    data = simulate_sequence("S31", "A01", 6, 0, person=False, lidar=FULL_SCAN)
    assert data.placement is None and np.isnan(data.joints).all() and np.isnan(data.rgb).all()
    assert not any(m.any() for m in data.lidar_on_person) and not any(m.any() for m in data.mmwave_on_person)
    for points in data.lidar:
        assert len(points) >= 20_000
        assert (data.scene.room.surface_distance(data.calibration.to_base("lidar").apply(points)) < 0.15).all()
    radar = np.concatenate(data.mmwave)
    assert 2 <= len(radar) / len(data.mmwave) <= 30  # static clutter and ghosts only
    assert np.abs(radar[:, 3]).max() <= 0.25  # nothing moves
    assert data.csi_amplitude.shape == (6, 3, 114, 10) and np.isfinite(data.csi_phase).all()


def test_radar_sees_static_room_clutter_besides_the_person():
    data = simulate_sequence("S02", "A13", 20, 0)
    to_base = data.calibration.to_base("radar")
    static = [points[~person] for points, person in zip(data.mmwave, data.mmwave_on_person)]
    still = np.concatenate([p[np.abs(p[:, 3]) < 0.05] for p in static])
    assert len(still) / len(static) >= 2  # a few near-zero Doppler returns per frame
    distance = data.scene.room.surface_distance(to_base.apply(still))
    assert np.median(distance) < 0.5  # most lie on walls, floor and furniture (coarse angles)


# -- quality ordering: ridge regression from each modality alone --------------------------------

TRAIN = ("S01", "S02", "S03", "S11", "S12", "S13", "S21", "S22", "S23", "S31", "S32", "S33")
VALIDATION = ("S04", "S14", "S24", "S34")  # choose the ridge strength
TEST = ("S05", "S15", "S25", "S35")  # held out, as in MM-Fi's cross-subject setting
QUALITY_ACTIONS = ("A01", "A03", "A06", "A09", "A12", "A13", "A17", "A19", "A22", "A27")
QUALITY_FRAMES = 3
LIDAR_POINTS, RADAR_POINTS = 256, 32


def strided(points: np.ndarray, count: int) -> np.ndarray:
    """``count`` finite rows of ``points`` spread evenly (zero padded when fewer), flattened."""
    points = points[np.isfinite(points).all(axis=1)]
    out = np.zeros((count, points.shape[1]))
    rows = points[(np.arange(count) * len(points)) // count] if len(points) >= count else points
    out[:len(rows)] = rows
    return out.ravel()


def modality_features(data, i: int) -> dict[str, np.ndarray]:
    """Flat features of frame ``i`` per modality: keypoints scaled to [-1, 1] (NaN -> 0), LiDAR and
    radar points moved into base_link with the rig's calibration and strided, normalised CSI."""
    lidar, radar = (data.calibration.to_base(FRAME_IDS[m]) for m in ("lidar", "mmwave"))
    keypoints = data.rgb[i] / [IMAGE_WIDTH, IMAGE_HEIGHT] * 2 - 1
    csi, _ = prepare_csi(np.stack([data.csi_amplitude[i], data.csi_phase[i]]), ModelConfig())
    return {"rgb": np.nan_to_num(keypoints, nan=0.0).ravel(), "lidar": strided(lidar.apply(data.lidar[i]), LIDAR_POINTS),
            "mmwave": strided(radar.apply(data.mmwave[i]), RADAR_POINTS), "wifi": csi["wifi"].ravel().astype(np.float64)}


def features(subjects: tuple[str, ...]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features per modality and the joints of ``subjects``, the person on the nominal spot."""
    inputs: dict[str, list[np.ndarray]] = {m: [] for m in MODALITIES}
    joints = []
    for subject in subjects:
        for action in QUALITY_ACTIONS:
            data = simulate_sequence(subject, action, QUALITY_FRAMES, 0, placement=NOMINAL_PLACEMENT)
            for i in range(data.num_frames):
                for modality, flat in modality_features(data, i).items():
                    inputs[modality].append(flat)
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
    MPJPE on held-out subjects. The person stands on the nominal spot: this measures what each
    sensor model tells about the pose; finding the person anywhere is the localiser's job."""
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
