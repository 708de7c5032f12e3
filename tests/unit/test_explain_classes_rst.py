"""Classes and facts added for batches R-T's misses, each from hand-built facts or one
extracted fact, with a near miss (no phrase of the batches is matched here)."""

from __future__ import annotations

from attn_doctor.explain.answer import has_error
from attn_doctor.explain.evidence import TextFacts, extract_facts
from attn_doctor.explain.evidence_build import read_build
from attn_doctor.explain.evidence_runtime import RuntimeFacts
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_backend import backend_forced_package_missing
from attn_doctor.explain.rules_messages import harmless_warning
from attn_doctor.explain.rules_runtime import diffusers_xformers_processor_for_joint_attention

KNOW = load_knowledge()


# --- a forced backend that is installed but too old is not "missing" ------------------------


def test_a_forced_backend_reported_with_its_detected_release_is_not_missing() -> None:
    toggled = (
        "FlashAttention2 has been toggled on, but it cannot be used due to the following error:"
    )
    old = TextFacts(
        lines=(
            f"ImportError: {toggled} you need flash_attn package version to be "
            "greater or equal than 2.1.0. Detected version 2.0.4. Please install",
        )
    )
    assert backend_forced_package_missing(old, KNOW) == []
    missing = TextFacts(
        lines=(
            f"ImportError: {toggled} the package flash_attn seems to be not "
            "installed. Please install",
        )
    )
    (a,) = backend_forced_package_missing(missing, KNOW)
    assert a.class_id == "backend-forced-package-missing"


# --- facts ---------------------------------------------------------------------------------


def test_triton_shared_memory_is_read_with_or_without_separators() -> None:
    for said in (
        "triton.code_gen.OutOfResources: out of resource: shared memoryRequired: 110592Hardware "
        "limit: 101376",
        "OutOfResources: out of resource: shared memory, Required: 110592, Hardware limit: 101376",
    ):
        assert read_build(said).shared_memory == (110592, 101376), said


def test_an_error_naming_a_backend_module_as_not_installed_is_a_missing_module() -> None:
    assert extract_facts("ImportError: flash_attn is not installed.").missing_modules == (
        "flash_attn",
    )
    assert extract_facts("raise ImportError('xformers is not installed')").missing_modules == (
        "xformers",
    )
    # an app's start-up listing (no error) and another package: not a missing backend module
    assert extract_facts("Xformers is not installed!").missing_modules == ()
    assert extract_facts("ImportError: wandb is not installed").missing_modules == ()


def test_an_unpack_mismatch_is_an_error() -> None:
    assert has_error(TextFacts(lines=("not enough values to unpack (expected 2, got 1)",)))
    assert not has_error(TextFacts(lines=("unpacking the wheel",)))


# --- harmless notices ----------------------------------------------------------------------


def _harmless(text: str) -> str | None:
    out = harmless_warning(TextFacts(lines=tuple(text.split("\n"))), KNOW)
    return out[0].evidence[0][1] if out else None


def test_optional_xformers_fallbacks_are_harmless_without_an_error() -> None:
    assert _harmless("'xFormers not available'") == "harmless-xformers-not-available-fallback"
    assert _harmless("UserWarning: xFormers is not available (Attention)") == (
        "harmless-xformers-not-available-fallback"
    )
    sgm = (
        "Attention mode 'softmax-xformers' is not available. Falling back to native attention. "
        "This is not a problem in Pytorch >= 2.0. FYI, you are running with PyTorch version "
    )
    assert _harmless(sgm + "2.0.1+cu117") == "harmless-sgm-xformers-mode-fallback"
    # below torch 2.0 the same code refuses vanilla attention: not harmless
    assert _harmless(sgm + "1.13.1+cu117") is None


