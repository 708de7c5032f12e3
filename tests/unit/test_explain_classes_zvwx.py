"""Classes and facts added for round eleven's misses (ZV, ZW, ZX), each from text in other words
than the batches', with a near miss where one applies."""

from __future__ import annotations

from tests.unit.explain_answers import answers as _answers
from tests.unit.explain_answers import first as _first
from tests.unit.explain_answers import said as _said


def test_tgi_model_needing_flash_attention_and_its_gpu_floor() -> None:
    text = "NotImplementedError: Sharded Falcon requires Flash Attention enabled models."
    assert _first(text) == "backend-dependency-missing"
    assert "Docker image" in _said(text)
    # on a GPU below TGI's flash-attention floor (sm_75), installing kernels would not help
    old = text + "\nGPU 0: Tesla V100-SXM2-32GB"
    assert _first(old) == "gpu-outside-backend-range"
    assert "sm_75" in _said(old)


def test_flash_attn_paged_kv_block_size() -> None:
    text = "RuntimeError: Paged KV cache block size must be divisible by 256"
    assert _first(text) == "backend-feature-unsupported"
    assert "multiple of 256" in _said(text)


def test_ggml_kernel_without_device_code() -> None:
    built_old = (
        "ggml-cuda/fattn-tile.cu:42: ERROR: CUDA kernel flash_attn_tile_ext_f32 has no device "
        "code compatible with CUDA arch 520. ggml-cuda.cu was compiled for: 520"
    )
    assert _first(built_old) == "cuda-no-kernel-image"
    assert "CMAKE_CUDA_ARCHITECTURES" in _said(built_old)
    # the GPU's own architecture, built: that kernel has no path for this generation
    own = (
        "ERROR: CUDA kernel flash_attn_ext_f16 has no device code compatible with CUDA arch 700. "
        "ggml-cuda.cu was compiled for: 600,700,750,800\nGPU 0: Tesla V100-PCIE-16GB"
    )
    assert _first(own) == "gpu-outside-backend-range"
    assert "--flash-attn off" in _said(own)


def test_gpus_below_a_capability_are_the_gpu_not_the_arch_list() -> None:
    text = (
        '  File "setup.py", line 98, in <module>\n    raise RuntimeError(\n'
        "RuntimeError: GPUs with compute capability below 8.0 are not supported."
    )
    assert _first(text) == "gpu-outside-backend-range"
    assert "torch-cuda-arch-list-below-backend-minimum" not in _answers(text)


def test_a_users_own_torch_reinstall_is_not_xformers_replacing_it() -> None:
    text = (
        "pip install --force-reinstall torch==2.4.0 --index-url <index>\n"
        "WARNING[XFORMERS]: xFormers can't load C++/CUDA extensions. xFormers was built for:\n"
        "    PyTorch 2.3.1+cu121 with CUDA 1201 (you have 2.4.0+cu121)"
    )
    assert _first(text) == "xformers-built-for-other-torch"
    assert "xformers-replaced-torch" not in _answers(text)


def test_source_builds_cut_before_their_reason_and_unrecorded_packages() -> None:
    cut = (
        "Collecting xformers\n  Using cached xformers-0.0.23.tar.gz (8.0 MB)\n"
        "  Getting requirements to build wheel ... error\n  error: subprocess-exited-with-error"
    )
    assert _first(cut) == "xformers-build-no-torch"
    assert "inferred" in _said(cut)
    natten = (
        "Collecting natten\n  Using cached natten-0.17.1.tar.gz (2.0 MB)\n"
        "  Getting requirements to build wheel ... error\n"
        "      ModuleNotFoundError: No module named 'torch'"
    )
    assert _first(natten) == "natten-build-no-torch"
    # a package that is not an attention kernel: not this answer under its name
    other = natten.replace("natten", "pointops")
    assert "pointops-build-no-torch" not in _answers(other)


def test_windows_entry_point_told_without_the_procedure() -> None:
    text = (
        "The procedure entry point could not be located in the dynamic link library "
        r"C:\env\Lib\site-packages\xformers\_C.pyd"
        "\ntorch 2.7.0+cu126"
    )
    assert _first(text) == "extension-built-for-other-torch"


def test_bare_unsupported_architecture_names_the_gpu_in_the_message() -> None:
    text = (
        "Benchmarking on an H100 (sm90)\n"
        '  File "/usr/lib/python3/site-packages/flashinfer/prefill.py", line 900, in run\n'
        "RuntimeError: Unsupported architecture"
    )
    assert _first(text) == "gpu-outside-backend-range"
    assert "backend='auto'" in _said(text)


def test_compiler_errors_inside_boxed_build_logs_are_errors() -> None:
    text = (
        "  │ │   xformers/csrc/attention.cpp:3:10: fatal error: 'cuda.h' file not found\n"
        "building on macOS arm64 (darwin)"
    )
    assert _first(text) == "backend-needs-other-device"


def test_a_hard_wrap_at_a_chance_width_keeps_its_space() -> None:
    text = (
        "Fix the attention call in the vision tower of the model class\n\n"
        "TypeError: VisionFlashAttention2.forward() missing 1 required\n"
        "positional argument: 'rotary_pos_emb'"
    )
    assert _first(text) == "caller-written-for-other-api"


def test_a_packages_own_attention_extension_not_built() -> None:
    text = "ModuleNotFoundError: No module named 'pointnet_ops.sparse_attn_cuda'"
    assert _first(text) == "backend-not-installed"
    assert "pip install -e ." in _said(text)
    assert _first("ModuleNotFoundError: No module named 'pointnet_ops.knn_cuda'") is None


def test_undefined_flash_attn_module_class_is_flash_attn_missing() -> None:
    text = '    self.mixer = MHA(\nNameError: name "MHA" is not defined'.replace('"', "'")
    assert _first(text) == "backend-not-installed"


def test_other_libraries_notices_are_not_attention_news() -> None:
    assert (
        _first("WARNING: Exllama kernel is not installed, reset disable_exllama to True.") is None
    )
    assert _first("WARNING: flash-attn is not installed, using SDPA instead.") == (
        "harmless-warning"
    )


def test_an_app_reporting_a_missing_backend_in_curly_quotes() -> None:
    text = "Can't import SageAttention: No module named \u2018sageattention'"
    assert _first(text) == "backend-not-installed"


def test_a_title_naming_flash_attn_module_undefined_symbol() -> None:
    text = "ImportError: flash_attn_2_cuda undefined symbol after upgrading torch to 2.7"
    assert _first(text) == "flash-attn-built-for-other-torch"
