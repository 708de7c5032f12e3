"""The child process that imports torch and times backends: ``python -m attn_doctor.bench.worker``.

Reads one JSON request on stdin; writes JSON lines on stdout, one per result as soon as it
exists, so that the parent keeps every finished point even if a later one crashes the process
or hangs. Anything else that would reach stdout (a library's print) is sent to stderr.

Requests (``kind``):
- ``info``: torch version, the device, and the backends this torch can be asked to run.
- ``ceiling``: dense matmul TFLOP/s per dtype (square n×n matrices, median of many reps).
- ``sweep``: one backend: a quick correctness check, then every shape, timed.
"""

from __future__ import annotations

import functools
import json
import math
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from attn_doctor.backends import BackendName
from attn_doctor.bench.flops import attention_flops, matmul_flops, tflops_per_s
from attn_doctor.bench.quality import figure_problem, measure_gated
from attn_doctor.bench.shapes import BenchShape, DType
from attn_doctor.bench.stats import TimingStats, summarize
from attn_doctor.bench.timing import (
    Clock,
    load_clock,
    time_calls,
)
from attn_doctor.facts import decode, encode

ROTATION_BYTES = 256 * 1024 * 1024
"""Input sets are rotated until the bytes touched between two uses of one set exceed this, so
that no call finds its inputs in a cache (the largest GPU L2 is ~126 MB, B200)."""
MAX_SETS = 8

ATOL: dict[str, float] = {"fp32": 1e-4, "fp16": 2e-3, "bf16": 1.6e-2}
"""Absolute slack added to the error-ratio rule (flash-attn's tests: the backend's error vs a
float reference must be at most twice SDPA math's error in the same dtype, plus this)."""

Emit = Callable[[dict[str, Any]], None]


def _torch_dtype(name: DType) -> Any:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def _last_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:500]


def _is_unsupported(exc: BaseException) -> bool:
    """The backend has no kernel for this case (SDPA's "No available kernel", verify's
    ``UnsupportedCaseError``, a ``NotImplementedError``): not a wrong answer."""
    return (
        "no available kernel" in str(exc).lower()
        or type(exc).__name__ == "UnsupportedCaseError"
        or isinstance(exc, NotImplementedError)
    )


def _is_oom(exc: BaseException) -> bool:
    return "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"


_FLEX: dict[object, Any] = {}
"""flex_attention's compiled function and block masks, built once per shape, not per call."""


