"""Kernel checks: launch each backend's real kernel and compare it with a reference.

The pass rule (for every backend whose record says ``accuracy = "flash-attn-ratio"``) is
flash-attn's own (tests/test_flash_attn.py, test_flash_attn_output, and
hopper/test_flash_attn.py): the kernel's largest error against a high-precision reference may
be at most ``rtol`` times the largest error of a plain PyTorch computation done in the same low
precision, plus ``atol = 2 * (ref + 0.3 - 0.3 - ref).abs().max()`` (the rounding error of the
low dtype near the output's scale). ``rtol`` is 2 for the output and 3 for dq/dk/dv, the
factors tests/test_flash_attn.py asserts. The reference is computed in float64 on CPU and in
float32 on GPU. NaN or Inf never passes.

``run_kernel_cases`` runs in the child process (it imports torch and the backend);
``check_kernels`` is the parent side: it starts the child with a timeout and turns a crash,
hang or garbage into a ``KernelReport``.
"""

from __future__ import annotations

import importlib
import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.verify.ops import UnsupportedCaseError, max_head_dim
from attn_doctor.verify.warned import recorded_warnings, warning_notes

if TYPE_CHECKING:
    import torch

FWD_RTOL = 2.0
"""tests/test_flash_attn.py: ``(out - out_ref).abs().max() <= 2 * (out_pt - out_ref)...``."""
BWD_RTOL = 3.0
"""tests/test_flash_attn.py: ``(dq - dq_ref).abs().max() <= 3 * (dq_pt - dq_ref)...``."""

KernelStatus = Literal["passed", "failed", "crashed", "timeout", "unavailable", "error"]


@dataclass(frozen=True, kw_only=True)
class TensorCheck:
    """One compared tensor (out, dq, dk or dv) of one case."""

    name: str
    max_error: float | None
    """Largest |kernel - reference|; None when the kernel's tensor held NaN/Inf."""
    torch_error: float
    """Largest |plain PyTorch in the same dtype - reference|."""
    allowed: float
    """rtol * torch_error + atol."""
    passed: bool
    problem: str | None = None
    """Why it failed, beyond the numbers: NaN/Inf, wrong shape, returned an input."""


@dataclass(frozen=True, kw_only=True)
class CaseSpec:
    """One point of the test matrix."""

    dtype: str
    causal: bool
    heads_q: int
    heads_kv: int
    head_dim: int
    padded: bool
    batch: int
    seqlen: int
    grad: bool = True
    """Inputs require grad and the backward pass is checked; False: the inference path."""

    @property
    def label(self) -> str:
        parts = [
            self.dtype,
            "causal" if self.causal else "full",
            f"gqa{self.heads_q}:{self.heads_kv}" if self.heads_q != self.heads_kv else "mha",
            f"d{self.head_dim}",
        ]
        if self.padded:
            parts.append("padded")
        if not self.grad:
            parts.append("inference")
        return " ".join(parts)


@dataclass(frozen=True, kw_only=True)
class CaseResult:
    """The outcome of one case: forward and (where the backend has one) backward."""

    spec: CaseSpec
    outcome: Literal["passed", "failed", "unsupported"]
    checks: tuple[TensorCheck, ...]
    error: str | None = None
    """The exception the kernel raised, or why the case is unsupported."""
    backward: Literal["checked", "unsupported", "not-run"] = "not-run"


@dataclass(frozen=True, kw_only=True)
class KernelReport:
    """Every case of one backend on one device."""

    backend: BackendName
    device: str
    status: KernelStatus
    reason: str | None
    """Why unavailable / crashed / timed out / errored, or the first failing case's text."""
    cases: tuple[CaseResult, ...]
    max_error: float | None
    """Worst case by error/allowed ratio: its error..."""
    allowed: float | None
    """... and what the rule allowed there."""
    seconds: float
    notes: tuple[str, ...] = ()
    """Warnings the run issued (a library's DeprecationWarning...): recorded, never a failure."""


# --- the matrix ---------------------------------------------------------------------------


