"""Classes and facts added for round eight's misses (ZM, ZN, ZO) and for the sweep of upstream
source, each from text in other words than the batches', with a near miss where one applies."""

from __future__ import annotations

from tests.unit.explain_answers import answers as _answers
from tests.unit.explain_answers import first as _first
from tests.unit.explain_answers import said as _said

GUARD = (
    "FATAL: FlashAttention requires building with sm version sm80-sm90, but was built for < 8.0!"
)


def test_flash_attn_device_code_below_ampere() -> None:
    assert _first(GUARD + "\nGPU 0: Tesla T4") == "gpu-outside-backend-range"
    # with no old GPU in sight, flash-attn's host check passed: the binary lacks the GPU's arch
    assert _first(GUARD) == "torch-cuda-arch-list-below-backend-minimum"
    assert _first(GUARD + "\nGPU 0: NVIDIA A100-SXM4-80GB") == (
        "torch-cuda-arch-list-below-backend-minimum"
    )


def test_deepspeed_evoformer_without_cutlass() -> None:
    for text in (
        " [WARNING]  Please specify the CUTLASS repo directory as environment variable "
        "$CUTLASS_PATH",
        "RuntimeError: Unable to JIT load the evoformer_attn op due to it not being compatible "
        "due to hardware/software issue.",
    ):
        assert _first(text) == "backend-dependency-missing", text
    assert "CUTLASS_PATH" in _said(text)


def test_notices_after_which_the_program_goes_on() -> None:
    for text in (
        "2025-05-02 16:14:33,560 - INFO - flashinfer.jit: Prebuilt kernels not found, using JIT "
        "backend",
        "Removing unsupported arguments for attention backend sage: {'enable_gqa'}.",
        "Flash Attention failed, using default SDPA: q and k must have the same head dim",
        "WARNING 01-02 03:04:05 [cuda.py:539] --block-size 64 precluded higher-priority "
        "backend(s) FLASH_ATTN. Using TRITON_ATTN instead",
        "You are running torch 2.3.1+cu121.\nThe program is tested to work with torch 2.1.2.",
    ):
        assert _first(text) == "harmless-warning", text


def test_a_posters_error_heading_is_not_an_error() -> None:
    text = (
        "error:\nYou are attempting to use Flash Attention 2 with a model not initialized on "
        "GPU. Make sure to move the model to GPU after initializing it on CPU"
    )
    assert _first(text) == "harmless-warning"


def test_frameworks_kernels_and_ranges() -> None:
    tgi = (
        "WARNING: Could not import Flash Attention enabled models: No module named "
        "'dropout_layer_norm'"
    )
    assert _first(tgi) == "backend-dependency-missing"
    lm = (
        "RuntimeError: Attention triton kernel does not fully support triton[2.2.0~2.3.1] on "
        "device with capability<8. Please change your triton version."
    )
    assert _first(lm) == "triton-version-mismatch"
    sg = (
        "ValueError: Attention backend 'flash_attn' is not supported by this attention layer; "
        "supported backends: ['torch_sdpa'] for component 'vae'"
    )
    assert _first(sg) == "framework-advises-other-backend"
    assert "torch_sdpa" in _said(sg)
    gemma = (
        "It is strongly recommended to train Gemma2 models with the `eager` attention "
        "implementation instead of `flash_attention_2`."
    )
    assert _first(gemma) == "framework-advises-other-backend"


def test_triton_launcher_without_python_headers_off_windows() -> None:
    text = (
        "/tmp/tmpab12cd/main.c:5:10: fatal error: Python.h: No such file or directory\n"
        "compilation terminated."
    )
    assert _first(text) == "triton-embedded-python-missing-include-libs"
    assert "-dev" in _said(text)
    other = (
        "/src/bindings/python.cpp:10: fatal error: Python.h: No such file or directory\n"
        "make: *** [Makefile:3: triton] Error 1"
    )
    assert "triton-embedded-python-missing-include-libs" not in _answers(other)


def test_xformers_cutlass_without_a_kernel_for_the_gpu() -> None:
    text = (
        '  File "/venv/lib/python3.10/site-packages/xformers/ops/fmha/__init__.py", line 310\n'
        "RuntimeError: cutlassB: no kernel found to launch!"
    )
    assert _first(text) == "xformers-operator-not-built"
    assert "xformers-operator-not-built" not in _answers(
        "RuntimeError: cutlassF: no kernel found to launch!"
    )


def test_flash_attn_source_archive_being_built() -> None:
    assert (
        _first("  Downloading flash_attn-2.8.3.tar.gz (8.4 MB)") == "flash-attn-no-prebuilt-wheel"
    )


def test_features_refused_in_more_wordings() -> None:
    for text in (
        "NotImplementedError: This flash attention build does not support tanh softcapping.",
        "ValueError: This flash attention implementation does not support `softcap`. Try using "
        "`eager` instead.",
        "ValueError: `flex_attention` does not support `dropout`. Please use it for inference",
        "ValueError: `attn_mask` is not yet supported for sage attention.",
        "ValueError: flash attention backend does not support setting `return_lse=True`.",
        "NotImplementedError: Backward pass is not implemented for xformers attention.",
        "NotImplementedError: FlashInfer backend currently does not support attention sinks, "
        "please use another backend",
    ):
        assert _first(text) == "backend-feature-unsupported", text


