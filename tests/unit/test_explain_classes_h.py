"""The classes and evidence widened or added for batch H's gaps, from facts alone: each rule is
fed a ``TextFacts`` built by hand (no message text for a phrase to match), with a near miss that
it must not answer; the extractor is tested separately on short texts in other words than the
batch's messages."""

from __future__ import annotations

from attn_doctor.explain.evidence import TextFacts, extract_facts
from attn_doctor.explain.evidence_build import BuildFacts, read_build
from attn_doctor.explain.evidence_caller import CallerFacts, read_caller
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_api import backend_feature_unsupported
from attn_doctor.explain.rules_backend import gpu_outside_backend_range, head_dim_unsupported
from attn_doctor.explain.rules_build import triton_embedded_python_missing_headers
from attn_doctor.explain.rules_caller import (
    flex_attention_no_kernel_for_device,
    msvc_math_constants_undefined,
    package_too_old_for_caller,
    torch_nightly_attention_backward_regression,
    triton_needs_c_compiler,
    xformers_operators_not_built_for_rocm,
)
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


# --- what a caller says of the stack (rules_caller) --------------------------------------------


def test_the_caller_facts_read_other_wordings() -> None:
    c = read_caller(
        "RuntimeError: this node requires xformers>=0.0.28\n"
        "derivative for aten::_efficient_attention_backward_for_xpu is not implemented\n"
        "RuntimeError: Failed to find C compiler. Please specify via CC environment variable "
        "or set triton.knobs.build.impl.\n"
        'kernels/x.cu(12): error: identifier "M_PI" is undefined'
    )
    assert c.too_old == (("xformers", "0.0.28"),)
    assert c.no_derivative == ("_efficient_attention_backward_for_xpu",)
    assert c.no_c_compiler
    assert c.undefined_identifiers == ("M_PI",)
    assert read_caller("SageAttention is not new enough, please update").too_old[0][0] == (
        "sageattention"
    )
    assert read_caller("flash_attn 2.5.8 requires triton 3.0 but you have").too_old == ()
    assert read_caller("this needs flash-attn >= 2.6.3").too_old == (("flash-attn", "2.6.3"),)
    assert read_caller("flash-attn is new enough").too_old == ()


def test_a_backend_called_too_old_by_its_caller_gets_an_upgrade() -> None:
    sage = TextFacts(caller=CallerFacts(too_old=(("sageattention", ""),)))
    (a,) = package_too_old_for_caller(sage, KNOW)
    assert a.class_id == "sageattention-too-old-for-caller"
    assert "2.x" in a.fix[1]
    xf = TextFacts(
        caller=CallerFacts(too_old=(("xformers", "0.0.28"),)), packages=(("xformers", "0.0.23"),)
    )
    (b,) = package_too_old_for_caller(xf, KNOW)
    assert b.fix == ("pip install --upgrade 'xformers>=0.0.28'",)
    assert "0.0.23" in b.cause
    assert package_too_old_for_caller(TextFacts(), KNOW) == []


def test_a_nightly_without_an_attention_backward_is_a_nightly_regression_not_on_stable() -> None:
    f = TextFacts(
        nightly=True,
        packages=(("torch", "2.5.0.dev20240828"),),
        caller=CallerFacts(no_derivative=("_scaled_dot_product_attention_math_for_mps",)),
    )
    (a,) = torch_nightly_attention_backward_regression(f, KNOW)
    assert a.class_id == "torch-nightly-mps-sdpa-backward-regression"
    assert "pip install 'torch<2.5'" in a.fix[1]
    stable = TextFacts(
        packages=(("torch", "2.4.1"),),
        caller=CallerFacts(no_derivative=("_scaled_dot_product_attention_math_for_mps",)),
    )
    assert torch_nightly_attention_backward_regression(stable, KNOW) == []
    other_op = TextFacts(nightly=True, caller=CallerFacts(no_derivative=("_fft_r2c",)))
    assert torch_nightly_attention_backward_regression(other_op, KNOW) == []


def test_no_c_compiler_is_msvc_on_windows_and_gcc_elsewhere_or_both_when_no_os() -> None:
    win = TextFacts(caller=CallerFacts(no_c_compiler=True), platforms=("windows",))
    (a,) = triton_needs_c_compiler(win, KNOW)
    assert a.class_id == "triton-windows-needs-msvc-compiler"
    assert "Build Tools" in a.fix[0]
    linux = TextFacts(caller=CallerFacts(no_c_compiler=True), platforms=("linux",))
    (b,) = triton_needs_c_compiler(linux, KNOW)
    assert b.class_id == "triton-needs-c-compiler"
    assert len(b.fix) == 2
    unknown = TextFacts(caller=CallerFacts(no_c_compiler=True))
    (c,) = triton_needs_c_compiler(unknown, KNOW)
    assert c.class_id == "triton-needs-c-compiler"
    assert "Build Tools" in c.fix[-1]  # no OS named: the fix for each
    assert triton_needs_c_compiler(TextFacts(platforms=("windows",)), KNOW) == []


