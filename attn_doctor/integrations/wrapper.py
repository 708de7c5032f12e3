"""What every attention function attn-doctor registers with transformers shares.

transformers' ``AttentionInterface`` contract (``integrations/sdpa_attention.py``): the function
gets ``(module, query, key, value, attention_mask, dropout, scaling, is_causal, **kwargs)`` with
(batch, heads, seq, dim) tensors and returns ``(output, None)`` with (batch, seq, heads, dim)
output. Registration also puts transformers' SDPA mask builder under the same key
(``AttentionMaskInterface``): without it transformers builds no mask at all for an unknown key
and padded batches would attend to padding.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

AttentionFunction = Callable[..., "tuple[torch.Tensor, None]"]
"""transformers' attention-function contract."""

UNSUPPORTED_KWARGS: Mapping[str, str] = {
    "softcap": "`softcap`; use eager or flex_attention for this model",
    "s_aux": "attention sinks; use eager",
    "sinks": "attention sinks; use eager",
    "position_bias": "a learned position bias; use sdpa or eager for this model",
}
"""Model features none of these kernels implements, and what to use instead."""


def refuse_unsupported(key: str, kwargs: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` when the model passes a feature the kernel would silently drop."""
    for name, what in UNSUPPORTED_KWARGS.items():
        if kwargs.get(name) is not None:
            raise ValueError(f"attn_implementation={key!r} does not support {what}")


def register_attention(key: str, attention: AttentionFunction) -> None:
    """Register ``attention`` as ``attn_implementation=key`` with transformers. Idempotent."""
    from transformers import AttentionInterface

    AttentionInterface.register(key, attention)
    try:
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    except ImportError:  # transformers before the mask interface: masks are built per model
        return
    AttentionMaskInterface.register(key, sdpa_mask)


def is_registered(key: str) -> bool:
    """Whether ``attn_implementation=key`` is registered in this process.

    Never imports transformers: if it is not imported yet, nothing can have registered.
    """
    modeling_utils = sys.modules.get("transformers.modeling_utils")
    interface = getattr(modeling_utils, "AttentionInterface", None)
    mapping = getattr(interface, "_global_mapping", None)
    return isinstance(mapping, dict) and key in mapping
