"""The classes and evidence added for batch L's gaps, from facts alone: each rule is fed a
``TextFacts`` built by hand, with a near miss that it must not answer; the readers are tested
on short texts in other words than the batch's."""

from __future__ import annotations

from attn_doctor.explain.answer import has_error
from attn_doctor.explain.evidence import TextFacts, extract_facts
from attn_doctor.explain.evidence_build import BuildFacts
from attn_doctor.explain.evidence_calls import CallFacts, read_calls
from attn_doctor.explain.evidence_runtime import RuntimeFacts, read_runtime
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_calls import caller_written_for_other_api
from attn_doctor.explain.rules_messages import fallback_notice
from attn_doctor.explain.rules_runtime import cudnn_too_old_for_attention
from attn_doctor.explain.rules_toolchain import hub_kernel_no_variant

KNOW = load_knowledge()


def test_a_keyword_a_backend_took_later_is_the_backend_too_old() -> None:
    f = TextFacts(calls=CallFacts(bad_kwargs=(("flash_attn_varlen_func", "softcap"),)))
    (a,) = caller_written_for_other_api(f, KNOW)
    assert a.class_id == "flash-attn-too-old-for-caller"
    assert "'flash-attn>=2.6.0'" in a.fix[0]
    # near misses: a keyword the table does not date, and a dated keyword on another function
    other_kw = TextFacts(calls=CallFacts(bad_kwargs=(("flash_attn_func", "sink_tokens"),)))
    assert [x.class_id for x in caller_written_for_other_api(other_kw, KNOW)] == [
        "caller-written-for-other-api"
    ]
    other_fn = TextFacts(calls=CallFacts(bad_kwargs=(("my_kernel", "window_size"),)))
    assert [x.class_id for x in caller_written_for_other_api(other_fn, KNOW)] == [
        "caller-written-for-other-api"  # an attention keyword, but no dated backend function
    ]


def test_hub_variants_are_read_only_with_the_missing_build_wording() -> None:
    rt = read_runtime(
        "FileNotFoundError: Kernel at path `x` does not have one of build variants: "
        "torch28-cxx11-xpu20250-x86_64-linux, torch-universal"
    )
    assert rt.hub_variants == (("2.8", "xpu20250", "x86_64", "linux"), ("", "universal", "", ""))
    assert read_runtime("built torch28-cxx11-cu128-x86_64-linux fine").hub_variants == ()


def test_a_hub_kernel_without_a_build_for_another_accelerator_points_to_sdpa() -> None:
    line = "FileNotFoundError: Kernel at path `models--org--attn` does not have build: x"
    npu = TextFacts(
        lines=(line,), runtime=RuntimeFacts(hub_variants=(("2.7", "cann81", "aarch64", "linux"),))
    )
    (a,) = hub_kernel_no_variant(npu, KNOW)
    assert a.class_id == "hub-kernel-no-variant"
    assert "Ascend NPU" in a.cause
    assert "sdpa" in a.fix[1]
    cuda = TextFacts(
        lines=(line,), runtime=RuntimeFacts(hub_variants=(("2.9", "cu130", "x86_64", "linux"),))
    )
    (b,) = hub_kernel_no_variant(cuda, KNOW)
    assert "attn-doctor install flash_attn_2" in b.fix[1]
    assert hub_kernel_no_variant(TextFacts(lines=("a kernel built fine",)), KNOW) == []


def test_head_counts_that_do_not_broadcast_in_attention_code_are_gqa() -> None:
    c = read_calls(
        "RuntimeError: The size of tensor a (28) must match the size of tensor b (4) at "
        "non-singleton dimension 1"
    )
    assert c.size_mismatch == (28, 4, 1)
    lines = ("attention fallback failed",)
    gqa = TextFacts(lines=lines, calls=CallFacts(size_mismatch=(32, 8, 1)))
    (a,) = caller_written_for_other_api(gqa, KNOW)
    assert "32 query heads, 8 key/value heads" in a.cause
    # near misses: the batch dimension, a ratio that is no power of two, no attention in sight
    for mismatch, where in (((32, 8, 0), lines), ((24, 9, 1), lines), ((32, 8, 1), ("x",))):
        f = TextFacts(lines=where, calls=CallFacts(size_mismatch=mismatch))
        assert caller_written_for_other_api(f, KNOW) == []


def test_a_notice_without_an_error_is_harmless() -> None:
    f = extract_facts(
        "INFO 05-03 20:21:10 [sampler.py:44] FlashInfer sampling is disabled because it is not "
        "compatible. Falling back to the PyTorch-native implementation."
    )
    assert f.notices
    (a,) = fallback_notice(f, KNOW)
    assert a.harmless
    missing = extract_facts(
        "2024-01-01 - WARNING - app.patcher - sageattn not installed, using sdpa"
    )
    (b,) = fallback_notice(missing, KNOW)
    assert "install sageattention" in b.cause
    # near misses: the same notice beside an error, and a warning that reports no fallback
    failing = extract_facts(f.lines[0] + "\nRuntimeError: CUDA error: invalid argument")
    assert fallback_notice(failing, KNOW) == []
    assert extract_facts("WARNING: the model is large").notices == ()


def test_a_refused_head_dim_is_an_error_unless_the_line_falls_back() -> None:
    assert has_error(
        TextFacts(lines=("Invalid head_dim: 512",), build=BuildFacts(head_refused=(512,)))
    )
    assert not has_error(
        TextFacts(
            lines=("[WARNING] Fall back to unfused MHA because of unsupported head size 128",),
            build=BuildFacts(head_refused=(128,)),
        )
    )


def test_a_stated_cudnn_floor_is_cudnn_too_old_with_that_floor() -> None:
    rt = read_runtime("cuDNN Frontend error: For cuDNN version below 9.5.0, dBias not support")
    assert rt.cudnn_too_old
    assert rt.cudnn_floor == "9.5.0"
    (a,) = cudnn_too_old_for_attention(TextFacts(runtime=rt), KNOW)
    assert a.class_id == "torch-cudnn-too-old-for-cudnn-attention"
    assert ">=9.5.0" in a.fix[0]
    assert cudnn_too_old_for_attention(TextFacts(runtime=read_runtime("cuDNN 9.5.0")), KNOW) == []