def case_matrix(backend: BackendName, device: str, *, quick: bool = False) -> tuple[CaseSpec, ...]:
    """The cases run for ``backend``: fp16+bf16 on GPU, fp32+bf16 on CPU; causal and full;
    grouped-query heads; head dims 64, 128 and the backend's largest; a padded batch.

    ``quick`` keeps only the first dtype's causal/full GQA cases and one padded case.
    """
    on_cuda = device.startswith("cuda")
    dtypes = ("float16", "bfloat16") if on_cuda else ("float32", "bfloat16")
    seqlen = 128 if on_cuda else 64
    batch = 2
    max_dim = max_head_dim(backend)

    def spec(
        dtype: str, *, causal: bool, gqa: bool, dim: int, padded: bool = False, grad: bool = True
    ) -> CaseSpec:
        return CaseSpec(
            dtype=dtype,
            causal=causal,
            heads_q=4,
            heads_kv=2 if gqa else 4,
            head_dim=dim,
            padded=padded,
            batch=batch,
            seqlen=seqlen,
            grad=grad,
        )

    specs: list[CaseSpec] = []
    for i, dtype in enumerate(dtypes):
        if quick and i > 0:
            break
        specs.append(spec(dtype, causal=False, gqa=True, dim=64))
        specs.append(spec(dtype, causal=True, gqa=True, dim=64))
        specs.append(spec(dtype, causal=True, gqa=True, dim=64, padded=True))
        if quick:
            continue
        specs.append(spec(dtype, causal=True, gqa=False, dim=64))
        specs.append(spec(dtype, causal=True, gqa=True, dim=128))
        specs.append(spec(dtype, causal=False, gqa=False, dim=64, padded=True))
        # Inference: some kernels take another path without grad (xformers' 5-D GQA layout).
        specs.append(spec(dtype, causal=True, gqa=True, dim=64, grad=False))
        if max_dim not in (64, 128):
            specs.append(spec(dtype, causal=False, gqa=True, dim=max_dim))
    return tuple(specs)


# --- the rule -----------------------------------------------------------------------------


def compare(
    name: str,
    actual: torch.Tensor,
    ref: torch.Tensor,
    pt: torch.Tensor,
    *,
    rtol: float,
    low_dtype: torch.dtype,
) -> TensorCheck:
    """flash-attn's rule for one tensor (see the module docstring)."""
    if actual.shape != ref.shape:
        return TensorCheck(
            name=name,
            max_error=None,
            torch_error=0.0,
            allowed=0.0,
            passed=False,
            problem=f"shape {tuple(actual.shape)}, expected {tuple(ref.shape)}",
        )
    ref_lp = ref.to(low_dtype)
    atol = float((ref_lp + 0.3 - 0.3 - ref_lp).abs().max().item()) * 2
    torch_error = float((pt.to(ref.dtype) - ref).abs().max().item())
    allowed = rtol * torch_error + atol
    if not bool(actual.isfinite().all().item()):
        return TensorCheck(
            name=name,
            max_error=None,
            torch_error=torch_error,
            allowed=allowed,
            passed=False,
            problem="NaN or Inf in the kernel's result",
        )
    max_error = float((actual.to(ref.dtype) - ref).abs().max().item())
    return TensorCheck(
        name=name,
        max_error=max_error,
        torch_error=torch_error,
        allowed=allowed,
        passed=max_error <= allowed,
        problem=None if max_error <= allowed else "error above the allowed bound",
    )


