"""Failure classes from facts alone: each rule is fed a ``TextFacts`` built by hand (no
message text for a phrase to match), and its cause and fix are computed from the knowledge."""

from __future__ import annotations

import pytest

from attn_doctor.explain.classes import classify, contradictions
from attn_doctor.explain.demangle import demangle, symbol_owner
from attn_doctor.explain.evidence import Symbol, TextFacts, extract_facts, unwrap
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_backend import (
    backend_dependency_missing,
    backend_forced_package_missing,
    backend_not_installed,
    extension_symbol_mismatch,
    gpu_outside_backend_range,
    head_dim_unsupported,
)
from attn_doctor.explain.rules_device import backend_on_other_device
from attn_doctor.explain.rules_dtype import dtype_unsupported
from attn_doctor.explain.rules_messages import app_wrapper, framework_message, harmless_warning
from attn_doctor.explain.rules_toolchain import (
    compiler_too_old_for_arch,
    hub_kernel_no_variant,
    libcuda_not_found,
    torch_too_old_for_gpu,
)

KNOW = load_knowledge()


def _ids(answers: list) -> list[str]:  # type: ignore[type-arg]
    return [a.class_id for a in answers]


# --- each class, from facts --------------------------------------------------------------


def test_triton_refusing_an_arch_gets_the_first_release_from_the_table() -> None:
    f = TextFacts(tools=(("triton", "3.2.0"),), tool_rejects_arch=(("triton", 120),), sms=(120,))
    (a,) = compiler_too_old_for_arch(f, KNOW)
    arch = KNOW.arch(120)
    assert arch is not None
    first = arch.first_release("triton")
    assert first is not None
    assert "Triton 3.2.0 does not know sm_120" in a.cause
    assert first in a.cause
    assert any(f"triton>={first}" in c for c in a.fix)
    assert any(f"torch>={arch.first_release('torch')}" in c for c in a.fix)


def test_an_old_nvcc_gets_the_toolkit_release_and_a_machine_check() -> None:
    f = TextFacts(tools=(("nvcc", "12.4"),), tool_rejects_arch=(("nvcc", 120),))
    (a,) = compiler_too_old_for_arch(f, KNOW)
    assert "12.8" in a.cause
    assert a.checks == ("nvcc_too_old_for_arch:120",)


def test_a_new_enough_triton_without_a_refusal_is_not_this_class() -> None:
    f = TextFacts(tools=(("triton", "3.3.1"),), sms=(120,), lines=("ptxas error",))
    assert compiler_too_old_for_arch(f, KNOW) == []


def test_torch_older_than_the_gpu() -> None:
    f = TextFacts(
        packages=(("torch", "2.5.1+cu124"),),
        torch_build="cuda",
        torch_cuda="12.4",
        sms=(120,),
        lines=("CUDA error: no kernel image is available",),
    )
    (a,) = torch_too_old_for_gpu(f, KNOW)
    assert "2.7.0" in a.cause
    assert "cu128" in a.cause


def test_a_torch_new_enough_for_the_gpu_is_not_blamed() -> None:
    f = TextFacts(
        packages=(("torch", "2.8.0+cu128"),),
        torch_build="cuda",
        torch_cuda="12.8",
        sms=(120,),
        lines=("CUDA error: no kernel image is available",),
    )
    assert torch_too_old_for_gpu(f, KNOW) == []


def test_fa4_dependency_missing_names_the_requirement_from_the_data() -> None:
    f = TextFacts(missing_modules=("cutlass",), lines=("from flash_attn.cute import x",))
    (a,) = backend_dependency_missing(f, KNOW)
    assert a.class_id == "backend-dependency-missing"
    assert "nvidia-cutlass-dsl>=4.4.1" in a.fix[0]


def test_sage_missing_triton_on_windows_installs_triton_windows() -> None:
    f = TextFacts(
        missing_modules=("triton",),
        platforms=("windows",),
        lines=("from sageattention import sageattn",),
    )
    (a,) = backend_dependency_missing(f, KNOW)
    assert "triton-windows" in a.fix[0]


