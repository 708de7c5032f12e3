"""The classes and evidence added for batch I's gaps, from facts alone: each rule is fed a
``TextFacts`` built by hand (no message text for a phrase to match), with a near miss that it
must not answer; the readers are tested on short texts in other words than the batch's."""

from __future__ import annotations

from attn_doctor.explain.evidence import TextFacts, extract_facts
from attn_doctor.explain.evidence_runtime import RuntimeFacts, read_runtime
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_backend import gpu_outside_backend_range
from attn_doctor.explain.rules_device import (
    ck_xdl_kernel_on_gpu_without_mfma,
    kernel_compiled_out_for_arch,
)
from attn_doctor.explain.rules_messages import harmless_warning
from attn_doctor.explain.rules_runtime import (
    backend_build_without_ninja,
    backend_operators_not_registered,
    caller_checks_old_distribution_name,
    cudnn_too_old_for_attention,
    diffusers_xformers_processor_for_joint_attention,
    flash_attn_newer_than_dependent_supports,
    kernels_client_too_old_for_stable_abi,
    model_code_requires_flash_attn,
    stale_extension_mixed_install,
    torch_sdpa_flash_backward_sm8x,
    windows_extension_entry_point_missing,
)
from attn_doctor.explain.rules_sdpa import sdpa_attn_mask_dtype_mismatch

KNOW = load_knowledge()


def _facts(text: str) -> TextFacts:
    return extract_facts(text, KNOW.gpu_names())


def _ids(answers: list) -> list[str]:  # type: ignore[type-arg]
    return [a.class_id for a in answers]


# --- SDPA's mask dtype --------------------------------------------------------------------


def test_mask_dtype_read_in_both_wordings() -> None:
    new = read_runtime(
        "RuntimeError: Expected attn_mask dtype to be bool or float or to match query dtype, "
        "but got attn_mask.dtype: double and  query.dtype: c10::Half instead."
    )
    assert new.mask_dtype == ("double", "Half")
    assert read_runtime("attn_mask.dtype must match query dtype").mask_dtype == ("", "")
    assert read_runtime("RuntimeError: query dtype float16 not supported").mask_dtype is None


def test_sdpa_mask_dtype_class_from_facts() -> None:
    f = TextFacts(runtime=RuntimeFacts(mask_dtype=("float", "Half")))
    (ans,) = sdpa_attn_mask_dtype_mismatch(f, KNOW)
    assert ans.class_id == "sdpa-attn-mask-dtype-mismatch"
    assert "attn_mask.to(float16)" in ans.fix[0]
    assert sdpa_attn_mask_dtype_mismatch(TextFacts(), KNOW) == []


# --- cuDNN too old ------------------------------------------------------------------------


def test_fused_attention_and_cudnn_version_read() -> None:
    rt = read_runtime(
        "File te/attention.py, in forward\n  out = tex.fused_attn_bwd(...)\n"
        "RuntimeError: cuDNN Error: [cudnn_frontend] Error: No execution plans support the graph"
        "\nE! CuDNN (v90300 70) function cudnnBackendFinalize() called:"
    )
    assert rt.fused_attn_refused
    assert rt.cudnn == "9.3.0"
    # cuDNN's own error without TransformerEngine's call is not the fused-attention class
    assert not read_runtime("No execution plans support the graph").fused_attn_refused
    assert read_runtime("UserWarning: cuDNN version too old to use cuDNN Attention").cudnn_too_old


def test_cudnn_classes_from_facts() -> None:
    f = TextFacts(torch_cuda="12.4", runtime=RuntimeFacts(fused_attn_refused=True, cudnn="9.1.0"))
    (ans,) = cudnn_too_old_for_attention(f, KNOW)
    assert ans.class_id == "cudnn-too-old-for-fused-attention"
    assert "nvidia-cudnn-cu12" in ans.fix[0]
    assert "9.1.0" in ans.cause
    (sdpa,) = cudnn_too_old_for_attention(TextFacts(runtime=RuntimeFacts(cudnn_too_old=True)), KNOW)
    assert sdpa.class_id == "torch-cudnn-too-old-for-cudnn-attention"
    assert cudnn_too_old_for_attention(TextFacts(runtime=RuntimeFacts(cudnn="9.1.0")), KNOW) == []