def compare_published(
    name: str, actual: torch.Tensor, ref: torch.Tensor, *, max_rel_l1: float, min_cosine: float
) -> TensorCheck:
    """A quantised kernel's rule: the error figures its authors publish.

    Relative L1 (``sum|out - ref| / sum|ref|``) at most ``max_rel_l1`` and the cosine similarity
    of the flattened outputs at least ``min_cosine``, the two figures the SageAttention papers
    report per layer. ``max_error`` holds the relative L1, ``allowed`` its bound.
    """
    if actual.shape != ref.shape:
        return TensorCheck(
            name=name,
            max_error=None,
            torch_error=0.0,
            allowed=max_rel_l1,
            passed=False,
            problem=f"shape {tuple(actual.shape)}, expected {tuple(ref.shape)}",
        )
    if not bool(actual.isfinite().all().item()):
        return TensorCheck(
            name=name,
            max_error=None,
            torch_error=0.0,
            allowed=max_rel_l1,
            passed=False,
            problem="NaN or Inf in the kernel's result",
        )
    a = actual.detach().to(ref.dtype).flatten()
    r = ref.detach().flatten()
    rel_l1 = float(((a - r).abs().sum() / r.abs().sum().clamp_min(1e-30)).item())
    cosine = float((a @ r / (a.norm() * r.norm()).clamp_min(1e-30)).item())
    problems = []
    if rel_l1 > max_rel_l1:
        problems.append(f"relative L1 {rel_l1:.3g} > {max_rel_l1:g}")
    if cosine < min_cosine:
        problems.append(f"cosine similarity {cosine:.5f} < {min_cosine:g}")
    return TensorCheck(
        name=name,
        max_error=rel_l1,
        torch_error=1.0 - cosine,
        allowed=max_rel_l1,
        passed=not problems,
        problem="; ".join(problems) or None,
    )


# --- the child side -----------------------------------------------------------------------

Adapter = Callable[..., Any]


def load_adapter(spec: str | None) -> Adapter:
    """``None`` -> ``ops.attention_call``; ``"pkg.mod:func"`` -> that function (test plants)."""
    if spec is None:
        from attn_doctor.verify.ops import attention_call

        return attention_call
    module, _, attr = spec.partition(":")
    fn = getattr(importlib.import_module(module), attr)
    if not callable(fn):
        raise TypeError(f"{spec} is not callable")
    return fn  # type: ignore[no-any-return]


def _poison(shape: Sequence[int], dtype: Any, device: Any) -> None:
    """Leave NaN in the memory the next same-size allocation will most likely get.

    The CUDA caching allocator hands a freed block to the next request of the same size, so a
    kernel that forgets to write part of its output leaves NaN there, which fails the check.
    """
    torch: Any = importlib.import_module("torch")
    scratch = torch.full(tuple(shape), float("nan"), dtype=dtype, device=device)
    del scratch


