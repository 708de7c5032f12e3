"""The parent side of ``attn-doctor bench``: one child process per step, results gathered.

The parent never imports torch. It asks a child for the device and the backends that can be
launched (``info``), measures the matmul ceiling in a second child, then runs each backend's
whole sweep in a child of its own with a timeout: a backend that segfaults or hangs loses its
remaining points, not the run. Children stream one JSON line per finished result, so what was
measured before a crash is kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from attn_doctor.backends import BACKEND_NAMES, BackendName
from attn_doctor.bench.cache import cache_key
from attn_doctor.bench.gpu_specs import datasheet_tflops, find_gpu_spec
from attn_doctor.bench.quality import figure_problem
from attn_doctor.bench.recommend import recommend
from attn_doctor.bench.results import (
    BackendSweep,
    BenchMode,
    BenchPoint,
    BenchResult,
    Ceiling,
    CorrectnessCheck,
    SweepStatus,
    ceiling_dtypes,
)
from attn_doctor.bench.shapes import BenchShape, Device, DType
from attn_doctor.errors import SnapshotError, UsageError
from attn_doctor.facts import decode

DEFAULT_REPS: dict[str, int] = {"cuda": 30, "cpu": 10}
"""flash-attn's benchmark uses ``repeats = 30``; bench also caps each point's timed loop at
about two seconds (``timing.POINT_BUDGET_SECONDS``)."""
INFO_TIMEOUT = 180.0
CEILING_TIMEOUT = 300.0

Progress = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class WorkerOutcome:
    """Everything one child printed, and how it ended."""

    status: Literal["ok", "crashed", "timeout", "error"]
    records: tuple[dict[str, Any], ...]
    detail: str | None
    stderr_tail: str | None
    seconds: float


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _child_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    from attn_doctor.verify.subproc import child_env

    return child_env(environ)


def run_worker(
    request: Mapping[str, Any], *, timeout: float, python: str | None = None
) -> WorkerOutcome:
    """Run ``python -m attn_doctor.bench.worker`` on ``request``; never raises for the child.

    The child gets its own process group so that a timeout also ends the compiler workers it
    may have started (torch.compile); only that group is signalled.
    """
    cmd = [python or sys.executable, "-m", "attn_doctor.bench.worker"]
    start = time.monotonic()
    timed_out = False
    with subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(),
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(json.dumps(request), timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        except BaseException:
            # Ctrl-C reaches only our process group: the child, in its own, is ended here
            # (leaving the ``with`` closes the pipes and reaps it).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()  # Popen.__exit__ does not wait after a KeyboardInterrupt
            raise
    seconds = time.monotonic() - start
    records: list[dict[str, Any]] = []
    for raw in out.splitlines():
        line = raw.strip()
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    fatal = next((r for r in records if r.get("type") == "fatal"), None)
    done = any(r.get("type") == "done" for r in records)
    tail = _tail(err) or None
    if timed_out:
        return WorkerOutcome(
            status="timeout",
            records=tuple(records),
            seconds=seconds,
            detail=f"no end within {timeout:g} s (killed)",
            stderr_tail=tail,
        )
    if proc.returncode is not None and proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        return WorkerOutcome(
            status="crashed",
            records=tuple(records),
            seconds=seconds,
            detail=f"killed by {name}",
            stderr_tail=tail,
        )
    if fatal is not None or not done or proc.returncode != 0:
        detail = str(fatal.get("detail")) if fatal else f"child exited with {proc.returncode}"
        return WorkerOutcome(
            status="error", records=tuple(records), seconds=seconds, detail=detail, stderr_tail=tail
        )
    return WorkerOutcome(
        status="ok", records=tuple(records), seconds=seconds, detail=None, stderr_tail=None
    )


# --- info ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DeviceInfo:
    device: Device
    device_name: str
    compute_capability: str | None
    torch_version: str
    torch_cuda: str | None
    ops_source: str
    backends: tuple[tuple[BackendName, str | None], ...]
    """Each kernel backend and why it cannot be launched here (None: it can)."""
    sdpa_kernel: BackendName | None = None
    """The kernel SDPA's default dispatch picks here (``torch._fused_sdp_choice``)."""

    def reason(self, backend: BackendName) -> str | None:
        for name, reason in self.backends:
            if name == backend:
                return reason
        return f"{backend} launches no attention kernel of its own; bench times kernels"

    @property
    def available(self) -> tuple[BackendName, ...]:
        return tuple(name for name, reason in self.backends if reason is None)


