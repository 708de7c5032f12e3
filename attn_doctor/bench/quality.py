"""The quality gate a bench figure passes before it is evidence (pure).

A figure is *reliable* when its spread is within ``MAX_HALF_IQR`` and it is not above a
physical ceiling: the dense matmul rate measured in the same run (an attention kernel does
its work in matmuls, so it cannot beat them; the ceiling itself must be reliable to judge by)
or the GPU's datasheet rate. A figure that fails is re-measured (``MAX_ATTEMPTS`` timed
loops, within ``REMEASURE_BUDGET_SECONDS`` per figure, in ``attn_doctor.bench.worker``); one
still failing is shown as unreliable, never saved in the bench cache, and never ranked by.

``figure_problem`` is the one rule; the worker applies it while measuring, the parent again
once the ceilings are known, and ``evidence_from_runs`` once more on what a cache holds (a
run saved by an older attn-doctor was never gated).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from attn_doctor.bench.stats import TimingStats

MAX_HALF_IQR = 0.15
"""The bound on a figure's spread: half the interquartile range of its per-call times over
their median (the ``±`` the table shows) at most 15 %. A stable GPU kernel timed with CUDA
events stays within a few per cent; the issue that brought this gate in saw ±739 %."""

MAX_CEILING_FRACTION = 1.0
"""Above 100 % of the matmul peak measured in the same run, or of the datasheet's dense
rate, a figure is a timing error, not a fast kernel."""

MAX_ATTEMPTS = 3
"""Timed loops per figure: the first, and up to two re-measurements."""

REMEASURE_BUDGET_SECONDS = 8.0
"""Wall time one figure's re-measurements may take together (a timed loop is capped at about
``timing.POINT_BUDGET_SECONDS``); once spent, the figure keeps its last attempt's verdict."""


def half_iqr(stats: TimingStats) -> float | None:
    """Half the IQR over the median: the table's ``±``."""
    rel = stats.relative_iqr
    return None if rel is None else rel / 2.0


def figure_problem(
    stats: TimingStats | None,
    tflops: float | None,
    *,
    ceiling_tflops: float | None = None,
    datasheet_tflops: float | None = None,
) -> str | None:
    """Why this figure is not evidence, or None when it passes the gate.

    ``ceiling_tflops``: the matmul rate measured in the same run (None: unknown or itself
    unreliable); ``datasheet_tflops``: the GPU's dense datasheet rate at this dtype.
    """
    if stats is None or tflops is None:
        return "no figure"
    spread = half_iqr(stats)
    if spread is None:
        return "zero median time"
    if ceiling_tflops and tflops > ceiling_tflops * MAX_CEILING_FRACTION:
        return (
            f"{tflops / ceiling_tflops:.0%} of the matmul peak measured in the same run "
            "(above 100% is a timing error)"
        )
    if datasheet_tflops and tflops > datasheet_tflops * MAX_CEILING_FRACTION:
        return f"{tflops / datasheet_tflops:.0%} of the datasheet's dense rate"
    if spread > MAX_HALF_IQR:
        return f"spread ±{spread:.0%} is beyond the ±{MAX_HALF_IQR:.0%} bound"
    return None


def ceiling_problem(
    stats: TimingStats | None, datasheet_tflops: float | None, tflops: float | None
) -> str | None:
    """Why a measured matmul ceiling cannot be judged by (spread, or above its datasheet)."""
    return figure_problem(stats, tflops, datasheet_tflops=datasheet_tflops)


@dataclass(frozen=True, kw_only=True)
class Gated:
    """The attempt a figure keeps, and how many timed loops it took."""

    stats: TimingStats
    problem: str | None
    attempts: int


def measure_gated(
    measure: Callable[[], TimingStats],
    judge: Callable[[TimingStats], str | None],
    *,
    clock: Callable[[], float] = time.monotonic,
    budget: float = REMEASURE_BUDGET_SECONDS,
    attempts: int = MAX_ATTEMPTS,
) -> Gated:
    """Time with ``measure`` until ``judge`` finds no problem, at most ``attempts`` times and,
    after the first, only while ``budget`` seconds (by ``clock``) are left. Keeps the first
    attempt that passes, else the last one with its problem."""
    started = clock()
    stats = measure()
    problem = judge(stats)
    done = 1
    while problem is not None and done < attempts and clock() - started < budget:
        stats = measure()
        problem = judge(stats)
        done += 1
    return Gated(stats=stats, problem=problem, attempts=done)
