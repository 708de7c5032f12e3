"""Kernel checks: the pass rule, real CPU kernels in child processes, and planted failures."""

from __future__ import annotations

import pytest

from attn_doctor.verify.kernels import (
    CaseResult,
    CaseSpec,
    KernelReport,
    TensorCheck,
    case_matrix,
    check_kernels,
    summarize,
)

torch = pytest.importorskip("torch")

PLANTS = "tests.verify_plants"


def _spec() -> CaseSpec:
    return CaseSpec(
        dtype="float32",
        causal=True,
        heads_q=4,
        heads_kv=2,
        head_dim=64,
        padded=False,
        batch=2,
        seqlen=64,
    )


class TestRule:
    def test_error_within_twice_the_torch_error_passes(self) -> None:
        from attn_doctor.verify.kernels import compare

        ref = torch.full((4,), 0.5, dtype=torch.float64)
        pt = ref + 1e-3
        check = compare("out", ref + 1.9e-3, ref, pt, rtol=2.0, low_dtype=torch.float32)
        assert check.passed
        assert check.allowed == pytest.approx(2e-3, rel=1e-3)

    def test_error_above_the_bound_fails(self) -> None:
        from attn_doctor.verify.kernels import compare

        ref = torch.full((4,), 0.5, dtype=torch.float64)
        pt = ref + 1e-3
        check = compare("out", ref + 2.5e-3, ref, pt, rtol=2.0, low_dtype=torch.float32)
        assert not check.passed
        assert check.problem == "error above the allowed bound"

    def test_nan_never_passes_even_with_a_huge_bound(self) -> None:
        from attn_doctor.verify.kernels import compare

        ref = torch.zeros(4, dtype=torch.float64)
        actual = torch.tensor([0.0, float("nan"), 0.0, 0.0])
        check = compare("out", actual, ref, ref + 100.0, rtol=2.0, low_dtype=torch.float32)
        assert not check.passed
        assert check.max_error is None
        assert "NaN" in (check.problem or "")

    def test_inf_never_passes(self) -> None:
        from attn_doctor.verify.kernels import compare

        ref = torch.zeros(4, dtype=torch.float64)
        actual = torch.tensor([0.0, float("inf"), 0.0, 0.0])
        assert not compare("out", actual, ref, ref + 1.0, rtol=2.0, low_dtype=torch.float32).passed

    def test_atol_is_the_low_dtype_rounding_near_the_output_scale(self) -> None:
        from attn_doctor.verify.kernels import compare

        ref = torch.full((4,), 0.1, dtype=torch.float64)
        check = compare("out", ref, ref, ref, rtol=2.0, low_dtype=torch.bfloat16)
        # bf16 has 8 significant bits: rounding near 0.3 is 2**-10 ~ 1e-3, doubled.
        assert 1e-4 < check.allowed < 1e-2

    def test_wrong_shape_fails(self) -> None:
        from attn_doctor.verify.kernels import compare

        ref = torch.zeros(4, dtype=torch.float64)
        check = compare("out", torch.zeros(5), ref, ref, rtol=2.0, low_dtype=torch.float32)
        assert not check.passed
        assert "shape" in (check.problem or "")


class TestMatrix:
    def test_cpu_matrix_covers_the_issue(self) -> None:
        specs = case_matrix("sdpa_cpu_fused", "cpu")
        assert {s.dtype for s in specs} == {"float32", "bfloat16"}
        assert {s.causal for s in specs} == {True, False}
        assert any(s.heads_q != s.heads_kv for s in specs)
        assert any(s.heads_q == s.heads_kv for s in specs)
        assert {s.head_dim for s in specs} == {64, 128, 256}
        assert any(s.padded for s in specs)

    def test_gpu_matrix_is_half_precision_and_uses_the_backend_max(self) -> None:
        specs = case_matrix("flash_attn_2", "cuda")
        assert {s.dtype for s in specs} == {"float16", "bfloat16"}
        assert max(s.head_dim for s in specs) == 256

    def test_quick_is_one_dtype(self) -> None:
        specs = case_matrix("sdpa_math", "cpu", quick=True)
        assert {s.dtype for s in specs} == {"float32"}
        assert any(s.padded for s in specs)