# --- torch 2.0.0's flash backward on sm8x -------------------------------------------------


def test_sm8x_flash_backward_from_facts() -> None:
    base = {"required_sm": (80, 90), "required_exact": (80, 90), "sms": (86,)}
    f = TextFacts(packages=(("torch", "2.0.0+cu117"),), **base)  # type: ignore[arg-type]
    (ans,) = torch_sdpa_flash_backward_sm8x(f, KNOW)
    assert ans.class_id == "torch-sdpa-flash-backward-sm8x-dispatch-bug"
    assert "torch>=2.0.1" in ans.fix[0]
    # near misses: a fixed torch, no torch shown (flash_attn's own check), an sm75 GPU
    fixed = TextFacts(packages=(("torch", "2.2.0"),), **base)  # type: ignore[arg-type]
    assert torch_sdpa_flash_backward_sm8x(fixed, KNOW) == []
    assert torch_sdpa_flash_backward_sm8x(TextFacts(**base), KNOW) == []  # type: ignore[arg-type]
    turing = TextFacts(
        packages=(("torch", "2.0.0"),), required_sm=(80, 90), required_exact=(80, 90), sms=(75,)
    )
    assert torch_sdpa_flash_backward_sm8x(turing, KNOW) == []


def test_bare_cuda_local_version_is_torch() -> None:
    assert _facts("fails on 2.0.0+cu118 with an RTX 4090").version("torch") == "2.0.0+cu118"
    assert _facts("torchvision 0.15.1+cu118").version("torch") is None


# --- Hub kernels' stable ABI, flash-attn newer than a dependent supports --------------------


def test_kernels_client_too_old_from_facts() -> None:
    f = TextFacts(
        packages=(("kernels", "0.12.0"),),
        lines=("Cannot find a build variant for this system in org/k",),
        runtime=RuntimeFacts(stable_abi_variant=True),
    )
    (ans,) = kernels_client_too_old_for_stable_abi(f, KNOW)
    assert ans.fix == ("pip install --upgrade 'kernels>=0.16'",)
    newer = TextFacts(packages=(("kernels", "0.19.1"),), lines=f.lines, runtime=f.runtime)
    assert kernels_client_too_old_for_stable_abi(newer, KNOW) == []
    assert read_runtime("available: torch-stable-abi210-cu130-x86_64-linux").stable_abi_variant


def test_flash_attn_newer_than_supported_from_facts_and_readers() -> None:
    rt = read_runtime("Supported flash-attn versions are >= 2.1.1, <= 2.6.3. Found 2.7.4.")
    assert rt.fa_latest_supported == "2.6.3"
    f = TextFacts(
        packages=(("flash-attn", "2.7.4.post1"),), runtime=RuntimeFacts(fa_latest_supported="2.6.3")
    )
    (ans,) = flash_attn_newer_than_dependent_supports(f, KNOW)
    assert ans.fix[0].startswith("pip install 'flash-attn==2.6.3'")
    older = TextFacts(packages=(("flash-attn", "2.5.8"),), runtime=f.runtime)
    assert flash_attn_newer_than_dependent_supports(older, KNOW) == []
    assert _facts("I have FlashAttention 2.5.8 installed").version("flash-attn") == "2.5.8"
    assert _facts("FlashAttention 2 is not available").version("flash-attn") is None


# --- Windows entry points, torch.ops namespaces ---------------------------------------------


def test_windows_entry_point_read_and_answered() -> None:
    rt = read_runtime(
        "The procedure entry point ?data_ptr@TensorBase@at@@QEBAPEAXXZ could not be located in "
        "the dynamic link library C:\\py\\Lib\\site-packages\\flash_attn_2_cuda.cp311-win_amd64.pyd"
    )
    assert rt.entry_point_missing is not None
    _sym, module, torch_sym = rt.entry_point_missing
    assert torch_sym
    assert module.startswith("flash_attn_2_cuda")
    named = read_runtime(
        "DLL load failed while importing _C: The specified procedure could not be found."
    )
    assert named.entry_point_missing == ("", "_C", False)
    f = TextFacts(runtime=RuntimeFacts(entry_point_missing=("?x@at@@", "xformers._C", True)))
    (ans,) = windows_extension_entry_point_missing(f, KNOW)
    assert ans.class_id == "extension-built-for-other-torch"
    assert "xformers" in ans.title
    # a procedure that is not libtorch's, with no torch shown: not this class
    other = TextFacts(runtime=RuntimeFacts(entry_point_missing=("", "_C", False)))
    assert windows_extension_entry_point_missing(other, KNOW) == []


