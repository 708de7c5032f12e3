"""Classes and facts added for round seven's misses (ZJ, ZK, ZL), each from text in other words
than the batches', with a near miss where one applies."""

from __future__ import annotations

from tests.unit.explain_answers import answers as _answers
from tests.unit.explain_answers import first as _first
from tests.unit.explain_answers import said as _said


def test_a_fused_sdpa_op_called_in_a_build_without_it() -> None:
    text = "RuntimeError: USE_MEM_EFF_ATTENTION was not enabled for build."
    assert _first(text) == "torch-built-without-sdpa-kernel"
    assert "memory-efficient" in _said(text)
    # the warning SDPA prints when it skips the kernel is not this error
    assert _first("UserWarning: 1Torch was not compiled with flash attention.") != (
        "torch-built-without-sdpa-kernel"
    )


def test_qkv_of_different_dtypes_cut_off_or_in_xformers_words() -> None:
    cut = "RuntimeError: Expected query, key, and value to have the same dtype, but got query.dt"
    assert _first(cut) == "sdpa-qkv-dtype-mismatch"
    xf = (
        "ValueError: Query/Key/Value should either all have the same dtype, or (in the quantized "
        "case) Key/Value should have dtype torch.int32\n"
        "  query.dtype: torch.bfloat16\n  key.dtype  : torch.float32\n  value.dtype: torch.float32"
    )
    assert _first(xf) == "sdpa-qkv-dtype-mismatch"
    assert "float32" in _said(xf)


def test_the_memory_efficient_kernels_bias_dtype_check() -> None:
    text = "RuntimeError: invalid dtype for bias - should match query's dtype"
    assert _first(text) == "sdpa-attn-mask-dtype-mismatch"


def test_an_embedded_python_without_libs_or_pyconfig_for_triton() -> None:
    libs = (
        r"D:\app\python_embeded\Lib\site-packages\triton\windows_utils.py:315: UserWarning: "
        "Failed to find Python libs.\n"
        '  warnings.warn("Failed to find Python libs.")'
    )
    assert _first(libs) == "triton-embedded-python-missing-include-libs"
    header = (
        r"D:/app/python_embeded/Include/Python.h:12: error: include file 'pyconfig.h' not found"
        "\nsubprocess.CalledProcessError: Command returned non-zero exit status 1."
    )
    assert _first(header) == "triton-embedded-python-missing-include-libs"
    retyped = (
        "Error: include file Python.h not found\n"
        r"** Python executable: E:\app\python_embeded\python.exe"
    )
    assert _first(retyped) == "triton-embedded-python-missing-include-libs"


def test_a_library_reaching_a_transformers_name_that_moved() -> None:
    text = (
        "'transformers.models.llama.modeling_llama' has no attribute "
        "'_flash_attention_forward'. Did you mean: 'eager_attention_forward'?"
    )
    assert _first(text) == "caller-written-for-other-api"
    # a model's remote code importing it is that class
    remote = (
        '  File "/cache/transformers_modules/m/modeling_m.py", line 3, in <module>\n'
        "ImportError: cannot import name 'is_flash_attn_greater_or_equal_2_10' from "
        "'transformers.modeling_flash_attention_utils'"
    )
    assert _first(remote) == "remote-code-imports-removed-transformers-helper"


def test_a_backend_said_missing_in_an_applications_words() -> None:
    for text in (
        "importlib.metadata: No package metadata was found for flash_attn",
        "NotImplementedError: Flash attention is currently required.",
        "ValueError: SageAttention is not available. Make sure it is installed correctly",
    ):
        assert _first(text) == "backend-not-installed", text
    # a version floor, or another package's metadata, is not the backend missing
    assert "backend-not-installed" not in _answers(
        "ImportError: flash-attn>=2.1 is required for sliding windows"
    )
    assert "backend-not-installed" not in _answers(
        "PackageNotFoundError: No package metadata was found for bitsandbytes"
    )


def test_an_xformers_operator_without_cuda_kernels_in_a_title() -> None:
    assert _first("Could not run 'xformers::efficient_attention_forward_small_k'") == (
        "xformers-operator-not-built"
    )


def test_rocm_words_a_missing_kernel_image_in_cudas_words() -> None:
    text = (
        "no kernel image is available for execution on the device hipErrorNoBinaryForGpu\n"
        "Error: The program ISA amdgcn-amd-amdhsa--gfx90a is not compatible with the device ISA "
        "amdgcn-amd-amdhsa--gfx1100"
    )
    answers = _answers(text)
    assert answers[0] == "rocm-gpu-arch-not-in-build"
    assert "cuda-no-kernel-image" not in answers


def test_nan_from_sdpas_cudnn_kernel() -> None:
    text = (
        "After upgrading, training shows loss = nan at step 3. "
        "torch.nn.attention.sdpa_kernel(SDPBackend.CUDNN_ATTENTION) reproduces it."
    )
    assert _first(text) == "torch-sdpa-cudnn-backend-nan-bug"
    assert "enable_cudnn_sdp(False)" in _said(text)
    # an upgrade is offered only from 2.5.0, whose default 2.5.1 lifted; 2.11 on prefer cuDNN again
    assert "pip install" not in _said(text + "\ntorch==2.11.0")
    assert "torch>=2.5.1,<2.11" in _said(text + "\ntorch==2.5.0")
    assert "torch-sdpa-cudnn-backend-nan-bug" not in _answers("loss is nan after 200 steps")


