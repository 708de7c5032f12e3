"""People's output: the tables carry the figures, the ceiling and the recommendation."""

from __future__ import annotations

import dataclasses
import io

from rich.console import Console

from attn_doctor.bench.gpu_specs import find_gpu_spec
from attn_doctor.bench.results import BackendSweep
from attn_doctor.bench.view import render_bench
from tests.bench_data import point, result, shape, sweep


def _render(res: object) -> str:
    buf = io.StringIO()
    render_bench(res, Console(file=buf, width=200, no_color=True))  # type: ignore[arg-type]
    return buf.getvalue()


def test_cuda_result_shows_rates_memory_ceiling_and_choice() -> None:
    fast = sweep("sdpa_flash", {1024: 1.0, 16384: 100.0})
    fast = dataclasses.replace(
        fast,
        points=tuple(dataclasses.replace(p, peak_memory_bytes=64 * 2**20) for p in fast.points),
    )
    eager = BackendSweep(
        backend="eager",
        status="ok",
        checks=fast.checks,
        points=(
            dataclasses.replace(point(shape(1024), 4.0), peak_memory_bytes=2 * 2**30),
            point(shape(16384), None),
        ),
    )
    broken = BackendSweep(backend="xformers", status="crashed", detail="killed by SIGSEGV")
    res = result(fast, eager, broken)
    spec = find_gpu_spec(res.device_name)
    res = dataclasses.replace(
        res,
        ceilings=tuple(
            dataclasses.replace(c, datasheet=spec, datasheet_tflops=989.4) for c in res.ceilings
        ),
    )
    text = _render(res)
    assert "matmul ceiling fp16: 700 TFLOP/s measured" in text
    assert "datasheet 989.4 TFLOP/s dense (NVIDIA H100 SXM5)" in text
    assert "crashed killed by SIGSEGV" in text
    assert "peak memory per call" in text
    assert "2,048" in text  # eager's 2 GiB at 1k, in MiB
    assert "oom" in text
    assert "Recommended here: sdpa_flash" in text


def test_cpu_rates_in_gflops() -> None:
    res = dataclasses.replace(result(sweep("sdpa_math", {1024: 5000.0})), device="cpu")
    text = _render(res)
    assert "GFLOP/s" in text
    assert "peak memory per call" not in text