def test_posix_math_constants_undefined_on_windows_need_use_math_defines() -> None:
    f = TextFacts(caller=CallerFacts(undefined_identifiers=("M_LOG2E",)), platforms=("windows",))
    (a,) = msvc_math_constants_undefined(f, KNOW)
    assert a.class_id == "msvc-needs-math-defines"
    assert "-D_USE_MATH_DEFINES" in a.fix[-1]
    candle = TextFacts(
        caller=CallerFacts(undefined_identifiers=("M_LOG2E",)),
        platforms=("windows",),
        lines=("candle-flash-attn/kernels/softmax.h(75): error",),
    )
    assert msvc_math_constants_undefined(candle, KNOW)[0].class_id == (
        "candle-flash-attn-msvc-needs-math-defines"
    )
    linux = TextFacts(caller=CallerFacts(undefined_identifiers=("M_LOG2E",)), platforms=("linux",))
    assert msvc_math_constants_undefined(linux, KNOW) == []
    other = TextFacts(caller=CallerFacts(undefined_identifiers=("half2",)), platforms=("windows",))
    assert msvc_math_constants_undefined(other, KNOW) == []


# --- phrase entries widened to their wording families -----------------------------------------


def test_the_widened_phrases_match_other_wordings_and_not_near_misses() -> None:
    from attn_doctor.explain.kb import load_symptoms
    from attn_doctor.explain.match import match_symptoms

    kb = load_symptoms()

    def ids(text: str) -> list[str]:
        return [m.symptom_id for m in match_symptoms(text, kb)]

    assert "bf16-needs-ampere" in ids("RuntimeError: Your GPU does not support bf16 (Turing)")
    assert "bf16-needs-ampere" in ids("ValueError: bfloat16 is not supported on this device")
    assert "bf16-needs-ampere" not in ids("This GPU does support bfloat16")
    assert "triton-missing" in ids("ModuleNotFoundError: no module named 'Triton'")
    assert "flash-attn-build-oom" in ids(
        "pip install flash-attn --no-build-isolation\nninja uses a lot of RAM and the box dies"
    )
    assert "flash-attn-build-oom" not in ids("the model uses a lot of RAM at inference")


# --- Inductor with no FlexAttention kernel for the device ------------------------------------


def test_inductor_without_a_flex_attention_choice_on_cpu_needs_cuda_or_a_newer_torch() -> None:
    f = TextFacts(build=BuildFacts(no_kernel_for=("flex_attention", "cpu")))
    (a,) = flex_attention_no_kernel_for_device(f, KNOW)
    assert a.class_id == "backend-needs-other-device"
    assert "torch>=2.6" in a.fix[1]
    newer = TextFacts(
        build=BuildFacts(no_kernel_for=("flex_attention", "cpu")), packages=(("torch", "2.7.1"),)
    )
    assert flex_attention_no_kernel_for_device(newer, KNOW) == []
    gpu = TextFacts(build=BuildFacts(no_kernel_for=("flex_attention", "cuda")))
    assert flex_attention_no_kernel_for_device(gpu, KNOW) == []


def test_the_extractor_reads_the_op_and_device_inductor_had_no_choice_for() -> None:
    b = read_build(
        "LoweringException: NoValidChoicesError: No choices to select\n"
        "  target: flex_attention\n"
        "  args[0]: TensorBox(StorageBox(InputBuffer(name='q', layout=FixedLayout('cpu', "
        "torch.bfloat16, size=[1, 8, 128, 64]"
    )
    assert b.no_kernel_for == ("flex_attention", "cpu")
    assert read_build("  target: flex_attention\nFixedLayout('cpu', …)").no_kernel_for is None


# --- vLLM's FlashAttention version check; a run-time kill is not a build's OOM --------------


def test_a_failed_flash_attention_version_check_states_fa2s_floor() -> None:
    b = read_build("    assert is_fa_version_supported(self.fa_version)\nAssertionError")
    assert b.fa_check_failed
    assert b.family_range() == (80, None)
    f = _facts("    assert is_fa_version_supported(self.fa_version)\nAssertionError")
    assert gpu_outside_backend_range(f, KNOW)[0].class_id == "gpu-outside-backend-range"
    ok = _facts("is_fa_version_supported(2) -> True\nAssertionError: shapes differ")
    assert ok.required_sm is None


def test_a_build_oom_needs_a_compile_step_in_the_message() -> None:
    from attn_doctor.explain.classes import contradictions

    run = TextFacts(
        lines=("CRITICAL core_client.py] Got fatal signal from worker processes", "Killed")
    )
    assert contradictions(run, ("ram_per_job_low",))
    build = TextFacts(lines=("[4/94] Building CUDA object flash_fwd.cu.o", "Killed"))
    assert contradictions(build, ("ram_per_job_low",)) == []


def test_xformers_without_an_operator_on_rocm_torch_is_a_build_without_rocm_kernels() -> None:
    line = (
        "!!! Exception during processing !!! No operator found for `memory_efficient_attention_fw`",
    )
    f = TextFacts(
        torch_build="rocm",
        packages=(("torch", "2.10.0+rocm7.1"), ("xformers", "0.0.30")),
        lines=line,
    )
    (a,) = xformers_operators_not_built_for_rocm(f, KNOW)
    assert a.class_id == "xformers-operator-not-built"
    assert "0.0.30" in a.cause
    cuda = TextFacts(torch_build="cuda", packages=(("xformers", "0.0.30"),), lines=line)
    assert xformers_operators_not_built_for_rocm(cuda, KNOW) == []
    rocm_build = TextFacts(
        torch_build="rocm", packages=(("xformers", "0.0.30+rocm6.4"),), lines=line
    )
    assert xformers_operators_not_built_for_rocm(rocm_build, KNOW) == []
