"""verify reports what it verified: verdicts, counts, ``ok``, and the table at 80 columns.

Pure and in-process: the verdicts are built from recorded kernel and model results.
"""

from __future__ import annotations

import pytest

from attn_doctor.verify.kernels import KernelReport
from attn_doctor.verify.model_check import ImplResult
from attn_doctor.verify.runner import (
    BackendVerdict,
    VerifyReport,
    _report,
    _Steps,
    _verdict,
    record_reason,
)

NO_TRANSFORMERS = "not run, because transformers is not installed"


def _kernel(status: str, backend: str = "sdpa_math") -> KernelReport:
    return KernelReport(
        backend=backend,  # type: ignore[arg-type]
        device="cpu",
        status=status,  # type: ignore[arg-type]
        reason=None if status == "passed" else f"planted {status}",
        cases=(),
        max_error=None,
        allowed=None,
        seconds=1.0,
    )


def _not_here(backend: str, *, requested: bool) -> BackendVerdict:
    return BackendVerdict(
        backend=backend,  # type: ignore[arg-type]
        usable=False,
        passed=None,
        failure="needs a CUDA device",
        kernel=None,
        model=(),
        requested=requested,
        from_record=True,
    )


def test_a_named_backend_that_cannot_run_here_fails_the_run() -> None:
    report = _report(
        "cpu",
        (_not_here("flash_attn_2", requested=True), _not_here("xformers", requested=True)),
        None,
    )
    assert not report.ok
    assert report.verified == 0
    assert report.not_applicable == 2
    assert "flash_attn_2 (needs a CUDA device)" in report.summary


def test_with_no_names_nothing_verified_fails() -> None:
    report = _report("cpu", (_not_here("flash_attn_2", requested=False),), None)
    assert not report.ok
    assert report.summary.startswith("0 verified, 1 not applicable here")
    assert "nothing was verified" in report.summary


def test_with_no_names_one_verified_and_the_rest_not_applicable_passes() -> None:
    passed = _verdict("sdpa_math", _kernel("passed"), (), None, None)
    report = _report("cpu", (passed, _not_here("flash_attn_2", requested=False)), None)
    assert report.ok
    assert report.summary == "1 verified, 1 not applicable here"


def test_a_failure_fails_the_run_and_is_counted() -> None:
    bad = _verdict("sdpa_math", _kernel("failed"), (), None, None)
    good = _verdict("eager", _kernel("passed", "eager"), (), None, None)
    report = _report("cpu", (good, bad), None)
    assert not report.ok
    assert report.failed == 1
    assert "1 failed (sdpa_math)" in report.summary


def test_passed_needs_a_checked_kernel_case() -> None:
    # A kernel child that found the backend unavailable checked nothing: not verified.
    verdict = _verdict("sdpa_flash", _kernel("unavailable", "sdpa_flash"), (), None, None)
    assert verdict.passed is None
    assert not verdict.verified


def test_model_step_not_run_is_a_note_not_a_failure() -> None:
    verdict = _verdict(
        "sdpa",
        _kernel("passed", "sdpa"),
        (),
        "import transformers failed: ModuleNotFoundError: No module named 'transformers'",
        None,
        model_not_run=NO_TRANSFORMERS,
    )
    assert verdict.passed is True
    assert verdict.failure is None
    assert f"model check {NO_TRANSFORMERS}" in verdict.notes


def test_a_failed_model_run_still_fails() -> None:
    model = (ImplResult(family="llama", attn_implementation="sdpa", status="failed", reason="off"),)
    verdict = _verdict("sdpa", _kernel("passed", "sdpa"), model, None, None)
    assert verdict.passed is False


@pytest.mark.parametrize(
    ("backend", "device", "reason"),
    [
        ("flash_attn_2", "cpu", "needs a CUDA device"),
        ("xformers", "cpu", "needs a CUDA device"),
        ("unsloth", "cpu", "needs a CUDA device"),
        ("sdpa_cpu_fused", "cuda", "CPU-only kernel"),
        ("sdpa_math", "cpu", None),
        ("eager", "cpu", None),
    ],
    ids=str,
)
def test_records_judge_without_a_child(backend: str, device: str, reason: str | None) -> None:
    assert record_reason(backend, device) == reason  # type: ignore[arg-type]


def test_hub_kernels_are_judged_from_their_record() -> None:
    assert "not checked by verify" in (record_reason("hub_kernels", "cuda") or "")


def test_progress_counts_and_estimates() -> None:
    lines: list[str] = []
    steps = _Steps(3, lines.append)
    steps.start("a")
    steps.finish(10.0)
    steps.start("b")
    assert lines[0] == "[1/3] a, estimating the time left"
    assert lines[1] == "[2/3] b, about 20 s left"


def _table_at(
    width: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    report: VerifyReport,
) -> str:
    from attn_doctor.report.verify_view import render_verify

    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setenv("NO_COLOR", "1")
    render_verify(report)
    return capsys.readouterr().out


@pytest.mark.parametrize("width", [80, 120])
def test_flash_attn_rows_can_be_told_apart(
    width: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    long_note = "not installed (no flash-attn-4 or flash-attn-cute distribution); " * 3
    verdicts = tuple(
        BackendVerdict(
            backend=name,
            usable=False,
            passed=None,
            failure=long_note,
            kernel=None,
            model=(),
            requested=True,
            from_record=True,
        )
        for name in ("flash_attn_2", "flash_attn_3", "flash_attn_4")
    )
    out = _table_at(width, monkeypatch, capsys, _report("cuda", verdicts, None))
    assert all(len(line) <= width for line in out.splitlines())
    rows = [line for line in out.splitlines() if "flash_attn_" in line and "│" in line]
    names = {row.split("│")[1].strip() for row in rows}
    assert {"flash_attn_2", "flash_attn_3", "flash_attn_4"} <= names
    assert "…" not in out
