"""Median and spread of timing samples."""

from __future__ import annotations

import numpy as np
import pytest

from attn_doctor.bench.stats import percentile, summarize


def test_odd_count() -> None:
    s = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.reps, s.median_ms, s.min_ms, s.max_ms) == (5, 3.0, 1.0, 5.0)
    # Linear interpolation: positions 1.0 and 3.0 of the sorted list.
    assert (s.q1_ms, s.q3_ms) == (2.0, 4.0)
    assert s.iqr_ms == 2.0
    assert s.relative_iqr == pytest.approx(2.0 / 3.0)


def test_even_count_interpolates() -> None:
    s = summarize([1.0, 2.0, 3.0, 10.0])
    assert s.median_ms == 2.5
    # q1 at position 0.75 -> 1.75; q3 at position 2.25 -> 3 + 0.25·7 = 4.75.
    assert s.q1_ms == pytest.approx(1.75)
    assert s.q3_ms == pytest.approx(4.75)


def test_an_outlier_moves_the_max_not_the_median() -> None:
    s = summarize([1.0] * 9 + [1000.0])
    assert s.median_ms == 1.0
    assert s.max_ms == 1000.0


@pytest.mark.parametrize("q", [0, 10, 25, 50, 75, 90, 100])
def test_percentile_matches_numpy_linear(q: float) -> None:
    values = sorted([0.3, 7.1, 2.2, 9.9, 4.4, 4.4, 1.0, 8.8])
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_single_sample() -> None:
    s = summarize([2.5])
    assert s.median_ms == s.q1_ms == s.q3_ms == s.min_ms == s.max_ms == 2.5


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [1.0, -1.0], [float("inf")]])
def test_refuses_broken_samples(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        summarize(bad)
