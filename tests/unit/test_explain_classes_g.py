"""The classes and evidence added for batch G's gaps, from facts alone: each rule is fed a
``TextFacts`` built by hand (no message text for a phrase to match), with a near miss that it
must not answer; the extractor is tested separately on short texts."""

from __future__ import annotations

from attn_doctor.explain.evidence import TextFacts, extract_facts
from attn_doctor.explain.evidence_build import BuildFacts, read_build
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_backend import (
    backend_forced_package_missing,
    gpu_outside_backend_range,
    head_dim_unsupported,
)
from attn_doctor.explain.rules_build import (
    arch_list_below_backend_minimum,
    cutlass_submodule_missing,
    remote_code_imports_removed_transformers_helper,
    triton_embedded_python_missing_headers,
    triton_kernel_out_of_shared_memory,
)
from attn_doctor.explain.rules_messages import harmless_warning
from attn_doctor.explain.rules_toolchain import compiler_too_old_for_arch

KNOW = load_knowledge()


def _facts(text: str) -> TextFacts:
    return extract_facts(text, KNOW.gpu_names())


# --- Triton kernel out of shared memory ----------------------------------------------------


def test_a_triton_kernel_over_the_shared_memory_limit_gets_the_limit_in_its_fix() -> None:
    f = TextFacts(build=BuildFacts(shared_memory=(131072, 101376)))
    (a,) = triton_kernel_out_of_shared_memory(f, KNOW)
    assert a.class_id == "triton-attention-kernel-out-of-shared-memory"
    assert "131072" in a.cause
    assert "1.29×" in a.cause
    assert "at most 101376 bytes" in a.fix[0]
    # the bare message is any Triton kernel's: it answers first, with FlexAttention's fix too
    assert a.before_phrases is True
    assert "kernel_options" in a.fix[-1]


def test_flex_attentions_kernel_or_no_shared_memory_fact_is_not_this_class() -> None:
    assert triton_kernel_out_of_shared_memory(TextFacts(), KNOW) == []
    flex = TextFacts(
        build=BuildFacts(shared_memory=(131072, 101376)),
        lines=("torch._inductor.exc.InductorError: flex_attention",),
    )
    assert triton_kernel_out_of_shared_memory(flex, KNOW) == []


# --- embedded Python without headers --------------------------------------------------------


def test_tccs_missing_python_h_is_the_embedded_python_without_include_and_libs() -> None:
    f = TextFacts(python="3.10", build=BuildFacts(missing_headers=(("Python.h", "tcc"),)))
    (a,) = triton_embedded_python_missing_headers(f, KNOW)
    assert a.class_id == "triton-embedded-python-missing-include-libs"
    assert "CPython 3.10" in a.fix[0]


def test_gccs_missing_python_h_without_triton_on_windows_is_not_this_class() -> None:
    gcc = TextFacts(build=BuildFacts(missing_headers=(("Python.h", "gcc"),)), platforms=("linux",))
    assert triton_embedded_python_missing_headers(gcc, KNOW) == []
    other = TextFacts(build=BuildFacts(missing_headers=(("stdio.h", "tcc"),)))
    assert triton_embedded_python_missing_headers(other, KNOW) == []


# --- cutlass submodule ------------------------------------------------------------------------


def test_a_missing_cute_header_is_the_checkout_without_the_cutlass_submodule() -> None:
    f = TextFacts(build=BuildFacts(missing_headers=(("cute/tensor.hpp", "msvc"),)))
    (a,) = cutlass_submodule_missing(f, KNOW)
    assert a.class_id == "flash-attn-source-missing-cutlass-submodule"
    assert a.fix[0].startswith("git submodule update --init --recursive")


def test_a_missing_cuda_or_python_header_is_not_the_cutlass_submodule() -> None:
    for header in ("cuda_runtime.h", "Python.h", "torch/extension.h"):
        f = TextFacts(build=BuildFacts(missing_headers=((header, "msvc"),)))
        assert cutlass_submodule_missing(f, KNOW) == []


# --- TORCH_CUDA_ARCH_LIST below a backend's floor ---------------------------------------------


