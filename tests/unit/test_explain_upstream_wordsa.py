"""Serving and training frameworks' own wordings (vLLM, SGLang, text-generation-inference,
TransformerEngine, LLaMA-Factory, axolotl, lmdeploy, DeepSpeed, unsloth) are read with the facts
they state when pasted as users paste them: inside a traceback or log line, hard-wrapped; and
near misses state nothing."""

from __future__ import annotations

from attn_doctor.explain.evidence_upstream import read_upstream


def test_vllm_bf16_refusal_reads_the_floor_and_this_gpu() -> None:
    up = read_upstream(
        "(EngineCore_0 pid=812) ValueError: Bfloat16 is only supported on GPUs with compute\n"
        "capability of at least 8.0. Your Tesla T4 GPU has compute capability 7.5. You can use\n"
        "float16 instead by explicitly setting the`dtype` flag in CLI, for example: --dtype=half."
    )
    assert "vllm" in up.projects
    assert up.required == (80, None)
    assert up.gpu_sms == (75,)
    assert up.dtypes_seen == ("bf16",)
    assert up.refusal


def test_vllm_head_size_and_fa_version_refusals() -> None:
    up = read_upstream(
        '  File "vllm/v1/attention/backends/flash_attn.py", line 57, in __init__\n'
        "ValueError: Head size 288 is not supported by FlashAttention. Supported head sizes\n"
        "are: [32, 64, 96, 128, 160, 192, 224, 256]. Set VLLM_ATTENTION_BACKEND=FLEX_ATTENTION"
    )
    assert up.head_dims == (288,)
    fa3 = read_upstream(
        "ERROR [fa_utils.py:64] Cannot use FA version 3 is not supported due to FA3 is only\n"
        "supported on devices with compute capability >= 8 excluding 8.6 and 8.9 and Blackwell\n"
        "archs (>=10)"
    )
    assert fa3.exact == (80, 90)
    assert fa3.backend == "flash_attn_3"


def test_sglang_backend_checks_read_their_gpu_ranges() -> None:
    up = read_upstream(
        "AssertionError: FlashAttention v3 Backend requires SM>=80 and SM<=90. Please use\n"
        "`--attention-backend flashinfer`."
    )
    assert up.required == (80, 90)
    trt = read_upstream(
        "ValueError: TRTLLM MHA backend for decode is only supported on Hopper (SM90),\n"
        "Blackwell (SM100) and (SM120) GPUs. Please use a different decode backend."
    )
    assert trt.exact == (90, 100, 120)


def test_framework_missing_and_floor_wordings() -> None:
    tgi = read_upstream(
        "ImportError: Flash Attention V2 is not installed.\n"
        "Use the official Docker image (ghcr.io/huggingface/text-generation-inference:latest)"
    )
    assert tgi.missing == (("flash-attn", "text-generation-inference"),)
    lf = read_upstream(
        "[WARNING|2025-03-01 10:00:00] llamafactory.model.model_utils.attention:73 >> "
        "torch>=2.1.1 is required for SDPA attention."
    )
    assert lf.needs == (("torch", "2.1.1"),)
    lm = read_upstream("<Triton> check failed!\ntriton>=3.0.0 is required. Found triton==2.3.1")
    assert lm.needs == (("triton", "3.0.0"),)


def test_harmless_framework_notices_are_harmless() -> None:
    for line in (
        "INFO 07-01 10:00:00 [cuda.py:252] Using Flash Attention backend on V1 engine.",
        "[TransformerEngine] WARNING: flash-attn may provide important feature support or\n"
        "performance improvement. Please install flash-attn >=2.1.1,<=2.8.1 by pip3 install",
        "Unsloth: Device does not support bfloat16. Will change to float16.",
    ):
        up = read_upstream(line)
        assert up.harmless, line
        assert not up.refusal, line


def test_near_misses_state_nothing() -> None:
    # another project's sentence around the same words
    assert read_upstream("Using Flash Attention backend on the V2 engine is planned") == (
        read_upstream("")
    )
    assert not read_upstream("FA2 is supported on devices with compute capability >= 8").refusal
    assert not read_upstream("Head size 288 is supported by FlashAttention.").head_dims
    assert not read_upstream("TRTLLM MHA backend works on Blackwell GPUs (SM100).").exact