def test_missing_operator_namespace_read_and_answered() -> None:
    rt = read_runtime("AttributeError: '_OpNamespace' 'xformers' object has no attribute 'swiglu'")
    assert rt.ops_missing == ("xformers", "swiglu")
    assert read_runtime("RuntimeError: No such operator xformers::efficient_attention").ops_missing
    f = TextFacts(runtime=RuntimeFacts(ops_missing=("xformers", "")))
    (ans,) = backend_operators_not_registered(f, KNOW)
    assert ans.class_id == "xformers-operator-not-built"
    # an operator namespace that is no attention backend's: not this class
    other = TextFacts(runtime=RuntimeFacts(ops_missing=("torchvision", "nms")))
    assert backend_operators_not_registered(other, KNOW) == []


# --- a kernel compiled out for the GPU's arch, Triton's capability floor --------------------


def test_kernel_compiled_out_for_arch() -> None:
    rt = read_runtime(
        "ERROR: CUDA kernel flash_attn_ext_f16 has no device code compatible with CUDA arch 520."
        " ggml-cuda.cu was compiled for: 520,610"
    )
    assert rt.no_device_code == ("flash_attn_ext_f16", 52, (52, 61))
    (ans,) = kernel_compiled_out_for_arch(TextFacts(runtime=rt), KNOW)
    assert ans.class_id == "gpu-outside-backend-range"
    assert "sm_52" in ans.title
    # the binary lacks the arch: a build-flag problem, not the kernel's range
    missing = RuntimeFacts(no_device_code=("k", 52, (61, 75)))
    (lacks,) = kernel_compiled_out_for_arch(TextFacts(runtime=missing), KNOW)
    assert lacks.class_id == "cuda-no-kernel-image"


def test_triton_capability_floor_read() -> None:
    f = _facts(
        "RuntimeError: Found Quadro M4000 which is too old to be supported by the triton GPU "
        "compiler. Triton only supports devices of CUDA Capability >= 7.0, but your device is of "
        "CUDA capability 5.2"
    )
    assert f.required_sm == (70, None)
    assert 52 in f.sms
    assert _ids(gpu_outside_backend_range(f, KNOW)) == ["gpu-outside-backend-range"]
    ok = _facts(
        "Triton only supports devices of CUDA Capability >= 7.0; yours: CUDA capability 8.6"
    )
    assert _ids(gpu_outside_backend_range(ok, KNOW)) == []


# --- harmless: an optional attention path wanting a newer torch -----------------------------


def test_optional_attention_torch_warning_is_harmless() -> None:
    f = _facts("[WARN] flash attention needs torch 2.2+ but your version is 2.0.1")
    assert _ids(harmless_warning(f, KNOW)) == ["harmless-warning"]
    err = _facts(
        "[WARN] flash attention needs torch 2.2+ but your version is 2.0.1\n"
        "RuntimeError: CUDA error: out of memory"
    )
    assert harmless_warning(err, KNOW) == []


# --- model code insisting on flash-attn, a build without ninja ------------------------------


def test_model_code_requiring_flash_attn() -> None:
    rt = read_runtime(
        "model = AutoModel.from_pretrained(p, attn_implementation='sdpa')\n"
        "ImportError: FlashAttention2 is not installed, but it is required for this model"
    )
    assert rt.flash_required_by_model
    assert rt.attn_impl_chosen == "sdpa"
    f = TextFacts(runtime=rt)
    assert _ids(model_code_requires_flash_attn(f, KNOW)) == [
        "transformers-remote-code-needs-flash-attn"
    ]
    # the requirement alone, with no choice made and no remote code: not this class
    alone = TextFacts(runtime=RuntimeFacts(flash_required_by_model=True))
    assert model_code_requires_flash_attn(alone, KNOW) == []


