"""Medians, spreads and ratios of repeated benchmark runs."""

from __future__ import annotations

import pytest

from tests.support.bench import stats


def test_median_of_odd_and_even_counts():
    assert stats.median([3.0, 1.0, 2.0]) == 2.0
    assert stats.median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_median_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        stats.median([])


def test_quantiles_interpolate_between_ranks():
    values = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert stats.quantile(values, 0.25) == 20.0
    assert stats.quantile(values, 0.5) == 30.0
    assert stats.quantile([1.0, 2.0], 0.25) == pytest.approx(1.25)
    with pytest.raises(ValueError):
        stats.quantile(values, 1.5)


def test_summary_holds_median_min_max_and_iqr():
    summary = stats.summarize([52_000.0, 58_000.0, 55_000.0, 61_000.0, 54_000.0])
    assert summary.count == 5
    assert summary.median == 55_000.0
    assert (summary.low, summary.high) == (52_000.0, 61_000.0)
    assert (summary.q1, summary.q3) == (54_000.0, 58_000.0)
    assert summary.spread_pct == pytest.approx(100 * 9_000 / 55_000)


def test_ratio_is_none_when_a_side_is_missing_or_zero():
    assert stats.ratio(28_000.0, 56_000.0) == 0.5
    assert stats.ratio(None, 56_000.0) is None
    assert stats.ratio(1.0, None) is None
    assert stats.ratio(1.0, 0.0) is None
