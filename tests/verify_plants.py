"""Test-only kernel adapters planted into the verify child with ``--adapter``.

Each has ``ops.attention_call``'s signature. They stand in for broken kernels: one that
crashes the process, one that hangs, one that returns NaN, one slightly wrong, one that
returns its input.
"""

from __future__ import annotations

import ctypes
import time
from typing import Any

from attn_doctor.verify.ops import eager_attention


def segfault(backend: str, q: Any, k: Any, v: Any, **kwargs: Any) -> Any:
    ctypes.string_at(0)  # reads address 0: SIGSEGV, as a broken extension would
    raise AssertionError("unreachable")


def hang(backend: str, q: Any, k: Any, v: Any, **kwargs: Any) -> Any:
    time.sleep(3600)
    raise AssertionError("unreachable")


def nan(backend: str, q: Any, k: Any, v: Any, **kwargs: Any) -> Any:
    out = eager_attention(q, k, v, **kwargs)
    return out * float("nan")


def slightly_wrong(backend: str, q: Any, k: Any, v: Any, **kwargs: Any) -> Any:
    # 1% off: far above fp32 rounding, and above what bf16 rounding explains for fwd.
    return eager_attention(q, k, v, **kwargs) * 1.01


def returns_query(backend: str, q: Any, k: Any, v: Any, **kwargs: Any) -> Any:
    return q


def correct(backend: str, q: Any, k: Any, v: Any, **kwargs: Any) -> Any:
    return eager_attention(q, k, v, **kwargs)


def warns_deprecation(backend: str, q: Any, k: Any, v: Any, **kwargs: Any) -> Any:
    # What torch 2.11's flex_attention did on an H200: a DeprecationWarning inside the run.
    import warnings

    warnings.warn("_compile is deprecated and will be removed", DeprecationWarning, stacklevel=1)
    return eager_attention(q, k, v, **kwargs)
