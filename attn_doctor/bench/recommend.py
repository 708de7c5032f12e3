"""Bench's recommendation and the evidence a run gives the one decision (pure).

``recommend`` scores each measured backend (geometric-mean TFLOP/s over the shapes they all
completed) and then asks the one decision (``attn_doctor.decide.rank``) which to use:
bench does not rank on its own. ``evidence_from_runs`` turns cached runs (forward, and
forward+backward when one was run) into the ``BenchEvidence`` that ``check``, ``install --auto``
and the runtime rank by.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from attn_doctor.backends import BACKEND_NAMES, BACKENDS, BackendName
from attn_doctor.bench.quality import figure_problem
from attn_doctor.bench.results import (
    BackendSweep,
    BenchMode,
    BenchPoint,
    BenchRecommendation,
    BenchResult,
)
from attn_doctor.bench.shapes import BenchShape
from attn_doctor.decide import BenchEvidence, Measurement, rank
from attn_doctor.planner.plans import Option


def _ok_points(sweep: BackendSweep) -> dict[BenchShape, BenchPoint]:
    """The figures that are evidence: measured, and through the quality gate."""
    return {
        p.shape: p
        for p in sweep.points
        if p.status == "ok" and p.time is not None and p.tflops is not None and p.problem is None
    }


def gate_result(result: BenchResult) -> BenchResult:
    """``result`` with every figure through the quality gate again, from what it stores (its
    spread, its ceiling fraction, the datasheet rate): a run saved before the gate existed
    (schema 1), or edited by hand, is judged by the same rule as a new one."""
    sweeps = []
    for sweep in result.sweeps:
        points = []
        for point in sweep.points:
            if point.status == "ok" and point.problem is None:
                ceiling = result.ceiling_for(point.shape.dtype)
                rate = sheet = None
                if ceiling is not None:
                    sheet = ceiling.datasheet_tflops
                    steady = ceiling.problem is None and (
                        ceiling.time is None
                        or not figure_problem(ceiling.time, ceiling.tflops, datasheet_tflops=sheet)
                    )
                    if ceiling.status == "ok" and steady:
                        rate = ceiling.tflops
                problem = figure_problem(
                    point.time, point.tflops, ceiling_tflops=rate, datasheet_tflops=sheet
                )
                point = replace(point, problem=problem)  # noqa: PLW2901 - the gated copy
            points.append(point)
        sweeps.append(replace(sweep, points=tuple(points)))
    return replace(result, sweeps=tuple(sweeps))


def evidence_only(result: BenchResult) -> BenchResult | None:
    """What of ``result`` may be saved as evidence: the figures that passed the gate (and the
    points that have no figure: unsupported, out of memory). None when no figure passed."""
    gated = gate_result(result)
    sweeps = tuple(
        replace(s, points=tuple(p for p in s.points if p.status != "ok" or p.problem is None))
        for s in gated.sweeps
    )
    if not any(_ok_points(s) for s in sweeps):
        return None
    return replace(gated, sweeps=sweeps)


def format_rate(tflops: float) -> str:
    """``312.4`` -> ``312 TFLOP/s``; below 1 TFLOP/s in GFLOP/s (CPU figures)."""
    if tflops >= 1.0:
        return f"{tflops:.3g} TFLOP/s"
    return f"{tflops * 1e3:.3g} GFLOP/s"


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _scores(sweeps: Sequence[BackendSweep]) -> tuple[dict[BackendName, float], list[BenchShape]]:
    """Geometric-mean TFLOP/s per backend over the shapes every compared backend completed."""
    runs: dict[BackendName, dict[BenchShape, BenchPoint]] = {}
    for sweep in sweeps:
        if sweep.status != "ok" or not any(c.passed for c in sweep.checks):
            continue
        points = _ok_points(sweep)
        if points:
            runs[sweep.backend] = points
    if not runs:
        return {}, []
    most = max(len(points) for points in runs.values())
    eligible = {name: pts for name, pts in runs.items() if len(pts) == most}
    common = set.intersection(*(set(pts) for pts in eligible.values()))
    if not common:
        name, pts = next(iter(eligible.items()))
        eligible, common = {name: pts}, set(pts)
    shapes = sorted(common, key=lambda s: (s.group, s.seqlen, s.batch))
    return (
        {
            name: _geomean([pts[s].tflops for s in shapes if pts[s].tflops])  # type: ignore[misc]
            for name, pts in eligible.items()
        },
        shapes,
    )


def evidence_from_runs(results: Sequence[BenchResult]) -> BenchEvidence | None:
    """What cached bench runs (one device, one torch) measured, as the decision's evidence.

    A backend counts only if its sweep passed its kernel check and completed points; a
    forward run gives ``tflops``, a forward+backward run ``tflops_train``.
    """
    if not results:
        return None
    fwd: dict[BackendName, float] = {}
    train: dict[BackendName, float] = {}
    figures: dict[BackendName, int] = {}
    left_out: dict[BackendName, int] = {}
    kernel: BackendName | None = None
    runs: list[str] = []
    for raw in results:
        result = gate_result(raw)
        scores, shapes = _scores(result.sweeps)
        (train if result.mode == "fwd_bwd" else fwd).update(scores)
        for sweep in result.sweeps:
            if sweep.backend in scores:
                figures[sweep.backend] = figures.get(sweep.backend, 0) + len(shapes)
            shaky = sum(p.status == "ok" and p.problem is not None for p in sweep.points)
            if shaky:
                left_out[sweep.backend] = left_out.get(sweep.backend, 0) + shaky
        kernel = kernel or result.sdpa_kernel
        mode = "forward+backward" if result.mode == "fwd_bwd" else "forward"
        runs.append(f"{mode} run of {result.created_at}")
    names = [n for n in BACKEND_NAMES if n in fwd or n in train]
    return BenchEvidence(
        key=results[0].cache_key,
        measurements=tuple(
            Measurement(
                backend=n,
                tflops=fwd.get(n),
                tflops_train=train.get(n),
                verified=True,
                figures=figures.get(n, 0),
                left_out=left_out.get(n, 0),
            )
            for n in names
        ),
        sdpa_kernel=kernel,
        source=f"attn-doctor bench on {results[0].cache_key} ({'; '.join(runs)})",
    )


def recommend(
    sweeps: Sequence[BackendSweep],
    *,
    mode: BenchMode = "fwd",
    sdpa_kernel: BackendName | None = None,
) -> BenchRecommendation | None:
    """The backend with the highest geometric-mean TFLOP/s over the shapes it was measured at.

    Only backends whose sweep ran to its end with no failed check (status ``ok``) and that
    completed a point are candidates: one that crashed or hung part-way is not recommended.
    Backends that completed every shape any candidate completed are compared on all of them;
    when none did (an OOM here, a crash there), those with the most completed shapes are
    compared on the shapes they all share. Ties go to the earlier backend in the run order.
    """
    runs: dict[BackendName, dict[BenchShape, BenchPoint]] = {
        s.backend: _ok_points(s)
        for s in sweeps
        if s.status == "ok" and any(c.passed for c in s.checks) and _ok_points(s)
    }
    scores, shapes = _scores(sweeps)
    # A kernel transformers cannot load (FlashInfer: no attn_implementation) is measured and
    # ranked, never recommended.
    if not any(BACKENDS[n].attn_implementation for n in scores):
        return None
    eligible = {name: runs[name] for name in scores}
    best = _decided(scores, mode=mode, sdpa_kernel=sdpa_kernel)
    ranked = sorted(scores, key=lambda n: -scores[n])
    runner_up = next((n for n in ranked if n != best), None)
    wins = 0
    for shape in shapes:
        fastest = min(
            (name for name, pts in runs.items() if shape in pts),
            key=lambda n: runs[n][shape].time.median_ms,  # type: ignore[union-attr]
        )
        wins += fastest == best
    speedup = None
    eager = runs.get("eager")
    if eager is not None and best != "eager":
        both = [s for s in shapes if s in eager]
        if both:
            speedup = _geomean(
                [
                    eager[s].time.median_ms / runs[best][s].time.median_ms  # type: ignore[union-attr]
                    for s in both
                ]
            )
    reason = (
        f"fastest measured: {format_rate(scores[best])}{_spread(runs[best], shapes)} "
        f"geometric mean over {len(shapes)} shape(s), fastest at {wins} of them"
    )
    if runner_up is not None:
        reason += f"; next {runner_up} at {format_rate(scores[runner_up])}"
    if speedup is not None:
        reason += f"; {speedup:.2f}× eager"
    excluded = sorted(set(runs) - set(eligible))
    if excluded:
        reason += f" (not compared: {', '.join(excluded)} completed fewer shapes)"
    return BenchRecommendation(
        backend=best,
        attn_implementation=BACKENDS[best].attn_implementation,
        reason=reason,
        geomean_tflops=scores[best],
        wins=wins,
        shapes=len(shapes),
        speedup_vs_eager=speedup,
        runner_up=runner_up,
        ranking=tuple((name, scores[name]) for name in ranked),
    )


def _spread(points: dict[BenchShape, BenchPoint], shapes: Sequence[BenchShape]) -> str:
    """The geometric mean's spread: the same mean over each figure's middle half."""
    lows = [points[s].tflops_q1 for s in shapes if s in points]
    highs = [points[s].tflops_q3 for s in shapes if s in points]
    if not lows or any(v is None or v <= 0 for v in (*lows, *highs)):
        return ""
    lo = _geomean([v for v in lows if v is not None])
    hi = _geomean([v for v in highs if v is not None])
    return f" (middle half {format_rate(lo)} to {format_rate(hi)})"


def _decided(
    scores: dict[BackendName, float], *, mode: BenchMode, sdpa_kernel: BackendName | None
) -> BackendName:
    """The one decision over what this run measured (every measured backend is ready here).

    A forced SDPA kernel is not something a model can ask for: it stands for ``sdpa`` when it
    is the kernel the default dispatch runs, and is otherwise only evidence for activating it.
    """
    training = mode == "fwd_bwd"
    evidence = BenchEvidence(
        key="this run",
        measurements=tuple(
            Measurement(
                backend=n,
                tflops=None if training else v,
                tflops_train=v if training else None,
                verified=True,
            )
            for n, v in scores.items()
        ),
        sdpa_kernel=sdpa_kernel,
        source="this bench run",
    )
    from attn_doctor.decide import Request

    # Everything measured is ready here; a forced SDPA kernel is a real option too (the
    # runtime can put it first in SDPA's priority when it was measured faster).
    options = [
        Option(backend=n, status="ready", way="measured in this run", reason="measured")
        for n in BACKEND_NAMES
        if n in scores and BACKENDS[n].attn_implementation is not None
    ]
    measured_kernels = [n for n in scores if BACKENDS[n].sdpa_kernel is not None]
    fastest_kernel = max(measured_kernels, key=lambda n: scores[n], default=None)
    kernel: BackendName = sdpa_kernel or fastest_kernel or "sdpa_math"
    return rank(
        options,
        gpu=None,
        sdpa_kernel=kernel,
        sdpa_kernel_source="measured in this run",
        evidence=evidence,
        request=Request(training=training),
    )[0].backend
