"""The calling convention every kernel adapter speaks, and the plain-PyTorch reference.

Layout (the flash-attn convention): ``q`` is ``(batch, seqlen, heads_q, head_dim)``; ``k`` and
``v`` are ``(batch, seqlen, heads_kv, head_dim)`` with ``heads_q % heads_kv == 0`` (grouped-query
attention: query head ``h`` reads key/value head ``h // (heads_q // heads_kv)``). Query and key
lengths are equal, so "causal" means the same thing (top-left = bottom-right aligned) to every
backend.

``seqlens`` describes a padded batch: element ``b`` holds ``seqlens[b]`` real tokens followed by
padding. Keys at padded positions are masked out; outputs at padded query positions are zero.

torch is imported inside the functions: only verify and bench children call them.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


class UnsupportedCaseError(Exception):
    """This backend does not implement the requested case (not a failure of the kernel)."""


def torch_module() -> Any:
    """``torch``, imported on first use."""
    return importlib.import_module("torch")


def padding_mask(seqlens: Sequence[int], seqlen: int, device: Any) -> torch.Tensor:
    """Boolean ``(batch, seqlen)``: True where the token is real."""
    torch = torch_module()
    lens = torch.tensor(list(seqlens), device=device)
    return torch.arange(seqlen, device=device)[None, :] < lens[:, None]  # type: ignore[no-any-return]


def bool_mask(
    seqlens: Sequence[int] | None, seqlen: int, *, causal: bool, device: Any
) -> torch.Tensor | None:
    """``(batch, 1, seqlen_q, seqlen_k)`` True = attend, or None when nothing is masked."""
    torch = torch_module()
    if seqlens is None:
        return None
    keep = padding_mask(seqlens, seqlen, device)[:, None, None, :]
    if causal:
        tril = torch.ones(seqlen, seqlen, dtype=torch.bool, device=device).tril()
        keep = keep & tril[None, None]
    return keep


def zero_padded_queries(out: torch.Tensor, seqlens: Sequence[int] | None) -> torch.Tensor:
    """``out`` with the rows at padded query positions set to zero."""
    if seqlens is None:
        return out
    keep = padding_mask(seqlens, out.shape[1], out.device)
    return out * keep[:, :, None, None].to(out.dtype)


def unpad(x: torch.Tensor, seqlens: Sequence[int]) -> torch.Tensor:
    """``(batch, seqlen, h, d)`` -> ``(total_tokens, h, d)`` keeping real tokens."""
    torch = torch_module()
    return torch.cat([x[b, :n] for b, n in enumerate(seqlens)], dim=0)  # type: ignore[no-any-return]


def repad(x: torch.Tensor, seqlens: Sequence[int], seqlen: int) -> torch.Tensor:
    """The inverse of ``unpad``: ``(total_tokens, h, d)`` -> ``(batch, seqlen, h, d)``."""
    torch = torch_module()
    rows = []
    start = 0
    for n in seqlens:
        part = x[start : start + n]
        pad = x.new_zeros((seqlen - n, *x.shape[1:]))
        rows.append(torch.cat([part, pad], dim=0))
        start += n
    return torch.stack(rows, dim=0)  # type: ignore[no-any-return]


def cu_seqlens(seqlens: Sequence[int], device: Any) -> torch.Tensor:
    """Cumulative sequence starts (int32), as the varlen entry points take them."""
    torch = torch_module()
    cu = [0]
    for n in seqlens:
        cu.append(cu[-1] + n)
    return torch.tensor(cu, dtype=torch.int32, device=device)  # type: ignore[no-any-return]


def first(result: Any) -> torch.Tensor:
    """The output of a kernel that returns ``out`` or ``(out, lse)`` by version."""
    if isinstance(result, tuple | list):
        return result[0]  # type: ignore[no-any-return]
    return result  # type: ignore[no-any-return]


def eager_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    softmax_scale: float | None = None,
    seqlens: Sequence[int] | None = None,
    reorder_ops: bool = False,
) -> torch.Tensor:
    """Plain PyTorch attention in the inputs' dtype (the "eager" backend, and the reference).

    ``reorder_ops`` scales ``k`` instead of ``q`` (same maths, different rounding), as
    flash-attn's ``attention_ref(..., reorder_ops=True)`` in tests/test_flash_attn.py does to
    measure what a plain PyTorch computation's rounding error is.
    """
    torch = torch_module()
    groups = q.shape[2] // k.shape[2]
    k = k.repeat_interleave(groups, dim=2)
    v = v.repeat_interleave(groups, dim=2)
    scale = softmax_scale if softmax_scale is not None else 1.0 / math.sqrt(q.shape[-1])
    if reorder_ops:
        scores = torch.einsum("bthd,bshd->bhts", q, k * scale)
    else:
        scores = torch.einsum("bthd,bshd->bhts", q * scale, k)
    seqlen = q.shape[1]
    keep = bool_mask(seqlens, seqlen, causal=causal, device=q.device)
    if keep is None and causal:
        keep = torch.ones(seqlen, seqlen, dtype=torch.bool, device=q.device).tril()
    if keep is not None:
        scores = scores.masked_fill(~keep, float("-inf"))
    attn = torch.softmax(scores, dim=-1).to(v.dtype)
    out = torch.einsum("bhts,bshd->bthd", attn, v)
    return zero_padded_queries(out, seqlens)
