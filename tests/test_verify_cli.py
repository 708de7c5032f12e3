"""``attn-doctor verify`` end to end, and the verdict logic of ``verify_backends``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from attn_doctor.verify.kernels import KernelReport
from attn_doctor.verify.model_check import ImplResult
from attn_doctor.verify.runner import _verdict
from tests.conftest import REPO_ROOT


def _run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "attn_doctor", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _kernel(status: str, reason: str | None = None) -> KernelReport:
    return KernelReport(
        backend="eager",
        device="cpu",
        status=status,  # type: ignore[arg-type]
        reason=reason,
        cases=(),
        max_error=None,
        allowed=None,
        seconds=0.0,
    )


@pytest.mark.functional
def test_importing_verify_does_not_import_torch() -> None:
    code = (
        "import sys, attn_doctor.verify, attn_doctor.commands.verify;print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


@pytest.mark.functional
def test_unknown_backend_is_a_usage_error() -> None:
    proc = _run("verify", "flash-attn-9", "--json")
    assert proc.returncode == 2
    envelope = json.loads(proc.stdout)
    assert envelope["error"]["code"] == "usage"
    assert "flash-attn-9" in envelope["error"]["message"]


@pytest.mark.functional
def test_verify_json_end_to_end_on_cpu() -> None:
    pytest.importorskip("torch")
    proc = _run("verify", "sdpa_math", "fa2", "--json", "--quick", "--device", "cpu")
    # fa2 was named and cannot be verified on a CPU: the run fails, with its reason.
    assert proc.returncode == 1, proc.stderr
    envelope = json.loads(proc.stdout)
    assert envelope["command"] == "verify"
    assert envelope["ok"] is False
    result = envelope["result"]
    assert result["device"] == "cpu"
    by_name = {b["backend"]: b for b in result["backends"]}
    assert set(by_name) == {"sdpa_math", "flash_attn_2"}
    math_ = by_name["sdpa_math"]
    assert math_["passed"] is True
    assert math_["kernel"]["status"] == "passed"
    assert math_["kernel"]["max_error"] <= math_["kernel"]["allowed"]
    assert {m["family"] for m in math_["model"]} == {"llama", "qwen2"}
    assert all(m["status"] == "passed" for m in math_["model"])
    fa2 = by_name["flash_attn_2"]
    assert fa2["usable"] is False
    assert fa2["passed"] is None
    assert fa2["failure"] == "needs a CUDA device"
    assert fa2["from_record"] is True
    assert result["verified"] == 1
    assert result["summary"].startswith("1 verified, 1 not applicable here")


class TestVerdict:
    def test_a_usable_failing_kernel_fails(self) -> None:
        v = _verdict("eager", _kernel("failed", "bf16 causal: out: error"), (), None, None)
        assert v.usable
        assert v.passed is False
        assert v.failure == "kernel failed: bf16 causal: out: error"

    def test_a_crash_fails(self) -> None:
        v = _verdict("eager", _kernel("crashed", "killed by SIGSEGV"), (), None, None)
        assert v.passed is False
        assert "SIGSEGV" in (v.failure or "")

    def test_unavailable_is_not_a_failure(self) -> None:
        v = _verdict("eager", _kernel("unavailable", "needs a CUDA device"), (), None, None)
        assert not v.usable
        assert v.passed is None

    def test_a_failing_model_fails_a_passing_kernel(self) -> None:
        model = (
            ImplResult(
                family="llama", attn_implementation="sdpa", status="failed", reason="logits"
            ),
        )
        v = _verdict("sdpa_math", _kernel("passed"), model, None, None)
        assert v.passed is False
        assert v.failure == "model llama sdpa failed: logits"

    def test_skipped_or_unsupported_model_does_not_fail(self) -> None:
        model = (
            ImplResult(
                family="llama", attn_implementation="sdpa", status="unsupported", reason="no"
            ),
        )
        v = _verdict("sdpa_math", _kernel("passed"), model, None, None)
        assert v.passed is True


@pytest.mark.functional
def test_check_verify_counts_a_usable_backend_verify_cannot_run_as_a_failure() -> None:
    pytest.importorskip("torch")
    from attn_doctor.diagnosis import BackendStatus, Diagnosis
    from attn_doctor.verify import verify_usable

    diagnosis = Diagnosis(
        findings=(),
        backends=(
            BackendStatus(
                backend="flash_attn_2",
                installed="yes",
                importable="yes",
                compatible="yes",
                usable=True,
                reason="planted: check believes it works",
            ),
        ),
        recommendations=(),
    )
    report = verify_usable(diagnosis, device="cpu", quick=True, timeout=120)
    assert not report.ok
    (verdict,) = report.backends
    assert verdict.passed is False
    assert verdict.failure == (
        "check calls it usable, but verify cannot run it: needs a CUDA device"
    )


@pytest.mark.functional
def test_human_table_names_each_backend_and_why() -> None:
    proc = _run("verify", "fa3", "xformers", "--device", "cpu", "--no-model")
    assert proc.returncode == 1, proc.stderr
    assert "flash_attn_3" in proc.stdout
    assert "xformers" in proc.stdout
    assert "needs a CUDA device" in proc.stdout


@pytest.mark.functional
def test_an_unreadable_model_is_a_usage_error() -> None:
    pytest.importorskip("transformers")
    proc = _run(
        "verify", "eager", "--device", "cpu", "--quick", "--json", "--model", "/nonexistent/model"
    )
    assert proc.returncode == 2, proc.stderr
    envelope = json.loads(proc.stdout)
    assert envelope["error"]["code"] == "usage"
    assert envelope["error"]["message"].startswith("--model /nonexistent/model: could not build")
