"""Summaries of repeated measurements: median, min-max spread, interquartile range, ratios to a reference.

Everything here is pure arithmetic on lists of floats, so it is unit tested without running anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs


@attrs.frozen
class Summary:
    """The repetitions of one figure: how many, their median, and their spread."""

    count: int
    median: float
    low: float
    high: float
    q1: float
    q3: float

    @property
    def spread_pct(self) -> float:
        """(max - min) relative to the median, in percent; 0 when the median is 0."""
        if self.median == 0:
            return 0.0
        return 100.0 * (self.high - self.low) / abs(self.median)


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2.0


def quantile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), for 0 <= q <= 1."""
    if not values:
        raise ValueError("quantile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within [0, 1], not {q}")
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = math.ceil(position)
    fraction = position - below
    return ordered[below] + (ordered[above] - ordered[below]) * fraction


def summarize(values: Sequence[float]) -> Summary:
    return Summary(
        count=len(values),
        median=median(values),
        low=float(min(values)),
        high=float(max(values)),
        q1=quantile(values, 0.25),
        q3=quantile(values, 0.75),
    )


def ratio(value: float | None, reference: float | None) -> float | None:
    """value / reference, or None when either is missing or the reference is 0."""
    if value is None or reference is None or reference == 0:
        return None
    return value / reference
