"""A library's warning inside a backend's run is a note on the result, never a failure.

pytest runs with ``filterwarnings = error`` (pyproject.toml), the setting under which the
H200 run turned FlexAttention's ``_compile`` DeprecationWarning into a backend error: these
tests run the checks in this process, so they would fail the same way without the fix.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from attn_doctor.verify.kernels import run_kernel_cases
from attn_doctor.verify.runner import _verdict
from attn_doctor.verify.warned import MAX_NOTES, recorded_warnings, warning_notes

torch = pytest.importorskip("torch")

PLANTS = "tests.verify_plants"


def test_warnings_are_errors_here() -> None:
    # The premise of this file: without recorded_warnings, the warning raises.
    with pytest.raises(DeprecationWarning):
        warnings.warn("x", DeprecationWarning, stacklevel=1)


def test_recorded_warnings_become_short_distinct_notes() -> None:
    with recorded_warnings() as caught:
        for _ in range(3):
            warnings.warn("same text\nsecond line", DeprecationWarning, stacklevel=1)
        for i in range(MAX_NOTES + 3):
            warnings.warn(f"other {i}", UserWarning, stacklevel=1)
    notes = warning_notes(caught)
    assert len(notes) == MAX_NOTES
    assert notes[0].startswith("warning: DeprecationWarning: same text (test_verify_warnings.py:")
    assert "second line" not in notes[0]
    assert notes[1].startswith("warning: UserWarning: other 0 ")


def test_a_deprecation_warning_in_a_kernel_run_is_a_note() -> None:
    report = run_kernel_cases("eager", "cpu", quick=True, adapter=f"{PLANTS}:warns_deprecation")
    assert report.status == "passed", report.reason
    assert len(report.notes) == 1
    assert "DeprecationWarning: _compile is deprecated" in report.notes[0]


@pytest.mark.slow
def test_a_kernel_run_without_warnings_has_no_notes() -> None:
    report = run_kernel_cases("eager", "cpu", quick=True, adapter=f"{PLANTS}:correct")
    assert report.status == "passed"
    assert report.notes == ()


def _warns_when_training(
    module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kw: Any
) -> Any:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if torch.is_grad_enabled():
        # Only the training pass warns, as flex_attention's _compile did on the H200.
        warnings.warn("_compile will be removed in the future", DeprecationWarning, stacklevel=1)
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kw)


def _raises(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kw: Any) -> Any:
    raise RuntimeError("kernel exploded")


@pytest.mark.slow
def test_a_deprecation_warning_in_a_model_run_is_a_note_and_the_check_passes() -> None:
    transformers = pytest.importorskip("transformers")
    from transformers.masking_utils import sdpa_mask

    from attn_doctor.verify.model_check import run_model_checks

    transformers.AttentionInterface.register("attn_doctor_test_warns", _warns_when_training)
    # The same mask as "sdpa" gets (an unknown name would get another mask format).
    transformers.AttentionMaskInterface.register("attn_doctor_test_warns", sdpa_mask)
    transformers.AttentionInterface.register("attn_doctor_test_raises", _raises)
    report = run_model_checks(
        device="cpu",
        families=("llama",),
        implementations=("eager", "attn_doctor_test_warns", "attn_doctor_test_raises"),
    )
    warned, raised = report.results
    assert warned.status == "passed", warned.reason
    assert warned.grad_passed is True
    assert len(warned.notes) == 1
    assert "DeprecationWarning: _compile will be removed in the future" in warned.notes[0]
    # A real exception is still the backend's failure.
    assert raised.status == "error"
    assert raised.reason == "RuntimeError: kernel exploded"
    assert raised.notes == ()

    verdict = _verdict("sdpa", None, report.results[:1], None, None)
    assert verdict.passed is True
    assert verdict.notes == warned.notes


def test_the_child_never_runs_with_warnings_as_errors() -> None:
    from attn_doctor.verify.subproc import child_env

    assert child_env({"PYTHONWARNINGS": "error"})["PYTHONWARNINGS"] == "ignore"
    assert child_env({})["PYTHONWARNINGS"] == "ignore"


@pytest.mark.functional
def test_a_warning_in_the_child_is_a_note_even_with_pythonwarnings_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from attn_doctor.verify.kernels import check_kernels

    monkeypatch.setenv("PYTHONWARNINGS", "error")
    report = check_kernels(
        "eager", device="cpu", timeout=240, quick=True, adapter=f"{PLANTS}:warns_deprecation"
    )
    assert report.status == "passed", report.reason
    assert any("DeprecationWarning: _compile is deprecated" in n for n in report.notes)
