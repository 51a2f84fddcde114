"""Driver point clouds: field mapping and axes (runtime/cloud_layout.py), organised clouds and NaN
points as drivers publish them (runtime/codecs.py)."""
from __future__ import annotations

import numpy as np
import pytest

from driver_clouds import (
    OUSTER_FIELDS, OUSTER_POINT_STEP, TI_FIELDS, TI_POINT_STEP, VELODYNE_FIELDS, VELODYNE_POINT_STEP,
    FLOAT32, driver_cloud,
)
from mmhpe_ros.modalities import LIDAR_FIELDS, MMWAVE_FIELDS
from mmhpe_ros.runtime.cloud_input import CloudInput
from mmhpe_ros.runtime.cloud_layout import PRESETS, CloudLayout, layout_from_parameters
from mmhpe_ros.runtime.codecs import CodecError, read_point_columns

RNG = np.random.default_rng(7)


def _radar_columns(n: int = 12) -> dict[str, np.ndarray]:
    values = RNG.normal(size=(5, n)).astype(np.float32)
    return dict(zip(("x", "y", "z", "intensity", "velocity"), values))


def test_ti_mmwave_cloud_reads_in_our_column_order():
    columns = _radar_columns()
    msg = driver_cloud(TI_FIELDS, TI_POINT_STEP, columns)
    points = PRESETS["ti_mmwave"].read(msg, MMWAVE_FIELDS)
    expected = np.stack([columns[c] for c in MMWAVE_FIELDS], axis=1).astype(np.float64)
    assert points.dtype == np.float64 and points.shape == (12, 5)
    np.testing.assert_array_equal(points, expected)
    np.testing.assert_array_equal(PRESETS["auto"].read(msg, MMWAVE_FIELDS), expected)  # same names


def test_field_map_renames_and_velocity_scale_flips():
    columns = _radar_columns()
    fields = (("x", 0, FLOAT32), ("y", 4, FLOAT32), ("z", 8, FLOAT32),
              ("radar_relative_radial_velocity", 12, FLOAT32), ("signal_to_noise_ratio", 16, FLOAT32))
    renamed = {"x": columns["x"], "y": columns["y"], "z": columns["z"],
               "radar_relative_radial_velocity": columns["velocity"], "signal_to_noise_ratio": columns["intensity"]}
    msg = driver_cloud(fields, 20, renamed)
    with pytest.raises(CodecError, match="cloud_layout 'auto'.*field_map"):
        PRESETS["auto"].read(msg, MMWAVE_FIELDS)
    np.testing.assert_array_equal(PRESETS["provizio"].read(msg, MMWAVE_FIELDS)[:, 3], columns["velocity"])
    layout = layout_from_parameters("auto", "velocity=radar_relative_radial_velocity, intensity=signal_to_noise_ratio",
                                    velocity_scale=-1.0)
    points = layout.read(msg, MMWAVE_FIELDS)
    np.testing.assert_array_equal(points[:, 3], -columns["velocity"].astype(np.float64))
    np.testing.assert_array_equal(points[:, 4], columns["intensity"].astype(np.float64))
    assert layout.name == "auto (changed)"


def test_axes_turn_a_non_rep103_frame_into_ours():
    """TI's sensor coordinates (x right, y boresight, z up) as a bridge might publish them: a point
    straight ahead 2 m and 0.5 m to the left must come out at x 2, y 0.5."""
    sensor = {"x": np.array([-0.5, 1.0], np.float32), "y": np.array([2.0, 3.0], np.float32),
              "z": np.array([0.25, -0.1], np.float32), "intensity": np.zeros(2, np.float32),
              "velocity": np.array([0.3, -0.2], np.float32)}
    msg = driver_cloud(TI_FIELDS, TI_POINT_STEP, sensor)
    points = layout_from_parameters("ti_mmwave", axes="y -x z").read(msg, MMWAVE_FIELDS)
    np.testing.assert_allclose(points[:, :3], [[2.0, 0.5, 0.25], [3.0, -1.0, -0.1]], rtol=1e-6)
    np.testing.assert_allclose(points[:, 3], [0.3, -0.2], rtol=1e-6)  # radial: the same in any axes
    left_handed = layout_from_parameters(axes="x -y z").read(msg, ["x", "y", "z"])
    np.testing.assert_allclose(left_handed[:, 1], [-2.0, -3.0], rtol=1e-6)
    with pytest.raises(ValueError, match="read x, y and z together"):
        layout_from_parameters(axes="y -x z").read(msg, ["x", "velocity"])


@pytest.mark.parametrize("kwargs, message", [
    ({"cloud_layout": "hesai"}, "unknown cloud_layout 'hesai'"),
    ({"field_map": "velocity"}, "expected ours=theirs"),
    ({"field_map": "speed=doppler"}, "unknown columns"),
    ({"axes": "x y"}, "three signed axis names"),
    ({"axes": "x x z"}, "x, y and z once each"),
    ({"axes": "x y w"}, "axis 'w'"),
    ({"axes": "x --y z"}, "axis '--y'"),
    ({"velocity_scale": 0.0}, "velocity_scale"),
    ({"velocity_scale": float("nan")}, "velocity_scale"),
])
def test_bad_parameters_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        layout_from_parameters(**kwargs)


def test_columns_must_be_ours():
    with pytest.raises(ValueError, match="not ours"):
        CloudLayout().read(driver_cloud(TI_FIELDS, TI_POINT_STEP, _radar_columns()), ["x", "ring"])


# --- organised clouds and NaN points, as LiDAR drivers publish them ---------------------------


