"""The classes and evidence added for batch N's gaps, from facts alone: each rule is fed a
``TextFacts`` built by hand, with a near miss that it must not answer; the readers are tested
on short texts in other words than the batch's."""

from __future__ import annotations

from attn_doctor.explain.evidence import TextFacts, extract_facts
from attn_doctor.explain.evidence_calls import CallFacts
from attn_doctor.explain.evidence_upstream import read_upstream
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_calls import caller_written_for_other_api
from attn_doctor.explain.rules_messages import harmless_warning
from attn_doctor.explain.rules_upstream import wheel_built_for_other_torch

KNOW = load_knowledge()


def test_an_undefined_backend_function_is_the_backend_not_importing() -> None:
    f = TextFacts(calls=CallFacts(undefined_names=("flash_attn_func",)))
    (a,) = caller_written_for_other_api(f, KNOW)
    assert a.class_id == "backend-not-installed"
    assert a.fix[0].startswith('python -c "import flash_attn"')
    old = TextFacts(calls=CallFacts(undefined_names=("flash_attn_unpadded_kvpacked_func",)))
    (b,) = caller_written_for_other_api(old, KNOW)
    assert "flash_attn_varlen_kvpacked_func" in b.cause  # or a 2.x that renamed it
    # near miss: an undefined name that is no backend function
    assert (
        caller_written_for_other_api(TextFacts(calls=CallFacts(undefined_names=("x",))), KNOW) == []
    )


def test_a_wheel_built_for_another_torch_than_the_message_shows() -> None:
    f = extract_facts(
        "pytorch version: 2.8.0+cu129\n"
        "I installed sageattention-2.2.0+cu128torch2.9.0.post3-cp39-abi3-win_amd64.whl\n"
        "ImportError: DLL load failed while importing _fused"
    )
    assert f.wheel_torch == (("sageattention", "2.9"),)
    (a,) = wheel_built_for_other_torch(f, KNOW)
    assert a.class_id == "extension-built-for-other-torch"
    assert "torch 2.8" in a.fix[0]
    # near misses: the wheel fits the torch; no failure in the text
    same = extract_facts(
        "torch 2.9.1+cu128\nflash_attn-2.8.3+cu12torch2.9cxx11abiTRUE-cp312-linux_x86_64.whl\n"
        "ImportError: undefined symbol"
    )
    assert wheel_built_for_other_torch(same, KNOW) == []
    quiet = extract_facts("torch 2.8.0\ninstalled sageattention-2.2.0+cu128torch2.9.0 fine")
    assert wheel_built_for_other_torch(quiet, KNOW) == []


def test_a_kernel_for_one_head_dim_only() -> None:
    f = extract_facts("RuntimeError: current repo only supports head dimension 128, we will")
    assert f.head_dim_rule is not None
    assert f.head_dim_rule.startswith("only 128")


def test_the_sdpa_attention_weights_fallback_in_other_models_words_is_harmless() -> None:
    line = (
        "AlbertSdpaAttention is used but `torch.nn.functional.scaled_dot_product_attention` does "
        "not support non-absolute `position_embedding_type` or `output_attentions=True` or "
        "`head_mask`. Falling back to the eager attention implementation, but specifying"
    )
    assert [a.class_id for a in harmless_warning(TextFacts(lines=(line,)), KNOW)] == [
        "harmless-warning"
    ]


def test_a_sageattention_kernel_module_missing_is_a_build_that_does_not_fit() -> None:
    up = read_upstream("Error running sageattn: SM90 kernel is not available.")
    assert up.built_for == (("sageattention", "", ""),)
    assert read_upstream("RuntimeError: Unsupported CUDA architecture: sm75").built_for == ()
