"""Bench's own minimal backend adapters, used only when ``attn_doctor.verify.ops`` is absent.

Same contract as verify's: tensors in layout (batch, seqlen, heads, head_dim); k and v may have
fewer heads (grouped-query attention) that divide q's. Imports torch: call only in a child
process (``attn_doctor.bench.worker``).
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

from attn_doctor.backends import BackendName

_FLEX_CACHE: dict[object, Any] = {}
"""Compiled flex_attention and block masks, built once per process (not per call)."""


def available_ops(device: str) -> tuple[BackendName, ...]:
    """Backends this torch can be asked to run on ``device`` (whether they work is checked
    separately, by a kernel launch)."""
    import torch

    names: list[BackendName] = []
    if device == "cpu":
        names += ["sdpa_math", "sdpa_cpu_fused"]
    else:
        names += ["sdpa_flash", "sdpa_mem_efficient"]
        if hasattr(torch.nn.attention.SDPBackend, "CUDNN_ATTENTION"):
            names.append("sdpa_cudnn")
        names.append("sdpa_math")
        for name, module in (
            ("flash_attn_2", "flash_attn"),
            ("flash_attn_3", "flash_attn_interface"),
            ("xformers", "xformers"),
        ):
            if importlib.util.find_spec(module) is not None:
                names.append(name)  # type: ignore[arg-type]
    if importlib.util.find_spec("torch.nn.attention.flex_attention") is not None:
        names.append("flex_attention")
    names.append("eager")
    return tuple(names)


def _sdpa(q: Any, k: Any, v: Any, *, causal: bool, which: str) -> Any:
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.functional import scaled_dot_product_attention

    backend = getattr(SDPBackend, which)
    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))
    extra: dict[str, Any] = {}
    if k.shape[2] != q.shape[2]:
        extra["enable_gqa"] = True
    with sdpa_kernel([backend]):
        out = scaled_dot_product_attention(qt, kt, vt, is_causal=causal, **extra)
    assert isinstance(out, torch.Tensor)
    return out.transpose(1, 2)


def _expand_kv(q: Any, t: Any) -> Any:
    groups = q.shape[2] // t.shape[2]
    return t if groups == 1 else t.repeat_interleave(groups, dim=2)


def eager_attention(q: Any, k: Any, v: Any, *, causal: bool) -> Any:
    """Plain PyTorch: materialises the (S × S) score matrix, like transformers' eager path."""
    import torch

    k, v = _expand_kv(q, k), _expand_kv(q, v)
    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))
    scores = torch.matmul(qt, kt.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if causal:
        s_q, s_k = scores.shape[-2], scores.shape[-1]
        mask = torch.ones(s_q, s_k, dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
    probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)
    return torch.matmul(probs, vt).transpose(1, 2)


def _flex(q: Any, k: Any, v: Any, *, causal: bool) -> Any:
    import torch
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    seqlen_q, seqlen_k = q.shape[1], k.shape[1]
    key = ("mask", causal, seqlen_q, seqlen_k, str(q.device))
    if key not in _FLEX_CACHE:
        if causal:

            def causal_mask(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
                return q_idx >= kv_idx

            _FLEX_CACHE[key] = create_block_mask(
                causal_mask, None, None, seqlen_q, seqlen_k, device=str(q.device)
            )
        else:
            _FLEX_CACHE[key] = None
    if "fn" not in _FLEX_CACHE:
        _FLEX_CACHE["fn"] = torch.compile(flex_attention, dynamic=False)
    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))
    extra: dict[str, Any] = {}
    if k.shape[2] != q.shape[2]:
        extra["enable_gqa"] = True
    out = _FLEX_CACHE["fn"](qt, kt, vt, block_mask=_FLEX_CACHE[key], **extra)
    return out.transpose(1, 2)


def attention_call(backend: BackendName, q: Any, k: Any, v: Any, *, causal: bool) -> Any:
    """Run ``backend`` once; returns the output in layout (batch, seqlen, heads, head_dim)."""
    match backend:
        case "sdpa_flash" | "sdpa_cpu_fused":
            return _sdpa(q, k, v, causal=causal, which="FLASH_ATTENTION")
        case "sdpa_mem_efficient":
            return _sdpa(q, k, v, causal=causal, which="EFFICIENT_ATTENTION")
        case "sdpa_cudnn":
            return _sdpa(q, k, v, causal=causal, which="CUDNN_ATTENTION")
        case "sdpa_math":
            return _sdpa(q, k, v, causal=causal, which="MATH")
        case "eager":
            return eager_attention(q, k, v, causal=causal)
        case "flex_attention":
            return _flex(q, k, v, causal=causal)
        case "flash_attn_2":
            from flash_attn import flash_attn_func

            return flash_attn_func(q, k, v, causal=causal)
        case "flash_attn_3":
            from flash_attn_interface import flash_attn_func as fa3_func

            out = fa3_func(q, k, v, causal=causal)
            return out[0] if isinstance(out, tuple) else out
        case "xformers":
            import xformers.ops as xops

            bias = xops.LowerTriangularMask() if causal else None
            return xops.memory_efficient_attention(
                q, _expand_kv(q, k), _expand_kv(q, v), attn_bias=bias
            )
        case _:
            raise NotImplementedError(f"bench has no adapter for {backend}")
