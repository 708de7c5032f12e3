"""The library side: pick and register attention implementations at model-load time.

``best_attn_implementation()``, ``explain_choice()`` and ``load_kwargs()`` live in
``attn_doctor.loadtime.select``; ``register_xformers_attention()`` in
``attn_doctor.integrations.xformers_attention``. Importing this package imports neither torch nor
transformers: the names below load their module on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from attn_doctor.integrations.sage_attention import register_sageattention
    from attn_doctor.integrations.xformers_attention import register_xformers_attention
    from attn_doctor.loadtime.frameworks import diffusers_backend, sglang_args, vllm_args
    from attn_doctor.loadtime.select import (
        Choice,
        best_attn_implementation,
        clear_caches,
        explain_choice,
        load_kwargs,
    )

_LAZY = {
    "Choice": "attn_doctor.loadtime.select",
    "best_attn_implementation": "attn_doctor.loadtime.select",
    "clear_caches": "attn_doctor.loadtime.select",
    "explain_choice": "attn_doctor.loadtime.select",
    "load_kwargs": "attn_doctor.loadtime.select",
    "register_xformers_attention": "attn_doctor.integrations.xformers_attention",
    "register_sageattention": "attn_doctor.integrations.sage_attention",
    "diffusers_backend": "attn_doctor.loadtime.frameworks",
    "vllm_args": "attn_doctor.loadtime.frameworks",
    "sglang_args": "attn_doctor.loadtime.frameworks",
}

__all__ = [
    "Choice",
    "best_attn_implementation",
    "clear_caches",
    "diffusers_backend",
    "explain_choice",
    "load_kwargs",
    "register_sageattention",
    "register_xformers_attention",
    "sglang_args",
    "vllm_args",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    """The public API and the module's own dunders: not ``Any``, ``importlib`` & co."""
    return sorted({*__all__, *(n for n in globals() if n.startswith("__") and n.endswith("__"))})