def _run_case(
    backend: BackendName, spec: CaseSpec, device: str, adapter: Adapter, seed: int
) -> CaseResult:
    torch: Any = importlib.import_module("torch")
    from attn_doctor.verify.ops import eager_attention

    dtype = getattr(torch, spec.dtype)
    ref_dtype = torch.float64 if device == "cpu" else torch.float32
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def rand(heads: int) -> Any:
        # Fresh random inputs, never zeros: a kernel that writes nothing cannot match.
        x = torch.randn(
            spec.batch, spec.seqlen, heads, spec.head_dim, generator=gen, dtype=torch.float32
        )
        return x.to(device=device, dtype=dtype).requires_grad_(spec.grad)

    q, k, v = rand(spec.heads_q), rand(spec.heads_kv), rand(spec.heads_kv)
    seqlens = None
    if spec.padded:
        # Every element shorter than the padded length except the first; lengths differ.
        seqlens = tuple(
            spec.seqlen if b == 0 else max(1, spec.seqlen - 7 * b - 3) for b in range(spec.batch)
        )
    q_ref, k_ref, v_ref = (t.detach().to(ref_dtype).requires_grad_(True) for t in (q, k, v))
    out_ref = eager_attention(q_ref, k_ref, v_ref, causal=spec.causal, seqlens=seqlens)
    q_pt, k_pt, v_pt = (t.detach().clone().requires_grad_(True) for t in (q, k, v))
    out_pt = eager_attention(
        q_pt, k_pt, v_pt, causal=spec.causal, seqlens=seqlens, reorder_ops=True
    )

    no_backward: str | None = None
    _poison(out_pt.shape, dtype, device)
    try:
        try:
            out = adapter(backend, q, k, v, causal=spec.causal, seqlens=seqlens)
        except NotImplementedError as exc:
            # Some kernels refuse inputs that require grad where they have no backward
            # (FlexAttention on CPU): check the forward alone and say so.
            no_backward = f"backward: {exc}"[:300]
            q, k, v = (t.detach() for t in (q, k, v))
            _poison(out_pt.shape, dtype, device)
            out = adapter(backend, q, k, v, causal=spec.causal, seqlens=seqlens)
        if device != "cpu":
            torch.cuda.synchronize(device)
    except UnsupportedCaseError as exc:
        return CaseResult(spec=spec, outcome="unsupported", checks=(), error=str(exc))
    except Exception as exc:
        return CaseResult(
            spec=spec, outcome="failed", checks=(), error=f"{type(exc).__name__}: {exc}"[:500]
        )
    if not isinstance(out, torch.Tensor):
        return CaseResult(
            spec=spec,
            outcome="failed",
            checks=(),
            error=f"returned {type(out).__name__}, not a tensor",
        )
    spec_verify = BACKENDS[backend].verify
    if spec_verify.accuracy == "published-error":
        assert spec_verify.max_rel_l1 is not None
        assert spec_verify.min_cosine is not None
        first = compare_published(
            "out",
            out.detach(),
            out_ref.detach(),
            max_rel_l1=spec_verify.max_rel_l1,
            min_cosine=spec_verify.min_cosine,
        )
    else:
        first = compare(
            "out", out.detach(), out_ref.detach(), out_pt.detach(), rtol=FWD_RTOL, low_dtype=dtype
        )
    checks = [first]
    if out.data_ptr() in (q.data_ptr(), k.data_ptr(), v.data_ptr()):
        checks[0] = TensorCheck(
            name="out",
            max_error=checks[0].max_error,
            torch_error=checks[0].torch_error,
            allowed=checks[0].allowed,
            passed=False,
            problem="the kernel returned one of its inputs",
        )
    backward: Literal["checked", "unsupported", "not-run"] = "not-run"
    error: str | None = None
    if out.requires_grad and checks[0].passed:
        g = torch.randn(out_pt.shape, generator=gen, dtype=torch.float32).to(device=device)
        dref = torch.autograd.grad(out_ref, (q_ref, k_ref, v_ref), g.to(ref_dtype))
        dpt = torch.autograd.grad(out_pt, (q_pt, k_pt, v_pt), g.to(dtype))
        try:
            got = torch.autograd.grad(out, (q, k, v), g.to(dtype))
            if device != "cpu":
                torch.cuda.synchronize(device)
        except NotImplementedError as exc:
            backward = "unsupported"
            error = f"backward: {exc}"[:300]
        except Exception as exc:
            backward = "checked"
            error = f"backward: {type(exc).__name__}: {exc}"[:500]
            checks.append(
                TensorCheck(
                    name="backward",
                    max_error=None,
                    torch_error=0.0,
                    allowed=0.0,
                    passed=False,
                    problem=error,
                )
            )
        else:
            backward = "checked"
            for name, a, r, p in zip(("dq", "dk", "dv"), got, dref, dpt, strict=True):
                checks.append(compare(name, a, r, p, rtol=BWD_RTOL, low_dtype=dtype))
    elif not out.requires_grad and spec.grad:
        backward = "unsupported"
        error = no_backward
    passed = all(c.passed for c in checks)
    return CaseResult(
        spec=spec,
        outcome="passed" if passed else "failed",
        checks=tuple(checks),
        error=error,
        backward=backward,
    )


def run_kernel_cases(
    backend: BackendName,
    device: str,
    *,
    quick: bool = False,
    adapter: str | None = None,
    seed: int = 0,
) -> KernelReport:
    """Child side: run the whole matrix for ``backend`` in this process."""
    from attn_doctor.verify.ops import available_ops

    start = time.monotonic()
    if device.startswith("cuda"):
        torch: Any = importlib.import_module("torch")
        # The float32 reference must be float32: no TF32 rounding in its matmuls.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    fn = load_adapter(adapter)
    caught: list[warnings.WarningMessage] = []
    if adapter is None:
        with recorded_warnings() as on_import:
            ops = available_ops(device)
        caught += on_import
        reason = ops.get(backend, f"{backend} launches no kernel of its own")
        if reason is not None:
            return KernelReport(
                backend=backend,
                device=device,
                status="unavailable",
                reason=reason,
                cases=(),
                max_error=None,
                allowed=None,
                seconds=time.monotonic() - start,
                notes=warning_notes(caught),
            )
    results: list[CaseResult] = []
    for i, spec in enumerate(case_matrix(backend, device, quick=quick)):
        # A warning inside the run (even where warnings are errors) is a note, not a failure.
        with recorded_warnings() as in_case:
            results.append(_run_case(backend, spec, device, fn, seed + i))
        caught += in_case
    report = summarize(backend, device, tuple(results), seconds=time.monotonic() - start)
    return replace(report, notes=warning_notes(caught))