def test_a_framework_setting_forcing_a_missing_backend() -> None:
    f = TextFacts(
        missing_modules=("sageattention",),
        lines=("python main.py --use-sage-attention", "No module named sageattention"),
    )
    (a,) = backend_forced_package_missing(f, KNOW)
    assert a.class_id == "backend-forced-package-missing"
    assert a.fix[0] == "attn-doctor install sageattention"
    assert "ComfyUI" in a.title


@pytest.mark.parametrize(
    ("platforms", "expect"),
    [(("wsl",), "/usr/lib/wsl/lib"), (("colab",), "Change runtime type"), ((), "nvidia-smi")],
)
def test_libcuda_not_found_fix_depends_on_the_platform(
    platforms: tuple[str, ...], expect: str
) -> None:
    f = TextFacts(missing_libraries=("libcuda.so",), platforms=platforms)
    (a,) = libcuda_not_found(f, KNOW)
    assert any(expect in c for c in a.fix)


def test_hub_kernel_without_a_variant_names_torch_from_the_facts() -> None:
    f = TextFacts(
        packages=(("torch", "2.9.0+cu128"),),
        torch_cuda="12.8",
        lines=("Cannot find a build variant for this system in kernels-community/x",),
    )
    (a,) = hub_kernel_no_variant(f, KNOW)
    assert "torch 2.9" in a.cause
    assert "kernels-community/x" in a.cause


def test_head_dim_above_the_record_limit() -> None:
    f = TextFacts(head_dims=(512,), error_classes=("RuntimeError",), lines=("flash_attn failed",))
    (a,) = head_dim_unsupported(f, KNOW)
    fa2 = KNOW.backend("flash_attn_2")
    assert fa2 is not None
    assert str(fa2.max_head_dim) in a.cause
    assert "512" in a.cause


def test_head_dim_rule_stated_by_the_message() -> None:
    f = TextFacts(head_dim_rule="not being a multiple of 32", error_classes=("RuntimeError",))
    (a,) = head_dim_unsupported(f, KNOW)
    assert "multiple of 32" in a.cause


def test_gpu_outside_the_record_range() -> None:
    f = TextFacts(
        sms=(75,),
        gpus=("Tesla T4",),
        error_classes=("RuntimeError",),
        lines=("flash_attn: FlashAttention is not supported on this GPU",),
    )
    (a,) = gpu_outside_backend_range(f, KNOW)
    assert "sm_80" in a.cause
    assert "sm_75" in a.cause
    assert a.checks == ("gpu_sm_below:80",)


def test_gpu_outside_a_range_the_message_states() -> None:
    f = TextFacts(sms=(70,), required_sm=(76, None), error_classes=("ValueError",))
    (a,) = gpu_outside_backend_range(f, KNOW)
    assert "sm_76" in a.cause
    assert "sm_70" in a.cause


def test_gpu_not_among_the_exact_architectures_allowed() -> None:
    f = TextFacts(
        sms=(86,), required_sm=(80, 90), required_exact=(80, 90), error_classes=("RuntimeError",)
    )
    (a,) = gpu_outside_backend_range(f, KNOW)
    assert "sm_80 or sm_90" in a.cause
    assert a.checks == ()


def test_cuda_only_backend_on_an_xpu_torch() -> None:
    f = TextFacts(
        torch_build="xpu", error_classes=("RuntimeError",), lines=("flash_attn_func failed",)
    )
    (a,) = backend_on_other_device(f, KNOW)
    assert "Intel XPU" in a.cause
    assert "sdpa" in a.fix[0]


def test_fp32_into_a_half_only_backend() -> None:
    f = TextFacts(dtypes=("fp32",), lines=("flash_attn: only supports fp16 and bf16 dtype",))
    (a,) = dtype_unsupported(f, KNOW)
    assert "fp16 and bf16" in a.cause


