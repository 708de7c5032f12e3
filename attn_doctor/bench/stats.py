"""Summary statistics of repeated timings: the median and its spread.

Pure functions; the timing loops live in ``attn_doctor.bench.worker``. The median is reported
(robust to the odd slow repetition from a clock change or another process); the spread is the
interquartile range and the min/max, so a reader can see whether the figure is stable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class TimingStats:
    """Per-call wall times of ``reps`` repetitions, in milliseconds."""

    reps: int
    median_ms: float
    q1_ms: float
    """25th percentile (linear interpolation, as ``numpy.percentile``'s default)."""
    q3_ms: float
    """75th percentile."""
    min_ms: float
    max_ms: float

    @property
    def iqr_ms(self) -> float:
        return self.q3_ms - self.q1_ms

    @property
    def relative_iqr(self) -> float | None:
        """IQR / median: 0.02 means the middle half of the runs lie within 2 %."""
        return self.iqr_ms / self.median_ms if self.median_ms > 0 else None


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already-sorted values, linear interpolation between
    closest ranks (numpy's default ``method="linear"``)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def summarize(samples_ms: Sequence[float]) -> TimingStats:
    """Median, quartiles and extremes of the samples (milliseconds).

    Raises ``ValueError`` on an empty sequence or a non-finite / negative sample: a timing
    loop that produced one is broken and must not be averaged over.
    """
    if not samples_ms:
        raise ValueError("no timing samples")
    for s in samples_ms:
        if not math.isfinite(s) or s < 0:
            raise ValueError(f"invalid timing sample {s!r}")
    ordered = sorted(float(s) for s in samples_ms)
    return TimingStats(
        reps=len(ordered),
        median_ms=percentile(ordered, 50.0),
        q1_ms=percentile(ordered, 25.0),
        q3_ms=percentile(ordered, 75.0),
        min_ms=ordered[0],
        max_ms=ordered[-1],
    )
