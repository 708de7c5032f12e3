"""The classes and evidence added for batch K's gaps, from facts alone: each rule is fed a
``TextFacts`` built by hand, with a near miss that it must not answer; the readers are tested
on short texts in other words than the batch's."""

from __future__ import annotations

from attn_doctor.explain.answer import has_error
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.evidence_build import BuildFacts, read_build
from attn_doctor.explain.evidence_calls import CallFacts, read_calls
from attn_doctor.explain.evidence_more import platforms
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_build import triton_embedded_python_missing_headers
from attn_doctor.explain.rules_calls import caller_written_for_other_api

KNOW = load_knowledge()


def test_call_facts_read_views_varlen_checks_and_undefined_names() -> None:
    c = read_calls(
        "RuntimeError: shape '[2, 512, 32, 128]' is invalid for input of size 1048576\n"
        "RuntimeError: cu_seqlens_k must have shape (batch_size + 1)\n"
        "NameError: name 'flash_attn_varlen_qkvpacked_func' is not defined"
    )
    assert c.view_mismatch == ((2, 512, 32, 128), 1048576)
    assert c.varlen_args == ("cu_seqlens_k",)
    assert c.undefined_names == ("flash_attn_varlen_qkvpacked_func",)
    assert read_calls("RuntimeError: q must have shape (batch, seqlen, heads, dim)") == CallFacts()


def test_a_view_with_a_power_of_two_too_few_elements_in_attention_code_is_gqa() -> None:
    lines = ('  File "train/llama_flash_attn_patch.py", line 40, in forward',)
    f = TextFacts(lines=lines, calls=CallFacts(view_mismatch=((2, 512, 32, 128), 1048576)))
    (a,) = caller_written_for_other_api(f, KNOW)
    assert a.class_id == "caller-written-for-other-api"
    assert "4×" in a.cause  # 2*512*32*128 = 4 * 1048576
    assert "32 query heads, 8 key/value heads" in a.cause
    # near misses: not a whole power of two, and a view outside attention code
    odd = TextFacts(lines=lines, calls=CallFacts(view_mismatch=((3, 5, 7), 35)))
    assert caller_written_for_other_api(odd, KNOW) == []
    elsewhere = TextFacts(
        lines=('  File "data/collate.py", line 9, in pad',),
        calls=CallFacts(view_mismatch=((2, 512, 32, 128), 1048576)),
    )
    assert caller_written_for_other_api(elsewhere, KNOW) == []


def test_attention_keywords_a_patched_forward_refuses_and_varlen_checks() -> None:
    kw = TextFacts(calls=CallFacts(bad_kwargs=(("forward", "position_embeddings"),)))
    assert [a.class_id for a in caller_written_for_other_api(kw, KNOW)] == [
        "caller-written-for-other-api"
    ]
    varlen = TextFacts(calls=CallFacts(varlen_args=("seqused_k",)))
    (b,) = caller_written_for_other_api(varlen, KNOW)
    assert "seqused_k" in b.title or "seqused_k" in b.cause
    # near miss: a forward() refusing a keyword unrelated to attention
    other = TextFacts(calls=CallFacts(bad_kwargs=(("forward", "pixel_values"),)))
    assert caller_written_for_other_api(other, KNOW) == []


def test_an_undefined_function_from_after_a_rename_is_the_backend_too_old() -> None:
    f = TextFacts(
        calls=CallFacts(undefined_names=("flash_attn_varlen_kvpacked_func",)),
        packages=(("flash-attn", "1.0.9"),),
    )
    (a,) = caller_written_for_other_api(f, KNOW)
    assert a.class_id == "flash-attn-too-old-for-caller"
    assert "flash_attn_unpadded_kvpacked_func" in a.cause
    assert "1.0.9" in a.cause
    assert "'flash-attn>=2.0.0'" in a.fix[0]
    # near miss: an undefined name that is no backend function
    other = TextFacts(calls=CallFacts(undefined_names=("apply_rotary",)))
    assert caller_written_for_other_api(other, KNOW) == []


def test_a_launcher_compile_cut_off_on_an_embedded_python() -> None:
    said = (
        "CalledProcessError: Command '['C:\\\\VS\\\\bin\\\\cl.EXE', "
        "'C:\\\\Temp\\\\tmpx\\\\cuda_utils.c', '/nologo']' returned non-zero exit status 2."
    )
    assert read_build(said).launcher_failed == "cl"
    assert (
        read_build("CalledProcessError: Command '['/usr/bin/gcc', 'x.c']'").launcher_failed is None
    )
    assert "comfyui-portable" in platforms("C:\\Apps\\FishSpeech\\python_embedded\\python.exe")
    f = TextFacts(build=BuildFacts(launcher_failed="cl"), platforms=("windows", "comfyui-portable"))
    (a,) = triton_embedded_python_missing_headers(f, KNOW)
    assert a.class_id == "triton-embedded-python-missing-include-libs"
    assert "cut" in a.title
    # near miss: the same failure on Linux with gcc is not the embedded-Python class
    linux = TextFacts(build=BuildFacts(launcher_failed="gcc"), platforms=("linux",))
    assert triton_embedded_python_missing_headers(linux, KNOW) == []


def test_a_refusal_without_is_is_an_error_but_a_fallback_is_not() -> None:
    assert has_error(TextFacts(lines=("[Bug] head_dim 96 not supported",)))
    assert not has_error(
        TextFacts(lines=("head_dim 96 not supported by this kernel, falling back to SDPA",))
    )


def test_sdp_kernel_deprecation_is_harmless_with_or_without_backticks() -> None:
    from attn_doctor.explain.rules_messages import harmless_warning

    for line in (
        "FutureWarning: torch.backends.cuda.sdp_kernel() is deprecated. In the future, this",
        "FutureWarning: `torch.backends.cuda.sdp_kernel()` is deprecated. In the future, this",
    ):
        f = TextFacts(lines=(line,), error_classes=("FutureWarning",))
        assert [a.class_id for a in harmless_warning(f, KNOW)] == ["harmless-warning"]
