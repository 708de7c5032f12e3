"""The classes and evidence added for batch O's gaps, from facts alone: each rule is fed a
``TextFacts`` built by hand, with a near miss that it must not answer; the readers are tested
on short texts in other words than the batch's."""

from __future__ import annotations

from attn_doctor.explain.answer import backends_in_text, has_error
from attn_doctor.explain.evidence import TextFacts, extract_facts
from attn_doctor.explain.evidence_calls import CallFacts
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_api import backend_feature_unsupported
from attn_doctor.explain.rules_calls import caller_written_for_other_api
from attn_doctor.explain.rules_messages import harmless_warning

KNOW = load_knowledge()


def test_gpu_names_without_their_space_or_after_cjk_text() -> None:
    names = KNOW.gpu_names()
    assert extract_facts("I have a GTX1070 here", names).sms == (61,)
    assert extract_facts("在8卡V100上报错", names).sms == (70,)
    # near miss: a number inside a longer word is no GPU
    assert extract_facts("model XV1000 config", names).sms == ()


def test_compile_failures_and_refusals_in_other_words_are_errors() -> None:
    for text in (
        "RuntimeError: PassManager::run failed",
        "`ptxas` failed with error code 4294967295",
        "在8卡V100上不支持 flash attention",
    ):
        assert has_error(TextFacts(lines=(text,))), text
    assert not has_error(TextFacts(lines=("ptxas ran fine",)))


def test_flash_attention_in_words_names_fa2_but_sdpas_backend_enum_does_not() -> None:
    assert backends_in_text("不支持 flash attention") == ["flash_attn_2"]
    assert backends_in_text("forcing SDPBackend.FLASH_ATTENTION only") == []


def test_features_refused_in_other_words() -> None:
    f = extract_facts(
        "NotImplementedError: FlashInfer backend currently does not support attention sinks\n"
        "NotImplementedError: Memory efficient attention with `xformers` is currently not "
        "supported when `self.added_kv_proj_dim` is defined.\n"
        "Reasons: {FLASH_ATTN: [sink setting not supported], TRITON_ATTN: []}"
    )
    assert ("attention sinks", "FlashInfer") in f.features_refused
    assert ("self.added_kv_proj_dim` is defined", "xformers") in f.features_refused
    assert ("sink setting", "FLASH_ATTN") in f.features_refused


def test_an_unlisted_attention_feature_is_answered_from_the_message_alone() -> None:
    f = TextFacts(features_refused=(("attention sinks", "FlashInfer"),))
    (a,) = backend_feature_unsupported(f, KNOW)
    assert a.class_id == "backend-feature-unsupported"
    assert "flashinfer" in a.title
    assert (
        backend_feature_unsupported(
            TextFacts(features_refused=(("beam search", "FlashInfer"),)), KNOW
        )
        == []
    )


def test_an_undefined_function_of_an_installed_backend_is_its_callers_version_gate() -> None:
    f = TextFacts(
        calls=CallFacts(undefined_names=("flash_attn_func",)), packages=(("flash-attn", "2.0.4"),)
    )
    (a,) = caller_written_for_other_api(f, KNOW)
    assert a.class_id == "flash-attn-too-old-for-caller"
    assert "2.0.4" in a.cause
    missing = TextFacts(calls=CallFacts(undefined_names=("flash_attn_func",)))
    assert [x.class_id for x in caller_written_for_other_api(missing, KNOW)] == [
        "backend-not-installed"
    ]


def test_qwens_optional_kernel_warning_without_its_install_hint() -> None:
    f = TextFacts(lines=("最开始inference的时候会出现warning：import flash_attn rotary fail",))
    assert [a.class_id for a in harmless_warning(f, KNOW)] == ["harmless-warning"]