def test_build_without_ninja() -> None:
    warned = read_runtime(
        "UserWarning: Attempted to use ninja as the BuildExtension backend but we could not "
        "find ninja.. Falling back to using the slow distutils backend."
    )
    assert warned.no_ninja
    assert read_runtime("building xformers took so long to compile, hours").no_ninja
    assert not read_runtime("the model takes a long time to load").no_ninja
    assert read_runtime("pip install xformers: the build is very slow").no_ninja
    assert not read_runtime("the build is very slow even with ninja -j 8").no_ninja
    f = TextFacts(
        lines=("pip install flash-attn --no-build-isolation",),
        runtime=RuntimeFacts(no_ninja=True),
    )
    assert _ids(backend_build_without_ninja(f, KNOW)) == ["flash-attn-build-without-ninja"]
    # no backend being built: not this class
    other = TextFacts(lines=("pip install numpy",), runtime=RuntimeFacts(no_ninja=True))
    assert backend_build_without_ninja(other, KNOW) == []


# --- an extension from another release than its Python code; diffusers' joint attention -----


def test_stale_extension_read_and_answered() -> None:
    rt = read_runtime(
        "    out, lse = flash_attn_2_cuda.fwd(q, k, v)\n"
        "ValueError: too many values to unpack (expected 2)"
    )
    assert rt.unpack_from_extension == "flash_attn_2_cuda"
    f = TextFacts(runtime=rt)
    assert _ids(stale_extension_mixed_install(f, KNOW)) == [
        "flash-attn-stale-extension-mixed-install"
    ]
    # an unpack error in plain Python code: not this class
    plain = read_runtime(
        "    a, b = foo()\nValueError: not enough values to unpack (expected 2, got 1)"
    )
    assert plain.unpack_from_extension is None
    assert plain.unpack_mismatch


def test_diffusers_xformers_on_joint_attention() -> None:
    lines = (
        "pipe.enable_xformers_memory_efficient_attention()",
        "diffusers/models/transformers/transformer_sd3.py, line 120, in forward",
        "ValueError: not enough values to unpack (expected 2, got 1)",
    )
    f = TextFacts(lines=lines, runtime=RuntimeFacts(unpack_mismatch=True))
    assert _ids(diffusers_xformers_processor_for_joint_attention(f, KNOW)) == [
        "diffusers-no-xformers-processor-for-joint-attention"
    ]
    # the same error without xformers enabled: not this class
    no_xf = TextFacts(lines=lines[1:], runtime=f.runtime)
    assert diffusers_xformers_processor_for_joint_attention(no_xf, KNOW) == []


# --- composable_kernel's XDL kernels on a GPU without MFMA ----------------------------------


def test_ck_xdl_kernel_on_gpu_without_mfma() -> None:
    rt = read_runtime(
        "GPU: AMD Instinct MI60\nRuntimeError: DeviceBatchedGemmSoftmaxGemm_Xdl_CShuffle<256, "
        "128> does not support this problem"
    )
    assert rt.amd_targets == ("gfx906",)
    assert rt.ck_xdl_refused is not None
    assert _ids(ck_xdl_kernel_on_gpu_without_mfma(TextFacts(runtime=rt), KNOW)) == [
        "gpu-outside-backend-range"
    ]
    # the same refusal on an MI250 (gfx90a has MFMA): the problem, not the GPU
    mi250 = RuntimeFacts(amd_targets=("gfx90a",), ck_xdl_refused=rt.ck_xdl_refused)
    assert ck_xdl_kernel_on_gpu_without_mfma(TextFacts(runtime=mi250), KNOW) == []


# --- a caller looking a backend up under its old distribution name ---------------------------


def test_caller_checks_old_distribution_name() -> None:
    rt = read_runtime(
        "importlib.metadata.PackageNotFoundError: No package metadata was found for flashinfer"
    )
    assert rt.dist_not_found == ("flashinfer",)
    f = TextFacts(lines=("vllm serve model",), runtime=rt)
    (ans,) = caller_checks_old_distribution_name(f, KNOW)
    assert ans.class_id == "vllm-too-old-for-flashinfer-package-name"
    assert "flashinfer-python" in ans.cause
    # a distribution that was never renamed: not this class
    other = TextFacts(runtime=RuntimeFacts(dist_not_found=("xformers",)))
    assert caller_checks_old_distribution_name(other, KNOW) == []
