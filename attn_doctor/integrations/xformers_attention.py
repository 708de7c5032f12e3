"""xformers' ``memory_efficient_attention`` as a transformers attention function.

transformers has no ``attn_implementation="xformers"``. After one call to
``register_xformers_attention()``, ``from_pretrained(..., attn_implementation="xformers")`` and
``from_config(..., attn_implementation="xformers")`` work for every model class that routes its
attention through ``AttentionInterface`` (``_supports_attention_backend = True``).

The function follows the contract of transformers' ``sdpa_attention_forward``
(``integrations/sdpa_attention.py``): query/key/value arrive as (batch, heads, seq, dim), the
output leaves as (batch, seq, heads, dim) with ``None`` for the attention weights; grouped-query
heads are expanded with ``module.num_key_value_groups``; the mask is the 4-D boolean (or
additive) mask that transformers' ``sdpa_mask`` builds, or ``None`` for plain causal attention.

xformers wants (batch, seq, heads, dim) ("BMHK") inputs. Causal attention without padding uses
``xformers.ops.fmha.attn_bias.LowerTriangularMask`` (no bias tensor); anything else becomes an
additive bias tensor of shape exactly (batch, heads, q_len, kv_len), in the query's dtype, cut
from storage whose last dimension is a multiple of 8 so that every stride is 16-byte aligned
(xformers' ``_check_bias_alignment``: "To use an attn_bias with a sequence length that is not a
multiple of 8, you need to ensure memory is aligned by slicing a bigger tensor").

torch and xformers are imported on first use, never at import of this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from attn_doctor.integrations.wrapper import (
    AttentionFunction,
    is_registered,
    refuse_unsupported,
    register_attention,
)

if TYPE_CHECKING:
    import torch

XFORMERS_KEY = "xformers"
"""The ``attn_implementation`` value this module registers."""

BIAS_ALIGNMENT = 8
"""Elements the bias storage's last dimension is padded to (16 bytes for fp16/bf16)."""

MemoryEfficientAttention = Callable[..., Any]
"""``xformers.ops.memory_efficient_attention(query, key, value, attn_bias=None, p=0.0,
scale=None)``."""


def _xformers_ops() -> tuple[MemoryEfficientAttention, Callable[[], object]]:
    try:
        from xformers.ops import memory_efficient_attention
        from xformers.ops.fmha.attn_bias import LowerTriangularMask
    except ImportError as exc:
        raise ImportError(
            "attn_implementation='xformers' needs the xformers package "
            f"({exc}); run `attn-doctor check` to see which xformers build fits this torch"
        ) from exc
    return memory_efficient_attention, LowerTriangularMask


def _repeat_kv(hidden: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(batch, kv_heads, seq, dim) -> (batch, kv_heads * n_rep, seq, dim), as transformers does."""
    if n_rep == 1:
        return hidden
    batch, kv_heads, seq, dim = hidden.shape
    expanded = hidden[:, :, None, :, :].expand(batch, kv_heads, n_rep, seq, dim)
    return expanded.reshape(batch, kv_heads * n_rep, seq, dim)


def make_bias_tensor(
    mask: torch.Tensor, *, batch: int, heads: int, q_len: int, kv_len: int, dtype: torch.dtype
) -> torch.Tensor:
    """An additive bias xformers accepts, from a 4-D boolean (True = attend) or additive mask.

    The result has shape (batch, heads, q_len, kv_len), the query's dtype, stride 1 in the last
    dimension and every other stride a multiple of ``BIAS_ALIGNMENT`` (broadcast dimensions
    have stride 0).
    """
    import torch

    mask = mask[:, :, :, :kv_len]
    if mask.dtype == torch.bool:
        # Like transformers' eager_mask: 0 where attended, the dtype's minimum elsewhere.
        values = torch.where(
            mask,
            torch.zeros((), dtype=dtype, device=mask.device),
            torch.tensor(torch.finfo(dtype).min, dtype=dtype, device=mask.device),
        )
    else:
        values = mask.to(dtype)
    mask_batch, mask_heads = values.shape[0], values.shape[1]
    padded = -(-kv_len // BIAS_ALIGNMENT) * BIAS_ALIGNMENT
    storage = torch.empty(
        (mask_batch, mask_heads, q_len, padded), dtype=dtype, device=values.device
    )
    storage[:, :, :, :kv_len] = values.expand(mask_batch, mask_heads, q_len, kv_len)
    return storage[:, :, :, :kv_len].expand(batch, heads, q_len, kv_len)


def make_xformers_attention(
    memory_efficient_attention: MemoryEfficientAttention | None = None,
    causal_bias: Callable[[], object] | None = None,
) -> AttentionFunction:
    """Build the attention function.

    Both arguments default to xformers' own ``memory_efficient_attention`` and
    ``LowerTriangularMask``, imported on the first call. Tests on machines without a GPU pass a
    stand-in with the same contract (xformers' kernels need CUDA).
    """

    # The positional signature is transformers' AttentionInterface contract.
    def xformers_attention_forward(  # noqa: PLR0917
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
        refuse_unsupported(XFORMERS_KEY, kwargs)
        cache = kwargs.get("cache")
        if cache is not None and type(cache).__name__ == "PagedAttentionCache":
            raise ValueError("attn_implementation='xformers' does not support a paged cache")

        mea, lower_triangular = memory_efficient_attention, causal_bias
        if mea is None or lower_triangular is None:
            real_mea, real_mask = _xformers_ops()
            mea = mea or real_mea
            lower_triangular = lower_triangular or real_mask

        n_rep = int(getattr(module, "num_key_value_groups", 1) or 1)
        key = _repeat_kv(key, n_rep)
        value = _repeat_kv(value, n_rep)

        batch, heads, q_len, _ = query.shape
        kv_len = key.shape[2]
        causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
        # Same rule as sdpa_attention_forward: is_causal only without a mask and past decoding.
        causal = bool(q_len > 1 and attention_mask is None and causal)
        if causal and kv_len > q_len:
            # Prefill into an empty static cache: the extra keys are unused slots (see sdpa).
            key = key[:, :, :q_len, :]
            value = value[:, :, :q_len, :]
            kv_len = q_len

        attn_bias: object
        if attention_mask is not None:
            attn_bias = make_bias_tensor(
                attention_mask,
                batch=batch,
                heads=heads,
                q_len=q_len,
                kv_len=kv_len,
                dtype=query.dtype,
            )
        elif causal:
            attn_bias = lower_triangular()
        else:
            attn_bias = None

        out = mea(
            query.transpose(1, 2),
            key.transpose(1, 2),
            value.transpose(1, 2),
            attn_bias=attn_bias,
            p=dropout,
            scale=scaling,
        )
        return out, None

    return xformers_attention_forward


xformers_attention_forward: AttentionFunction = make_xformers_attention()
"""The attention function registered by ``register_xformers_attention()``."""


def register_xformers_attention(attention: AttentionFunction | None = None) -> None:
    """Register ``attn_implementation="xformers"`` with transformers. Idempotent.

    xformers is imported on the first forward pass, not here. ``attention`` replaces the
    function (tests).
    """
    register_attention(XFORMERS_KEY, attention or xformers_attention_forward)


def is_xformers_registered() -> bool:
    """Whether ``attn_implementation="xformers"`` is registered in this process."""
    return is_registered(XFORMERS_KEY)