def test_undefined_torch_symbol_in_a_backend_binary() -> None:
    sym = Symbol(
        mangled="_ZN3c104cuda9SetDeviceEi",
        name="c10::cuda::SetDevice",
        owner="torch",
        binary="flash_attn_2_cuda",
    )
    f = TextFacts(symbols=(sym,), packages=(("torch", "2.3.1"),))
    (a,) = extension_symbol_mismatch(f, KNOW)
    assert "another torch release" in a.cause
    assert "flash-attn" in a.fix[0]
    assert a.checks == ("built_for_other_torch:flash-attn",)


def test_backend_module_missing() -> None:
    f = TextFacts(missing_modules=("xformers",), error_classes=("ModuleNotFoundError",))
    (a,) = backend_not_installed(f, KNOW)
    assert a.fix == ("attn-doctor install xformers",)


def test_framework_message_fix_is_filled_from_the_message() -> None:
    f = TextFacts(
        lines=(
            "ValueError: Selected backend AttentionBackendEnum.FLASHINFER is not "
            "valid for this configuration. Reason: ['head_size not supported']",
        )
    )
    (a,) = framework_message(f, KNOW)
    # the reason vLLM gives names the class; the framework's own fix is kept
    assert a.class_id == "head-dim-unsupported"
    assert "FLASHINFER" in a.cause
    assert "head_size not supported" in a.cause
    assert any("--attention-backend" in x for x in a.fix)
    other = TextFacts(lines=(f.lines[0].replace("head_size", "attention sinks"),))
    (b,) = framework_message(other, KNOW)
    assert b.class_id == "vllm-selected-backend-not-valid"


def test_harmless_warning_only_without_an_error() -> None:
    warn = "UserWarning: TypedStorage is deprecated"
    (a,) = harmless_warning(TextFacts(error_classes=("UserWarning",), lines=(warn,)), KNOW)
    assert a.harmless
    assert a.cause.startswith("harmless:")
    assert "nothing to fix" in a.cause
    with_error = TextFacts(error_classes=("UserWarning", "RuntimeError"), lines=(warn,))
    assert harmless_warning(with_error, KNOW) == []


def test_wrapper_message_alone_is_named_and_dropped_when_a_cause_is_found() -> None:
    wrapper = TextFacts(lines=("RuntimeError: Engine core initialization failed.",))
    assert _ids(app_wrapper(wrapper, KNOW)) == ["app-wrapper-message"]
    both = TextFacts(lines=wrapper.lines, missing_libraries=("libcuda.so",))
    assert _ids(classify(both, KNOW)) == ["libcuda-not-found"]


# --- contradictions ----------------------------------------------------------------------


@pytest.mark.parametrize("build", ["xpu", "rocm"])
def test_xpu_or_rocm_torch_contradicts_cpu_only_and_nvcc(build: str) -> None:
    f = TextFacts(torch_build=build)
    assert contradictions(f, ("torch_cpu_only",))
    assert contradictions(f, ("nvcc_missing",))


def test_gpu_inside_the_range_contradicts_gpu_too_old() -> None:
    f = TextFacts(sms=(86,))
    assert contradictions(f, ("gpu_sm_below:80",))
    assert not contradictions(TextFacts(sms=(75,)), ("gpu_sm_below:80",))
    # With alternatives, every one must be contradicted.
    assert not contradictions(f, ("gpu_sm_below:80|nvcc_missing",))


def test_a_contradicted_phrase_answer_is_rejected_with_its_reason() -> None:
    from attn_doctor.explain import explain_text

    text = "RuntimeError: FlashAttention only supports Ampere GPUs or newer.\nGPU: NVIDIA A100"
    result = explain_text(text, None)
    assert "flash-attn-needs-ampere" not in [e.match.symptom_id for e in result.explanations]
    (rej,) = [r for r in result.rejected if r.id == "flash-attn-needs-ampere"]
    assert "sm_80" in rej.reasons[0]


