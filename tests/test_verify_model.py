"""Model checks: tiny Llama and Qwen2 on CPU, eager vs sdpa, and a planted wrong attention."""

from __future__ import annotations

from typing import Any

import pytest

from attn_doctor.verify.model_check import XFORMERS_MISSING, run_model_checks, tolerance

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def test_tolerances_are_transformers_own() -> None:
    assert tolerance("sdpa", "float32", "cpu") == (1e-6, 1e-4)
    assert tolerance("sdpa", "bfloat16", "cpu") == (1e-2, 1e-2)
    assert tolerance("sdpa", "bfloat16", "cuda") == (1e-2, 3e-2)
    assert tolerance("sdpa", "float16", "cuda") == (5e-3, 5e-3)
    assert tolerance("flash_attention_2", "bfloat16", "cuda") == (4e-2, 4e-2)


@pytest.mark.slow
def test_eager_matches_sdpa_for_llama_and_qwen2_on_cpu() -> None:
    report = run_model_checks(
        device="cpu", families=("llama", "qwen2"), implementations=("eager", "sdpa")
    )
    assert report.reason is None
    assert report.dtype == "float32"
    assert {d.model_class for d in report.declared} == {"LlamaForCausalLM", "Qwen2ForCausalLM"}
    assert all(d.sdpa for d in report.declared)
    assert [(r.family, r.attn_implementation) for r in report.results] == [
        ("llama", "sdpa"),
        ("qwen2", "sdpa"),
    ]
    for result in report.results:
        assert result.status == "passed", result.reason
        assert result.logits_max_diff is not None
        assert result.logits_atol is not None
        assert result.logits_max_diff <= result.logits_atol
        assert result.grad_passed is True


def test_gpu_implementations_are_skipped_with_a_reason_on_cpu() -> None:
    report = run_model_checks(
        device="cpu",
        families=("llama",),
        implementations=("eager", "flash_attention_2", "xformers"),
    )
    reasons = {r.attn_implementation: (r.status, r.reason) for r in report.results}
    assert reasons["flash_attention_2"] == ("skipped", "needs a CUDA device")
    assert reasons["xformers"] == ("skipped", "needs a CUDA device")
    assert XFORMERS_MISSING == "xformers attention function not available in this build"


def _wrong_attention(
    module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kw: Any
) -> Any:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    out, weights = sdpa_attention_forward(module, query, key, value, attention_mask, **kw)
    return out * 1.001, weights


@pytest.mark.slow
def test_a_wrong_attention_function_fails_the_model_check() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register("attn_doctor_test_wrong", _wrong_attention)
    report = run_model_checks(
        device="cpu",
        families=("llama",),
        implementations=("eager", "attn_doctor_test_wrong"),
    )
    (result,) = report.results
    assert result.status == "failed"
    assert "logits differ from eager" in (result.reason or "")


def test_model_option_uses_a_local_config_shrunk_to_two_layers(tmp_path: Any) -> None:
    config = transformers.Qwen2Config(
        vocab_size=96,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=6,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    config.save_pretrained(tmp_path)
    report = run_model_checks(
        device="cpu", model=str(tmp_path), implementations=("eager", "sdpa", "flash_attention_2")
    )
    assert report.reason is None
    (declared,) = report.declared
    assert declared.model_class == "Qwen2ForCausalLM"
    assert declared.flash_attn is True
    assert declared.layers == 2
    status = {r.attn_implementation: r.status for r in report.results}
    assert status == {"sdpa": "passed", "flash_attention_2": "skipped"}


def test_model_option_with_a_missing_path_says_why(tmp_path: Any) -> None:
    report = run_model_checks(device="cpu", model=str(tmp_path / "nothing-here"))
    assert report.results == ()
    assert report.reason is not None
    assert report.reason.startswith("could not build the model")


@pytest.mark.gpu
def test_every_implementation_that_imports_matches_eager_on_gpu() -> None:
    report = run_model_checks(device="cuda")
    assert report.dtype == "bfloat16"
    for result in report.results:
        assert result.status in ("passed", "skipped", "unsupported"), result


@pytest.mark.slow
# transformers' flex path calls create_block_mask(_compile=True) (deprecated in this torch) and
# torch.compile's tracing trips its own warnings; the verify child runs with warnings ignored.
@pytest.mark.functional
@pytest.mark.filterwarnings("ignore")
def test_flex_attention_model_runs_the_compiled_kernel_forward_only_on_cpu() -> None:
    report = run_model_checks(
        device="cpu", families=("llama",), implementations=("eager", "flex_attention")
    )
    (result,) = report.results
    assert result.status == "passed", result.reason
    assert result.grad_passed is None
    assert (result.reason or "").startswith("forward only; backward:")
    # The compiled kernel rounds differently from eager; exactly 0 would mean flex did not
    # really run (e.g. an uncompiled fallback).
    assert result.logits_max_diff is not None
    assert 0 < result.logits_max_diff <= 1e-5


def test_the_tiny_tokenizer_for_unsloth_loads_offline(tmp_path: Any) -> None:
    from attn_doctor.verify.unsloth_check import save_tiny_tokenizer

    save_tiny_tokenizer(str(tmp_path), 128)
    tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    assert len(tok) == 128
    assert tok("w5 w127 nope")["input_ids"] == [5, 127, 0]
    assert (tok.bos_token_id, tok.eos_token_id) == (1, 2)


def test_unsloth_is_skipped_with_a_reason_without_a_gpu() -> None:
    from attn_doctor.verify.unsloth_check import run_unsloth_check

    report = run_unsloth_check(device="cpu")
    assert report.status == "skipped"
    assert report.reason == "unsloth needs a CUDA device"
