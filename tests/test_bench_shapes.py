"""Default shapes: flash-attn's published grid on GPU, the small grid on CPU."""

from __future__ import annotations

import pytest

from attn_doctor.bench.shapes import build_shapes, parse_seqlens


def test_gpu_default_is_flash_attn_benchmark_grid() -> None:
    shapes = build_shapes(device="cuda")
    # benchmark_flash_attention.py: 6 (batch, seqlen) pairs × head dims 64/128 × causal.
    assert len(shapes) == 6 * 2 * 2
    pairs = sorted({(s.batch, s.seqlen) for s in shapes}, key=lambda p: p[1])
    assert pairs == [(32, 512), (16, 1024), (8, 2048), (4, 4096), (2, 8192), (1, 16384)]
    assert {(s.head_dim, s.heads) for s in shapes} == {(64, 32), (128, 16)}
    assert {s.causal for s in shapes} == {False, True}
    assert {s.dtype for s in shapes} == {"fp16"}
    assert all(s.kv_heads == s.heads for s in shapes)


def test_cpu_default_is_small() -> None:
    shapes = build_shapes(device="cpu")
    assert sorted({s.seqlen for s in shapes}) == [128, 256, 512, 1024]
    assert {s.dtype for s in shapes} == {"fp32", "bf16"}
    assert {(s.batch, s.heads, s.head_dim) for s in shapes} == {(1, 8, 64)}


def test_user_shape_keeps_flash_attn_batch_rule_on_gpu() -> None:
    shapes = build_shapes(
        device="cuda", seqlens=[4096], head_dims=[128], causal=True, dtypes=["bf16"], kv_heads=4
    )
    (shape,) = shapes
    assert (shape.batch, shape.heads, shape.kv_heads, shape.causal) == (4, 16, 4, True)


def test_kv_heads_must_divide_heads() -> None:
    with pytest.raises(ValueError, match="divide"):
        build_shapes(device="cpu", heads=8, kv_heads=3)


def test_parse_seqlens() -> None:
    assert parse_seqlens("512, 1k,2K,16k") == (512, 1024, 2048, 16384)
    with pytest.raises(ValueError, match="'abc'"):
        parse_seqlens("512,abc")
    with pytest.raises(ValueError, match="no sequence"):
        parse_seqlens(" , ")
