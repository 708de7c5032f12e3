"""Classes and facts added for round ten's remaining misses (ZS, ZT, ZU), each from text in other
words than the batches', with a near miss where one applies."""

from __future__ import annotations

from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.evidence_runtime import RuntimeFacts
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_device import flash_attn_ck_build_on_rdna, gpu_generation_refused
from tests.unit.explain_answers import answers as _answers
from tests.unit.explain_answers import first as _first
from tests.unit.explain_answers import said as _said

KNOW = load_knowledge()


def test_fa2_right_padding_with_cache_is_a_feature_refusal() -> None:
    text = (
        "ValueError: You are attempting to perform batched generation with padding_side='right' "
        "this may lead to unexpected behaviour for Flash Attention version of Phi3. Make sure to "
        " call `tokenizer.padding_side  = 'left'` before tokenizing the input."
    )
    assert _first(text) == "backend-feature-unsupported"
    assert "use_cache = False" in _said(text)


def test_transformers_notices_in_other_wordings() -> None:
    for text in (
        "The model was loaded with use_flash_attention_2=True, which is deprecated and may be "
        'removed in a future release. Please use `attn_implementation="flash_attention_2"` '
        "instead.",
        "WhisperModel is using WhisperSdpaAttention, but `torch.nn.functional.scaled_dot_product"
        "_attention` does not support `output_attentions=True` or `layer_head_mask` not None. "
        "Falling back to the manual attention\nimplementation, but specifying the manual "
        "implementation will be required from Transformers version v5.0.0 onwards.",
    ):
        assert _first(text) == "harmless-warning", text


def test_flash_attention_2_without_a_visible_gpu_is_the_device() -> None:
    text = (
        "ValueError: FlashAttention2 has been toggled on, but it cannot be used due to the "
        "following error: Flash Attention 2 is not available on CPU. Please make sure torch can "
        "access a CUDA device."
    )
    assert _first(text) == "backend-needs-other-device"
    assert "backend-forced-package-missing" not in _answers(text)


def test_gpu_generation_refused_in_words() -> None:
    facts = TextFacts(
        lines=("ValueError: kernel='pallas' is unsupported on this GPU generation.",),
        error_classes=("ValueError",),
    )
    got = gpu_generation_refused(facts, KNOW)
    assert [a.class_id for a in got] == ["gpu-outside-backend-range"]
    assert "pallas" in got[0].title
    fp8 = (
        "RuntimeError: sparse_fp8_attn requires FP8 support, but gfx1100 does not support FP8. "
        "Use sparse_fp16_attn instead."
    )
    assert _first(fp8) == "gpu-outside-backend-range"
    assert "use sparse_fp16_attn instead" in _said(fp8)
    # a notice with no error is not a refusal
    notice = TextFacts(lines=("fused kernel not available on this device, using eager",))
    assert gpu_generation_refused(notice, KNOW) == []


def test_flash_attn_ck_build_on_radeon() -> None:
    log = (
        "FAILED: build/temp.linux-x86_64-cpython-312/csrc/flash_attn_ck/mha_bwd.o\n"
        "/opt/rocm/bin/hipcc -Icsrc/composable_kernel/include --offload-arch=gfx1201 -c\n"
        "fatal error: 'fmha_bwd.hpp' file not found"
    )
    assert _first(log) == "gpu-outside-backend-range"
    assert "FLASH_ATTENTION_TRITON_AMD_ENABLE=TRUE" in _said(log)
    # the same build for an Instinct GPU fails for another reason
    mi300 = TextFacts(
        lines=tuple(log.replace("gfx1201", "gfx942").splitlines()),
        runtime=RuntimeFacts(amd_targets=("gfx942",)),
    )
    assert flash_attn_ck_build_on_rdna(mi300, KNOW) == []


def test_flex_attention_autotune_with_no_choice_on_a_gpu() -> None:
    text = (
        "torch._inductor.exc.LoweringException: NoValidChoicesError: No choices to select, "
        "please consider adding ATEN into max_autotune_gemm_backends config\n"
        "  target: flex_attention\n"
        "GPU: NVIDIA GeForce RTX 4090"
    )
    assert _first(text) == "triton-attention-kernel-out-of-shared-memory"
    assert "kernel_options" in _said(text)
    backward = text.replace("target: flex_attention", "target: flex_attention_backward")
    assert "BLOCK_M1" in _said(backward)


