"""FLOP counts: hand-computed values and flash-attn's own formula."""

from __future__ import annotations

import itertools

import pytest

from attn_doctor.bench.flops import attention_flops, matmul_flops, tflops_per_s


def upstream_flops(batch: int, seqlen: int, headdim: int, nheads: int, causal: bool, mode: str):  # type: ignore[no-untyped-def]
    """flash-attention benchmarks/benchmark_flash_attention.py ``flops`` (commit 0469c727),
    copied as the reference this project must agree with."""
    assert mode in ["fwd", "bwd", "fwd_bwd"]
    f = 4 * batch * seqlen**2 * nheads * headdim // (2 if causal else 1)
    return f if mode == "fwd" else (2.5 * f if mode == "bwd" else 3.5 * f)


def test_hand_computed_forward() -> None:
    # Two matmuls of 2·S²·D per head: 4 · B · H · S² · D.
    # B=2, S=1024, H=16, D=128: 4 · 2 · 16 · 1024² · 128 = 17,179,869,184.
    assert attention_flops(batch=2, seqlen=1024, heads=16, head_dim=128, causal=False) == (
        17_179_869_184
    )


def test_hand_computed_causal_backward_and_both() -> None:
    # B=1, S=4, H=1, D=2: 4·1·16·1·2 = 128 forward; causal 64; bwd 2.5× = 160; fwd+bwd 224.
    assert attention_flops(batch=1, seqlen=4, heads=1, head_dim=2, causal=False) == 128
    assert attention_flops(batch=1, seqlen=4, heads=1, head_dim=2, causal=True) == 64
    kw = {"batch": 1, "seqlen": 4, "heads": 1, "head_dim": 2, "causal": True}
    assert attention_flops(**kw, mode="bwd") == 160  # type: ignore[arg-type]
    assert attention_flops(**kw, mode="fwd_bwd") == 224  # type: ignore[arg-type]


def test_flash_attn_published_grid_matches_upstream_formula() -> None:
    # The whole default GPU grid: (32,512)…(1,16384), head dims 64/128, heads 2048/hd.
    pairs = [(32, 512), (16, 1024), (8, 2048), (4, 4096), (2, 8192), (1, 16384)]
    for (batch, seqlen), hd, causal, mode in itertools.product(
        pairs, (64, 128), (False, True), ("fwd", "bwd", "fwd_bwd")
    ):
        ours = attention_flops(
            batch=batch,
            seqlen=seqlen,
            heads=2048 // hd,
            head_dim=hd,
            causal=causal,
            mode=mode,  # type: ignore[arg-type]
        )
        assert ours == upstream_flops(batch, seqlen, hd, 2048 // hd, causal, mode)


def test_odd_shapes_use_upstream_integer_division() -> None:
    # 4·1·3²·1·1 = 36 -> causal 18; 4·1·1·1·1 = 4 -> causal 2 (integer division as upstream).
    assert attention_flops(batch=1, seqlen=3, heads=1, head_dim=1, causal=True) == 18
    assert upstream_flops(1, 3, 1, 1, True, "fwd") == 18


def test_rejects_empty_dimensions() -> None:
    with pytest.raises(ValueError, match="seqlen"):
        attention_flops(batch=1, seqlen=0, heads=1, head_dim=64, causal=False)


def test_matmul_and_rate() -> None:
    assert matmul_flops(8192, 8192, 8192) == 2 * 8192**3
    assert tflops_per_s(2e12, 2.0) == pytest.approx(1.0)
    assert tflops_per_s(1e12, 0.0) is None
    assert tflops_per_s(1e12, float("inf")) is None