def test_head_dims_that_are_not_powers_of_two() -> None:
    flex = (
        "ValueError: NYI: Currently non power of 2 embedding dimension are not supported. "
        "Got E=80 and Ev=80."
    )
    assert _first(flex) == "head-dim-unsupported"
    assert "80" in _said(flex)
    triton = (
        "    acc = tl.zeros([BLOCK_M, BLOCK_DMODEL], dtype=tl.float32)\n"
        "ValueError: Shape element 1 must be a power of 2"
    )
    assert _first(triton) == "head-dim-unsupported"
    assert "head-dim-unsupported" not in _answers(
        "    x = tl.zeros([BLOCK_N], dtype=tl.float32)\nValueError: Shape element 0 must be a "
        "power of 2"
    )


def test_the_web_uis_version_check_is_a_notice() -> None:
    text = (
        "You are running xformers 0.0.20.\n"
        "The program is tested to work with xformers 0.0.23.post1.\n"
        "Use --skip-version-check commandline argument to disable this check."
    )
    assert _first(text) == "harmless-warning"


def test_transformer_engines_bare_cudnn_error() -> None:
    bare = "fused_attn_fp8.cu:1024 in function operator(): cuDNN Error"
    assert _first(bare) == "cudnn-too-old-for-fused-attention"
    said = (
        "fused_attn_f16_arbitrary_seqlen.cu:639 in function operator(): cuDNN Error: Num "
        "hidden_dim shoud be less than 128"
    )
    assert _first(said) != "cudnn-too-old-for-fused-attention"


def test_the_package_built_without_ninja_is_the_one_being_built() -> None:
    text = (
        "Building wheel for xformers (setup.py) ... done\n"
        "Building wheel for flash-attn (setup.py) ...\n"
        "UserWarning: Attempted to use ninja as the BuildExtension backend but we could not "
        "find ninja.. Falling back to using the slow distutils backend."
    )
    assert _first(text) == "flash-attn-build-without-ninja"


def test_another_backend_built_without_torch_under_uv() -> None:
    text = (
        "Installing SageAttention\n"
        "error: The build backend returned an error\n"
        '  File "/uv/cache/builds-v0/x/lib/site-packages/setuptools/build_meta.py", line 331, '
        "in get_requires_for_build_wheel\n"
        "ModuleNotFoundError: No module named 'torch'"
    )
    assert _first(text) == "sageattention-build-no-torch"


def test_flashinfers_companion_package_of_another_release() -> None:
    text = (
        "RuntimeError: flashinfer-jit-cache version (0.5.2) does not match flashinfer version "
        "(0.5.3). Please install the same version of both packages."
    )
    assert _first(text) == "flashinfer-python-stale-extension-mixed-install"
    assert "flashinfer-jit-cache==0.5.3" in _said(text)


def test_xformers_refusing_cpu_tensors_answers_with_its_own_entry() -> None:
    text = (
        "NotImplementedError: No operator found for `memory_efficient_attention_forward`\n"
        "`cutlassF` is not supported because:\n    device=cpu (supported: {'cuda'})"
    )
    assert _first(text) == "xformers-cpu-tensors"


def test_the_memory_efficient_kernels_device_guard() -> None:
    for built in ("sm37", "sm120"):
        text = (
            "FATAL: kernel `fmha_cutlassF_bf16_aligned_64x64_rf_sm80` is for sm80-sm100, but "
            f"was built for {built}"
        )
        assert _first(text) == "gpu-outside-backend-range", built


def test_llama_cpp_turning_flash_attention_off() -> None:
    notice = (
        "llama_new_context_with_model: flash_attn is not compatible with attn_soft_cap - "
        "forcing off"
    )
    assert _first(notice) == "harmless-warning"
    failed = notice + "\nllama_init_from_model: V cache quantization requires flash_attn"
    assert _first(failed) == "backend-feature-unsupported"


def test_a_companion_package_older_than_the_attention_code_calling_it() -> None:
    text = (
        '  File "/app/framework/ldm/modules/attention.py", line 54, in <module>\n'
        "    HAS_FP8 = fast_kernels.fp8_attention_is_available()\n"
        "AttributeError: module 'fast_kernels' has no attribute 'fp8_attention_is_available'"
    )
    assert _first(text) == "fast-kernels-too-old-for-caller"
    elsewhere = (
        '  File "/app/data/loader.py", line 5, in <module>\n'
        "    x = fast_kernels.shuffle()\n"
        "AttributeError: module 'fast_kernels' has no attribute 'shuffle'"
    )
    assert "fast-kernels-too-old-for-caller" not in _answers(elsewhere)


def test_remote_code_that_insists_on_flash_attention() -> None:
    text = (
        "flash attention must be installed\n"
        '  File "/usr/lib/python3/site-packages/transformers/dynamic_module_utils.py", line 267, '
        "in get_class_in_module\n    module_spec.loader.exec_module(module)"
    )
    assert _first(text) == "transformers-remote-code-needs-flash-attn"


def test_two_attention_switches_of_different_releases() -> None:
    text = (
        'ValueError: Both attn_implementation="eager" and `use_flash_attention_2=True` were used '
        "when loading the model, which are not compatible."
    )
    assert _first(text) == "caller-written-for-other-api"


def test_xformers_pinning_torch_in_a_dependency_chain() -> None:
    text = (
        "xformers can't load C++/CUDA extensions. xFormers was built for: PyTorch 2.8.0+cu128\n"
        "... -> torch==2.8.0 -> xformers==0.0.32 -> -r requirements.txt (line 4)"
    )
    answers = _answers(text)
    assert answers[0] == "xformers-replaced-torch"
    assert "xformers-built-for-other-torch" not in answers


def test_an_out_of_memory_error_inside_a_wrapper_is_not_the_wrappers() -> None:
    text = (
        "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
        "!!! Exception during processing !!!"
    )
    assert "app-wrapper-message" not in _answers(text)