def test_cudnn_fused_attention_refusals() -> None:
    te = (
        "RuntimeError: /workspace/TransformerEngine/transformer_engine/common/fused_attn/"
        "fused_attn_f16_arbitrary_seqlen.cu:412 in function operator(): cuDNN Error: "
        "[cudnn_frontend] Error: No execution plans built successfully."
    )
    assert _first(te) == "cudnn-too-old-for-fused-attention"
    prose = "With cuDNN 8.9.2 the F16_arbitrary_seqlen backend gives CUDNN_STATUS_NOT_SUPPORTED."
    assert _first(prose) == "cudnn-too-old-for-fused-attention"
    assert "8.9.2" in _said(prose)
    floor = (
        "cudnn._compiled_module.cudnnGraphNotSupportedError: paged K/V with ragged offsets "
        "requires cuDNN 9.7.0 or above"
    )
    assert _first(floor) == "cudnn-too-old-for-fused-attention"
    assert ">=9.7.0" in _said(floor)


def test_sdpa_debug_headers_mean_no_kernel_was_left() -> None:
    text = (
        "model.py:12: UserWarning: Flash attention kernel not used because: (Triggered "
        "internally at /pytorch/aten/src/ATen/native/transformers/cuda/sdp_utils.cpp:800.)\n"
        "model.py:12: UserWarning: CuDNN attention kernel not used because:"
    )
    assert _first(text) == "sdpa-no-available-kernel"


def test_transformers_window_flag_undefined_is_flash_attn_not_found() -> None:
    text = (
        '  File "modeling_qwen2.py", line 424, in forward\n'
        "    _flash_supports_window_size\n"
        "NameError: name '_flash_supports_window_size' is not defined"
    )
    assert _first(text) == "transformers-fa2-not-installed"


def test_pip_left_building_flash_attn() -> None:
    stuck = (
        "Collecting flash-attn\n  Using cached flash_attn-2.5.8.tar.gz (2.5 MB)\n"
        "Building wheels for collected packages: flash-attn"
    )
    assert "flash-attn-no-prebuilt-wheel" in _answers(stuck)
    done = stuck + "\n  Building wheel for flash-attn (setup.py) ... done\nSuccessfully built"
    assert _first(stuck.replace("Using cached flash_attn-2.5.8.tar.gz (2.5 MB)", "")) == (
        "flash-attn-no-prebuilt-wheel"
    )
    assert _first(done.replace("Using cached flash_attn-2.5.8.tar.gz (2.5 MB)", "")) is None


def test_xformers_triton_off_below_ampere_is_its_own_gate() -> None:
    text = "triton.is_available: False\n...\ngpu.compute_capability: 7.0\ngpu.name: Tesla V100"
    assert _first(text) == "harmless-warning"
    assert _first(text.replace("7.0", "8.6").replace("Tesla V100", "RTX 3090")) is None


def test_onnx_title_cut_after_the_opset() -> None:
    text = (
        "UnsupportedOperatorError: Exporting the operator 'aten::scaled_dot_product_attention' "
        "to ONNX opset version 18"
    )
    assert _first(text) == "torch-too-old-for-api"


def test_other_kernels_and_extensions_are_outside_scope() -> None:
    gemm = (
        "RuntimeError: CUDA error: no kernel image is available for execution on the device "
        "(at /src/csrc/quantization/marlin/marlin_gemm.cu:77)"
    )
    assert _first(gemm) is None
    # an attention kernel's own source keeps the answer
    assert _first(gemm.replace("quantization/marlin/marlin_gemm", "attention/paged_attn")) == (
        "cuda-no-kernel-image"
    )
    ext = (
        '  File "/usr/lib/python3/site-packages/simple_knn/__init__.py", line 3, in <module>\n'
        "    from . import _C\n"
        "ImportError: /usr/lib/python3/site-packages/simple_knn/_C.so: undefined symbol: "
        "_ZN3c106SymInt19promote_to_negativeEv"
    )
    assert _first(ext) is None


def test_flash_attn_release_without_a_wheel_for_this_torch() -> None:
    log = (
        "Requirement already satisfied: torch in ./venv/lib/python3.12/site-packages "
        "(2.8.0+cu128)\nCollecting flash-attn==2.7.4.post1\n"
        "Building wheels for collected packages: flash-attn"
    )
    assert _first(log) == "flash-attn-no-prebuilt-wheel"
    text = _said(log)
    assert "not torch 2.8" in text
    assert "flash-attn==2.8.3'" in text  # the first release the index lists with torch 2.8
    # a release that has a wheel for this torch: not this class, the general answer stays
    ok = log.replace("2.7.4.post1", "2.8.3")
    assert "not torch" not in _said(ok)
    # no release in the index has a wheel for this torch at all
    new = log.replace("2.8.0+cu128", "2.99.0+cu130").replace("==2.7.4.post1", "")
    assert "no flash-attn release in the index" in _said(new)
