"""Timing loops of the bench child: per-call times, with an injectable clock.

Runs in ``attn_doctor.bench.worker``'s process (imports torch inside the functions).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

WARMUP_SECONDS = 0.2
POINT_BUDGET_SECONDS = 2.0
"""Repetitions are capped so that one point's timed loop takes about this long."""
MIN_REPS = 3


Clock = Callable[[], float]
"""Seconds, monotonic: ``time.perf_counter`` unless a request names another (``clock``)."""


def load_clock(spec: str | None) -> Clock | None:
    """``"module:function"`` -> that function (a clock for tests that inject noise)."""
    if not spec:
        return None
    import importlib

    module, _, name = spec.partition(":")
    fn = getattr(importlib.import_module(module), name)
    if not callable(fn):
        raise ValueError(f"clock {spec!r} is not callable")
    return fn  # type: ignore[no-any-return]


def time_calls(
    calls: list[Callable[[], object]], *, device: str, reps: int, clock: Clock | None = None
) -> list[float]:
    """Per-call times in ms. Warm up, then ``reps`` calls rotating through ``calls``.

    CUDA: a pair of events around each call, one synchronisation at the end. CPU:
    ``time.perf_counter`` around each (synchronous) call. ``clock`` replaces both (on CUDA
    with a synchronisation after each call): the timer is injectable, so that a test can
    feed the quality gate a noisy one.
    """
    import torch

    n = len(calls)
    cuda = device == "cuda"
    now = clock or time.perf_counter
    # Warm-up: first calls compile, autotune and allocate; also estimate the per-call time.
    warm_times: list[float] = []
    started = now()
    i = 0
    while i < 2 or (now() - started < WARMUP_SECONDS and i < 50):
        t0 = now()
        calls[i % n]()
        if cuda:
            torch.cuda.synchronize()
        warm_times.append(now() - t0)
        i += 1
    # The first call pays compilation and autotuning (flex_attention: seconds): leave it out.
    later = sorted(warm_times[1:])
    estimate = later[len(later) // 2]
    if estimate > 0:
        reps = max(MIN_REPS, min(reps, int(POINT_BUDGET_SECONDS / estimate)))
    if cuda and clock is None:
        event: Any = torch.cuda.Event  # untyped in torch's stubs
        starts = [event(enable_timing=True) for _ in range(reps)]
        ends = [event(enable_timing=True) for _ in range(reps)]
        torch.cuda.synchronize()
        for r in range(reps):
            starts[r].record()
            calls[r % n]()
            ends[r].record()
        torch.cuda.synchronize()
        return [float(s.elapsed_time(e)) for s, e in zip(starts, ends, strict=True)]
    out: list[float] = []
    for r in range(reps):
        t0 = now()
        calls[r % n]()
        if cuda:
            torch.cuda.synchronize()
        out.append((now() - t0) * 1e3)
    return out
