"""FlashInfer: its single-request prefill on the common layout.

``flashinfer.single_prefill_with_kv_cache(q, k, v, causal=..., kv_layout="NHD",
sm_scale=...)`` takes one request: ``q`` is ``[qo_len, num_qo_heads, head_dim]``, ``k``/``v``
``[kv_len, num_kv_heads, head_dim]`` (flashinfer/prefill.py@0.7.4), grouped-query heads
included. A batch (padded or not) is run one request at a time on its real tokens, which is
what a serving engine's ragged batch holds. Prefill only: there is no backward pass.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from attn_doctor.adapters.base import RecordAdapter
from attn_doctor.adapters.tensors import UnsupportedCaseError, repad, torch_module

if TYPE_CHECKING:
    import torch

FLASHINFER_HEAD_DIMS = (64, 128, 256)
"""Head dims with prebuilt prefill kernels (flashinfer/utils.py@0.7.4
is_fa3_prefill_head_dim_supported); others compile on first use (not verified here)."""


@dataclass(frozen=True)
class FlashInferAdapter(RecordAdapter):
    """``single_prefill_with_kv_cache`` per request; installed from the package index."""

    @property
    def planner(self) -> str | None:
        return "attn_doctor.resolve.flashinfer:plan_flashinfer"

    @property
    def releases(self) -> str | None:
        return "attn_doctor.resolve.flashinfer:flashinfer_versions"

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
        if q.shape[-1] not in FLASHINFER_HEAD_DIMS:
            raise UnsupportedCaseError(
                f"FlashInfer's prebuilt prefill takes head dims 64, 128 and 256, not {q.shape[-1]}"
            )
        if q.requires_grad or k.requires_grad or v.requires_grad:
            raise NotImplementedError("FlashInfer's prefill is inference-only (no backward pass)")
        prefill = importlib.import_module("flashinfer").single_prefill_with_kv_cache
        torch = torch_module()
        lens = list(seqlens) if seqlens is not None else [q.shape[1]] * q.shape[0]
        outs = [
            prefill(
                q[b, :n].contiguous(),
                k[b, :n].contiguous(),
                v[b, :n].contiguous(),
                causal=causal,
                kv_layout="NHD",
                sm_scale=softmax_scale,
            )
            for b, n in enumerate(lens)
        ]
        return repad(torch.cat(outs, dim=0), lens, q.shape[1])
