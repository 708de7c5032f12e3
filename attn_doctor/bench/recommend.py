"""Pick the fastest backend from a run's measurements (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.bench.results import BackendSweep, BenchPoint, BenchRecommendation
from attn_doctor.bench.shapes import BenchShape


def _ok_points(sweep: BackendSweep) -> dict[BenchShape, BenchPoint]:
    return {
        p.shape: p
        for p in sweep.points
        if p.status == "ok" and p.time is not None and p.tflops is not None
    }


def format_rate(tflops: float) -> str:
    """``312.4`` -> ``312 TFLOP/s``; below 1 TFLOP/s in GFLOP/s (CPU figures)."""
    if tflops >= 1.0:
        return f"{tflops:.3g} TFLOP/s"
    return f"{tflops * 1e3:.3g} GFLOP/s"


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def recommend(sweeps: Sequence[BackendSweep]) -> BenchRecommendation | None:
    """The backend with the highest geometric-mean TFLOP/s over the shapes it was measured at.

    Only backends whose sweep ran to its end with no failed check (status ``ok``) and that
    completed a point are candidates: one that crashed or hung part-way is not recommended.
    Backends that completed every shape any candidate completed are compared on all of them;
    when none did (an OOM here, a crash there), those with the most completed shapes are
    compared on the shapes they all share. Ties go to the earlier backend in the run order.
    """
    runs: dict[BackendName, dict[BenchShape, BenchPoint]] = {}
    for sweep in sweeps:
        if sweep.status != "ok" or not any(c.passed for c in sweep.checks):
            continue
        points = _ok_points(sweep)
        if points:
            runs[sweep.backend] = points
    if not runs:
        return None
    most = max(len(points) for points in runs.values())
    eligible = {name: pts for name, pts in runs.items() if len(pts) == most}
    common = set.intersection(*(set(pts) for pts in eligible.values()))
    if not common:  # each has `most` shapes, but not the same ones: fall back to the first
        name, pts = next(iter(eligible.items()))
        eligible, common = {name: pts}, set(pts)
    shapes = sorted(common, key=lambda s: (s.group, s.seqlen, s.batch))
    scores = {
        name: _geomean([pts[s].tflops for s in shapes if pts[s].tflops])  # type: ignore[misc]
        for name, pts in eligible.items()
    }
    best = max(scores, key=lambda n: scores[n])
    ranked = sorted(scores, key=lambda n: -scores[n])
    runner_up = ranked[1] if len(ranked) > 1 else None
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
        f"fastest measured: {format_rate(scores[best])} geometric mean over {len(shapes)} "
        f"shape(s), fastest at {wins} of them"
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
