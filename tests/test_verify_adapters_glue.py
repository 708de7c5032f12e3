"""The GPU adapters' glue (unpad, cu_seqlens, re-pad, tuple returns), run on CPU.

flash-attn cannot run here (no GPU), so stand-in modules implement its documented Python API
(``flash_attn_func``/``flash_attn_varlen_func`` of flash-attn 2, 3 and 4) with torch's math
attention. What is tested is attn-doctor's side: the layout, the varlen bookkeeping and the
return types; the real kernels are checked by the gpu-marked tests.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from attn_doctor.verify.ops import attention_call, eager_attention

torch = pytest.importorskip("torch")


def _math(q: Any, k: Any, v: Any, *, causal: bool, scale: Any) -> Any:
    """(seqlen, heads, dim) or (batch, seqlen, heads, dim) attention via torch's math SDPA."""
    squeeze = q.dim() == 3
    if squeeze:
        q, k, v = q[None], k[None], v[None]
    groups = q.shape[2] // k.shape[2]
    k = k.repeat_interleave(groups, dim=2)
    v = v.repeat_interleave(groups, dim=2)
    out = torch.nn.functional.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=causal, scale=scale
    ).transpose(1, 2)
    return out[0] if squeeze else out


def _varlen(q: Any, k: Any, v: Any, cu_q: Any, cu_k: Any, *, causal: bool, scale: Any) -> Any:
    assert cu_q.dtype == torch.int32
    assert torch.equal(cu_q, cu_k)
    parts = []
    for i in range(len(cu_q) - 1):
        s, e = int(cu_q[i]), int(cu_q[i + 1])
        parts.append(_math(q[s:e], k[s:e], v[s:e], causal=causal, scale=scale))
    return torch.cat(parts, dim=0)


def _fa2() -> types.ModuleType:
    mod = types.ModuleType("flash_attn")

    def flash_attn_func(
        q: Any, k: Any, v: Any, softmax_scale: Any = None, causal: bool = False
    ) -> Any:
        return _math(q, k, v, causal=causal, scale=softmax_scale)

    # flash_attn/flash_attn_interface.py's parameter names (hopper/ uses the same ones).
    def flash_attn_varlen_func(
        q: Any,
        k: Any,
        v: Any,
        cu_seqlens_q: Any,
        cu_seqlens_k: Any,
        max_seqlen_q: int,
        max_seqlen_k: int,
        softmax_scale: Any = None,
        causal: bool = False,
    ) -> Any:
        assert max_seqlen_q == int((cu_seqlens_q[1:] - cu_seqlens_q[:-1]).max())
        return _varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, causal=causal, scale=softmax_scale)

    mod.flash_attn_func = flash_attn_func  # type: ignore[attr-defined]
    mod.flash_attn_varlen_func = flash_attn_varlen_func  # type: ignore[attr-defined]
    return mod


def _fa3() -> types.ModuleType:
    # flash-attn 3 releases that return (out, softmax_lse) from both functions.
    mod = types.ModuleType("flash_attn_interface")
    fa2 = _fa2()

    def flash_attn_func(*args: Any, **kwargs: Any) -> Any:
        return fa2.flash_attn_func(*args, **kwargs), None

    def flash_attn_varlen_func(*args: Any, **kwargs: Any) -> Any:
        return fa2.flash_attn_varlen_func(*args, **kwargs), None

    mod.flash_attn_func = flash_attn_func  # type: ignore[attr-defined]
    mod.flash_attn_varlen_func = flash_attn_varlen_func  # type: ignore[attr-defined]
    return mod


def _fa4() -> types.ModuleType:
    # flash_attn/cute/interface.py: keyword cu_seqlens_*, returns (out, lse).
    mod = types.ModuleType("flash_attn.cute")

    def flash_attn_func(
        q: Any, k: Any, v: Any, *, softmax_scale: Any = None, causal: bool = False
    ) -> Any:
        return _math(q, k, v, causal=causal, scale=softmax_scale), None

    def flash_attn_varlen_func(
        q: Any,
        k: Any,
        v: Any,
        qv: Any = None,
        *,
        cu_seqlens_q: Any,
        cu_seqlens_k: Any,
        max_seqlen_q: int,
        max_seqlen_k: int,
        softmax_scale: Any = None,
        causal: bool = False,
    ) -> Any:
        out = _varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, causal=causal, scale=softmax_scale)
        return out, None

    mod.flash_attn_func = flash_attn_func  # type: ignore[attr-defined]
    mod.flash_attn_varlen_func = flash_attn_varlen_func  # type: ignore[attr-defined]
    return mod


@pytest.fixture
def fake_flash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "flash_attn", _fa2())
    monkeypatch.setitem(sys.modules, "flash_attn_interface", _fa3())
    monkeypatch.setitem(sys.modules, "flash_attn.cute", _fa4())