def _ouster_scan(beams: int = 4, columns: int = 8) -> dict[str, np.ndarray]:
    count = beams * columns
    xyz = RNG.uniform(-5, 5, size=(3, count)).astype(np.float32)
    missing = RNG.random(count) < 0.3
    xyz[:, missing] = np.nan  # no return: ouster-ros writes NaN x, y, z in an organised cloud
    return {"x": xyz[0], "y": xyz[1], "z": xyz[2], "intensity": RNG.uniform(0, 500, count).astype(np.float32),
            "t": np.tile(np.arange(columns, dtype=np.uint32) * 97_656, beams),
            "reflectivity": RNG.integers(0, 255, count).astype(np.uint16),
            "ring": np.repeat(np.arange(beams, dtype=np.uint16), columns),
            "ambient": RNG.integers(0, 1000, count).astype(np.uint16),
            "range": RNG.integers(300, 12000, count).astype(np.uint32)}


@pytest.mark.parametrize("row_padding", [0, 12])
def test_organised_ouster_cloud_with_nan_points(row_padding):
    scan = _ouster_scan()
    msg = driver_cloud(OUSTER_FIELDS, OUSTER_POINT_STEP, scan, height=4, row_padding=row_padding)
    assert (msg.height, msg.width) == (4, 8) and not msg.is_dense
    points = PRESETS["ouster"].read(msg, LIDAR_FIELDS)
    expected = np.stack([scan[a] for a in "xyz"], axis=1).astype(np.float64)
    assert points.shape == (32, 3)
    np.testing.assert_array_equal(points, expected)  # row by row, NaN where NaN (equal_nan)
    np.testing.assert_array_equal(np.isnan(points).any(axis=1), np.isnan(scan["x"]))
    # the other fields of the same organised cloud, integer types included
    extra = read_point_columns(msg, ["ring", "range", "intensity"], dtype=np.float64)
    np.testing.assert_array_equal(extra[:, 0], scan["ring"])
    np.testing.assert_array_equal(extra[:, 1], scan["range"])
    np.testing.assert_array_equal(extra[:, 2], scan["intensity"].astype(np.float64))


def test_organised_velodyne_cloud_packed_22_byte_points():
    lasers, firings = 16, 5
    count = lasers * firings
    xyz = RNG.uniform(-20, 20, size=(3, count)).astype(np.float32)
    out_of_range = RNG.random(count) < 0.2
    xyz[:, out_of_range] = np.nan
    scan = {"x": xyz[0], "y": xyz[1], "z": xyz[2], "intensity": np.where(out_of_range, np.nan, 7.0).astype(np.float32),
            "ring": np.tile(np.arange(lasers, dtype=np.uint16), firings),
            "time": np.repeat(np.arange(firings, dtype=np.float32) * 5.5e-5, lasers)}
    msg = driver_cloud(VELODYNE_FIELDS, VELODYNE_POINT_STEP, scan, height=firings)
    assert msg.width == lasers and msg.point_step == 22
    points = PRESETS["velodyne"].read(msg, LIDAR_FIELDS)
    np.testing.assert_array_equal(points, np.stack([scan[a] for a in "xyz"], axis=1).astype(np.float64))
    ring_time = read_point_columns(msg, ["ring", "time"], dtype=np.float64)
    np.testing.assert_array_equal(ring_time[:, 0], scan["ring"])
    np.testing.assert_array_equal(ring_time[:, 1], scan["time"].astype(np.float64))


def test_unorganised_cloud_without_nan_is_dense():
    columns = _radar_columns(5)
    msg = driver_cloud(TI_FIELDS, TI_POINT_STEP, columns)
    assert msg.height == 1 and msg.is_dense
    assert np.isfinite(PRESETS["ti_mmwave"].read(msg)).all()


# --- the cloud input (what the lidar and mmwave nodes run before stage 1) ------------------------


def test_cloud_input_maps_and_merges_two_radar_frames_of_one_pose_frame():
    """Two TI radar frames at 20 Hz under other field names, merged: the rows of both frames in
    our column order, oldest first, NaN rows kept for the cleaning that follows."""
    renamed = {"velocity": "doppler", "intensity": "snr"}
    fields = tuple((renamed.get(name, name), offset, datatype) for name, offset, datatype in TI_FIELDS)
    frames = [_radar_columns(6), _radar_columns(4)]
    frames[1]["x"][2] = np.nan
    messages = [driver_cloud(fields, TI_POINT_STEP, {renamed.get(n, n): v for n, v in frame.items()},
                             stamp_ns=10**9 + k * 50_000_000, frame_id="ti_mmwave_pcl")
                for k, frame in enumerate(frames)]
    cloud_input = CloudInput.from_parameters(MMWAVE_FIELDS, cloud_layout="ti_mmwave",
                                             field_map="velocity=doppler intensity=snr",
                                             merge_frames=2, merge_window_s=0.12)
    first, second = (cloud_input.read(msg) for msg in messages)
    assert (first.stamp_ns, first.clouds) == (10**9, 1)
    assert (second.stamp_ns, second.oldest_ns, second.clouds) == (10**9 + 50_000_000, 10**9, 2)
    assert second.frame_id == "ti_mmwave_pcl"
    expected = np.vstack([np.stack([f[c] for c in MMWAVE_FIELDS], axis=1) for f in frames]).astype(np.float64)
    np.testing.assert_array_equal(second.points, expected)
    assert cloud_input.read(messages[0]) is None  # late: merged later, never published twice
    passing = CloudInput(LIDAR_FIELDS).read(messages[1])
    np.testing.assert_array_equal(passing.points, expected[6:, :3])
    with pytest.raises(ValueError, match="unknown cloud input parameters"):
        CloudInput.from_parameters(LIDAR_FIELDS, radar_frames=2)
