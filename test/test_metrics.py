"""MPJPE and PA-MPJPE against hand-computed cases."""
import numpy as np
import pytest

from mmhpe_ros.metrics import mpjpe, pa_mpjpe, procrustes_align


def _rotation(axis: str, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    if axis == "z":
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


@pytest.fixture
def pose() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(17, 3))


def test_mpjpe_hand_computed():
    target = np.zeros((2, 3))
    predicted = np.array([[0.003, 0.004, 0.0], [0.0, 0.0, 0.001]])  # 5 mm and 1 mm
    assert mpjpe(predicted[None], target[None]) == pytest.approx(3.0)


def test_mpjpe_is_zero_for_identical_and_translation_shows(pose):
    assert mpjpe(pose, pose) == 0.0
    assert mpjpe(pose + [0.01, 0, 0], pose) == pytest.approx(10.0)


@pytest.mark.parametrize("axis,degrees", [("z", 30.0), ("x", -75.0), ("z", 180.0)])
def test_pa_mpjpe_invariant_to_rotation_translation_scale(pose, axis, degrees):
    moved = 1.7 * pose @ _rotation(axis, degrees).T + np.array([0.5, -2.0, 3.0])
    assert mpjpe(moved, pose) > 100.0
    assert pa_mpjpe(moved, pose) == pytest.approx(0.0, abs=1e-9)


def test_pa_mpjpe_excludes_reflection(pose):
    mirrored = pose * np.array([-1.0, 1.0, 1.0])
    # A reflection cannot be undone by a rotation, so error remains.
    assert pa_mpjpe(mirrored, pose) > 1.0


def test_procrustes_undoes_scale_and_translation():
    target = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=float)
    aligned = procrustes_align(target * 2 + 5, target)
    np.testing.assert_allclose(aligned, target, atol=1e-12)


def test_pa_mpjpe_known_value_of_a_twisted_square():
    """Square corners (+-a, +-a, 0); the prediction lifts one diagonal by +h and the other by -h.

    By hand: the cross-covariance is diag(4a^2, 4a^2, 0), so the best rotation is the identity
    and the best scale s = 8a^2 / (4 (2a^2 + h^2)). With a = h = 0.1 m, s = 2/3 and every corner
    is off by sqrt(2 (s - 1)^2 a^2 + s^2 h^2) = 0.1 sqrt(2/3) m = 81.65 mm; MPJPE is h = 100 mm.
    A rotated, shifted and scaled copy of the prediction has the same PA-MPJPE.
    """
    a = h = 0.1
    target = np.array([[a, a, 0], [-a, -a, 0], [a, -a, 0], [-a, a, 0]])
    twisted = np.array([[a, a, h], [-a, -a, h], [a, -a, -h], [-a, a, -h]])
    expected = 1000 * 0.1 * np.sqrt(2 / 3)
    assert mpjpe(twisted, target) == pytest.approx(100.0)
    assert pa_mpjpe(twisted, target) == pytest.approx(expected, rel=1e-9)
    moved = 3.0 * twisted @ _rotation("x", 40.0).T + np.array([1.0, 2.0, -0.5])
    assert pa_mpjpe(moved, target) == pytest.approx(expected, rel=1e-9)


def test_pa_never_worse_than_mpjpe(pose):
    noisy = pose + np.random.default_rng(1).normal(scale=0.05, size=pose.shape)
    assert pa_mpjpe(noisy, pose) <= mpjpe(noisy, pose) + 1e-9


def test_batched_matches_per_frame():
    rng = np.random.default_rng(2)
    pred, gt = rng.normal(size=(5, 17, 3)), rng.normal(size=(5, 17, 3))
    per_frame = np.mean([pa_mpjpe(p[None], g[None]) for p, g in zip(pred, gt)])
    assert pa_mpjpe(pred, gt) == pytest.approx(per_frame)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="same shape"):
        mpjpe(np.zeros((17, 3)), np.zeros((16, 3)))