def summarize(
    backend: BackendName, device: str, cases: tuple[CaseResult, ...], *, seconds: float
) -> KernelReport:
    """Fold the cases into one verdict and the worst error-vs-allowed pair."""
    failed = [c for c in cases if c.outcome == "failed"]
    ran = [c for c in cases if c.outcome != "unsupported"]
    worst: TensorCheck | None = None
    worst_ratio = -1.0
    for case in cases:
        for check in case.checks:
            if check.max_error is None:
                ratio = math.inf
            else:
                ratio = check.max_error / check.allowed if check.allowed > 0 else math.inf
            if ratio > worst_ratio:
                worst, worst_ratio = check, ratio
    if failed:
        first = failed[0]
        bad = next((c for c in first.checks if not c.passed), None)
        detail = first.error or (
            f"{bad.name}: {bad.problem}"
            + (
                f" ({bad.max_error:.3g} > {bad.allowed:.3g})"
                if bad is not None and bad.max_error is not None
                else ""
            )
            if bad is not None
            else "failed"
        )
        status: KernelStatus = "failed"
        reason: str | None = f"{first.spec.label}: {detail}"
    elif not ran:
        status, reason = "unavailable", "no case is supported by this backend"
    else:
        status, reason = "passed", None
    return KernelReport(
        backend=backend,
        device=device,
        status=status,
        reason=reason,
        cases=cases,
        max_error=None if worst is None else worst.max_error,
        allowed=None if worst is None else worst.allowed,
        seconds=seconds,
    )


# --- the parent side ----------------------------------------------------------------------


def check_kernels(
    backend: BackendName,
    *,
    device: str,
    timeout: float,
    quick: bool = False,
    adapter: str | None = None,
    python: str | None = None,
) -> KernelReport:
    """Run ``backend``'s kernel checks in a child process; never raises for the kernel's sake.

    A backend whose record rules out ``device`` (a CUDA-only kernel on CPU) is reported
    unavailable with that reason, without starting a child.
    """
    from attn_doctor.adapters import adapter_for
    from attn_doctor.errors import SnapshotError
    from attn_doctor.facts import decode
    from attn_doctor.verify.subproc import run_child

    here = adapter_for(backend).unavailable_here(device, None) if adapter is None else None
    if here is not None:
        return KernelReport(
            backend=backend,
            device=device,
            status="unavailable",
            reason=here,
            cases=(),
            max_error=None,
            allowed=None,
            seconds=0.0,
        )
    args = ["kernels", "--backend", backend, "--device", device]
    if quick:
        args.append("--quick")
    if adapter is not None:
        args += ["--adapter", adapter]
    outcome = run_child(args, timeout=timeout, python=python)
    status: KernelStatus
    reason: str | None
    match outcome.status:
        case "ok":
            try:
                return decode(KernelReport, outcome.data, "kernels")
            except SnapshotError as exc:
                status, reason = "error", f"unreadable child answer: {exc.message}"
        case "crashed" | "timeout" | "error":
            status, reason = outcome.status, outcome.reason
    return KernelReport(
        backend=backend,
        device=device,
        status=status,
        reason=reason,
        cases=(),
        max_error=None,
        allowed=None,
        seconds=outcome.seconds,
    )


def report_json(report: KernelReport) -> str:
    """One line of JSON (the child's answer)."""
    from attn_doctor.facts import encode

    return json.dumps(encode(report), allow_nan=False, sort_keys=True)
