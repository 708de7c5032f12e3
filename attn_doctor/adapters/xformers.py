"""xformers ``memory_efficient_attention``: the kernel call and the transformers integration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from attn_doctor.adapters.base import RecordAdapter, Registration
from attn_doctor.adapters.tensors import repad, unpad

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class XformersAdapter(RecordAdapter):
    """Block-diagonal biases for a padded batch; the 5-D layout for grouped-query heads."""

    @property
    def planner(self) -> str | None:
        return "attn_doctor.resolve.xformers:plan_xformers"

    @property
    def releases(self) -> str | None:
        return "attn_doctor.resolve.xformers:xformers_versions"

    @property
    def integration(self) -> Registration | None:
        from attn_doctor.integrations.xformers_attention import register_xformers_attention

        return register_xformers_attention

    def call(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        *,
        causal: bool,
        softmax_scale: float | None = None,
        seqlens: Sequence[int] | None = None,
    ) -> torch.Tensor:
        from xformers.ops import fmha

        seqlen, heads_q, dim = q.shape[1], q.shape[2], q.shape[3]
        heads_kv = k.shape[2]
        groups = heads_q // heads_kv
        bias: Any = None
        if seqlens is not None:
            # Padded batch: concatenate the real tokens into one sequence of batch 1 and give
            # xformers the block-diagonal structure.
            lens = list(seqlens)
            bias_cls = (
                fmha.attn_bias.BlockDiagonalCausalMask
                if causal
                else fmha.attn_bias.BlockDiagonalMask
            )
            try:
                bias = bias_cls.from_seqlens(lens, lens, device=q.device)
            except TypeError:  # releases before the device keyword
                bias = bias_cls.from_seqlens(lens, lens)
            q, k, v = (unpad(t, lens)[None] for t in (q, k, v))
        elif causal:
            bias = fmha.attn_bias.LowerTriangularMask()
        needs_grad = q.requires_grad or k.requires_grad or v.requires_grad
        if groups > 1 and not needs_grad:
            # Grouped-query attention: the 5-D BMGHK layout, K/V expanded (stride 0) over the
            # query heads of their group, as memory_efficient_attention's docstring prescribes.
            b, m = q.shape[0], q.shape[1]
            q = q.reshape(b, m, heads_kv, groups, dim)
            k = k[:, :, :, None, :].expand(b, m, heads_kv, groups, dim)
            v = v[:, :, :, None, :].expand(b, m, heads_kv, groups, dim)
        elif groups > 1:
            # That docstring: "MQA/GQA is an experimental feature supported only for the
            # forward pass". For training, K/V heads are repeated in the 4-D layout.
            k = k.repeat_interleave(groups, dim=2)
            v = v.repeat_interleave(groups, dim=2)
        out = fmha.memory_efficient_attention(q, k, v, attn_bias=bias, scale=softmax_scale)
        out = out.reshape(out.shape[0], out.shape[1], heads_q, dim)
        if seqlens is not None:
            out = repad(out[0], list(seqlens), seqlen)
        return out  # type: ignore[no-any-return]
