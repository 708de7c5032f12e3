"""The classes and evidence widened or added for batch H's gaps, from facts alone: each rule is
fed a ``TextFacts`` built by hand (no message text for a phrase to match), with a near miss that
it must not answer; the extractor is tested separately on short texts in other words than the
batch's messages."""

from __future__ import annotations

from attn_doctor.explain.evidence import TextFacts, extract_facts
from attn_doctor.explain.evidence_build import BuildFacts, read_build
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_api import backend_feature_unsupported
from attn_doctor.explain.rules_backend import gpu_outside_backend_range, head_dim_unsupported
from attn_doctor.explain.rules_build import triton_embedded_python_missing_headers
from attn_doctor.explain.rules_messages import harmless_warning

KNOW = load_knowledge()


def _facts(text: str) -> TextFacts:
    return extract_facts(text, KNOW.gpu_names())


# --- head dims refused by value, by list, by multiple ------------------------------------------


def test_head_sizes_stated_as_refused_listed_or_a_multiple_are_read() -> None:
    b = read_build("ValueError: Head size 72 is not supported by PagedAttention.")
    assert b.head_refused == (72,)
    assert b.head_rule() == "its kernels were compiled for (72 is not one)"
    listed = read_build("head_dim (40) not supported. Supported head sizes are: [64, 128, 256]")
    assert listed.head_refused == (40,)
    assert listed.head_allowed == (64, 128, 256)
    assert listed.head_rule() == "only 64, 128, 256"
    mult = read_build("Assertion failed: dimension of each head must be a multiple of 16")
    assert mult.head_rule() == "that are a multiple of 16"


def test_a_supported_head_size_or_a_head_count_is_not_a_refusal() -> None:
    b = read_build("Using head size 128 with FlashAttention backend; 32 heads per rank")
    assert b.head_refused == ()
    assert b.head_rule() is None
    assert read_build("num_heads (40) is not supported with tensor parallel 3").head_refused == ()


def test_a_refused_head_size_answers_head_dim_unsupported_and_none_without_an_error() -> None:
    f = TextFacts(
        head_dims=(100,),
        head_dim_rule="only 64, 80, 96, 128",
        error_classes=("ValueError",),
    )
    (a,) = head_dim_unsupported(f, KNOW)
    assert a.class_id == "head-dim-unsupported"
    assert "100" in a.cause
    assert head_dim_unsupported(TextFacts(head_dims=(100,), head_dim_rule="only 64"), KNOW) == []


def test_prose_that_a_head_size_is_not_a_multiple_is_an_error() -> None:
    f = _facts('I met an error: "Size per head is not a multiple of 8" for this model')
    assert f.head_dim_rule == "that are a multiple of 8"
    assert head_dim_unsupported(f, KNOW)[0].class_id == "head-dim-unsupported"


# --- one architecture family named as a GPU generation -----------------------------------------


def test_a_backend_only_for_one_family_named_with_its_generation_refuses_another() -> None:
    f = _facts(
        "ValueError: FOO MLA backend is only supported on Blackwell GPUs (SM100). "
        "Please use a different backend.\nGPU: sm_120"
    )
    assert f.required_sm == (100, 109)
    (a,) = gpu_outside_backend_range(f, KNOW)
    assert a.class_id == "gpu-outside-backend-range"
    inside = _facts("ValueError: FOO backend is only supported on Hopper GPUs (SM90).\nsm_90")
    assert gpu_outside_backend_range(inside, KNOW) == []


# --- a feature refused while naming the backend in a setting -----------------------------------


def test_attention_weights_refused_by_sdpa_point_to_eager() -> None:
    f = _facts(
        "ValueError: The `output_attentions` argument is not supported when using the "
        "`attn_implementation` set to sdpa. Use eager."
    )
    assert f.features_refused
    (a,) = backend_feature_unsupported(f, KNOW)
    assert a.class_id == "backend-feature-unsupported"
    assert "eager" in a.cause


def test_a_feature_refused_by_no_known_backend_or_an_unknown_feature_is_not_answered() -> None:
    f = TextFacts(features_refused=(("output_attentions", "the exporter"),))
    assert backend_feature_unsupported(f, KNOW) == []
    g = TextFacts(features_refused=(("beam search", "the `attn_implementation` set to sdpa"),))
    assert backend_feature_unsupported(g, KNOW) == []


# --- Triton's launcher without Python headers ------------------------------------------------


def test_a_portable_python_missing_python_h_is_the_embedded_python_without_headers() -> None:
    f = TextFacts(
        build=BuildFacts(missing_headers=(("Python.h", "unknown"),)),
        platforms=("comfyui-portable",),
    )
    (a,) = triton_embedded_python_missing_headers(f, KNOW)
    assert a.class_id == "triton-embedded-python-missing-include-libs"
    linux = TextFacts(build=BuildFacts(missing_headers=(("Python.h", "unknown"),)))
    assert triton_embedded_python_missing_headers(linux, KNOW) == []


def test_tcc_failing_silently_on_windows_is_the_missing_headers_unless_a_library_is_named() -> None:
    f = TextFacts(build=BuildFacts(tcc_failed=True), platforms=("windows",))
    (a,) = triton_embedded_python_missing_headers(f, KNOW)
    assert a.class_id == "triton-embedded-python-missing-include-libs"
    lib = TextFacts(
        build=BuildFacts(tcc_failed=True),
        platforms=("windows",),
        missing_libraries=("libcuda.so",),
    )
    assert triton_embedded_python_missing_headers(lib, KNOW) == []
    assert (
        triton_embedded_python_missing_headers(TextFacts(build=BuildFacts(tcc_failed=True)), KNOW)
        == []
    )


def test_the_extractor_reads_a_silent_tcc_failure_and_a_portable_python() -> None:
    b = read_build(
        "subprocess.CalledProcessError: Command '['C:\\\\py\\\\tcc\\\\tcc.exe', "
        "'C:\\\\Temp\\\\x\\\\main.c', '-O3', '-shared']' returned non-zero exit status 1."
    )
    assert b.tcc_failed
    assert not read_build("Command '['gcc', 'main.c']' returned non-zero exit status 1.").tcc_failed
    f = _facts("- **Embedded Python:** true\nCould not find Python.h")
    assert "comfyui-portable" in f.platforms
    assert ("Python.h", "unknown") in f.build.missing_headers


# --- harmless warnings in other words ------------------------------------------------------------


def test_optional_flash_attn_kernel_warnings_and_sdpa_fallbacks_are_harmless() -> None:
    for line in (
        "Warning: import flash_attn rotary fail, please install FlashAttention rotary to get "
        "better performance",
        "[MyNode] flash_attn unavailable, falling back to sdpa",
    ):
        (a,) = harmless_warning(TextFacts(lines=(line,)), KNOW)
        assert a.harmless
        failing = TextFacts(lines=(line,), error_classes=("RuntimeError",))
        assert harmless_warning(failing, KNOW) == []
    assert not harmless_warning(TextFacts(lines=("flash_attn ready, using flash",)), KNOW)