def probe_device(device: Device | None, *, python: str | None = None) -> DeviceInfo:
    """Ask a child which device to use and what it can run. Raises ``UsageError`` when torch
    cannot be imported or the requested device is absent."""
    outcome = run_worker({"kind": "info", "device": device}, timeout=INFO_TIMEOUT, python=python)
    info = next((r for r in outcome.records if r.get("type") == "info"), None)
    if outcome.status != "ok" or info is None:
        why = outcome.detail or "no answer"
        raise UsageError(
            f"cannot benchmark: importing torch in a child process failed ({why})",
            hint=(outcome.stderr_tail or "").splitlines()[-1]
            if outcome.stderr_tail
            else "Run `attn-doctor check --deep` to see why torch does not import.",
        )
    if device == "cuda" and not info.get("cuda_available"):
        raise UsageError(
            "--device cuda: torch sees no CUDA device here",
            hint=f"torch {info.get('torch_version')} (CUDA {info.get('torch_cuda')}); "
            "run `attn-doctor check` for the reason, or use --device cpu.",
        )
    # verify's order: SDPA kernels, flex, the extensions, eager last (the baseline).
    backends = tuple((name, reason) for name, reason in info.get("backends") or ())
    return DeviceInfo(
        device=info["device"],
        device_name=str(info.get("device_name") or info["device"]),
        compute_capability=info.get("compute_capability"),
        torch_version=str(info["torch_version"]),
        torch_cuda=info.get("torch_cuda"),
        ops_source=str(info.get("ops_source") or "unknown"),
        backends=backends,
        sdpa_kernel=_kernel_name(info.get("sdpa_default_kernel")),
    )


def _kernel_name(value: object) -> BackendName | None:
    for name in BACKEND_NAMES:
        if name == value and name.startswith("sdpa_"):
            return name
    return None


# --- ceiling ------------------------------------------------------------------------------


def measure_ceilings(
    info: DeviceInfo,
    dtypes: Sequence[DType],
    *,
    reps: int,
    python: str | None = None,
    clock: str | None = None,
) -> tuple[Ceiling, ...]:
    """The matmul ceiling per dtype, each through the quality gate (spread, datasheet)."""
    outcome = run_worker(
        {
            "kind": "ceiling",
            "device": info.device,
            "dtypes": list(dtypes),
            "reps": reps,
            "clock": clock,
        },
        timeout=CEILING_TIMEOUT,
        python=python,
    )
    spec = find_gpu_spec(info.device_name) if info.device == "cuda" else None
    got = {r["dtype"]: r for r in outcome.records if r.get("type") == "ceiling"}
    out: list[Ceiling] = []
    for dtype in dtypes:
        rec = got.get(dtype)
        sheet = None if spec is None else datasheet_tflops(spec, dtype)
        if rec is None:
            out.append(
                Ceiling(
                    dtype=dtype,
                    size=0,
                    status="error",
                    datasheet=spec,
                    datasheet_tflops=sheet,
                    detail=outcome.detail or "the ceiling child gave no figure",
                )
            )
            continue
        rec = {k: v for k, v in rec.items() if k != "type"}
        try:
            ceiling = decode(Ceiling, rec, "ceiling")
        except SnapshotError as exc:
            ceiling = Ceiling(dtype=dtype, size=0, status="error", detail=exc.message)
        problem = ceiling.problem
        if ceiling.status == "ok" and problem is None:
            problem = figure_problem(ceiling.time, ceiling.tflops, datasheet_tflops=sheet)
        out.append(
            dataclasses.replace(ceiling, datasheet=spec, datasheet_tflops=sheet, problem=problem)
        )
    return tuple(out)


