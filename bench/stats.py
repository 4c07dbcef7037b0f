"""The few statistics the benchmarks report."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

NS_PER_MS = 1_000_000


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), interpolating linearly between the closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(nanoseconds: float) -> float:
    return nanoseconds / NS_PER_MS
