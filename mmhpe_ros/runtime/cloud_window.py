"""Merge the last few clouds of one sensor into one: radar frames within one pose frame.

A radar driver publishes one small cloud per radar frame (TI's mmWave driver: one
``PointCloud2`` per UART frame, 10-30 Hz, a handful of points each), while the model was trained
on what one 100 ms MM-Fi frame holds. :class:`CloudWindow` keeps the clouds of a stream by stamp
and, for each new cloud, returns the merge of the window that ends with it: the last ``frames``
clouds, of those only the ones within ``window_s`` seconds of the newest (``window_s`` 0: no
time limit), rows oldest first, stamped with the newest stamp. ``frames=1`` passes every cloud
through unchanged.

Arrival order does not matter for what is merged (clouds are kept sorted by stamp), but only a
cloud newer than every cloud seen gives a merge to publish: an older one (late, reordered by the
network) joins the window for the merges that follow and returns None, so no stamp is published
twice. A cloud with the newest stamp again replaces it (a duplicate) and returns None. A stamp
more than ``reset_after_s`` behind the newest (a bag played again, a restarted driver), a new
frame id or another column count starts the window afresh.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

import numpy as np

NS_PER_S = 1_000_000_000

# Node parameters: name, default, description (the cloud nodes declare them).
WINDOW_PARAMETERS: tuple[tuple[str, Any, str], ...] = (
    ("merge_frames", 1, "merge each cloud with the clouds before it, this many in all (radar: the "
                        "radar frames of one pose frame, e.g. 2 at 20 Hz); 1 passes clouds through"),
    ("merge_window_s", 0.0, "only merge clouds stamped within this many seconds of the newest "
                            "(0: no limit); guards against merging across a gap"),
)


@dataclass(frozen=True)
class MergedCloud:
    """The window ending with one cloud: its rows (oldest cloud first), the newest stamp and frame id,
    how many clouds it merges and the oldest stamp among them."""

    stamp_ns: int
    frame_id: str
    points: np.ndarray
    clouds: int
    oldest_ns: int


class CloudWindow:
    """The last clouds of one stream by stamp; :meth:`add` returns each new window's merge.

    Counters: ``late`` (older than the newest: merged later, not published), ``duplicates``,
    ``resets`` (time jumped back, frame id or column count changed)."""

    def __init__(self, frames: int = 1, window_s: float = 0.0, reset_after_s: float = 1.0) -> None:
        if int(frames) != frames or frames < 1:
            raise ValueError(f"merge_frames must be an integer >= 1, got {frames}")
        if not np.isfinite(window_s) or window_s < 0:
            raise ValueError(f"merge_window_s must be >= 0 (0: no limit), got {window_s}")
        if not reset_after_s > 0:
            raise ValueError(f"reset_after_s must be > 0, got {reset_after_s}")
        self.frames = int(frames)
        self.window_ns = round(window_s * NS_PER_S)
        self.reset_after_ns = round(reset_after_s * NS_PER_S)
        self._stamps: list[int] = []
        self._clouds: list[np.ndarray] = []
        self._frame_id: str | None = None
        self.late = self.duplicates = self.resets = 0

    @classmethod
    def from_parameters(cls, merge_frames: int = 1, merge_window_s: float = 0.0) -> "CloudWindow":
        """From the node parameters of :data:`WINDOW_PARAMETERS`."""
        return cls(merge_frames, merge_window_s)

    @property
    def passes_through(self) -> bool:
        """True when every cloud is returned alone (``frames`` 1)."""
        return self.frames == 1

    def add(self, stamp_ns: int, points: np.ndarray, frame_id: str = "") -> MergedCloud | None:
        """Add one cloud ((N, C) rows); the merge of the window it ends, or None when it is not the
        newest cloud (late or a duplicate)."""
        points = np.asarray(points)
        if points.ndim != 2:
            raise ValueError(f"a cloud must be (N, C) rows, got shape {points.shape}")
        stamp_ns = int(stamp_ns)
        if self._must_reset(stamp_ns, points, frame_id):
            self.resets += bool(self._stamps)
            self._stamps, self._clouds, self._frame_id = [], [], frame_id
        newest = self._stamps[-1] if self._stamps else None
        at = bisect.bisect_left(self._stamps, stamp_ns)
        if at < len(self._stamps) and self._stamps[at] == stamp_ns:
            self._clouds[at] = points
            self.duplicates += 1
            return None
        self._stamps.insert(at, stamp_ns)
        self._clouds.insert(at, points)
        self._evict()
        if newest is not None and stamp_ns < newest:
            self.late += 1
            return None
        return self._merged(frame_id)

    def _must_reset(self, stamp_ns: int, points: np.ndarray, frame_id: str) -> bool:
        if not self._stamps:
            return True
        return (frame_id != self._frame_id or points.shape[1] != self._clouds[-1].shape[1]
                or stamp_ns < self._stamps[-1] - self.reset_after_ns)

    def _evict(self) -> None:
        """Keep what a future window can still use: the last ``frames`` clouds within the time window
        of the newest."""
        keep_from = max(0, len(self._stamps) - self.frames)
        if self.window_ns:
            keep_from = max(keep_from, bisect.bisect_right(self._stamps, self._stamps[-1] - self.window_ns))
        del self._stamps[:keep_from], self._clouds[:keep_from]

    def _merged(self, frame_id: str) -> MergedCloud:
        clouds = self._clouds
        points = clouds[0] if len(clouds) == 1 else np.concatenate(clouds, axis=0)
        return MergedCloud(self._stamps[-1], frame_id, points, len(clouds), self._stamps[0])
