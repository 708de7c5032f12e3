"""flash-attn 2, 3 and 4: one adapter, the module from each record.

The three generations export ``flash_attn_func`` / ``flash_attn_varlen_func`` from the record's
first module (``flash_attn``, ``flash_attn_interface``, ``flash_attn.cute``) with the
(batch, seqlen, heads, dim) layout and the same keyword names of the varlen call.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from attn_doctor.adapters.base import RecordAdapter
from attn_doctor.adapters.tensors import cu_seqlens, first, repad, unpad

if TYPE_CHECKING:
    import torch


_PLANNER_MODULES = {
    "flash_attn_2": "attn_doctor.resolve.flash_attn",
    "flash_attn_3": "attn_doctor.resolve.flash_attn_3",
    "flash_attn_4": "attn_doctor.resolve.flash_attn_4",
}


@dataclass(frozen=True)
class FlashAttnAdapter(RecordAdapter):
    """``flash_attn_func`` (or ``flash_attn_varlen_func`` for a padded batch)."""

    @property
    def planner(self) -> str | None:
        return f"{_PLANNER_MODULES[self.record.name]}:plan_{self.record.name}"

    @property
    def releases(self) -> str | None:
        return f"{_PLANNER_MODULES[self.record.name]}:{self.record.name}_versions"

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
        module = importlib.import_module(self.record.modules[0])
        if seqlens is None:
            return first(
                module.flash_attn_func(q, k, v, softmax_scale=softmax_scale, causal=causal)
            )
        cu = cu_seqlens(seqlens, q.device)
        out = module.flash_attn_varlen_func(
            unpad(q, seqlens),
            unpad(k, seqlens),
            unpad(v, seqlens),
            cu_seqlens_q=cu,
            cu_seqlens_k=cu,
            max_seqlen_q=max(seqlens),
            max_seqlen_k=max(seqlens),
            softmax_scale=softmax_scale,
            causal=causal,
        )
        return repad(first(out), seqlens, q.shape[1])