# --- sweeps -------------------------------------------------------------------------------


def _check_from(rec: Mapping[str, Any]) -> CorrectnessCheck:
    shape = rec.get("shape")
    return CorrectnessCheck(
        passed=bool(rec.get("passed")),
        unsupported=bool(rec.get("unsupported")),
        method=str(rec.get("method") or "unknown"),
        shape=None if shape is None else decode(BenchShape, shape, "check.shape"),
        max_abs_error=rec.get("max_abs_error"),
        tolerance=rec.get("tolerance"),
        detail=rec.get("detail"),
    )


def ceiling_rates(device: Device, ceilings: Sequence[Ceiling]) -> dict[str, float]:
    """dtype -> the measured TFLOP/s its points are a fraction of (CPU: fp32's for all).
    A ceiling that failed the quality gate is left out: nothing is judged by it."""
    rates: dict[str, float] = {
        c.dtype: c.tflops for c in ceilings if c.status == "ok" and c.tflops and c.problem is None
    }
    if device == "cpu":
        fp32 = rates.get("fp32")
        return {} if fp32 is None else dict.fromkeys(("fp32", "bf16", "fp16"), fp32)
    return rates


def sweep_from_outcome(
    backend: BackendName,
    outcome: WorkerOutcome,
    rates: Mapping[str, float],
    datasheet: Mapping[str, float] | None = None,
) -> BackendSweep:
    """Fold a sweep child's records into a ``BackendSweep`` (pure). ``rates``: the ceiling
    TFLOP/s per dtype (``ceiling_rates``); ``datasheet``: the GPU's dense rate per dtype.
    Every figure goes through the quality gate again here, where the ceilings are known."""
    checks: list[CorrectnessCheck] = []
    points: list[BenchPoint] = []
    unavailable: str | None = None
    for rec in outcome.records:
        kind = rec.get("type")
        if kind == "check":
            if rec.get("status") == "unavailable":
                unavailable = str(rec.get("detail") or "unavailable")
            checks.append(_check_from(rec))
        elif kind == "point":
            data = {k: v for k, v in rec.items() if k != "type"}
            try:
                point = decode(BenchPoint, data, "point")
            except SnapshotError:
                continue
            rate = rates.get(point.shape.dtype)
            if point.tflops is not None and rate:
                point = dataclasses.replace(point, ceiling_fraction=point.tflops / rate)
            if point.status == "ok" and point.problem is None:
                problem = figure_problem(
                    point.time,
                    point.tflops,
                    ceiling_tflops=rate,
                    datasheet_tflops=(datasheet or {}).get(point.shape.dtype),
                )
                point = dataclasses.replace(point, problem=problem)
            points.append(point)
    status: SweepStatus
    detail: str | None = None
    if outcome.status != "ok":
        status, detail = outcome.status, outcome.detail
    elif unavailable is not None:
        status, detail = "unavailable", unavailable
    elif not checks:
        status, detail = "error", "no correctness check came back"
    elif not all(c.passed or c.unsupported for c in checks):
        bad = next(c for c in checks if not (c.passed or c.unsupported))
        status = "failed-check"
        where = f" at {bad.shape.label}" if bad.shape is not None else ""
        detail = f"{bad.method}{where}: {bad.detail or 'failed'}"
    else:
        status = "ok"
    return BackendSweep(
        backend=backend,
        status=status,
        detail=detail,
        checks=tuple(checks),
        points=tuple(points),
        seconds=outcome.seconds,
        stderr_tail=outcome.stderr_tail if status != "ok" else None,
    )


def _dtypes_of(shapes: Sequence[BenchShape]) -> tuple[DType, ...]:
    seen: list[DType] = []
    for s in shapes:
        if s.dtype not in seen:
            seen.append(s.dtype)
    return tuple(seen)