def test_an_attention_kernels_own_device_check() -> None:
    assert _first("AssertionError: Input tensors must be on cuda.") == "backend-needs-other-device"
    assert _first("RuntimeError: k must be on CUDA") == "backend-needs-other-device"
    gpu = (
        "ValueError: Query, key, and value must be on a CUDA device with compute capability >= 9.0."
    )
    assert _first(gpu) == "gpu-outside-backend-range"
    ipex = (
        "NotImplementedError: The operator 'my_ext::fused_attention_mask' is not currently "
        "implemented for the XPU device."
    )
    assert _first(ipex) == "backend-needs-other-device"
    assert "PYTORCH_ENABLE_XPU_FALLBACK=1" in _said(ipex)


def test_vllm_reasons_name_the_class() -> None:
    head = "Selected backend AttentionBackendEnum.FLASH_ATTN is not valid for this configuration."
    assert _first(f"ValueError: {head} Reason: ['compute capability not supported']") == (
        "gpu-outside-backend-range"
    )
    assert _first(f"ValueError: {head} Reason: ['dtype not supported']") == "dtype-unsupported"
    # the KV-cache dtype is a setting, not the tensors' dtype: the message's own answer
    assert _first(f"ValueError: {head} Reason: ['kv_cache_dtype not supported']") == (
        "vllm-selected-backend-not-valid"
    )
    old = (
        "ValueError: Unknown attention backend: 'XFORMERS'. Valid options are: FLASH_ATTN, "
        "TRITON_ATTN"
    )
    assert _first(old) == "caller-written-for-other-api"


def test_transformers_wordings_of_missing_pieces() -> None:
    fa3 = (
        "ImportError: FlashAttention3 has been toggled on, but it cannot be used due to the "
        "following error: FlashAttention3 requires compute capability >= 9, but found (8, 9)"
    )
    assert _first(fa3) == "gpu-outside-backend-range"
    none = "ValueError: Could not find any flash attn implementation based on your environment."
    assert _first(none) == "backend-not-installed"
    cpu = (
        "ValueError: You are attempting to use Flash Attention 2 with a model not initialized on "
        "GPU and with no GPU available."
    )
    assert _first(cpu) == "backend-needs-other-device"
    old = (
        "ImportError: AttnProcessor2_0 requires PyTorch 2.0, to use it, please upgrade PyTorch "
        "to 2.0."
    )
    assert _first(old) == "torch-too-old-for-api"


def test_a_compiled_extension_refusing_its_own_pythons_arguments() -> None:
    text = (
        '  File "/usr/lib/python3/dist-packages/transformer_engine/pytorch/attention.py", line 5\n'
        "    out = tex.fused_attn_bwd(\n"
        "TypeError: fused_attn_bwd(): incompatible function arguments. The following argument "
        "types are supported:"
    )
    assert _first(text) == "transformer-engine-stale-extension-mixed-install"


def test_flashinfer_and_ggml_without_a_kernel_for_the_shape() -> None:
    fi = (
        "RuntimeError: Error in function 'BatchPrefillWithPagedKVCacheDispatched' at "
        "prefill.cuh:2215: Unsupported max_mma_kv: 0"
    )
    assert _first(fi) == "head-dim-unsupported"
    ggml = "warmup: WARNING: flash attention not supported by Vulkan0, memory usage will increase"
    assert _first(ggml) == "head-dim-unsupported"


def test_an_architecture_a_kernel_is_only_supported_on() -> None:
    for text in (
        "AssertionError: FlashMLA Dense is only supported on Hopper devices.",
        "ValueError: The foo attention backend requires an SM90 (Hopper) GPU, got sm89.",
        "ValueError: use_fp16_softmax is only supported on SM107; the current device is sm100.",
    ):
        assert _first(text) == "gpu-outside-backend-range", text


