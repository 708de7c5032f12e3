"""Wordings added from upstream sources (flash-attn 2.x/FA4, torch SDPA and inductor, Triton,
FlashInfer, transformers, diffusers, ComfyUI, kernels) are read with their facts when pasted as
users paste them (inside a traceback line, hard-wrapped), and near misses are not."""

from __future__ import annotations

from attn_doctor.explain.evidence_upstream import read_upstream


def test_flash_attn_ampere_check_inside_a_traceback_line() -> None:
    up = read_upstream(
        '  File "flash_attn_interface.py", line 51, in _flash_attn_forward\n'
        "RuntimeError: FlashAttention only supports Ampere GPUs or newer."
    )
    assert up.refusal
    assert up.required == (80, None)
    assert "flash-attn" in up.projects


def test_flash_attn_backward_head_dim_hard_wrapped() -> None:
    up = read_upstream(
        "RuntimeError: FlashAttention backward for head dim 256 with dropout, or head dim 224\n"
        "with/without dropout requires A100/A800 or H100/H800"
    )
    assert up.exact == (80, 90)
    assert up.backend == "flash_attn_2"


def test_flash_attn_forward_head_max_is_read_from_the_message() -> None:
    up = read_upstream(
        "RuntimeError: FlashAttention forward only supports head dimension at most 256"
    )
    assert up.head_rule == "at most 256"


def test_fa4_fp8_needs_sm100() -> None:
    up = read_upstream(
        "AssertionError: FP8 is only supported on SM100 (compute capability 10.x) for FA4 CuTe."
    )
    assert up.required == (100, 103)
    assert up.dtypes_seen == ("fp8",)
    assert up.backend == "flash_attn_4"


def test_triton_fp8_on_ampere_old_and_new_wordings() -> None:
    old = read_upstream("AssertionError: fp8e4nv data type is not supported on CUDA arch < 89")
    new = read_upstream(
        "ValueError: type fp8e4nv not supported in this architecture. The supported fp8 dtypes"
        " are ('fp8e4b15', 'fp8e5')"
    )
    for up in (old, new):
        assert up.required == (89, None)
        assert up.dtypes_seen == ("fp8",)


def test_inductor_gpu_too_old_reads_floor_and_gpu() -> None:
    up = read_upstream(
        "torch._dynamo.exc.BackendCompilerFailed: backend='inductor' raised:\n"
        "RuntimeError: Found Tesla P100-PCIE-16GB which is too old to be supported by the triton"
        " GPU compiler, which is used as the backend. Triton only supports devices of CUDA\n"
        "Capability >= 7.0, but your device is of CUDA capability 6.0"
    )
    assert up.required == (70, None)
    assert up.gpu_sms == (60,)


def test_flashinfer_jit_cache_mismatch_and_transformers_floor() -> None:
    up = read_upstream(
        "RuntimeError: flashinfer-jit-cache version (0.4.1+cu128) does not match flashinfer"
        " version (0.5.2). Please install the same version of both packages."
    )
    assert up.built_for == (("flashinfer-jit-cache", "0.4.1+cu128", "0.5.2"),)
    up = read_upstream(
        "ImportError: FlashAttention2 has been toggled on, but it cannot be used due to the"
        " following error: you need flash_attn package version to be greater or equal than"
        " 2.1.0. Detected version 1.0.9."
    )
    assert up.needs == (("flash-attn", "2.1.0"),)


def test_comfyui_start_up_lines_are_harmless_only_on_their_own_line() -> None:
    up = read_upstream("Total VRAM 24564 MB\nUsing sage attention\nPython version: 3.12")
    assert up.harmless
    assert not up.refusal
    assert not read_upstream("Error: not Using sage attention here, failed").harmless


def test_near_misses_are_not_read() -> None:
    # flash-attn's own words differ: "must have a head_size that is a multiple of 8" only
    assert not read_upstream("the head_size must be a multiple of 16").refusal
    # "Supported: 8.x, ..." is the forward check, not the 9.x one
    up = read_upstream("Unsupported compute capability. Supported: 8.x, 9.x, 10.x, 11.x, 12.x")
    assert up.required == (80, None)
    assert not read_upstream("bfloat16 is supported on Ampere GPUs or newer").refusal
    assert not read_upstream("Query, key, and value must be on the same device.").refusal


def test_backquotes_in_a_wording_are_optional_as_markdown_drops_them() -> None:
    from attn_doctor.explain.evidence_upstream import read_upstream

    plain = read_upstream(
        "Sliding Window Attention is enabled but not implemented for sdpa; unexpected results "
        "may be encountered."
    )
    quoted = read_upstream(
        "Sliding Window Attention is enabled but not implemented for `sdpa`; unexpected results "
        "may be encountered."
    )
    assert plain.harmless
    assert quoted.harmless