def test_dropped_attention_kwargs_are_harmless_alone_and_a_misfit_processor_with_an_error() -> None:
    warn = (
        "cross_attention_kwargs ['image_rotary_emb'] are not expected by XFormersAttnProcessor "
        "and will be ignored."
    )
    assert _harmless(warn) == "harmless-diffusers-attention-kwargs-ignored"
    failed = TextFacts(
        lines=(warn, "not enough values to unpack (expected 2, got 1)"),
        runtime=RuntimeFacts(unpack_mismatch=True),
    )
    assert _harmless("\n".join(failed.lines)) is None
    (a,) = diffusers_xformers_processor_for_joint_attention(failed, KNOW)
    assert a.class_id == "diffusers-no-xformers-processor-for-joint-attention"
    # another dropped keyword does not name a joint-attention model
    other = TextFacts(
        lines=(warn.replace("image_rotary_emb", "scale"), "not enough values to unpack"),
        runtime=RuntimeFacts(unpack_mismatch=True),
    )
    assert diffusers_xformers_processor_for_joint_attention(other, KNOW) == []


# --- torch's SDPA controls by release ------------------------------------------------------


def test_sdp_kernel_and_its_mem_efficient_keyword_are_dated_from_the_wheels() -> None:
    from attn_doctor.explain.evidence_calls import CallFacts
    from attn_doctor.explain.rules_api import torch_too_old_for_api
    from attn_doctor.explain.rules_calls import caller_written_for_other_api

    missing = TextFacts(missing_attrs=(("torch.backends.cuda", "sdp_kernel"),))
    (a,) = torch_too_old_for_api(missing, KNOW)
    assert a.class_id == "torch-too-old-for-api"
    assert "1.13" in a.title
    kw = TextFacts(calls=CallFacts(bad_kwargs=(("sdp_kernel", "enable_mem_efficient"),)))
    (b,) = caller_written_for_other_api(kw, KNOW)
    assert b.class_id == "torch-too-old-for-api"
    assert "2.0.0" in b.title
    # torch 2.1 takes it: something else refused the keyword
    newer = TextFacts(
        calls=CallFacts(bad_kwargs=(("sdp_kernel", "enable_mem_efficient"),)),
        packages=(("torch", "2.1.0"),),
    )
    assert all(
        x.class_id != "torch-too-old-for-api" for x in caller_written_for_other_api(newer, KNOW)
    )


def test_a_name_defined_only_under_the_guarded_flash_import_means_flash_attn_did_not_import() -> (
    None
):
    from attn_doctor.explain.evidence_calls import CallFacts
    from attn_doctor.explain.rules_calls import caller_written_for_other_api

    f = TextFacts(calls=CallFacts(undefined_names=("_flash_supports_window_size",)))
    (a,) = caller_written_for_other_api(f, KNOW)
    assert a.class_id == "backend-not-installed"
    assert "flash-attn" in a.title
    # even with a version shown: the guard, not the release, left it undefined
    g = TextFacts(
        calls=CallFacts(undefined_names=("pad_input",)), packages=(("flash-attn", "2.5.8"),)
    )
    assert caller_written_for_other_api(g, KNOW)[0].class_id == "backend-not-installed"
    other = TextFacts(calls=CallFacts(undefined_names=("_some_other_helper",)))
    assert caller_written_for_other_api(other, KNOW) == []


# --- a framework refusing the backend in use and naming the one to use ---------------------


def test_a_refusal_that_names_the_backend_and_variable_is_answered_despite_the_error() -> None:
    from attn_doctor.explain.rules_api import framework_advises_other_backend

    text = (
        "ValueError: Please use Flashinfer backend for models with logits_soft_cap (i.e., "
        "Gemma-2). Otherwise, the output might be wrong. Set Flashinfer backend by export "
        "VLLM_ATTENTION_BACKEND=FLASHINFER."
    )
    (a,) = framework_advises_other_backend(extract_facts(text), KNOW)
    assert a.class_id == "framework-advises-other-backend"
    assert "logits_soft_cap (i.e., Gemma-2)" in a.title
    assert a.fix[0] == "set `VLLM_ATTENTION_BACKEND=FLASHINFER` in the environment"
    # advice words inside some other error are not the refusal
    assert (
        framework_advises_other_backend(
            extract_facts("RuntimeError: CUDA error\nplease use flashinfer if you can"), KNOW
        )
        == []
    )


