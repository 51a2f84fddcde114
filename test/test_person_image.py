"""Camera images of generated people (data/synth/person_image.py): geometry against the camera
model's projection, occlusion, colours, and BlazePose finding the person."""
from __future__ import annotations

import numpy as np
import pytest

from mmhpe_ros.data.synth.camera import coco_points, project
from mmhpe_ros.data.synth.motion import NOMINAL_PLACEMENT, sequence_motion, subject_body
from mmhpe_ros.data.synth.person_image import (
    EYES, HAIR, SHIRT, SHOES, SKIN, SLEEVES, TROUSERS, Appearance, PersonRenderer,
)
from mmhpe_ros.data.synth.scene import environment_scene
from mmhpe_ros.geometry.camera import CameraIntrinsics
from mmhpe_ros.skeleton import JOINT_INDEX, KEYPOINT_INDEX

SCENE = environment_scene("E01", 0)
PURE = {SKIN: (1, 0, 0), SHIRT: (0, 1, 0), SLEEVES: (1, 0, 0), TROUSERS: (0, 0, 1), HAIR: (0, 0, 0),
        SHOES: (0, 0, 0), EYES: (0, 0, 0)}
FLAT = Appearance(np.array([PURE[part] for part in range(7)], dtype=float))


def _joints(t: float = 0.4, action: str = "A01") -> np.ndarray:
    """A person 3 m in front of the rig facing it (in every environment's camera view)."""
    motion = sequence_motion(subject_body(1, 0), action, np.random.default_rng(0), NOMINAL_PLACEMENT)
    return motion.joints(np.array([t]))[0]


def _pixel(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    u, v = np.round(uv).astype(int)
    return image[v, u].astype(int)


@pytest.mark.parametrize("intrinsics", [None, CameraIntrinsics.pinhole(1280, 960, 2 * 561.4, 2 * 560.4, 625.0, 477.0)])
def test_body_parts_land_where_the_camera_model_projects_them(intrinsics):
    renderer = PersonRenderer(SCENE, intrinsics)
    camera = intrinsics or SCENE.intrinsics
    joints = _joints()
    image = renderer.render(joints, FLAT)
    assert image.shape == (camera.height, camera.width, 3) and image.dtype == np.uint8
    optical = SCENE.camera_optical().inverse()

    def at(point: np.ndarray) -> np.ndarray:
        uv, depth = camera.project(optical.apply(point[None]))
        assert depth[0] > 0 and camera.inside(uv)[0]
        return _pixel(image, uv[0])

    head = 0.5 * (joints[JOINT_INDEX["neck"]] + joints[JOINT_INDEX["head"]])
    chest = 0.5 * (joints[JOINT_INDEX["thorax"]] + joints[JOINT_INDEX["spine"]])
    knee = joints[JOINT_INDEX["left_knee"]]
    for point, channel in ((head + 0.02 * np.array([-1.0, 0, 0]), 0), (chest, 1), (knee, 2)):
        colour = at(point)
        assert colour[channel] > 100 and colour[channel] > 2 * np.delete(colour, channel).max(), colour


def test_nearer_parts_hide_farther_ones_and_the_room_shows_elsewhere():
    renderer = PersonRenderer(SCENE)
    joints = _joints()
    chest = 0.5 * (joints[JOINT_INDEX["thorax"]] + joints[JOINT_INDEX["spine"]])
    camera_position = SCENE.camera_optical().translation
    toward_camera = (camera_position - chest) / np.linalg.norm(camera_position - chest)
    moved = joints.copy()
    for name in ("left_wrist", "left_elbow"):  # the forearm held between the chest and the camera
        moved[JOINT_INDEX[name]] = chest + toward_camera * (0.35 if name == "left_wrist" else 0.3)
    image = renderer.render(moved, FLAT)
    uv, _ = project(SCENE, chest[None])
    assert tuple(_pixel(image, uv[0]) > 100) == (True, False, False)  # skin (forearm), not the shirt behind
    empty = renderer.render(None).astype(int)
    person = renderer.render(joints, FLAT).astype(int)
    far_corner = (5, SCENE.intrinsics.width - 6)
    assert np.abs(person[far_corner] - empty[far_corner]).max() <= 12  # the same room, sensor noise apart
    assert np.abs(person - empty).max(axis=2).mean() < 60  # the person covers a part of the picture only


def test_appearance_is_fixed_per_subject():
    np.testing.assert_array_equal(Appearance.of_subject(3, 0).colours, Appearance.of_subject(3, 0).colours)
    assert not np.array_equal(Appearance.of_subject(3, 0).colours, Appearance.of_subject(4, 0).colours)
    colours = np.array([Appearance.of_subject(s, 0).colours for s in range(1, 41)])
    assert colours.min() >= 0 and colours.max() <= 1 and len(np.unique(colours[:, SKIN], axis=0)) > 3


def test_blazepose_finds_the_rendered_person_where_the_keypoints_are():
    pytest.importorskip("mediapipe", reason="the camera extra (mediapipe) is not installed")
    from mmhpe_ros.runtime.pose2d import KeypointDetector

    renderer = PersonRenderer(SCENE)
    joints = _joints(1.0, action="A03")  # whole body in view; arms half raised
    image = renderer.render(joints, Appearance.of_subject(1, 0))
    with KeypointDetector(static_image_mode=True) as detector:
        keypoints = detector.detect(image)
        assert detector.detect(renderer.render(None)) is None  # the empty room has nobody
    assert keypoints is not None
    true, _ = project(SCENE, coco_points(joints[None])[0])
    error = np.linalg.norm(keypoints[:, :2] - true, axis=1)
    assert np.median(error) < 15.0, error.round(1)
    body = [KEYPOINT_INDEX[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
    assert error[body].max() < 30.0, error.round(1)
