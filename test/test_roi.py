"""Point clean-up: non-finite points dropped, region-of-interest crop, counts reported."""
import numpy as np
import pytest

from mmhpe_ros.runtime.roi import RegionOfInterest, clean_points


def test_non_finite_rows_are_dropped_and_counted():
    points = np.array([[0, 0, 0, 1], [np.nan, 0, 0, 1], [0, np.inf, 0, 1], [1, 1, 1, -np.inf], [2, 2, 2, 0]])
    result = clean_points(points, RegionOfInterest())
    np.testing.assert_array_equal(result.points, points[[0, 4]])
    assert (result.non_finite, result.outside) == (3, 0)


def test_crop_keeps_inside_inclusive_bounds_in_order():
    rng = np.random.default_rng(0)
    points = rng.uniform(-3, 3, size=(500, 3))
    roi = RegionOfInterest((-1.0, -2.0, 0.0), (1.0, 2.0, 3.0))
    result = clean_points(points, roi)
    inside = (np.abs(points[:, 0]) <= 1) & (np.abs(points[:, 1]) <= 2) & (points[:, 2] >= 0)
    np.testing.assert_array_equal(result.points, points[inside])
    assert result.outside == 500 - inside.sum() and result.non_finite == 0
    edge = clean_points(np.array([[1.0, 2.0, 3.0]]), roi)
    assert len(edge.points) == 1


def test_from_parameters_empty_means_unbounded():
    roi = RegionOfInterest.from_parameters([], [])
    assert roi.contains(np.array([[1e9, -1e9, 0.0]])).all()
    roi = RegionOfInterest.from_parameters([0, 0, 0], [1, 1, 1])
    assert not roi.contains(np.array([[2.0, 0.5, 0.5]])).any()


@pytest.mark.parametrize("lower,upper", [((0, 0), (1, 1, 1)), ((2, 0, 0), (1, 1, 1)), ((np.nan, 0, 0), (1, 1, 1))])
def test_bad_regions_are_refused(lower, upper):
    with pytest.raises(ValueError, match="region of interest"):
        RegionOfInterest(lower, upper)


def test_points_without_xyz_are_refused():
    with pytest.raises(ValueError, match="x, y, z"):
        clean_points(np.zeros((4, 2)), RegionOfInterest())
