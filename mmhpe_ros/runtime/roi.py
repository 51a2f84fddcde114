"""Point-cloud clean-up before the model: drop non-finite points, crop to a region of interest.

Vectorised over the points; each step reports how many points it removed so the node can count
them in its diagnostics.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class RegionOfInterest:
    """Axis-aligned box on x, y, z (metres, sensor frame); bounds may be +-inf (no limit)."""

    lower: tuple[float, float, float] = (-np.inf, -np.inf, -np.inf)
    upper: tuple[float, float, float] = (np.inf, np.inf, np.inf)

    def __post_init__(self) -> None:
        lower, upper = np.asarray(self.lower, float), np.asarray(self.upper, float)
        if lower.shape != (3,) or upper.shape != (3,):
            raise ValueError(f"region of interest bounds must be 3 values each, got {self.lower} and {self.upper}")
        if np.isnan(lower).any() or np.isnan(upper).any() or (lower > upper).any():
            raise ValueError(f"region of interest needs lower <= upper on every axis, got {self.lower} > {self.upper}")

    @classmethod
    def from_parameters(cls, lower: Sequence[float], upper: Sequence[float]) -> "RegionOfInterest":
        """From two 3-element parameter lists (an empty list means unbounded)."""
        lower = tuple(float(v) for v in lower) or (-np.inf,) * 3
        upper = tuple(float(v) for v in upper) or (np.inf,) * 3
        return cls(lower, upper)  # type: ignore[arg-type]

    def contains(self, xyz: np.ndarray) -> np.ndarray:
        """(N, 3) -> (N,) bool: inside the box (bounds inclusive)."""
        return ((xyz >= self.lower) & (xyz <= self.upper)).all(axis=1)


@dataclass(frozen=True)
class FilterResult:
    """Points kept and how many were removed for being non-finite or outside the region."""

    points: np.ndarray
    non_finite: int
    outside: int


def clean_points(points: np.ndarray, roi: RegionOfInterest) -> FilterResult:
    """Keep points whose every field is finite and whose first three fields lie in ``roi``.

    ``points`` is (N, C) with x, y, z first (C >= 3). The kept rows keep their order.
    """
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(f"expected points of shape (N, C >= 3) with x, y, z first, got {points.shape}")
    finite = np.isfinite(points).all(axis=1)
    inside = roi.contains(points[:, :3]) & finite
    return FilterResult(points[inside], int(len(points) - finite.sum()), int(finite.sum() - inside.sum()))
