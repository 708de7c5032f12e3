"""``attn_implementation="sageattention"``: SageAttention behind transformers' AttentionInterface.

SageAttention (thu-ml/SageAttention) quantises Q and K to INT8 (and P, V to FP8 or FP16): a
deliberate, inference-only choice, never made automatically. ``register_sageattention()``
registers the function; the runtime then accepts ``ATTN_DOCTOR_BACKEND=sageattention``.
What it refuses, it refuses loudly rather than silently computing something else:
- a padding mask (``sageattn`` takes no mask; 2.x's top-level function drops it silently),
- a backward pass (there is none),
- soft-capping, sinks, dropout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from attn_doctor.integrations.wrapper import (
    AttentionFunction,
    refuse_unsupported,
    register_attention,
)

if TYPE_CHECKING:
    import torch

SAGE_KEY = "sageattention"


def make_sage_attention(sageattn: Callable[..., Any] | None = None) -> AttentionFunction:
    """Build the attention function (``sageattn`` defaults to the package's, imported on the
    first call; tests on machines without a GPU pass a stand-in with the same contract)."""

    # The positional signature is transformers' AttentionInterface contract.
    def sage_attention_forward(  # noqa: PLR0917
        module: torch.nn.Module,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None,
        dropout: float = 0.0,
        scaling: float | None = None,
        is_causal: bool | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, None]:
        refuse_unsupported(SAGE_KEY, kwargs)
        if dropout:
            raise ValueError("attn_implementation='sageattention' has no attention dropout")
        if query.requires_grad or key.requires_grad or value.requires_grad:
            raise ValueError(
                "attn_implementation='sageattention' is inference-only (no backward pass); "
                "use sdpa for training"
            )
        q_len, kv_len = query.shape[2], key.shape[2]
        causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
        if attention_mask is not None:
            # A mask that only encodes causality (no padding) can be dropped; anything else
            # would be silently ignored by sageattn, so refuse it.
            mask = (
                attention_mask.bool()
                if attention_mask.dtype.is_floating_point is False
                else (attention_mask == 0)
            )
            full = mask[..., :q_len, :kv_len]
            tril = full.new_ones(q_len, kv_len).tril(kv_len - q_len)
            if not bool((full == tril).all()):
                raise ValueError(
                    "attn_implementation='sageattention' takes no padding mask; run "
                    "unpadded batches (batch size 1 or equal lengths) or use sdpa"
                )
            causal = True
        fn = sageattn if sageattn is not None else _package_sageattn()
        out = fn(
            query,
            key.clone(),  # sageattention 1.0.x subtracts the key mean in place
            value,
            tensor_layout="HND",
            is_causal=bool(causal and q_len > 1),
            sm_scale=scaling,
        )
        if isinstance(out, tuple):
            out = out[0]
        return out.transpose(1, 2).contiguous(), None

    return sage_attention_forward


def _package_sageattn() -> Callable[..., Any]:
    from sageattention import sageattn

    return sageattn  # type: ignore[no-any-return]


sage_attention_forward: AttentionFunction = make_sage_attention()
"""The function ``register_sageattention()`` registers."""


def register_sageattention(attention: AttentionFunction | None = None) -> None:
    """Register ``attn_implementation="sageattention"`` with transformers. Idempotent."""
    register_attention(SAGE_KEY, attention or sage_attention_forward)