def test_summarize_reports_the_first_failure_and_the_worst_ratio() -> None:
    good = TensorCheck(name="out", max_error=1e-7, torch_error=1e-7, allowed=3e-7, passed=True)
    bad = TensorCheck(
        name="dq",
        max_error=5e-6,
        torch_error=1e-7,
        allowed=4e-7,
        passed=False,
        problem="error above the allowed bound",
    )
    cases = (
        CaseResult(spec=_spec(), outcome="passed", checks=(good,)),
        CaseResult(spec=_spec(), outcome="failed", checks=(good, bad)),
    )
    report = summarize("eager", "cpu", cases, seconds=0.1)
    assert report.status == "failed"
    assert report.reason is not None
    assert "dq" in report.reason
    assert report.max_error == 5e-6
    assert report.allowed == 4e-7


def _check(backend: str, adapter: str | None = None, timeout: float = 240) -> KernelReport:
    return check_kernels(backend, device="cpu", timeout=timeout, quick=True, adapter=adapter)  # type: ignore[arg-type]


@pytest.mark.functional
@pytest.mark.parametrize("backend", ["sdpa_math", "sdpa_cpu_fused", "eager"])
def test_real_cpu_kernels_pass(backend: str) -> None:
    report = _check(backend)
    assert report.status == "passed", report.reason
    assert report.cases
    for case in report.cases:
        assert case.outcome == "passed"
        assert case.backward == "checked"
        assert {c.name for c in case.checks} == {"out", "dq", "dk", "dv"}
        for check in case.checks:
            assert check.max_error is not None
            assert 0 < check.max_error <= check.allowed  # a real kernel: error, but small


@pytest.mark.functional
@pytest.mark.slow
def test_flex_attention_runs_compiled_on_cpu_forward_only() -> None:
    report = _check("flex_attention", timeout=400)
    assert report.status == "passed", report.reason
    for case in report.cases:
        # torch: "FlexAttention does not support backward on CPU".
        assert case.backward == "unsupported"
        assert "backward" in (case.error or "")


@pytest.mark.functional
def test_gpu_only_backends_are_unavailable_on_cpu() -> None:
    report = _check("flash_attn_2")
    assert report.status == "unavailable"
    assert report.reason == "needs a CUDA device"


@pytest.mark.functional
def test_a_segfaulting_kernel_is_reported_as_crashed() -> None:
    report = _check("eager", adapter=f"{PLANTS}:segfault")
    assert report.status == "crashed"
    assert report.reason is not None
    assert report.reason.startswith("killed by SIGSEGV")


@pytest.mark.functional
def test_a_hanging_kernel_times_out() -> None:
    report = _check("eager", adapter=f"{PLANTS}:hang", timeout=10)
    assert report.status == "timeout"


@pytest.mark.functional
def test_nan_output_fails() -> None:
    report = _check("eager", adapter=f"{PLANTS}:nan")
    assert report.status == "failed"
    assert "NaN" in (report.reason or "")


@pytest.mark.functional
def test_a_slightly_wrong_kernel_fails_the_rule() -> None:
    report = _check("eager", adapter=f"{PLANTS}:slightly_wrong")
    assert report.status == "failed"
    assert "error above the allowed bound" in (report.reason or "")


@pytest.mark.functional
def test_a_kernel_returning_its_input_fails() -> None:
    report = _check("eager", adapter=f"{PLANTS}:returns_query")
    assert report.status == "failed"


@pytest.mark.functional
def test_the_planted_correct_adapter_passes() -> None:
    # The control for the plants above: the harness itself does not fail everything.
    assert _check("eager", adapter=f"{PLANTS}:correct").status == "passed"


@pytest.mark.gpu
def test_every_usable_gpu_backend_passes() -> None:
    from attn_doctor.verify.ops import KERNEL_BACKENDS

    for backend in KERNEL_BACKENDS:
        report = check_kernels(backend, device="cuda", timeout=600)
        assert report.status in ("passed", "unavailable"), (backend, report.reason)