def test_a_build_script_refusing_the_arch_list_sets_a_list_from_the_floor() -> None:
    f = TextFacts(required_sm=(75, None), build=BuildFacts(build_script=True, arch_list=(52, 89)))
    (a,) = arch_list_below_backend_minimum(f, KNOW)
    assert a.class_id == "torch-cuda-arch-list-below-backend-minimum"
    assert "5.2" in a.cause
    assert a.fix[0].startswith('export TORCH_CUDA_ARCH_LIST="7.5 ')
    assert "5.2" not in a.fix[0]
    assert "7.0" not in a.fix[0]
    with_gpu = TextFacts(sms=(89,), required_sm=(75, None), build=BuildFacts(build_script=True))
    assert (
        arch_list_below_backend_minimum(with_gpu, KNOW)[0]
        .fix[0]
        .startswith('export TORCH_CUDA_ARCH_LIST="8.9"')
    )


def test_a_gpu_below_the_floor_or_a_runtime_refusal_is_not_the_arch_list() -> None:
    old_gpu = TextFacts(sms=(70,), required_sm=(75, None), build=BuildFacts(build_script=True))
    assert arch_list_below_backend_minimum(old_gpu, KNOW) == []
    runtime = TextFacts(required_sm=(75, None), build=BuildFacts(build_script=False))
    assert arch_list_below_backend_minimum(runtime, KNOW) == []
    ranged = TextFacts(required_sm=(80, 90), build=BuildFacts(build_script=True))
    assert arch_list_below_backend_minimum(ranged, KNOW) == []


# --- remote code importing a removed transformers helper -------------------------------------


def test_a_helper_missing_from_a_transformers_submodule_is_the_model_codes_import() -> None:
    f = TextFacts(
        missing_attrs=(("transformers.modeling_flash_attention_utils", "flash_attn_varlen_func"),),
        packages=(("transformers", "4.57.0"),),
    )
    (a,) = remote_code_imports_removed_transformers_helper(f, KNOW)
    assert a.class_id == "remote-code-imports-removed-transformers-helper"
    assert "4.57.0" in a.cause


def test_a_model_class_from_top_level_transformers_or_another_package_is_not_this_class() -> None:
    for mod, name in (
        ("transformers", "Qwen2VLForConditionalGeneration"),
        ("huggingface_hub", "cached_download"),
        ("transformers.models.llama", "LlamaModel"),
    ):
        f = TextFacts(missing_attrs=((mod, name),))
        assert remote_code_imports_removed_transformers_helper(f, KNOW) == []


# --- existing classes, reached by the widened evidence ---------------------------------------


def test_an_allowed_head_dim_set_or_a_refused_configuration_is_head_dim_unsupported() -> None:
    (a,) = head_dim_unsupported(
        TextFacts(head_dim_rule="only 128, 256", error_classes=("RuntimeError",)), KNOW
    )
    assert a.class_id == "head-dim-unsupported"
    assert head_dim_unsupported(TextFacts(head_dims=(32,)), KNOW) == []  # no error: not it


def test_a_family_only_kernel_is_outside_the_range_for_another_gpu() -> None:
    f = TextFacts(required_sm=(100, 109), sms=(120,), error_classes=("AssertionError",))
    (a,) = gpu_outside_backend_range(f, KNOW)
    assert a.class_id == "gpu-outside-backend-range"
    inside = TextFacts(required_sm=(100, 109), sms=(100,), error_classes=("AssertionError",))
    assert gpu_outside_backend_range(inside, KNOW) == []


def test_a_toolkit_below_the_floor_a_jit_states_is_the_compiler_too_old() -> None:
    f = TextFacts(
        sms=(120,),
        tools=(("nvcc", "12.8"),),
        tool_rejects_arch=(("nvcc", 120),),
        build=BuildFacts(tool_floor=(120, "12.9")),
    )
    (a,) = compiler_too_old_for_arch(f, KNOW)
    assert a.class_id == "compiler-too-old-for-arch"
    assert "12.9 (as the message says)" in a.cause
    assert "release 12.9 or later" in a.fix[0]


def test_a_forced_backend_whose_none_is_called_is_the_forced_package_missing() -> None:
    lines = ("export VLLM_ATTENTION_BACKEND=FLASHINFER", "'NoneType' object is not callable")
    (a,) = backend_forced_package_missing(TextFacts(lines=lines), KNOW)
    assert a.class_id == "backend-forced-package-missing"
    assert a.fix[0] == "attn-doctor install flashinfer"
    # A None called with no setting forcing a backend is not this class.
    assert backend_forced_package_missing(TextFacts(lines=lines[1:]), KNOW) == []


