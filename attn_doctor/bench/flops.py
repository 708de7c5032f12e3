"""FLOP counts, exactly as flash-attn's published benchmarks count them.

Source: Dao-AILab/flash-attention ``benchmarks/benchmark_flash_attention.py``, function
``flops(batch, seqlen, headdim, nheads, causal, mode)`` (read at commit 0469c727)::

    f = 4 * batch * seqlen**2 * nheads * headdim // (2 if causal else 1)
    return f if mode == "fwd" else (2.5 * f if mode == "bwd" else 3.5 * f)

Forward: two matmuls (Q·Kᵀ and P·V) of 2·S²·D multiply-adds each per head, so 4·B·H·S²·D;
causal masking halves it. Backward counts 2.5× the forward, forward+backward 3.5×. The count
is of *useful* work: a kernel that computes the masked half anyway gets no credit for it, so
the TFLOP/s of different backends are comparable. ``nheads`` is the number of *query* heads;
grouped-query attention (fewer key/value heads) does the same matmul work.
"""

from __future__ import annotations

from typing import Literal

Mode = Literal["fwd", "bwd", "fwd_bwd"]

BACKWARD_FACTOR = 2.5
"""flash-attn ``flops(mode="bwd")``: backward = 2.5 × forward."""
FWD_BWD_FACTOR = 3.5
"""flash-attn ``flops(mode="fwd_bwd")``: forward + backward = 3.5 × forward."""


def attention_flops(
    *, batch: int, seqlen: int, heads: int, head_dim: int, causal: bool, mode: Mode = "fwd"
) -> float:
    """Floating-point operations of one attention call (self-attention, seqlen_q == seqlen_k).

    Integer division for causal, as upstream does (``// 2``), then the mode factor.
    """
    for name, value in (
        ("batch", batch),
        ("seqlen", seqlen),
        ("heads", heads),
        ("head_dim", head_dim),
    ):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    forward = 4 * batch * seqlen**2 * heads * head_dim // (2 if causal else 1)
    match mode:
        case "fwd":
            return float(forward)
        case "bwd":
            return BACKWARD_FACTOR * forward
        case "fwd_bwd":
            return FWD_BWD_FACTOR * forward


def matmul_flops(m: int, n: int, k: int) -> float:
    """An (m×k)·(k×n) matrix product: m·n·k multiply-adds, 2·m·n·k FLOPs."""
    return 2.0 * m * n * k


def tflops_per_s(flops: float, seconds: float) -> float | None:
    """TFLOP/s, or None when the time is not a positive finite number."""
    if not seconds > 0.0 or seconds == float("inf"):
        return None
    return flops / seconds / 1e12