def test_xpu_torch_is_not_answered_as_cpu_only_torch() -> None:
    from attn_doctor.explain import explain_text

    text = "AssertionError: Torch not compiled with CUDA enabled\ntorch.__version__ = 2.7.0+xpu"
    result = explain_text(text, None)
    ids = [e.match.symptom_id for e in result.explanations]
    assert "torch-not-compiled-with-cuda" not in ids


# --- evidence ------------------------------------------------------------------------------


def test_facts_from_paths_pip_lines_and_versions() -> None:
    text = (
        r"C:\ComfyUI_windows_portable\python_embeded\Lib\site-packages\torch\nn\x.py"
        "\n"
        "Successfully installed flash_attn-2.7.4.post1 triton-3.2.0\n"
        "torch.__version__ = 2.6.0+cu126\n"
        "on an NVIDIA GeForce RTX 5090, head_dim=256, dtype torch.bfloat16\n"
        "ModuleNotFoundError: No module named 'sageattention'\n"
    )
    f = extract_facts(text, KNOW.gpu_names())
    assert f.version("torch") == "2.6.0+cu126"
    assert f.torch_build == "cuda"
    assert f.torch_cuda == "12.6"
    assert f.version("flash-attn") == "2.7.4.post1"
    assert f.tool("triton") == "3.2.0"
    assert {"windows", "comfyui-portable"} <= set(f.platforms)
    assert 120 in f.sms
    assert 256 in f.head_dims
    assert "bf16" in f.dtypes
    assert f.missing_modules == ("sageattention",)
    assert "ModuleNotFoundError" in f.error_classes


def test_build_arch_list_is_not_the_gpu() -> None:
    text = (
        "NVIDIA GeForce RTX 5090 with CUDA capability sm_120 is not compatible with the "
        "current PyTorch installation.\nThe current PyTorch install supports CUDA "
        "capabilities sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 sm_90."
    )
    f = extract_facts(text, KNOW.gpu_names())
    assert f.sms == (120,)
    assert 90 in f.build_sms


def test_hard_wrapped_lines_are_joined_and_repeats_dropped() -> None:
    lines = [
        "RuntimeError: FlashAttention only supports Ampere GPUs or",
        "newer.",
        "RuntimeError: FlashAttention only supports Ampere GPUs or",
        "newer.",
    ]
    assert unwrap(lines)[0] == "RuntimeError: FlashAttention only supports Ampere GPUs or newer."
    f = extract_facts("\n".join(lines))
    assert len(f.lines) == 1


def test_a_wrapped_known_message_is_still_recognised() -> None:
    from attn_doctor.explain import explain_text

    text = (
        "ImportError: /venv/lib/python3.10/site-packages/flash_attn_2_cuda.cpython-310-x86_"
        "64-linux-gnu.so: undefined\nsymbol: _ZN3c104cuda9SetDeviceEi"
    )
    ids = [e.match.symptom_id for e in explain_text(text, None).explanations]
    assert ids
    assert ids[0] in {"flash-attn-built-for-other-torch", "extension-built-for-other-torch"}


@pytest.mark.parametrize(
    ("mangled", "name", "owner"),
    [
        (
            "_ZN3c105ErrorC2ENS_14SourceLocationENSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE",
            "c10::Error::Error",
            "torch",
        ),
        ("_ZN3c104cuda9SetDeviceEi", "c10::cuda::SetDevice", "torch"),
        ("_ZNK2at10TensorBase8data_ptrIN3c104HalfEEEPT_v", "at::TensorBase::data_ptr", "torch"),
        ("_ZN3c104impl3cow11cow_deleterEPv", "c10::impl::cow::cow_deleter", "torch"),
    ],
)
def test_demangler_names_the_symbol_and_its_library(mangled: str, name: str, owner: str) -> None:
    assert demangle(mangled) == name
    assert symbol_owner(name) == owner


def test_demangler_returns_none_for_what_it_does_not_understand() -> None:
    assert demangle("not_a_symbol") is None
    assert demangle("_ZQQQ") is None


