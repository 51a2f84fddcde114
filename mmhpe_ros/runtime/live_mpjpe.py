"""Running MPJPE of live predictions against ground truth that arrives on its own topic (replay).

Predictions and ground-truth skeletons arrive in either order; each is matched to the other
stream's nearest stamp within ``tolerance_ns``. Unmatched entries wait in bounded buffers (oldest
dropped), so memory stays flat if ground truth never comes.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from mmhpe_ros.metrics import mpjpe


class LiveMpjpe:
    """Mean per-joint position error (mm) over every matched (prediction, ground truth) pair."""

    def __init__(self, tolerance_ns: int, max_pending: int = 64) -> None:
        if tolerance_ns < 0 or max_pending < 1:
            raise ValueError(f"need tolerance_ns >= 0 and max_pending >= 1, got {tolerance_ns}, {max_pending}")
        self.tolerance_ns = tolerance_ns
        self.max_pending = max_pending
        self._predictions: OrderedDict[int, np.ndarray] = OrderedDict()
        self._truths: OrderedDict[int, np.ndarray] = OrderedDict()
        self._sum_mm = 0.0
        self.count = 0
        self.last_mm: float | None = None

    @property
    def mean_mm(self) -> float | None:
        """Running mean over all matched frames; None before the first match."""
        return self._sum_mm / self.count if self.count else None

    def add_prediction(self, stamp_ns: int, joints: np.ndarray) -> float | None:
        """Record a prediction; returns its MPJPE (mm) if its ground truth is already here."""
        return self._add(stamp_ns, joints, self._predictions, self._truths, prediction_first=True)

    def add_truth(self, stamp_ns: int, joints: np.ndarray) -> float | None:
        """Record a ground-truth skeleton; returns the MPJPE (mm) of a waiting prediction, if any."""
        return self._add(stamp_ns, joints, self._truths, self._predictions, prediction_first=False)

    def _add(self, stamp_ns, joints, own, other, *, prediction_first: bool) -> float | None:
        joints = np.asarray(joints, dtype=np.float64)
        match = self._nearest(stamp_ns, other)
        if match is None:
            own[stamp_ns] = joints
            while len(own) > self.max_pending:
                own.popitem(last=False)
            return None
        partner = other.pop(match)
        predicted, truth = (joints, partner) if prediction_first else (partner, joints)
        error = mpjpe(predicted, truth)
        self._sum_mm += error
        self.count += 1
        self.last_mm = error
        return error

    def _nearest(self, stamp_ns: int, pending: OrderedDict[int, np.ndarray]) -> int | None:
        if not pending:
            return None
        stamps = np.fromiter(pending.keys(), dtype=np.int64, count=len(pending))
        best = int(np.argmin(np.abs(stamps - stamp_ns)))
        return int(stamps[best]) if abs(int(stamps[best]) - stamp_ns) <= self.tolerance_ns else None