# --- a dependent package's flash-attn range ------------------------------------------------


def test_transformer_engines_range_checks_are_read_with_their_post_releases() -> None:
    from attn_doctor.explain.rules_runtime import flash_attn_newer_than_dependent_supports

    asserted = extract_facts("AssertionError: FlashAttention maximum version 2.5.8 is supported.")
    assert asserted.runtime.fa_above_asserted
    (a,) = flash_attn_newer_than_dependent_supports(asserted, KNOW)
    assert "2.5.8" in a.cause
    assert "range check refuses it" in a.cause
    found = extract_facts(
        "ValueError: Supported flash-attn versions are >= 2.1.1, <= 2.7.4.post1. "
        "Found flash-attn 2.8.3."
    )
    assert found.runtime.fa_latest_supported == "2.7.4.post1"
    assert found.runtime.fa_found == "2.8.3"
    assert flash_attn_newer_than_dependent_supports(found, KNOW)[0].class_id == (
        "flash-attn-version-outside-supported-range"
    )
    inside = extract_facts(
        "Supported flash-attn versions are >= 2.1.1, <= 2.7.4.post1. Found flash-attn 2.6.3."
    )
    assert flash_attn_newer_than_dependent_supports(inside, KNOW) == []


# --- a serving framework's own kernel refusing the GPU -------------------------------------


def test_tensorrt_llms_fmha_runner_refusal_states_its_architectures_and_its_own_fix() -> None:
    from attn_doctor.explain.rules_backend import gpu_outside_backend_range

    said = (
        "[TensorRT-LLM][ERROR] Assertion failed: Unsupported architecture (/src/tensorrt_llm/cpp/"
        "tensorrt_llm/kernels/contextFusedMultiHeadAttention/fmhaRunner.cpp:87)"
    )
    f = extract_facts(said, KNOW.gpu_names())
    assert f.required_exact == (80, 86, 89, 90, 100, 120)
    (a,) = gpu_outside_backend_range(f, KNOW)
    assert a.title.startswith("tensorrt-llm's attention kernel")
    assert a.fix[0].startswith("in tensorrt-llm, choose")
    # on a T4 the GPU is named and below the list
    t4 = extract_facts(said + "\nGPU: Tesla T4", KNOW.gpu_names())
    (b,) = gpu_outside_backend_range(t4, KNOW)
    assert "sm_75" in b.title
    # the bare words without the runner's path are not this wording
    bare = extract_facts("Assertion failed: Unsupported architecture", KNOW.gpu_names())
    assert bare.required_exact == ()


# --- Windows: a backend's private compiled module that does not load -----------------------


def test_a_backends_private_module_failing_to_load_on_windows_is_a_build_for_another_torch() -> (
    None
):
    from attn_doctor.explain.rules_runtime import windows_extension_entry_point_missing

    proc = extract_facts(
        "ValueError: Can't import SageAttention: DLL load failed while importing _qattn: The "
        "specified procedure could not be found."
    )
    assert proc.runtime.entry_point_missing == ("", "_qattn", False)
    (a,) = windows_extension_entry_point_missing(proc, KNOW)
    assert a.class_id == "extension-built-for-other-torch"
    assert a.title == "sageattention built for another torch"
    dll = extract_facts(
        "Can't import SageAttention: DLL load failed while importing _fused: The specified "
        "module could not be found."
    )
    assert dll.runtime.entry_point_missing == ("", "_fused", False)
    assert dll.runtime.dll_not_found
    assert not proc.runtime.dll_not_found
    (b,) = windows_extension_entry_point_missing(dll, KNOW)
    assert "cannot load a DLL" in b.cause
    # no attention backend named and no torch shown: not answered (could be any extension)
    other = extract_facts(
        "ImportError: DLL load failed while importing _C: The specified module could not be found."
    )
    assert windows_extension_entry_point_missing(other, KNOW) == []