@pytest.mark.usefixtures("fake_flash")
@pytest.mark.parametrize("backend", ["flash_attn_2", "flash_attn_3", "flash_attn_4"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("seqlens", [None, (24, 9, 17)])
def test_flash_adapters_unpad_and_repad_correctly(
    backend: str, causal: bool, seqlens: tuple[int, ...] | None
) -> None:
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(3, 24, 4, 32, generator=gen, dtype=torch.float64)
    k = torch.randn(3, 24, 2, 32, generator=gen, dtype=torch.float64)
    v = torch.randn(3, 24, 2, 32, generator=gen, dtype=torch.float64)
    q.requires_grad_(True)
    out = attention_call(backend, q, k, v, causal=causal, seqlens=seqlens)  # type: ignore[arg-type]
    ref = eager_attention(q, k, v, causal=causal, seqlens=seqlens)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-12)
    # Gradients flow back through the unpad/re-pad to the padded input layout.
    (grad,) = torch.autograd.grad(out.sum(), (q,))
    if seqlens is not None:
        assert grad[1, 9:].abs().max().item() == 0.0
        assert grad[1, :9].abs().max().item() > 0.0


# --- xformers: memory_efficient_attention's documented shapes and biases, in math ----------


class _LowerTriangularMask:
    pass


class _BlockDiagonalMask:
    causal = False

    def __init__(self, seqlens: list[int]) -> None:
        self.seqlens = seqlens

    @classmethod
    def from_seqlens(cls, q_seqlen: Any, kv_seqlen: Any = None, *, device: Any = None) -> Any:
        assert list(q_seqlen) == list(kv_seqlen)
        return cls(list(q_seqlen))


class _BlockDiagonalCausalMask(_BlockDiagonalMask):
    causal = True


def _memory_efficient_attention(
    q: Any, k: Any, v: Any, attn_bias: Any = None, p: float = 0.0, scale: Any = None
) -> Any:
    # [B, M, H, K], or [B, M, G, H, K] for grouped-query (K/V expanded over H).
    five = q.dim() == 5
    if five:
        b, m, g, h, d = q.shape
        assert k.stride(3) == 0, "GQA K/V must be expanded, not copied"
        q, k, v = (t.reshape(b, m, g * h, d) for t in (q, k, v))
    assert q.shape[2] == k.shape[2], "xformers 4-D inputs need equal heads"
    if isinstance(attn_bias, _BlockDiagonalMask):
        assert q.shape[0] == 1
        cu = torch.tensor(
            [0, *torch.tensor(attn_bias.seqlens).cumsum(0).tolist()], dtype=torch.int32
        )
        out = _varlen(q[0], k[0], v[0], cu, cu, causal=attn_bias.causal, scale=scale)[None]
    else:
        causal = isinstance(attn_bias, _LowerTriangularMask)
        out = _math(q, k, v, causal=causal, scale=scale)
    return out.reshape(*out.shape[:2], g, h, -1) if five else out


@pytest.fixture
def fake_xformers(monkeypatch: pytest.MonkeyPatch) -> None:
    attn_bias = types.ModuleType("xformers.ops.fmha.attn_bias")
    attn_bias.LowerTriangularMask = _LowerTriangularMask  # type: ignore[attr-defined]
    attn_bias.BlockDiagonalMask = _BlockDiagonalMask  # type: ignore[attr-defined]
    attn_bias.BlockDiagonalCausalMask = _BlockDiagonalCausalMask  # type: ignore[attr-defined]
    fmha = types.ModuleType("xformers.ops.fmha")
    fmha.attn_bias = attn_bias  # type: ignore[attr-defined]
    fmha.memory_efficient_attention = _memory_efficient_attention  # type: ignore[attr-defined]
    ops = types.ModuleType("xformers.ops")
    ops.fmha = fmha  # type: ignore[attr-defined]
    xformers = types.ModuleType("xformers")
    xformers.ops = ops  # type: ignore[attr-defined]
    for name, mod in (
        ("xformers", xformers),
        ("xformers.ops", ops),
        ("xformers.ops.fmha", fmha),
        ("xformers.ops.fmha.attn_bias", attn_bias),
    ):
        monkeypatch.setitem(sys.modules, name, mod)


@pytest.mark.usefixtures("fake_xformers")
@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("seqlens", [None, (24, 9, 17)])
def test_xformers_adapter_layouts(
    grad: bool, causal: bool, seqlens: tuple[int, ...] | None
) -> None:
    gen = torch.Generator().manual_seed(5)
    q = torch.randn(3, 24, 4, 32, generator=gen, dtype=torch.float64).requires_grad_(grad)
    k = torch.randn(3, 24, 2, 32, generator=gen, dtype=torch.float64)
    v = torch.randn(3, 24, 2, 32, generator=gen, dtype=torch.float64)
    out = attention_call("xformers", q, k, v, causal=causal, seqlens=seqlens)
    ref = eager_attention(q, k, v, causal=causal, seqlens=seqlens)
    assert torch.allclose(out, ref, atol=1e-12)
