"""Skeleton marker content: sphere list of 17 joints, line list of bone pairs, unique (ns, id)."""
import numpy as np
import pytest

from mmhpe_ros.runtime.markers import (
    BONES_ID, JOINTS_ID, MODALITY_COUNT_COLORS, bone_segments, color_for_modalities, skeleton_markers,
)
from mmhpe_ros.skeleton import BONES, JOINT_INDEX, NUM_JOINTS


@pytest.fixture
def skeleton() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(NUM_JOINTS, 3))


def test_bone_segments_pair_parent_and_child(skeleton):
    segments = bone_segments(skeleton)
    assert segments.shape == (2 * len(BONES), 3) == (32, 3)
    for k, (parent, child) in enumerate(BONES):
        np.testing.assert_array_equal(segments[2 * k], skeleton[parent])
        np.testing.assert_array_equal(segments[2 * k + 1], skeleton[child])
    # The head hangs off the neck.
    head_bone = BONES.index((JOINT_INDEX["neck"], JOINT_INDEX["head"]))
    np.testing.assert_array_equal(segments[2 * head_bone + 1], skeleton[JOINT_INDEX["head"]])


def test_one_skeleton_gives_joints_and_bones_markers(skeleton):
    joints, bones = skeleton_markers(skeleton, color=(1, 0, 0, 1))
    assert (joints.ns, joints.id, joints.kind) == ("person0", JOINTS_ID, "joints")
    assert (bones.ns, bones.id, bones.kind) == ("person0", BONES_ID, "bones")
    np.testing.assert_array_equal(joints.points, skeleton)
    assert bones.points.shape == (32, 3)
    assert joints.scale > bones.scale > 0


def test_several_people_have_unique_namespace_and_id(skeleton):
    people = np.stack([skeleton, skeleton + 1.0, skeleton - 1.0])
    markers = skeleton_markers(people, color=(0, 1, 0, 1))
    assert len(markers) == 6
    assert len({(m.ns, m.id) for m in markers}) == 6
    assert {m.ns for m in markers} == {"person0", "person1", "person2"}
    np.testing.assert_array_equal(markers[2].points, skeleton + 1.0)


def test_prefix_names_ground_truth(skeleton):
    assert {m.ns for m in skeleton_markers(skeleton, color=(0, 0, 1, 1), ns_prefix="ground_truth")} == {"ground_truth0"}


@pytest.mark.parametrize("bad", [np.zeros((16, 3)), np.zeros((17, 2)), np.full((17, 3), np.nan)])
def test_bad_skeletons_are_refused(bad):
    with pytest.raises(ValueError, match="skeleton|joints"):
        skeleton_markers(bad, color=(1, 1, 1, 1))


def test_colour_follows_number_of_modalities():
    assert color_for_modalities([True] * 4) == MODALITY_COUNT_COLORS[4]
    assert color_for_modalities([True, False, True, False]) == MODALITY_COUNT_COLORS[2]
    assert color_for_modalities([False, False, False, True]) == MODALITY_COUNT_COLORS[1]
    assert len(set(MODALITY_COUNT_COLORS.values())) == 4
    with pytest.raises(ValueError):
        color_for_modalities([False] * 4)
    with pytest.raises(ValueError):
        color_for_modalities([True] * 3)


def test_error_colours_run_green_yellow_red_and_clip():
    from mmhpe_ros.runtime.markers import ERROR_RAMP, error_colors

    errors = np.array([0.0, 40.0, 100.0, 160.0, 1000.0] + [70.0] * (NUM_JOINTS - 5))
    colors = error_colors(errors, 40.0, 160.0)
    assert colors.shape == (NUM_JOINTS, 4)
    np.testing.assert_allclose(colors[:5], [ERROR_RAMP[0], ERROR_RAMP[0], ERROR_RAMP[1], ERROR_RAMP[2],
                                            ERROR_RAMP[2]])
    np.testing.assert_allclose(colors[5], (np.array(ERROR_RAMP[0]) + ERROR_RAMP[1]) / 2)  # 70 mm: a quarter
    with pytest.raises(ValueError, match="low < high"):
        error_colors(errors, 160.0, 40.0)
    with pytest.raises(ValueError, match="finite"):
        error_colors(np.full(NUM_JOINTS, np.nan), 40.0, 160.0)


def test_joint_colours_colour_each_bone_end_as_its_joint(skeleton):
    colors = np.random.default_rng(1).uniform(size=(NUM_JOINTS, 4))
    people = np.stack([skeleton, skeleton + 1.0])
    markers = skeleton_markers(people, color=(1, 1, 1, 1), joint_colors=colors)
    for joints, bones in zip(markers[::2], markers[1::2]):
        np.testing.assert_array_equal(joints.colors, colors)
        for k, (parent, child) in enumerate(BONES):
            np.testing.assert_array_equal(bones.colors[2 * k], colors[parent])
            np.testing.assert_array_equal(bones.colors[2 * k + 1], colors[child])
    assert skeleton_markers(skeleton, color=(1, 1, 1, 1))[0].colors is None
    with pytest.raises(ValueError, match="joint_colors"):
        skeleton_markers(skeleton, color=(1, 1, 1, 1), joint_colors=colors[:, :3])