def test_the_new_harmless_warnings_are_harmless_and_an_error_beside_them_is_not() -> None:
    for line in (
        "Cannot use FlashAttention-2 backend for head size 72.",
        "Warning: flash-attn is not installed. Will only run the manual PyTorch version.",
    ):
        (a,) = harmless_warning(TextFacts(lines=(line,)), KNOW)
        assert a.harmless
        failing = TextFacts(lines=(line,), error_classes=("RuntimeError",))
        assert harmless_warning(failing, KNOW) == []


# --- the extractor ------------------------------------------------------------------------------


def test_the_extractor_reads_the_build_facts() -> None:
    b = read_build(
        "triton.runtime.errors.OutOfResources: out of resource: shared memory, Required: 115712,"
        " Hardware limit: 101376\n"
        "x.h(9): fatal error C1083: Cannot open include file: 'cute/tensor.hpp': No such file\n"
        "error: include file 'Python.h' not found\n"
        "a.c:1:10: fatal error: Python.h: No such file or directory\n"
        'File "/x/setup.py", line 42, in <module>\n'
        "TORCH_CUDA_ARCH_LIST=5.2 6.0 8.9+PTX\n"
        "CUDA_VERSION: 12.8\n"
        "SM 12.x requires CUDA >= 12.9\n"
        "assert arch // 10 == 10\n"
        "Invalid configuration : NUM_MMA_Q=2 NUM_MMA_D_QK=8\n"
        "assert(head_size == 128 || head_size == 256);\n"
    )
    assert b.shared_memory == (115712, 101376)
    assert b.missing_headers == (
        ("cute/tensor.hpp", "msvc"),
        ("Python.h", "tcc"),
        ("Python.h", "gcc"),
    )
    assert b.build_script
    assert b.arch_list == (52, 60, 89)
    assert b.cuda_toolkit == "12.8"
    assert b.tool_floor == (120, "12.9")
    assert b.family_only == 10
    assert b.head_dims == (128,)
    assert b.config_refused
    assert b.head_allowed == (128, 256)


def test_the_extractor_merges_them_into_the_facts() -> None:
    f = _facts('FP8 is only supported on SM100 (compute capability 10.x) for FA4"')
    assert f.required_sm == (100, 109)
    assert 100 not in f.sms
    f = _facts("Failed: SM 12.x requires CUDA >= 12.9\nCUDA_VERSION: 12.8")
    assert f.tool("nvcc") == "12.8"
    assert ("nvcc", 120) in f.tool_rejects_arch
    ok = _facts("SM 12.x requires CUDA >= 12.9\nCUDA_VERSION: 13.0")
    assert ("nvcc", 120) not in ok.tool_rejects_arch
    f = _facts("Error: Invalid configuration : NUM_MMA_Q=2 NUM_MMA_D_QK=2 NUM_MMA_KV=4")
    assert f.head_dims == (32,)
    assert f.head_dim_rule
    assert "32" in f.head_dim_rule
    assert _facts("NUM_MMA_D_QK=2 is fine").head_dim_rule is None
    f = _facts('File "/x/setup.py", line 42\nRuntimeError: FlashInfer requires sm75+')
    assert f.required_sm == (75, None)
    assert f.build.build_script
    f = _facts("ImportError: cannot import name \u2018f_x\u2019 from \u2018transformers.m\u2019")
    assert ("transformers.m", "f_x") in f.missing_attrs


def test_a_head_dim_only_one_xformers_operator_gives_is_not_why_none_was_found() -> None:
    listing = (
        "No operator found for `memory_efficient_attention_forward` with inputs:",
        "`cutlassF-pt` is not supported because: bf16 is only supported on A100+ GPUs",
        "`smallkF` is not supported because: max(query.shape[-1] != value.shape[-1]) > 32",
    )
    f = TextFacts(lines=listing, head_dim_rule="at most 32", error_classes=("NotImplementedError",))
    assert head_dim_unsupported(f, KNOW) == []
    # Every operator refusing the head dim: then it is the head dim.
    all_head = TextFacts(
        lines=(listing[0], listing[2], "`cutlassF` is not supported because: embed per head: 512"),
        head_dim_rule="at most 32",
        error_classes=("NotImplementedError",),
    )
    assert head_dim_unsupported(all_head, KNOW)[0].class_id == "head-dim-unsupported"
