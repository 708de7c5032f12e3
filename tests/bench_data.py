"""Builders of synthetic bench results for unit tests (no torch, no device)."""

from __future__ import annotations

from attn_doctor.backends import BackendName
from attn_doctor.bench.flops import attention_flops
from attn_doctor.bench.results import (
    BackendSweep,
    BenchPoint,
    BenchResult,
    Ceiling,
    CorrectnessCheck,
    SweepStatus,
)
from attn_doctor.bench.shapes import BenchShape
from attn_doctor.bench.stats import summarize


def shape(seqlen: int, *, causal: bool = True, dtype: str = "fp16") -> BenchShape:
    return BenchShape(
        batch=16384 // seqlen,
        seqlen=seqlen,
        heads=16,
        kv_heads=16,
        head_dim=128,
        causal=causal,
        dtype=dtype,  # type: ignore[arg-type]
    )


def point(s: BenchShape, ms: float | None, *, memory: int | None = None) -> BenchPoint:
    flops = attention_flops(
        batch=s.batch, seqlen=s.seqlen, heads=s.heads, head_dim=s.head_dim, causal=s.causal
    )
    if ms is None:
        return BenchPoint(shape=s, status="oom", detail="CUDA out of memory", flops=flops)
    stats = summarize([ms * 0.98, ms, ms, ms * 1.02])
    return BenchPoint(
        shape=s,
        status="ok",
        flops=flops,
        time=stats,
        tflops=flops / (ms / 1e3) / 1e12,
        tflops_q1=flops / (stats.q3_ms / 1e3) / 1e12,
        tflops_q3=flops / (stats.q1_ms / 1e3) / 1e12,
        peak_memory_bytes=memory,
    )


PASSED = CorrectnessCheck(passed=True, method="test")


def sweep(
    backend: BackendName,
    times: dict[int, float | None],
    *,
    status: SweepStatus = "ok",
    passed: bool = True,
) -> BackendSweep:
    check = PASSED if passed else CorrectnessCheck(passed=False, method="test", detail="bad")
    return BackendSweep(
        backend=backend,
        status=status,
        checks=(check,),
        points=tuple(point(shape(s), ms) for s, ms in times.items()),
    )


def result(
    *sweeps: BackendSweep,
    device_name: str = "NVIDIA H100 80GB HBM3",
    torch_version: str = "2.8.0+cu128",
) -> BenchResult:
    from attn_doctor.bench.cache import cache_key
    from attn_doctor.bench.recommend import recommend

    return BenchResult(
        created_at="2026-11-23T12:00:00+00:00",
        device="cuda",
        device_name=device_name,
        compute_capability="9.0",
        torch_version=torch_version,
        torch_cuda="12.8",
        cache_key=cache_key(device="cuda", device_name=device_name, torch_version=torch_version),
        mode="fwd",
        reps=30,
        ops_source="test",
        ceilings=(Ceiling(dtype="fp16", size=8192, status="ok", tflops=700.0),),
        sweeps=sweeps,
        recommendation=recommend(sweeps),
    )
