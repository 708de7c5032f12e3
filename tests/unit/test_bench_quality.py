"""bench's quality gate (pure): the rule, re-measuring within a budget, what may be saved, and
the one decision ranking by reliable evidence only, saying which it used."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

from attn_doctor.bench.cache import load_cached_result, save_bench_result
from attn_doctor.bench.quality import (
    MAX_ATTEMPTS,
    MAX_HALF_IQR,
    figure_problem,
    measure_gated,
)
from attn_doctor.bench.recommend import evidence_from_runs, evidence_only, recommend
from attn_doctor.bench.results import BackendSweep, BenchResult
from attn_doctor.bench.stats import TimingStats, summarize
from attn_doctor.decide import rank
from attn_doctor.planner.plans import Option
from tests import bench_data

STEADY = summarize([1.0, 1.0, 1.01, 0.99, 1.0])
NOISY = summarize([1.0, 0.2, 3.0, 0.5, 7.0])


@pytest.mark.parametrize(
    ("stats", "tflops", "ceiling", "sheet", "expected"),
    [
        (STEADY, 100.0, 700.0, 990.0, None),
        (NOISY, 100.0, 700.0, None, "spread"),
        (STEADY, 800.0, 700.0, None, "matmul peak measured in the same run"),
        (STEADY, 1000.0, None, 990.0, "datasheet"),
        (None, None, None, None, "no figure"),
    ],
    ids=["steady", "noisy", "above-measured-peak", "above-datasheet", "no-figure"],
)
def test_the_rule(
    stats: TimingStats | None,
    tflops: float | None,
    ceiling: float | None,
    sheet: float | None,
    expected: str | None,
) -> None:
    problem = figure_problem(stats, tflops, ceiling_tflops=ceiling, datasheet_tflops=sheet)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None
        assert expected in problem


def test_the_bound_is_the_tables_plus_minus() -> None:
    # Half the IQR over the median: 1.0 ± 0.15 passes at the bound, beyond it fails.
    at_bound = summarize([0.85, 0.85, 1.0, 1.15, 1.15])
    assert (at_bound.relative_iqr or 0) / 2 == pytest.approx(MAX_HALF_IQR)
    assert figure_problem(at_bound, 1.0) is None


def _judge(stats: TimingStats) -> str | None:
    return figure_problem(stats, 1.0)


def test_an_unstable_figure_is_remeasured_and_the_first_good_attempt_kept() -> None:
    attempts = iter([NOISY, STEADY, NOISY])
    gated = measure_gated(lambda: next(attempts), _judge, clock=itertools.count().__next__)
    assert gated.problem is None
    assert gated.attempts == 2
    assert gated.stats == STEADY


def test_still_unstable_after_every_attempt_keeps_its_problem() -> None:
    gated = measure_gated(lambda: NOISY, _judge, clock=itertools.count().__next__)
    assert gated.attempts == MAX_ATTEMPTS
    assert gated.problem is not None


def test_the_time_budget_stops_re_measuring() -> None:
    ticks = iter([0.0, 100.0])  # the first attempt already spent the budget
    gated = measure_gated(lambda: NOISY, _judge, clock=lambda: next(ticks), budget=10.0)
    assert gated.attempts == 1
    assert gated.problem is not None


def _with_noise(result: BenchResult, backend: str) -> BenchResult:
    """``result`` whose ``backend`` figures have the spread of a noisy run."""
    sweeps = tuple(
        dataclasses.replace(s, points=tuple(dataclasses.replace(p, time=NOISY) for p in s.points))
        if s.backend == backend
        else s
        for s in result.sweeps
    )
    return dataclasses.replace(result, sweeps=sweeps, recommendation=recommend(sweeps))


def _fast_eager_noisy() -> BenchResult:
    # eager "46x faster than sdpa": the figure the gate exists for.
    fa2 = bench_data.sweep("flash_attn_2", {1024: 1.0, 2048: 3.5})
    eager = bench_data.sweep("eager", {1024: 0.02, 2048: 0.07})
    return _with_noise(bench_data.result(fa2, eager), "eager")


def test_an_old_run_is_gated_when_read_as_evidence() -> None:
    # Saved before the gate (no ``problem`` on any figure): the rule is applied on reading.
    run = _fast_eager_noisy()
    assert all(p.problem is None for s in run.sweeps for p in s.points)
    evidence = evidence_from_runs([run])
    assert evidence is not None
    assert evidence.speed("eager", training=False) is None
    assert evidence.speed("flash_attn_2", training=False) is not None
    (fa2,) = [m for m in evidence.measurements if m.backend == "flash_attn_2"]
    assert fa2.figures == 2


def test_only_reliable_figures_are_saved(tmp_path: Path) -> None:
    run = _fast_eager_noisy()
    kept = evidence_only(run)
    assert kept is not None
    eager = kept.sweep("eager")
    assert isinstance(eager, BackendSweep)
    assert eager.points == ()
    path = save_bench_result(run, tmp_path / "bench.json")
    assert path is not None
    stored = load_cached_result(run.cache_key, path)
    assert stored is not None
    stored_eager = stored.sweep("eager")
    assert stored_eager is not None
    assert stored_eager.points == ()


def test_nothing_reliable_is_not_saved(tmp_path: Path) -> None:
    run = _with_noise(bench_data.result(bench_data.sweep("eager", {1024: 1.0})), "eager")
    assert evidence_only(run) is None
    assert save_bench_result(run, tmp_path / "bench.json") is None
    assert not (tmp_path / "bench.json").exists()


def test_the_decision_says_which_evidence_it_used() -> None:
    evidence = evidence_from_runs([_fast_eager_noisy()])
    options = [
        Option(backend="flash_attn_2", status="ready", way="installed", reason=""),
        Option(backend="eager", status="ready", way="built in", reason="", source="torch"),
    ]
    ranked = rank(
        options, gpu=None, sdpa_kernel="sdpa_math", sdpa_kernel_source="t", evidence=evidence
    )
    assert [c.backend for c in ranked] == ["flash_attn_2", "eager"]
    top, eager = ranked
    assert top.measured
    assert top.evidence is not None
    assert top.evidence.startswith("2 reliable figure(s) from attn-doctor bench on cuda:")
    assert not eager.measured
    assert eager.evidence is None