def test_cudnn_sdpa_refusal_names_the_cudnn_it_needs() -> None:
    from attn_doctor.explain.rules_toolchain import cudnn_sdpa_refused

    f = TextFacts(
        lines=(
            "x = F.scaled_dot_product_attention(q, k, v)",
            "RuntimeError: cuDNN Frontend error: d not a multiple of 64 is not "
            "supported with cudnn version below 8.9.6",
        )
    )
    (a,) = cudnn_sdpa_refused(f, KNOW)
    assert "8.9.6" in a.cause
    assert any("enable_cudnn_sdp(False)" in c for c in a.fix)


def test_flashinfer_jit_without_nvcc() -> None:
    from attn_doctor.explain.rules_toolchain import flashinfer_jit_needs_nvcc

    f = TextFacts(tools_missing=("nvcc",), lines=("flashinfer/sampling.py", "nvcc not found"))
    (a,) = flashinfer_jit_needs_nvcc(f, KNOW)
    assert a.checks == ("nvcc_missing",)
    assert flashinfer_jit_needs_nvcc(TextFacts(tools_missing=("nvcc",)), KNOW) == []


def test_an_nvcc_too_new_for_a_dropped_arch_contradicts_nvcc_too_old() -> None:
    f = TextFacts(tools=(("nvcc", "11.1"),))
    (why,) = contradictions(f, ("nvcc_too_old_for_arch:{arch}",), {"arch": "30"}, KNOW)
    assert "too new" in why
    assert "11.0" in why
    assert not contradictions(
        TextFacts(tools=(("nvcc", "10.2"),)), ("nvcc_too_old_for_arch:30",), None, KNOW
    )


def test_a_backend_refusing_an_arch_inside_its_range_is_an_old_build() -> None:
    f = TextFacts(
        refused_sms=(120,),
        sms=(120,),
        packages=(("sageattention", "2.0.0"),),
        error_classes=("ValueError",),
        lines=("sageattention/core.py: ValueError: Unsupported CUDA architecture: sm120",),
    )
    (a,) = gpu_outside_backend_range(f, KNOW)
    assert "2.0.0 was built without kernels" in a.cause
    assert a.fix[0].startswith("attn-doctor install sageattention")


def test_triton_missing_without_a_named_backend_lists_who_needs_it() -> None:
    f = TextFacts(missing_modules=("triton",), error_classes=("ModuleNotFoundError",))
    (a,) = backend_dependency_missing(f, KNOW)
    assert "sageattention" in a.cause
    assert "flex_attention" in a.cause


def test_a_missing_torch_library_in_a_backend_binary() -> None:
    f = TextFacts(missing_libraries=("libtorch_cuda_cpp.so",), lines=("from flash_attn import x",))
    (a,) = extension_symbol_mismatch(f, KNOW)
    assert a.class_id == "extension-built-for-other-torch"
    assert "libtorch_cuda_cpp.so" in a.cause


def test_an_unmangled_nccl_symbol_is_torchs() -> None:
    text = (
        "ImportError: /venv/lib/python3.11/site-packages/flash_attn_2_cuda.cpython-311-"
        "x86_64-linux-gnu.so: undefined symbol: ncclCommRegister"
    )
    (sym,) = extract_facts(text).symbols
    assert sym.owner == "torch"
    assert sym.binary == "flash_attn_2_cuda"


def test_xformers_triton_warning_is_harmless_even_with_its_traceback() -> None:
    from attn_doctor.explain import explain_text

    text = (
        "A matching Triton is not available, some optimizations will not be enabled\n"
        "Traceback (most recent call last):\n"
        '  File "C:\\\\venv\\\\lib\\\\site-packages\\\\xformers\\\\__init__.py", line 57, in '
        "_is_triton_available\n"
        "    import triton  # noqa\n"
        "ModuleNotFoundError: No module named 'triton'\n"
    )
    result = explain_text(text, None)
    assert [e.match.symptom_id for e in result.explanations] == ["harmless-warning"]
