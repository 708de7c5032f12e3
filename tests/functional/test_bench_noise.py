"""A noisy bench run is not saved as evidence (issue 20): real bench children, whose timer
is replaced by one that injects noise (``tests/bench_noise.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from attn_doctor.bench.cache import load_cached_result, save_bench_result
from attn_doctor.bench.quality import MAX_ATTEMPTS
from attn_doctor.bench.recommend import evidence_from_runs
from attn_doctor.bench.runner import probe_device, run_bench
from attn_doctor.bench.shapes import BenchShape


def test_a_noisy_run_is_remeasured_shown_unreliable_and_not_saved(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    info = probe_device("cpu")
    shape = BenchShape(
        batch=1, seqlen=64, heads=2, kv_heads=2, head_dim=32, causal=True, dtype="fp32"
    )
    result = run_bench(
        info=info,
        shapes=[shape],
        backends=["sdpa_math"],
        baseline=False,
        reps=5,
        timeout=300,
        clock="tests.bench_noise:noisy_clock",
    )
    (sweep,) = result.sweeps
    assert sweep.status == "ok", sweep.detail
    (point,) = sweep.points
    assert point.status == "ok"
    assert point.time is not None
    assert point.problem is not None
    assert "spread" in point.problem
    assert point.attempts == MAX_ATTEMPTS  # re-measured, still unstable
    assert result.unreliable == 1
    assert result.recommendation is None
    assert any("failed the quality gate" in note for note in result.notes)

    cache = tmp_path / "bench.json"
    assert save_bench_result(result, cache) is None
    assert not cache.exists()
    assert load_cached_result(result.cache_key, cache) is None
    # Even handed over directly, the run gives the decision no measurement.
    evidence = evidence_from_runs([result])
    assert evidence is not None
    assert evidence.speed("sdpa_math", training=False) is None