def _flex_call(q: Any, k: Any, v: Any, *, causal: bool) -> Any:
    """flex_attention as users run it: compiled once, the block mask built once per shape.

    verify's adapter builds the block mask inside every call (right for a correctness check);
    timed that way, flex would pay ``create_block_mask`` on every repetition.
    """
    import torch
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    seqlen = q.shape[1]
    key = (causal, seqlen, str(q.device))
    if key not in _FLEX:
        if causal:

            def causal_mask(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
                return q_idx >= kv_idx

            _FLEX[key] = create_block_mask(
                causal_mask, None, None, seqlen, seqlen, device=str(q.device)
            )
        else:
            _FLEX[key] = None
    if "fn" not in _FLEX:
        _FLEX["fn"] = torch.compile(flex_attention)
    out = _FLEX["fn"](
        q.transpose(1, 2),
        k.transpose(1, 2),
        v.transpose(1, 2),
        block_mask=_FLEX[key],
        enable_gqa=q.shape[2] != k.shape[2],
    )
    return out.transpose(1, 2)


def bench_call(backend: BackendName, q: Any, k: Any, v: Any, *, causal: bool) -> Any:
    """One attention call through verify's adapters (layout batch, seqlen, heads, head_dim)."""
    if backend == "flex_attention":
        return _flex_call(q, k, v, causal=causal)
    from attn_doctor.verify.ops import attention_call

    return attention_call(backend, q, k, v, causal=causal)


OPS_SOURCE = (
    "attn_doctor.verify.ops.attention_call (flex_attention: compiled once, block mask built "
    "once per shape)"
)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "cpu"


# --- timing -------------------------------------------------------------------------------


def _n_sets(set_bytes: int, device: str) -> int:
    import torch

    n = max(2, min(MAX_SETS, math.ceil(ROTATION_BYTES / max(set_bytes, 1))))
    if device == "cuda":
        free, _total = torch.cuda.mem_get_info()
        while n > 1 and n * set_bytes > free // 4:
            n -= 1
    return n


def peak_memory(call: Callable[[], object]) -> int:
    """Bytes one call allocates at its peak on the current CUDA device, beyond what was
    allocated before it (its inputs). Includes its output and, for eager, the S×S scores."""
    import torch

    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = call()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del out
    return int(peak)


# --- ceiling ------------------------------------------------------------------------------


def matmul_size(device: str, dtype: DType) -> int:
    """Large enough to reach the device's matmul peak, small enough to stay quick: on a CPU
    without native bf16/fp16 matmul units a 1024³ product in bf16 takes seconds."""
    if device == "cuda":
        return 8192 if dtype != "fp32" else 4096
    return 1024 if dtype == "fp32" else 512


def _matmul_call(a: Any, b: Any, c: Any) -> Callable[[], object]:
    import torch

    def call() -> object:
        return torch.matmul(a, b, out=c)

    return call


def _timed(
    calls: list[Callable[[], object]], *, device: str, reps: int, clock: Clock | None
) -> TimingStats:
    return summarize(time_calls(calls, device=device, reps=reps, clock=clock))


def _judge(
    stats: TimingStats,
    *,
    flops: float,
    ceiling_tflops: float | None = None,
    datasheet_tflops: float | None = None,
) -> str | None:
    return figure_problem(
        stats,
        tflops_per_s(flops, stats.median_ms / 1e3),
        ceiling_tflops=ceiling_tflops,
        datasheet_tflops=datasheet_tflops,
    )


def run_ceiling(req: dict[str, Any], emit: Emit) -> None:
    import torch

    device = str(req["device"])
    reps = int(req["reps"])
    clock = load_clock(req.get("clock"))
    for dtype in req["dtypes"]:
        n = int(req.get("size") or matmul_size(device, dtype))
        try:
            tdt = _torch_dtype(dtype)
            set_bytes = 3 * n * n * tdt.itemsize
            sets = [
                (
                    torch.randn(n, n, device=device, dtype=tdt),
                    torch.randn(n, n, device=device, dtype=tdt),
                    torch.empty(n, n, device=device, dtype=tdt),
                )
                for _ in range(_n_sets(set_bytes, device))
            ]
            calls = [_matmul_call(a, b, c) for a, b, c in sets]
            flops = matmul_flops(n, n, n)
            gated = measure_gated(
                functools.partial(_timed, calls, device=device, reps=reps, clock=clock),
                functools.partial(_judge, flops=flops),
            )
            emit(
                {
                    "type": "ceiling",
                    "dtype": dtype,
                    "size": n,
                    "status": "ok",
                    "time": encode(gated.stats),
                    "tflops": tflops_per_s(flops, gated.stats.median_ms / 1e3),
                    "problem": gated.problem,
                    "attempts": gated.attempts,
                }
            )
            del sets, calls
        except Exception as exc:
            emit(
                {
                    "type": "ceiling",
                    "dtype": dtype,
                    "size": n,
                    "status": "error",
                    "detail": _last_line(exc),
                }
            )
        if device == "cuda":
            torch.cuda.empty_cache()


# --- sweep --------------------------------------------------------------------------------


def _make_inputs(shape: BenchShape, device: str, *, grad: bool, seed: int) -> tuple[Any, ...]:
    import torch

    gen = torch.Generator(device="cpu").manual_seed(seed)
    tdt = _torch_dtype(shape.dtype)

    def rand(heads: int) -> Any:
        t = torch.randn(
            shape.batch, shape.seqlen, heads, shape.head_dim, generator=gen, dtype=torch.float32
        )
        return t.to(device=device, dtype=tdt).requires_grad_(grad)

    q, k, v = rand(shape.heads), rand(shape.kv_heads), rand(shape.kv_heads)
    dout = rand(shape.heads).detach() if grad else None
    return q, k, v, dout


def check_at_shape(backend: BackendName, shape: BenchShape, device: str) -> dict[str, Any]:
    """The forward output at the bench's own dtype/head dim/mask, through the very call that
    is timed, vs SDPA math in float64, by flash-attn's error-ratio rule."""
    import torch

    from attn_doctor.verify.ops import attention_call as ref_call

    call = bench_call

    q, k, v, _ = _make_inputs(shape, device, grad=False, seed=1234)
    with torch.no_grad():
        q64, k64, v64 = (t.double() for t in (q, k, v))
        ref = ref_call("sdpa_math", q64, k64, v64, causal=shape.causal)
        base = ref_call("sdpa_math", q, k, v, causal=shape.causal)
        out = call(backend, q, k, v, causal=shape.causal)
        if tuple(out.shape) != tuple(q.shape):
            return {
                "passed": False,
                "detail": f"output shape {tuple(out.shape)}, expected {tuple(q.shape)}",
            }
        err = float((out.double() - ref).abs().max())
        base_err = float((base.double() - ref).abs().max())
    tol = 2.0 * base_err + ATOL[shape.dtype]
    passed = math.isfinite(err) and err <= tol
    return {
        "passed": passed,
        "method": "bench: forward output vs SDPA math in float64 at this dtype "
        "(error <= 2 x SDPA math's own error + atol)",
        "max_abs_error": err if math.isfinite(err) else None,
        "tolerance": tol,
        "detail": None if passed else f"max |error| {err:.3g} > tolerance {tol:.3g}",
    }


def verify_check(backend: BackendName, device: str) -> dict[str, Any]:
    """verify's kernel check (quick matrix: causal and full, grouped-query heads, a padded
    batch; forward and backward) in this process; the sweep's child is already isolated."""
    from attn_doctor.verify.kernels import run_kernel_cases

    report = run_kernel_cases(backend, device, quick=True)
    return {
        "passed": report.status == "passed",
        "status": report.status,
        "method": "verify: kernel check, quick matrix (flash-attn's error-ratio rule)",
        "max_abs_error": report.max_error,
        "tolerance": report.allowed,
        "detail": report.reason,
    }


def _check_shape(shape: BenchShape) -> BenchShape:
    kv = min(shape.kv_heads, 2)
    return BenchShape(
        batch=2,
        seqlen=128,
        heads=kv * (shape.heads // shape.kv_heads),
        kv_heads=kv,
        head_dim=shape.head_dim,
        causal=shape.causal,
        dtype=shape.dtype,
    )


def time_point(
    backend: BackendName,
    shape: BenchShape,
    *,
    device: str,
    mode: str,
    reps: int,
    clock: Clock | None = None,
    ceiling_tflops: float | None = None,
    datasheet_tflops: float | None = None,
) -> dict[str, Any]:
    """Time one backend at one shape; every failure becomes the point's status.

    The figure passes the quality gate (``attn_doctor.bench.quality``) or is re-measured
    within its budget; one still failing carries its ``problem``."""
    import torch

    grad = mode == "fwd_bwd"
    flops = attention_flops(
        batch=shape.batch,
        seqlen=shape.seqlen,
        heads=shape.heads,
        head_dim=shape.head_dim,
        causal=shape.causal,
        mode="fwd_bwd" if grad else "fwd",
    )
    point: dict[str, Any] = {"type": "point", "shape": encode(shape), "flops": flops}
    sets: list[tuple[Any, ...]] = []
    try:
        itemsize = _torch_dtype(shape.dtype).itemsize
        set_bytes = (
            shape.batch
            * shape.seqlen
            * shape.head_dim
            * itemsize
            * (2 * shape.heads + 2 * shape.kv_heads)
        )
        sets = [
            _make_inputs(shape, device, grad=grad, seed=i)
            for i in range(_n_sets(set_bytes, device))
        ]

        def make_call(q: Any, k: Any, v: Any, dout: Any) -> Callable[[], object]:
            if not grad:

                def fwd() -> object:
                    with torch.no_grad():
                        return bench_call(backend, q, k, v, causal=shape.causal)

                return fwd

            def fwd_bwd() -> object:
                q.grad = k.grad = v.grad = None
                out = bench_call(backend, q, k, v, causal=shape.causal)
                out.backward(dout)
                return out

            return fwd_bwd

        calls = [make_call(*s) for s in sets]
        gated = measure_gated(
            functools.partial(_timed, calls, device=device, reps=reps, clock=clock),
            functools.partial(
                _judge,
                flops=flops,
                ceiling_tflops=ceiling_tflops,
                datasheet_tflops=datasheet_tflops,
            ),
        )
        stats: TimingStats = gated.stats
        point.update(
            status="ok",
            problem=gated.problem,
            attempts=gated.attempts,
            time=encode(stats),
            tflops=tflops_per_s(flops, stats.median_ms / 1e3),
            tflops_q1=tflops_per_s(flops, stats.q3_ms / 1e3),
            tflops_q3=tflops_per_s(flops, stats.q1_ms / 1e3),
        )
        if device == "cuda":
            point["peak_memory_bytes"] = peak_memory(calls[0])
        else:
            point["memory_note"] = "peak memory is measured on CUDA devices only"
    except Exception as exc:
        if _is_oom(exc):
            point.update(status="oom", detail=_last_line(exc))
        elif _is_unsupported(exc):
            point.update(status="unsupported", detail=_last_line(exc))
        else:
            point.update(status="error", detail=_last_line(exc))
    finally:
        sets.clear()
        if device == "cuda":
            torch.cuda.empty_cache()
    return point


def run_sweep(req: dict[str, Any], emit: Emit) -> None:
    """verify's kernel check, bench's check at each (dtype, head dim, mask), then the points.

    A backend that fails a check is not timed at the shapes that check covers.
    """
    backend: BackendName = req["backend"]
    device = str(req["device"])
    shapes = [decode(BenchShape, s, "shape") for s in req["shapes"]]
    clock = load_clock(req.get("clock"))
    try:
        first = verify_check(backend, device)
    except Exception as exc:
        first = {
            "passed": False,
            "status": "error",
            "method": "verify: kernel check",
            "detail": _last_line(exc),
        }
    emit({"type": "check", **first})
    if not first["passed"]:
        return
    checked: dict[BenchShape, dict[str, Any]] = {}
    for shape in shapes:
        cshape = _check_shape(shape)
        if cshape in checked:
            continue
        try:
            result = check_at_shape(backend, cshape, device)
        except Exception as exc:
            result = {
                "passed": False,
                "unsupported": _is_unsupported(exc),
                "method": "bench: forward output vs SDPA math",
                "detail": _last_line(exc),
            }
        result.update(type="check", shape=encode(cshape))
        checked[cshape] = result
        emit(result)
    for shape in shapes:
        check = checked[_check_shape(shape)]
        if check.get("unsupported"):
            # Not a wrong answer: this backend has no kernel for this dtype/head dim/mask.
            emit(
                {
                    "type": "point",
                    "shape": encode(shape),
                    "status": "unsupported",
                    "detail": check.get("detail"),
                    "flops": attention_flops(
                        batch=shape.batch,
                        seqlen=shape.seqlen,
                        heads=shape.heads,
                        head_dim=shape.head_dim,
                        causal=shape.causal,
                        mode="fwd_bwd" if req["mode"] == "fwd_bwd" else "fwd",
                    ),
                }
            )
        elif check["passed"]:
            emit(
                time_point(
                    backend,
                    shape,
                    device=device,
                    mode=str(req["mode"]),
                    reps=int(req["reps"]),
                    clock=clock,
                    ceiling_tflops=(req.get("ceilings") or {}).get(shape.dtype),
                    datasheet_tflops=(req.get("datasheet") or {}).get(shape.dtype),
                )
            )


def run_info(req: dict[str, Any], emit: Emit) -> None:
    import torch

    from attn_doctor.verify.ops import available_ops

    cuda_ok = bool(torch.cuda.is_available())
    device = str(req.get("device") or ("cuda" if cuda_ok else "cpu"))
    info: dict[str, Any] = {
        "type": "info",
        "torch_version": str(torch.__version__),
        "torch_cuda": torch.version.cuda,
        "cuda_available": cuda_ok,
        "device": device,
        "ops_source": OPS_SOURCE,
        "compute_capability": None,
    }
    if device == "cuda" and cuda_ok:
        major, minor = torch.cuda.get_device_capability(0)
        info["device_name"] = torch.cuda.get_device_name(0)
        info["compute_capability"] = f"{major}.{minor}"
    else:
        info["device_name"] = _cpu_name()
    # What attn_implementation="sdpa" really runs here (the "sdpa" row measures it).
    from attn_doctor.verify.ops import sdpa_dispatch_choice

    info["sdpa_default_kernel"] = sdpa_dispatch_choice(device)
    # A list of pairs, not an object: the order (verify's, eager last) must survive sort_keys.
    info["backends"] = [[name, reason] for name, reason in available_ops(device).items()]
    emit(info)


def _finite(value: Any) -> Any:
    """NaN and infinities become null: the protocol (and the JSON envelope) is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def main() -> None:
    out: IO[str] = sys.stdout
    sys.stdout = sys.stderr  # a stray print from a library must not corrupt the protocol

    def emit(record: dict[str, Any]) -> None:
        out.write(json.dumps(_finite(record), sort_keys=True, allow_nan=False) + "\n")
        out.flush()

    try:
        req = json.loads(sys.stdin.read())
        match req.get("kind"):
            case "info":
                run_info(req, emit)
            case "ceiling":
                run_ceiling(req, emit)
            case "sweep":
                run_sweep(req, emit)
            case other:
                raise ValueError(f"unknown request kind {other!r}")
        emit({"type": "done"})
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        emit({"type": "fatal", "detail": _last_line(exc)})
        sys.exit(1)


if __name__ == "__main__":
    main()
