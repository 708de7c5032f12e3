"""attn-doctor: get a fast attention backend working on a GPU machine, and prove it.

The command line is ``attn-doctor`` (or ``python -m attn_doctor``). This package imports
nothing heavy at start-up: torch, transformers and the attention packages are only ever
imported in child processes or on demand by the library API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from attn_doctor.integrations.sage_attention import register_sageattention
    from attn_doctor.integrations.xformers_attention import register_xformers_attention
    from attn_doctor.loadtime.select import (
        Choice,
        best_attn_implementation,
        explain_choice,
        load_kwargs,
    )

from attn_doctor._version import __version__

# The library API, loaded on first access so that `import attn_doctor` (and the CLI) stay light.
_RUNTIME_NAMES = frozenset(
    (
        "Choice",
        "best_attn_implementation",
        "explain_choice",
        "load_kwargs",
        "register_sageattention",
        "register_xformers_attention",
    )
)
"""The library API, re-exported lazily from ``attn_doctor.loadtime`` (which is lazy itself)."""

__all__ = [
    "Choice",
    "__version__",
    "best_attn_implementation",
    "explain_choice",
    "load_kwargs",
    "register_sageattention",
    "register_xformers_attention",
]


def __getattr__(name: str) -> Any:
    if name not in _RUNTIME_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("attn_doctor.loadtime"), name)


def __dir__() -> list[str]:
    """The public API and the module's own dunders: not ``Any``, ``importlib`` & co."""
    return sorted({*__all__, *(n for n in globals() if n.startswith("__") and n.endswith("__"))})
