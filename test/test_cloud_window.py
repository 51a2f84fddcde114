"""Merging the last radar frames of a stream into one cloud (runtime/cloud_window.py)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmhpe_ros.runtime.cloud_window import CloudWindow

MS = 1_000_000


def _cloud(stamp_ms: float, rows: int = 3) -> np.ndarray:
    """Rows whose first column is the stamp they belong to (so merges can be checked by content)."""
    return np.column_stack([np.full(rows, stamp_ms), np.arange(rows, dtype=float)])


def _stamps_of(points: np.ndarray) -> list[float]:
    return sorted(set(points[:, 0].tolist()))


def test_one_frame_passes_every_cloud_through():
    window = CloudWindow()
    for stamp in (0, 50, 100):
        cloud = _cloud(stamp)
        merged = window.add(stamp * MS, cloud, "radar")
        assert merged.stamp_ns == stamp * MS and merged.clouds == 1 and merged.frame_id == "radar"
        np.testing.assert_array_equal(merged.points, cloud)


def test_last_n_frames_merge_oldest_first_stamped_with_the_newest():
    window = CloudWindow(frames=3)
    results = [window.add(stamp * MS, _cloud(stamp, rows=stamp // 50 + 1)) for stamp in (0, 50, 100, 150, 200)]
    assert [r.clouds for r in results] == [1, 2, 3, 3, 3]
    last = results[-1]
    assert last.stamp_ns == 200 * MS and last.oldest_ns == 100 * MS
    assert last.points[:, 0].tolist() == [100.0] * 3 + [150.0] * 4 + [200.0] * 5  # oldest cloud first


def test_time_window_drops_clouds_older_than_window_s():
    window = CloudWindow(frames=10, window_s=0.1)  # (newest - 100 ms, newest]
    for stamp in (0, 50, 100):
        merged = window.add(stamp * MS, _cloud(stamp))
    assert _stamps_of(merged.points) == [50.0, 100.0]
    merged = window.add(400 * MS, _cloud(400))  # after a gap: alone, nothing stale merged in
    assert _stamps_of(merged.points) == [400.0] and merged.clouds == 1


def test_late_cloud_joins_later_windows_but_is_not_published():
    window = CloudWindow(frames=3)
    window.add(0, _cloud(0))
    window.add(100 * MS, _cloud(100))
    assert window.add(50 * MS, _cloud(50)) is None and window.late == 1
    merged = window.add(150 * MS, _cloud(150))
    assert _stamps_of(merged.points) == [50.0, 100.0, 150.0]  # sorted by stamp, not arrival


def test_duplicate_stamp_replaces_and_is_not_published_again():
    window = CloudWindow(frames=2)
    window.add(0, _cloud(0))
    window.add(50 * MS, _cloud(50, rows=2))
    assert window.add(50 * MS, _cloud(50, rows=5)) is None and window.duplicates == 1
    merged = window.add(100 * MS, _cloud(100))
    assert merged.points[:, 0].tolist() == [50.0] * 5 + [100.0] * 3


@pytest.mark.parametrize("second", [
    {"stamp": -2000, "frame_id": "radar"},  # time jumped back (bag played again)
    {"stamp": 50, "frame_id": "radar_2"},  # another frame: cannot be merged before transforming
    {"stamp": 50, "frame_id": "radar", "columns": 4},
])
def test_reset_on_time_jump_frame_change_or_other_columns(second):
    window = CloudWindow(frames=4)
    window.add(10_000 * MS, _cloud(10_000), "radar")
    columns = second.get("columns", 2)
    stamp = 10_000 + second["stamp"]
    merged = window.add(stamp * MS, np.zeros((2, columns)) + stamp, second["frame_id"])
    assert merged is not None and merged.clouds == 1 and window.resets == 1
    assert merged.points.shape == (2, columns)


@pytest.mark.parametrize("kwargs, message", [
    ({"frames": 0}, "merge_frames"), ({"frames": 1.5}, "merge_frames"),
    ({"window_s": -0.1}, "merge_window_s"), ({"window_s": float("inf")}, "merge_window_s"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CloudWindow(**kwargs)


@settings(max_examples=60, deadline=None)
@given(stamps=st.lists(st.integers(0, 2000), min_size=1, max_size=40),
       frames=st.integers(1, 5), window_ms=st.sampled_from([0, 60, 120, 500]))
def test_each_merge_is_the_window_of_the_newest_stamp(stamps, frames, window_ms):
    """Against a brute-force oracle: every published merge holds exactly the clouds seen so far
    that are among the last ``frames`` stamps and within the window of the newest; stamps are
    published at most once, increasing."""
    window = CloudWindow(frames=frames, window_s=window_ms / 1000, reset_after_s=10.0)
    seen: dict[int, int] = {}  # stamp -> rows of the last cloud with that stamp
    published = []
    for number, stamp in enumerate(stamps):
        rows = number % 3 + 1
        merged = window.add(stamp * MS, _cloud(stamp, rows))
        newest_before = max(seen) if seen else None
        seen[stamp] = rows
        if newest_before is not None and stamp <= newest_before:
            assert merged is None
            continue
        kept = sorted(s for s in seen if not window_ms or s > stamp - window_ms)[-frames:]
        assert merged.stamp_ns == stamp * MS and merged.clouds == len(kept)
        assert merged.points[:, 0].tolist() == [float(s) for s in kept for _ in range(seen[s])]
        published.append(stamp)
    assert published == sorted(set(published))
