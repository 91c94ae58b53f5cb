"""Figures from repeated runs: median with min and max, percentiles, ratios.

Pure; called by ``bench.run`` and ``bench.storm`` and tested in ``tests/bench``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Spread:
    """The median of several runs of one figure, with the lowest and highest."""

    median: float
    min: float
    max: float
    runs: int

    def as_dict(self) -> dict[str, float | int]:
        return {"median": self.median, "min": self.min, "max": self.max, "runs": self.runs}

    def ratio_to(self, floor: Spread) -> float | None:
        """This median over ``floor``'s; None when the floor is zero."""
        return self.median / floor.median if floor.median else None


def spread(values: Sequence[float]) -> Spread:
    """Median, min and max of ``values`` (at least one)."""
    if not values:
        raise ValueError("no values to summarise")
    return Spread(float(statistics.median(values)), float(min(values)), float(max(values)), len(values))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values for a percentile")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not within 0..100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
