"""SageAttention: ``sageattn`` on the common layout, and its transformers integration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from attn_doctor.adapters.base import RecordAdapter, Registration
from attn_doctor.adapters.tensors import UnsupportedCaseError, first

if TYPE_CHECKING:
    import torch

SAGE_HEAD_DIMS = (64, 96, 128)
"""sageattention 1.0.x asserts these; 2.x pads to 64 or 128 and refuses more (core.py)."""


@dataclass(frozen=True)
class SageAdapter(RecordAdapter):
    """Inference only (sageattention/core.py has no backward); no attention mask (1.0.x has
    none and 2.x's ``sageattn`` drops it). ``k`` is cloned: 1.0.x's ``smooth_k`` subtracts the
    key mean from the caller's tensor in place."""

    @property
    def planner(self) -> str | None:
        return "attn_doctor.resolve.sage:plan_sage"

    @property
    def integration(self) -> Registration | None:
        from attn_doctor.integrations.sage_attention import register_sageattention

        return register_sageattention

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
        if seqlens is not None:
            raise UnsupportedCaseError("sageattn takes no attention mask (padded batch)")
        if q.shape[-1] not in SAGE_HEAD_DIMS:
            raise UnsupportedCaseError(
                f"sageattn supports head dims 64, 96 and 128, not {q.shape[-1]}"
            )
        if q.requires_grad or k.requires_grad or v.requires_grad:
            raise NotImplementedError("SageAttention is inference-only (no backward pass)")
        from sageattention import sageattn

        out = sageattn(
            q, k.clone(), v, tensor_layout="NHD", is_causal=causal, sm_scale=softmax_scale
        )
        return first(out)
