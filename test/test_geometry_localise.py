"""Background model, LiDAR person localisation, radar and camera roots, root fusion."""
from __future__ import annotations

import numpy as np
import pytest

from mmhpe_ros.geometry.background import BackgroundModel
from mmhpe_ros.geometry.localise import (
    ANKLE_HEIGHT_M, ROOT_SIGMA_M, LidarLocaliser, camera_root, fuse_root_arrays, fuse_roots, radar_root,
)
from mmhpe_ros.skeleton import KEYPOINT_INDEX

RNG = np.random.default_rng(4)


def room(points: int = 20_000, furniture: bool = True) -> np.ndarray:
    """Floor, back wall at x = 6, side wall at y = 3, and a wardrobe-sized box (base frame)."""
    n = points // 4
    floor = np.column_stack([RNG.uniform(0, 6, n), RNG.uniform(-3, 3, n), RNG.normal(0, 0.01, n)])
    back = np.column_stack([6 + RNG.normal(0, 0.01, n), RNG.uniform(-3, 3, n), RNG.uniform(0, 2.7, n)])
    side = np.column_stack([RNG.uniform(0, 6, n), 3 + RNG.normal(0, 0.01, n), RNG.uniform(0, 2.7, n)])
    parts = [floor, back, side]
    if furniture:  # the front face of a 1.0 x 0.6 x 1.8 m box at x 4.5..5.5, y -2.4..-1.8
        parts.append(np.column_stack([np.full(n, 4.5), RNG.uniform(-2.4, -1.8, n), RNG.uniform(0, 1.8, n)]))
    return np.vstack(parts)


def person(x: float, y: float, points: int = 1500) -> np.ndarray:
    """The front half of a 0.2 m radius, 1.75 m tall cylinder standing at (x, y), seen from -x."""
    angle = RNG.uniform(np.pi / 2, 3 * np.pi / 2, points)
    return np.column_stack([x + 0.2 * np.cos(angle), y + 0.2 * np.sin(angle), RNG.uniform(0.02, 1.75, points)])


@pytest.fixture(scope="module")
def background() -> BackgroundModel:
    """From above-floor returns only, as `mmhpe-ros background` builds it (the floor is removed by height)."""
    return BackgroundModel.build([r[r[:, 2] > 0.1] for r in (room() for _ in range(5))], voxel=0.1)


def test_person_found_in_a_room_with_background_removed(background):
    localiser = LidarLocaliser(background=background)
    scan = np.vstack([room(130_000), person(3.0, -1.0)]).astype(np.float32)
    found = localiser.localise(scan)
    assert found is not None
    # the root is the median of the visible front half: x ~ 3 - 0.2 * 2/pi * ... within a few cm of the axis
    assert abs(found.root[1] + 1.0) < 0.03 and 2.8 < found.root[0] < 3.0 and found.root[2] == 0.0
    assert len(found.points) >= 1400 and (np.hypot(found.points[:, 0] - 3.0, found.points[:, 1] + 1.0) < 0.3).all()


def test_empty_room_and_furniture_alone_are_nobody(background):
    assert LidarLocaliser(background=background).localise(room(130_000).astype(np.float32)) is None
    # without a background model the wardrobe-sized box is person-shaped: that is what the model is for
    assert LidarLocaliser().localise(room(50_000).astype(np.float32)) is not None
    assert LidarLocaliser().localise(room(50_000, furniture=False).astype(np.float32)) is None


def test_two_people_the_one_with_more_points_wins(background):
    scan = np.vstack([room(), person(2.0, 1.0, 2000), person(4.0, -1.0, 800)])
    found = LidarLocaliser(background=background).localise(scan)
    assert found is not None and abs(found.root[1] - 1.0) < 0.05


