"""Classes and facts added after round six, from upstream source and the misses ZG-ZI left:
each written in other words than the batches', with a near miss."""

from __future__ import annotations

from attn_doctor.explain import explain_text


def _answers(text: str) -> list[str]:
    return [e.match.symptom_id for e in explain_text(text, None).explanations]


def _fixes(text: str) -> str:
    first = explain_text(text, None).explanations[0]
    return " ".join(r.command for r in first.fix) + " " + (first.fix_note or "")


def test_a_host_compiler_too_old_in_each_wording() -> None:
    cpp17 = (
        "/env/lib/python3.11/site-packages/torch/include/c10/util/C++17.h:24:2: error: #error "
        "\"You're trying to build PyTorch with a too old version of Clang. We need Clang 9 or "
        'later."'
    )
    checked = (
        "RuntimeError: The current installed version of x86_64-conda-linux-gnu-c++ (7.3.0) is "
        "less than the minimum required version by CUDA 12.4 (7.0.0). Please make sure to use "
        "an adequate version of x86_64-conda-linux-gnu-c++ (>=7.0.0, <14.0)."
    )
    guard = (
        "/opt/rh/include/c++/4.9/bits/c++0x_warning.h:32:2: error: #error This file requires "
        "compiler and library support for the ISO C++ 2011 standard."
    )
    flag = "g++: error: unrecognized command line option '-std=c++17'"
    for text in (cpp17, checked, guard, flag):
        assert _answers(text)[0] == "build-host-compiler-too-old", text
    # the other end of torch's range is the compiler too new
    too_new = checked.replace("is less than the minimum", "is greater than the maximum").replace(
        " (7.0.0). Please", ". Please"
    )
    assert _answers(too_new)[0] == "nvcc-gcc-too-new"


def test_a_backend_said_not_to_support_gpus_older_than_ampere() -> None:
    text = "FlashAttention does not support GPUs older than Ampere, and this is a Tesla T4."
    assert _answers(text)[0] == "gpu-outside-backend-range"
    # a feature refused, with no GPU in the sentence, is not the GPU's range
    assert "gpu-outside-backend-range" not in _answers(
        "ValueError: FlashAttention does not support output_attentions"
    )


def test_the_math_attention_in_half_precision_on_the_cpu() -> None:
    text = (
        '  File "model.py", line 80, in forward\n'
        "    attn = attn.softmax(dim=-1)\n"
        "RuntimeError: \"softmax_lastdim_kernel_impl\" not implemented for 'Half'"
    )
    assert _answers(text)[0] == "dtype-unsupported"
    assert "cuda" in _fixes(text)
    # an op outside the attention, or a CUDA kernel, is not this
    assert "dtype-unsupported" not in _answers(
        "RuntimeError: \"LayerNormKernelImpl\" not implemented for 'Half'"
    )
    assert "dtype-unsupported" not in _answers(
        "RuntimeError: \"bmm_cuda\" not implemented for 'BFloat16'"
    )


def test_onnx_export_of_sdpa() -> None:
    low = (
        "torch.onnx.errors.UnsupportedOperatorError: Exporting the operator "
        "'aten::scaled_dot_product_attention' to ONNX opset version 11 is not supported. "
        "Support for this operator was added in version 14, try exporting with this version."
    )
    assert _answers(low)[0] == "backend-feature-unsupported"
    assert "opset_version=14" in _fixes(low)
    old = (
        "UnsupportedOperatorError: Exporting the operator 'aten::scaled_dot_product_attention' "
        "to ONNX opset version 17 is not supported. Please feel free to request support"
    )
    assert _answers(old)[0] == "torch-too-old-for-api"


def test_ggml_flash_attention_without_a_kernel() -> None:
    text = (
        "/src/llama.cpp/ggml/src/ggml-cuda/fattn-vec.cuh:412: fatal error\n"
        "libggml-base.so(ggml_abort+0x11d)\nSIGABRT: abort"
    )
    assert _answers(text)[0] == "head-dim-unsupported"
    assert "flash-attn off" in _fixes(text)
    # another ggml kernel's abort is not the attention's
    assert "head-dim-unsupported" not in _answers(
        "/src/llama.cpp/ggml/src/ggml-cuda/mmq.cuh:3020: fatal error\nSIGABRT: abort"
    )


def test_llama_cpp_quantized_v_cache_without_flash_attention() -> None:
    text = (
        "llama_init_from_model: failed to initialize the context: quantized V cache was "
        "requested, but this requires Flash Attention"
    )
    assert _answers(text)[0] == "backend-feature-unsupported"
    assert "--cache-type-v f16" in _fixes(text)


def test_cudnn_attention_missing_one_of_cudnns_libraries() -> None:
    text = (
        "Could not load library libcudnn_graph.so.9. Error: libcudnn_graph.so.9: cannot open "
        "shared object file: No such file or directory\n"
        '  File "train.py", line 9, in <module>\n'
        "    out = F.scaled_dot_product_attention(q, k, v)"
    )
    assert _answers(text)[0] == "backend-dependency-missing"
    # the same library missing for a convolution is not an attention problem
    conv = text.replace("F.scaled_dot_product_attention(q, k, v)", "self.conv(x)")
    assert "backend-dependency-missing" not in _answers(conv)


def test_an_attention_bias_the_kernel_cannot_read_aligned() -> None:
    text = "RuntimeError: attn_bias is not correctly aligned (strideH). attn_bias.stride(1) = 77"
    assert _answers(text)[0] == "attn-bias-not-aligned"
    assert "[..., :N]" in _fixes(text)
