"""Classes and facts added for round twelve's misses (ZY, ZZ, ZZA), each from text in other words
than the batches', with a near miss where one applies."""

from __future__ import annotations

from tests.unit.explain_answers import answers as _answers
from tests.unit.explain_answers import first as _first
from tests.unit.explain_answers import said as _said


def test_torch_mem_efficient_kernel_without_bf16_on_old_gpus() -> None:
    text = "RuntimeError: cutlassF: no kernel found to launch!\nGPU: Tesla T4 (sm_75)"
    assert _first(text) == "dtype-unsupported"
    assert "float16" in _said(text)
    # with xformers in the message its own entry answers
    assert _first(text + "\nxformers 0.0.28") != "dtype-unsupported"
    # an Ampere GPU has bf16 kernels: another cause
    assert "dtype-unsupported" not in _answers(
        "RuntimeError: cutlassF: no kernel found to launch!\nGPU 0: NVIDIA A100-SXM4-40GB"
    )


def test_an_import_error_saying_a_backend_is_required() -> None:
    assert _first("ImportError: flash_attn is required for this vision tower") == (
        "backend-not-installed"
    )


def test_a_backend_module_handle_left_none() -> None:
    text = "AttributeError: 'NoneType' object has no attribute 'memory_efficient_attention'"
    assert _first(text) == "backend-not-installed"
    assert "xformers" in _said(text)


def test_tgi_gpu_below_its_flash_attention_floor() -> None:
    text = "WARNING text_generation_launcher: GPU with CUDA capability 7 0 is not supported"
    assert _first(text) == "gpu-outside-backend-range"
    assert "7.0" in _said(text)


def test_flashinfer_gqa_group_size() -> None:
    text = "RuntimeError: Error in function 'operator()' at decode.cu:61: Unsupported group_size: 5"
    assert _first(text) == "backend-feature-unsupported"
    assert "5" in _said(text)


def test_an_undefined_symbol_capitalised() -> None:
    text = "ImportError: foo_cuda.so: Undefined symbol: _ZN3c1017RegisterOperatorsD1Ev"
    assert _first(text) == "extension-built-for-other-torch"


def test_build_tools_missing_under_no_build_isolation() -> None:
    text = (
        "$ pip install flash-attn --no-build-isolation\n"
        "  Preparing metadata (setup.py) ... error\n"
        "      ModuleNotFoundError: No module named 'wheel'"
    )
    assert _first(text) == "backend-dependency-missing"
    assert "pip install packaging wheel" in _said(text)
    # the same missing module outside a build is not this answer
    assert "backend-dependency-missing" not in _answers(
        "ModuleNotFoundError: No module named 'wheel'"
    )


def test_an_out_of_memory_build_shown_by_the_compilers_own_lines() -> None:
    text = (
        "csrc/flash_attn/src/flash_fwd_hdim256_bf16_sm80.cu(9): warning: something\n"
        "/src/csrc/cutlass/include/cute/layout.hpp(40): warning #20012-D: annotation\nKilled"
    )
    assert _first(text) == "flash-attn-build-oom"


def test_natten_builds_and_libraries() -> None:
    assert _first("RuntimeError: NATTEN is not compiled with CUDA! Please make sure …") == (
        "natten-operator-not-built"
    )
    assert _first(
        "ImportError: Failed to import libnatten. This could be due to an invalid/incomplete "
        "install."
    ) == ("extension-built-for-other-torch")


def test_a_feature_only_one_backend_has() -> None:
    text = "AssertionError: Attention sinks are only supported for TRTLLM backend."
    assert _first(text) == "backend-feature-unsupported"
    assert "TRTLLM" in _said(text)
    title = "AssertionError: Sinks are only supported in FlashAttention 3 (RTX 4090)"
    # FA3 needs Hopper and the GPU is Ada: the GPU's range comes first, the feature after
    assert _answers(title)[:2] == ["gpu-outside-backend-range", "backend-feature-unsupported"]
    # a word that is not an attention feature is not this answer
    assert "backend-feature-unsupported" not in _answers(
        "AssertionError: Exports are only supported for ONNX backend."
    )


def test_transformers_wordings_of_later_releases() -> None:
    assert (
        _first(
            "ValueError: GemmaForCausalLM does not support an attention implementation through "
            "torch's flex_attention."
        )
        == "transformers-model-no-flex-attention"
    )
    wrapped = (
        "ImportError: FlashAttention2 has been toggled on, but it cannot be used due to the "
        "following error:\nthe package for FlashAttention2 doesn't seem to be installed."
    )
    assert _first(wrapped) == "transformers-flash-package-missing"
    assert (
        _first(
            "ValueError: Your setup doesn't support bf16/gpu. You need torch>=1.10, using Ampere "
            "GPU with cuda>=11.0"
        )
        == "bf16-needs-ampere"
    )


def test_a_build_without_cuda_home() -> None:
    text = "RuntimeError: Cannot find CUDA_HOME. CUDA must be available to build the package."
    assert _first(text) == "build-cuda-home-not-found"
    assert "CUDA_HOME" in _said(text)