def test_background_file_round_trip_and_refusal(tmp_path, background):
    path = background.save(tmp_path / "bg.npz")
    loaded = BackgroundModel.load(path)
    assert loaded.cells == background.cells and loaded.voxel == background.voxel
    probe = room(2000)
    np.testing.assert_array_equal(loaded.contains(probe), background.contains(probe))
    assert background.contains(np.array([[3.0, 0.0, 1.0], [-50.0, 0.0, 0.0]])).tolist() == [False, False]
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a background model"):
        BackgroundModel.load(tmp_path / "bad.npz")


def test_radar_root_is_the_moving_cluster():
    body = np.column_stack([RNG.normal(2.5, 0.1, 12), RNG.normal(0.5, 0.1, 12), RNG.uniform(0.3, 1.6, 12),
                            RNG.choice([-0.4, 0.4], 12), RNG.uniform(10, 20, 12)])
    static = np.column_stack([RNG.uniform(0, 6, 8), RNG.uniform(-3, 3, 8), RNG.uniform(0, 2, 8), np.zeros(8), np.ones(8)])
    ghost = np.array([[5.0, -2.0, 1.0, 0.3, 5.0]])
    root = radar_root(np.vstack([body, static, ghost]))
    assert root is not None and np.hypot(root[0] - 2.5, root[1] - 0.5) < 0.1
    assert radar_root(np.vstack([static, ghost])) is None


def test_camera_root_from_the_ankle_rays_meeting_the_floor():
    origin = np.array([0.1, 0.2, 1.3])
    ankles = {"left_ankle": [3.0, 0.4, ANKLE_HEIGHT_M], "right_ankle": [3.1, 0.1, ANKLE_HEIGHT_M]}
    rays = np.zeros((17, 3))
    score = np.zeros(17)
    for name, point in ankles.items():
        direction = np.array(point) - origin
        rays[KEYPOINT_INDEX[name]] = direction / np.linalg.norm(direction)
        score[KEYPOINT_INDEX[name]] = 0.9
    np.testing.assert_allclose(camera_root(origin, rays, score), [3.05, 0.25, 0.0], atol=1e-9)
    assert camera_root(origin, rays, np.zeros(17)) is None


def test_camera_root_from_the_torso_size_without_ankles():
    origin = np.zeros(3)
    points = {"left_shoulder": [4.0, 0.2, 0.25], "right_shoulder": [4.0, -0.2, 0.25],
              "left_hip": [4.0, 0.1, -0.25], "right_hip": [4.0, -0.1, -0.25]}
    rays, score = np.zeros((17, 3)), np.zeros(17)
    for name, point in points.items():
        rays[KEYPOINT_INDEX[name]] = np.array(point) / np.linalg.norm(point)
        score[KEYPOINT_INDEX[name]] = 1.0
    root = camera_root(origin, rays, score, ground_height=-1.2)
    assert abs(root[0] - 4.0) < 0.05 and abs(root[1]) < 1e-6 and root[2] == -1.2


def test_fusion_weights_by_precision_and_gates_outliers():
    lidar, radar, camera = np.array([3.0, 0.0, 0.0]), np.array([3.2, 0.1, 0.0]), np.array([5.0, 0.0, 0.0])
    w_l, w_r = 1 / ROOT_SIGMA_M["lidar"] ** 2, 1 / ROOT_SIGMA_M["mmwave"] ** 2
    expected = (w_l * lidar + w_r * radar) / (w_l + w_r)
    np.testing.assert_allclose(fuse_roots({"lidar": lidar, "mmwave": radar, "rgb": camera, "wifi": None}), expected)
    np.testing.assert_allclose(fuse_roots({"lidar": None, "mmwave": None, "rgb": camera}), camera)
    assert fuse_roots({"lidar": None, "wifi": None}) is None
    roots = np.stack([np.stack([lidar, radar, camera]), np.zeros((3, 3))])
    fused, person = fuse_root_arrays(roots, np.array([[True, True, True], [False, False, False]]),
                                     ("lidar", "mmwave", "rgb"))
    np.testing.assert_allclose(fused[0], expected)
    assert person.tolist() == [True, False]
