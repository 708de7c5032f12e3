"""Bench's recommendation and the evidence a run gives the one decision (pure).

``recommend`` scores each measured backend (geometric-mean TFLOP/s over the shapes they all
completed) and then asks the one decision (``attn_doctor.plan.decide.rank``) which to use:
bench does not rank on its own. ``evidence_from_runs`` turns cached runs (forward, and
forward+backward when one was run) into the ``Evidence`` that ``check``, ``install --auto``
and the runtime rank by.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from attn_doctor.backends import BACKEND_NAMES, BACKENDS, BackendName
from attn_doctor.bench.results import (
    BackendSweep,
    BenchMode,
    BenchPoint,
    BenchRecommendation,
    BenchResult,
)
from attn_doctor.bench.shapes import BenchShape
from attn_doctor.plan.decide import Evidence, Measurement, Option, rank


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


def evidence_from_runs(results: Sequence[BenchResult]) -> Evidence | None:
    """What cached bench runs (one device, one torch) measured, as the decision's evidence.

    A backend counts only if its sweep passed its kernel check and completed points; a
    forward run gives ``tflops``, a forward+backward run ``tflops_train``.
    """
    if not results:
        return None
    fwd: dict[BackendName, float] = {}
    train: dict[BackendName, float] = {}
    kernel: BackendName | None = None
    for result in results:
        scores, _ = _scores(result.sweeps)
        (train if result.mode == "fwd_bwd" else fwd).update(scores)
        kernel = kernel or result.sdpa_kernel
    names = [n for n in BACKEND_NAMES if n in fwd or n in train]
    return Evidence(
        key=results[0].cache_key,
        measurements=tuple(
            Measurement(backend=n, tflops=fwd.get(n), tflops_train=train.get(n), verified=True)
            for n in names
        ),
        sdpa_kernel=kernel,
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


def _decided(
    scores: dict[BackendName, float], *, mode: BenchMode, sdpa_kernel: BackendName | None
) -> BackendName:
    """The one decision over what this run measured (every measured backend is ready here).

    A forced SDPA kernel is not something a model can ask for: it stands for ``sdpa`` when it
    is the kernel the default dispatch runs, and is otherwise only evidence for activating it.
    """
    training = mode == "fwd_bwd"
    evidence = Evidence(
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
    )
    from attn_doctor.plan.decide import Request

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
