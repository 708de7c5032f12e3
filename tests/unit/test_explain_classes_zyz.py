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


# --- round thirteen's misses (ZZB) ----------------------------------------------------------


def test_llava_training_warning_and_triton_amd_targets() -> None:
    text = (
        "UserWarning: Flash attention is only supported on A100 or H100 GPU during training due "
        "to head dim > 64 backward."
    )
    assert _first(text) == "gpu-outside-backend-range"
    assert "train.py" in _said(text)
    amd = "loc(\"attention.py\":12:0): error: unsupported target: 'gfx1010'"
    assert _first(amd) == "gpu-outside-backend-range"
    assert "gfx1010" in _said(amd)


def test_an_optional_backend_not_found_and_replaced_is_a_notice() -> None:
    assert _first("xformers not found, use sdpa instead") == "harmless-warning"
    # an error after it is not a notice
    assert _first(
        "xformers not found, use sdpa instead\nRuntimeError: CUDA error: out of memory"
    ) != ("harmless-warning")


def test_flash_attn_optional_extension_told_in_words() -> None:
    assert _first("error: no package 'rotary_emb' after pip install flash-attn") == (
        "flash-attn-extension-missing"
    )


def test_a_missing_backend_module_comes_before_its_gpu_range() -> None:
    text = (
        "GPU: Tesla V100-SXM2-32GB\n    from flash_attn.utils.distributed import all_gather\n"
        "ModuleNotFoundError: No module named 'flash_attn'"
    )
    found = _answers(text)
    assert found[0] == "flash-attn-not-installed"
    assert "gpu-outside-backend-range" in found


def test_deepspeed_sparse_attention_and_triton() -> None:
    text = (
        "ImportError: cannot import name 'Softmax' from 'deepspeed.ops.sparse_attention' "
        "(/usr/lib/python3/site-packages/deepspeed/ops/sparse_attention/__init__.py)"
    )
    assert _first(text) == "triton-version-mismatch"
    assert "triton==1.0.0" in _said(text)


def test_later_fixes_cc_abbreviation_mlir_error_and_cudnn_softmax_node() -> None:
    text = (
        "triton-windows 3.3 needs CC 8.0 or above. On my GeForce RTX 2060 it fails with "
        "error: 'tt.fp_to_fp' op operand #0 must be floating-point"
    )
    assert _first(text) == "gpu-outside-backend-range"
    assert "sm_80" in _said(text)
    te = (
        "RuntimeError: transformer_engine/common/fused_attn/fused_attn_f16_arbitrary_seqlen.cu:4"
        "19 in function operator(): cuDNN Error: CompositeSoftmaxNode can only output certain "
        "combinations of stats"
    )
    assert _first(te) == "cudnn-too-old-for-fused-attention"