def run_bench(
    *,
    info: DeviceInfo,
    shapes: Sequence[BenchShape],
    backends: Sequence[BackendName] = (),
    mode: BenchMode = "fwd",
    reps: int | None = None,
    timeout: float = 600.0,
    baseline: bool = True,
    progress: Progress | None = None,
    python: str | None = None,
    clock: str | None = None,
) -> BenchResult:
    """Benchmark ``backends`` (default: every backend that can be launched here) at ``shapes``.

    ``baseline`` adds eager when it was not asked for, so that the O(S²) memory and the
    speed-up have a reference. ``timeout`` bounds each backend's child process. ``clock``
    (``"module:function"``, importable in the child) replaces the children's timer: a test
    injects noise through it to exercise the quality gate. Every figure passes the gate or
    is re-measured; one still failing carries its ``problem`` and is not recommended by.
    """
    say = progress or (lambda _msg: None)
    n_reps = reps if reps is not None else DEFAULT_REPS[info.device]
    chosen: list[BackendName] = list(dict.fromkeys(backends)) or list(info.available)
    if baseline and "eager" not in chosen and info.reason("eager") is None:
        chosen.append("eager")
    dtypes = ceiling_dtypes(info.device, _dtypes_of(shapes))
    say(f"measuring the {info.device} matmul ceiling ({', '.join(dtypes)})")
    ceilings = measure_ceilings(info, dtypes, reps=n_reps, python=python, clock=clock)
    rates = ceiling_rates(info.device, ceilings)
    sheet: dict[str, float] = {c.dtype: c.datasheet_tflops for c in ceilings if c.datasheet_tflops}
    sweeps: list[BackendSweep] = []
    for backend in chosen:
        reason = info.reason(backend)
        if reason is not None:
            sweeps.append(BackendSweep(backend=backend, status="unavailable", detail=reason))
            say(f"{backend}: unavailable ({reason})")
            continue
        say(f"{backend}: checking, then timing {len(shapes)} shape(s)")
        outcome = run_worker(
            {
                "kind": "sweep",
                "backend": backend,
                "device": info.device,
                "mode": mode,
                "reps": n_reps,
                "shapes": [dataclasses.asdict(s) for s in shapes],
                "clock": clock,
                "ceilings": rates,
                "datasheet": sheet,
            },
            timeout=timeout,
            python=python,
        )
        sweep = sweep_from_outcome(backend, outcome, rates, sheet)
        sweeps.append(sweep)
        ok = sum(p.status == "ok" for p in sweep.points)
        shaky = sum(p.status == "ok" and p.problem is not None for p in sweep.points)
        say(
            f"{backend}: {sweep.status}, {ok} point(s) in {outcome.seconds:.0f} s"
            + (f", {shaky} unreliable" if shaky else "")
            + (f" ({sweep.detail})" if sweep.detail else "")
        )
    notes: list[str] = []
    shaky_total = sum(p.status == "ok" and p.problem is not None for s in sweeps for p in s.points)
    if shaky_total:
        notes.append(
            f"{shaky_total} figure(s) failed the quality gate after re-measuring (marked "
            "'unreliable'): they are shown, never saved as evidence or ranked by"
        )
    bad_ceilings = [c for c in ceilings if c.status == "ok" and c.problem is not None]
    for c in bad_ceilings:
        notes.append(f"the {c.dtype} matmul ceiling is unreliable ({c.problem})")
    if info.device == "cpu":
        notes.append("peak memory is measured on CUDA devices only")
        if any(s.dtype != "fp32" for s in shapes):
            notes.append(
                "on a CPU every dtype is set against the fp32 matmul rate (low-precision "
                "attention kernels compute in fp32 inside)"
            )
    return BenchResult(
        created_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        device=info.device,
        device_name=info.device_name,
        compute_capability=info.compute_capability,
        torch_version=info.torch_version,
        torch_cuda=info.torch_cuda,
        cache_key=cache_key(
            device=info.device, device_name=info.device_name, torch_version=info.torch_version
        ),
        mode=mode,
        reps=n_reps,
        ops_source=info.ops_source,
        ceilings=ceilings,
        sweeps=tuple(sweeps),
        recommendation=recommend(sweeps, mode=mode, sdpa_kernel=info.sdpa_kernel),
        notes=tuple(notes),
        sdpa_kernel=info.sdpa_kernel,
    )