def test_install_and_build_wordings_read_in_upstream_source() -> None:
    cases = {
        "/tmp/pip-req-build-x/hopper/setup.py:356: UserWarning: flash_attn_3 was requested, "
        "but nvcc was not found.": "flash-attn-nvcc-not-found",
        "RuntimeError: nvcc not found and PyTorch is not built with CUDA support. Could not "
        "determine CUDA version.": "torch-not-compiled-with-cuda",
        "RuntimeError: Unsloth: PyTorch does not provide the cuda backend.": (
            "torch-not-compiled-with-cuda"
        ),
        "ValueError: Invalid backend 'cuda', system supported backends: cpu": (
            "torch-not-compiled-with-cuda"
        ),
        "ImportError: Unsloth: You have torch = 2.2.0 but xformers = 0.0.28.\nPlease install "
        "xformers < 0.0.25 for torch = 2.2.0.": "xformers-built-for-other-torch",
        "/usr/bin/ld: cannot find -l:libcuda.so.1: No such file or directory": "libcuda-not-found",
        "RuntimeError: Failed to open libcuda.so.1": "libcuda-not-found",
        "unsloth/_gpu_init.py:431: UserWarning: Unsloth: CUDA is not linked properly.": (
            "libcuda-not-found"
        ),
        r"C:\venv\Lib\site-packages\triton\windows_utils.py:272: UserWarning: Failed to find "
        "Windows SDK.": "triton-windows-needs-msvc-compiler",
        "ptxas error   : Entry function '_attn_bwd' uses too much shared data (0x30000 bytes, "
        "0xc000 max)": "triton-attention-kernel-out-of-shared-memory",
        "AssertionError: csrc/cutlass is missing, please use source distribution or git clone": (
            "flash-attn-source-missing-cutlass-submodule"
        ),
        "setup.py:117: UserWarning: skipping GPU 0 with compute capability 7.0": (
            "gpu-outside-backend-range"
        ),
        "Auto set MAX_JOBS to `8`, NVCC_THREADS to `2`.": "harmless-warning",
        "Unsloth: `sdpa` is not supported for `gemma3` because its soft-capping needs eager - "
        "defaulting to `eager`.": "harmless-warning",
        "UserWarning: flex_attention called without torch.compile() - this will use an unfused "
        "implementation": "harmless-warning",
        # printed only in the debug pass on SDPA's way to "No available kernel"
        "UserWarning: cuDNN attention has been runtime disabled.": "sdpa-no-available-kernel",
    }
    for text, want in cases.items():
        assert _first(text) == want, text
    # another kernel out of shared memory (a MoE utility) is not an attention kernel's
    assert "triton-attention-kernel-out-of-shared-memory" not in _answers(
        "ptxas error   : Entry function '_Z12moe_align_kernel' uses too much shared data "
        "(0x20400 bytes, 0xc000 max)"
    )


def test_round_nine_wordings() -> None:
    cases = {
        "RuntimeError: Expected q_dtype == torch::kFloat16 || ((is_sm8x || is_sm90) && q_dtype "
        "== torch::kBFloat16) to be true, but got false.": "flash-attn-fp32-input",
        "RuntimeError:\nUnknown builtin op: aten::scaled_dot_product_attention.\nHere are some "
        "suggestions:": "torch-too-old-for-api",
        'C++ exception with description "0 INTERNAL ASSERT FAILED at alias_analysis.cpp:617. '
        "We don't have an op for aten::scaled_dot_product_attention but it isn't a special "
        'case."': "caller-written-for-other-api",
        "ValueError: node attn.3 (scaled_dot_product_attention) got 8 input(s), expected [6, 7]": (
            "caller-written-for-other-api"
        ),
        "torch._inductor.exc.LoweringException: NotImplementedError: Unsupported for now if "
        "query, key, value are the same buffer.": "backend-feature-unsupported",
        "Getting `ValueError: FlashInfer does not support sliding window attention.` on a T4": (
            "backend-feature-unsupported"
        ),
    }
    for text, want in cases.items():
        assert _first(text) == want, text


def test_transformer_engines_backend_selection_log_is_a_notice() -> None:
    line = (
        "[DEBUG    | DotProductAttention]: Disabling FlashAttention 3 for compute capability "
        "!= sm90"
    )
    assert _first(line) == "harmless-warning"
    assert _first("[INFO     | DotProductAttention]: Running with FusedAttention backend") == (
        "harmless-warning"
    )


def test_round_ten_wordings() -> None:
    none_called = (
        '  File "/app/nodes/attention.py", line 189, in attention\n'
        "    x = flash_attn_varlen_func(\n"
        "        ^^^^^^^^^^^^^^^^^^^^^^^\n"
        "TypeError: 'NoneType' object is not callable"
    )
    assert _first(none_called) == "backend-not-installed"
    # another None called is not a backend's
    other = none_called.replace("flash_attn_varlen_func", "make_scheduler")
    assert "backend-not-installed" not in _answers(other)
    assert _first(
        "RuntimeError: GPU compute capability 8.0 (Ampere) or higher is required to run it\n"
        "GPU 0: Tesla V100"
    ) == ("gpu-outside-backend-range")
    xf = (
        "NotImplementedError: No operator found for `memory_efficient_attention_forward`\n"
        "max(query.shape[-1], value.shape[-1]) > 256\n"
        "operator wasn't built - see python -m xformers.info for more info"
    )
    assert _first(xf) == "xformers-operator-not-built"


def test_the_no_dtype_notice_alone_is_harmless() -> None:
    text = (
        "You are attempting to use Flash Attention 2.0 without specifying a torch dtype. This "
        "might lead to unexpected behaviour"
    )
    assert _first(text) == "harmless-warning"
    # the error that follows when the model stayed float32 is the dtype
    error = (
        text + "\nValueError: Flash Attention 2.0 only supports torch.float16 and torch.bfloat16"
    )
    assert _first(error) != "harmless-warning"
