"""Backend call adapters: one calling convention for every attention kernel attn-doctor can launch.

Layout (the flash-attn convention): ``q`` is ``(batch, seqlen, heads_q, head_dim)``; ``k`` and
``v`` are ``(batch, seqlen, heads_kv, head_dim)`` with ``heads_q % heads_kv == 0`` (grouped-query
attention: query head ``h`` reads key/value head ``h // (heads_q // heads_kv)``). Query and key
lengths are equal, so "causal" means the same thing (top-left = bottom-right aligned) to every
backend.

``seqlens`` describes a padded batch: element ``b`` holds ``seqlens[b]`` real tokens followed by
padding. Keys at padded positions are masked out; outputs at padded query positions are zero.
Backends with a variable-length entry point (flash-attn ``*_varlen_func``, xformers block-diagonal
biases) are called through it on the unpadded tokens; the others get a boolean mask.

This module imports torch and the backends lazily, inside functions; callers are the verify and
bench child processes. Used by ``attn_doctor.verify.kernels`` and ``attn_doctor.bench``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from attn_doctor.backends import BACKEND_NAMES, BACKENDS, BackendName

if TYPE_CHECKING:
    import torch


def _kernel_backends() -> tuple[BackendName, ...]:
    return tuple(n for n in BACKEND_NAMES if BACKENDS[n].verify.kind == "kernel")


KERNEL_BACKENDS: tuple[BackendName, ...] = _kernel_backends()
"""Backends that launch an attention kernel of their own (their record's verify kind)."""

CPU_BACKENDS: frozenset[BackendName] = frozenset(
    n for n in KERNEL_BACKENDS if BACKENDS[n].verify.cpu
)
"""Backends with a CPU implementation (their record's ``verify.cpu``)."""


def max_head_dim(backend: BackendName) -> int:
    """Largest head dim the kernel check runs: the record's verify limit, else its own limit
    (at most 256, the largest any flash kernel takes), else 256."""
    record = BACKENDS[backend]
    if record.verify.max_head_dim is not None:
        return record.verify.max_head_dim
    return min(record.max_head_dim or 256, 256)


class UnsupportedCaseError(Exception):
    """This backend does not implement the requested case (not a failure of the kernel)."""


def _torch() -> Any:
    return importlib.import_module("torch")


def _sdpa_backend_enum(backend: BackendName) -> Any:
    """The ``SDPBackend`` member that forces this kernel (its record's ``sdpa_kernel``)."""
    from torch.nn.attention import SDPBackend

    kernel = BACKENDS[backend].sdpa_kernel
    if kernel is None:
        raise ValueError(f"{backend} is not an SDPA kernel")
    return getattr(SDPBackend, kernel)


def padding_mask(seqlens: Sequence[int], seqlen: int, device: Any) -> torch.Tensor:
    """Boolean ``(batch, seqlen)``: True where the token is real."""
    torch = _torch()
    lens = torch.tensor(list(seqlens), device=device)
    return torch.arange(seqlen, device=device)[None, :] < lens[:, None]  # type: ignore[no-any-return]


def _bool_mask(
    seqlens: Sequence[int] | None, seqlen: int, *, causal: bool, device: Any
) -> torch.Tensor | None:
    """``(batch, 1, seqlen_q, seqlen_k)`` True = attend, or None when nothing is masked."""
    torch = _torch()
    if seqlens is None:
        return None
    keep = padding_mask(seqlens, seqlen, device)[:, None, None, :]
    if causal:
        tril = torch.ones(seqlen, seqlen, dtype=torch.bool, device=device).tril()
        keep = keep & tril[None, None]
    return keep


def _zero_padded_queries(out: torch.Tensor, seqlens: Sequence[int] | None) -> torch.Tensor:
    if seqlens is None:
        return out
    keep = padding_mask(seqlens, out.shape[1], out.device)
    return out * keep[:, :, None, None].to(out.dtype)


def _unpad(x: torch.Tensor, seqlens: Sequence[int]) -> torch.Tensor:
    """``(batch, seqlen, h, d)`` -> ``(total_tokens, h, d)`` keeping real tokens."""
    torch = _torch()
    return torch.cat([x[b, :n] for b, n in enumerate(seqlens)], dim=0)  # type: ignore[no-any-return]


def _repad(x: torch.Tensor, seqlens: Sequence[int], seqlen: int) -> torch.Tensor:
    torch = _torch()
    rows = []
    start = 0
    for n in seqlens:
        part = x[start : start + n]
        pad = x.new_zeros((seqlen - n, *x.shape[1:]))
        rows.append(torch.cat([part, pad], dim=0))
        start += n
    return torch.stack(rows, dim=0)  # type: ignore[no-any-return]


def _cu_seqlens(seqlens: Sequence[int], device: Any) -> torch.Tensor:
    torch = _torch()
    cu = [0]
    for n in seqlens:
        cu.append(cu[-1] + n)
    return torch.tensor(cu, dtype=torch.int32, device=device)  # type: ignore[no-any-return]


def _first(result: Any) -> torch.Tensor:
    """flash-attn 3 returns ``out`` or ``(out, lse)`` by version; flash-attn 4 ``(out, lse)``."""
    if isinstance(result, tuple | list):
        return result[0]  # type: ignore[no-any-return]
    return result  # type: ignore[no-any-return]


def eager_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    softmax_scale: float | None = None,
    seqlens: Sequence[int] | None = None,
    reorder_ops: bool = False,
) -> torch.Tensor:
    """Plain PyTorch attention in the inputs' dtype (the "eager" backend, and the reference).

    ``reorder_ops`` scales ``k`` instead of ``q`` (same maths, different rounding), as
    flash-attn's ``attention_ref(..., reorder_ops=True)`` in tests/test_flash_attn.py does to
    measure what a plain PyTorch computation's rounding error is.
    """
    torch = _torch()
    groups = q.shape[2] // k.shape[2]
    k = k.repeat_interleave(groups, dim=2)
    v = v.repeat_interleave(groups, dim=2)
    scale = softmax_scale if softmax_scale is not None else 1.0 / math.sqrt(q.shape[-1])
    if reorder_ops:
        scores = torch.einsum("bthd,bshd->bhts", q, k * scale)
    else:
        scores = torch.einsum("bthd,bshd->bhts", q * scale, k)
    seqlen = q.shape[1]
    keep = _bool_mask(seqlens, seqlen, causal=causal, device=q.device)
    if keep is None and causal:
        keep = torch.ones(seqlen, seqlen, dtype=torch.bool, device=q.device).tril()
    if keep is not None:
        scores = scores.masked_fill(~keep, float("-inf"))
    attn = torch.softmax(scores, dim=-1).to(v.dtype)
    out = torch.einsum("bhts,bshd->bthd", attn, v)
    return _zero_padded_queries(out, seqlens)


def _sdpa(
    backend: BackendName,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    softmax_scale: float | None,
    seqlens: Sequence[int] | None,
) -> torch.Tensor:
    import warnings
    from contextlib import nullcontext

    import torch.nn.functional as F  # noqa: N812 (torch's own idiom)
    from torch.nn.attention import sdpa_kernel

    keep = _bool_mask(seqlens, q.shape[1], causal=causal, device=q.device)
    if keep is not None and backend in ("sdpa_flash", "sdpa_cudnn") and q.is_cuda:
        # torch's CUDA flash kernel takes no attn_mask (sdp_utils.cpp check_for_attn_mask),
        # cuDNN's support for boolean masks depends on the cuDNN version.
        raise UnsupportedCaseError(f"{backend} takes no attention mask (padded batch)")
    groups = q.shape[2] // k.shape[2]
    gqa = groups > 1
    if gqa and backend in ("sdpa_mem_efficient", "sdpa_cudnn"):
        # F.scaled_dot_product_attention's docstring: enable_gqa "currently works only for
        # Flash_attention and math kernel on CUDA tensor". Expand K/V heads instead, as
        # transformers' repeat_kv does for these kernels.
        k = k.repeat_interleave(groups, dim=2)
        v = v.repeat_interleave(groups, dim=2)
        gqa = False
    # "sdpa" is the default dispatch, as a model calls it: no kernel is forced.
    forced = nullcontext() if backend == "sdpa" else sdpa_kernel(_sdpa_backend_enum(backend))
    with warnings.catch_warnings(record=True) as caught, forced:
        warnings.simplefilter("always")
        # enable_gqa exists from torch 2.5; pass it only when the heads differ.
        extra: dict[str, Any] = {"enable_gqa": True} if gqa else {}
        try:
            out = F.scaled_dot_product_attention(
                q.transpose(1, 2),
                k.transpose(1, 2),
                v.transpose(1, 2),
                attn_mask=keep,
                is_causal=causal and keep is None,
                scale=softmax_scale,
                **extra,
            )
        except RuntimeError as exc:
            if "No viable backend" not in str(exc):
                raise
            # torch refused the kernel for these inputs (its own constraint checks); the
            # warnings it issued say which constraint.
            why = "; ".join(str(w.message).strip().splitlines()[0] for w in caught)
            raise UnsupportedCaseError(
                f"torch refuses {backend} for this case" + (f": {why}" if why else "")
            ) from exc
    return _zero_padded_queries(out.transpose(1, 2), seqlens)


def _flex(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    softmax_scale: float | None,
    seqlens: Sequence[int] | None,
) -> torch.Tensor:
    torch = _torch()
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    batch, seqlen = q.shape[0], q.shape[1]
    lens = None if seqlens is None else torch.tensor(list(seqlens), device=q.device)

    def mask_mod(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        keep = q_idx >= kv_idx if causal else q_idx >= 0
        if lens is not None:
            keep = keep & (kv_idx < lens[b])
        return keep

    block_mask = None
    if causal or lens is not None:
        block_mask = create_block_mask(
            mask_mod,
            batch if lens is not None else None,
            None,
            seqlen,
            seqlen,
            device=str(q.device),
        )
    # Without torch.compile flex_attention runs an unfused reference and warns; the fused
    # kernel (Triton on CUDA, C++ on CPU) is what users get and what we must launch.
    import warnings

    compiled = _compiled_flex(flex_attention)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = compiled(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            block_mask=block_mask,
            scale=softmax_scale,
            enable_gqa=q.shape[2] != k.shape[2],
        )
    if any("without torch.compile" in str(w.message) for w in caught):
        # torch.compile gave up (recompile limit, an unsupported input) and ran flex_attention
        # unfused: that is not the kernel under test.
        raise UnsupportedCaseError("torch.compile fell back to the unfused flex_attention")
    return _zero_padded_queries(out.transpose(1, 2), seqlens)


_COMPILED: dict[str, Callable[..., Any]] = {}


def _compiled_flex(fn: Callable[..., Any]) -> Callable[..., Any]:
    # One compiled wrapper per process: torch.compile caches its graphs on the wrapper.
    if "flex" not in _COMPILED:
        torch = _torch()
        # Each new shape, dtype or mask recompiles; a case matrix needs more than the default
        # 8 recompiles of one function before dynamo would fall back to running it uncompiled.
        config = torch._dynamo.config
        config.recompile_limit = max(int(getattr(config, "recompile_limit", 8)), 64)
        _COMPILED["flex"] = torch.compile(fn)
    return _COMPILED["flex"]


_FLASH_MODULES: dict[BackendName, str] = {
    "flash_attn_2": "flash_attn",
    "flash_attn_3": "flash_attn_interface",
    "flash_attn_4": "flash_attn.cute",
}
"""The module whose ``flash_attn_func`` / ``flash_attn_varlen_func`` each flash-attn
generation exports; the three share the (batch, seqlen, heads, dim) layout and the keyword
names of the varlen call."""


def _flash_attn(
    backend: BackendName,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    softmax_scale: float | None,
    seqlens: Sequence[int] | None,
) -> torch.Tensor:
    import importlib

    module = importlib.import_module(_FLASH_MODULES[backend])
    if seqlens is None:
        return _first(module.flash_attn_func(q, k, v, softmax_scale=softmax_scale, causal=causal))
    cu = _cu_seqlens(seqlens, q.device)
    out = module.flash_attn_varlen_func(
        _unpad(q, seqlens),
        _unpad(k, seqlens),
        _unpad(v, seqlens),
        cu_seqlens_q=cu,
        cu_seqlens_k=cu,
        max_seqlen_q=max(seqlens),
        max_seqlen_k=max(seqlens),
        softmax_scale=softmax_scale,
        causal=causal,
    )
    return _repad(_first(out), seqlens, q.shape[1])


def _xformers(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    softmax_scale: float | None,
    seqlens: Sequence[int] | None,
) -> torch.Tensor:
    from xformers.ops import fmha

    seqlen, heads_q, dim = q.shape[1], q.shape[2], q.shape[3]
    heads_kv = k.shape[2]
    groups = heads_q // heads_kv
    bias: Any = None
    if seqlens is not None:
        # Padded batch: concatenate the real tokens into one sequence of batch 1 and give
        # xformers the block-diagonal structure.
        lens = list(seqlens)
        cls = fmha.attn_bias.BlockDiagonalCausalMask if causal else fmha.attn_bias.BlockDiagonalMask
        try:
            bias = cls.from_seqlens(lens, lens, device=q.device)
        except TypeError:  # releases before the device keyword
            bias = cls.from_seqlens(lens, lens)
        q, k, v = (_unpad(t, lens)[None] for t in (q, k, v))
    elif causal:
        bias = fmha.attn_bias.LowerTriangularMask()
    needs_grad = q.requires_grad or k.requires_grad or v.requires_grad
    if groups > 1 and not needs_grad:
        # Grouped-query attention: the 5-D BMGHK layout, K/V expanded (stride 0) over the
        # query heads of their group, as memory_efficient_attention's docstring prescribes.
        b, m = q.shape[0], q.shape[1]
        q = q.reshape(b, m, heads_kv, groups, dim)
        k = k[:, :, :, None, :].expand(b, m, heads_kv, groups, dim)
        v = v[:, :, :, None, :].expand(b, m, heads_kv, groups, dim)
    elif groups > 1:
        # That docstring: "MQA/GQA is an experimental feature supported only for the forward
        # pass". For training, K/V heads are repeated in the 4-D layout.
        k = k.repeat_interleave(groups, dim=2)
        v = v.repeat_interleave(groups, dim=2)
    out = fmha.memory_efficient_attention(q, k, v, attn_bias=bias, scale=softmax_scale)
    out = out.reshape(out.shape[0], out.shape[1], heads_q, dim)
    if seqlens is not None:
        out = _repad(out[0], list(seqlens), seqlen)
    return out  # type: ignore[no-any-return]


def _sage(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    softmax_scale: float | None,
    seqlens: Sequence[int] | None,
) -> torch.Tensor:
    """SageAttention's ``sageattn`` on ``(batch, seqlen, heads, dim)`` ("NHD") inputs.

    Inference only (sageattention/core.py has no backward); no attention mask (1.0.x has none
    and 2.x's ``sageattn`` drops it); head dims 64/96/128 (1.0.x asserts them, 2.x pads to 64
    or 128 and refuses more). ``k`` is cloned: 1.0.x's ``smooth_k`` subtracts the key mean
    from the caller's tensor in place.
    """
    if seqlens is not None:
        raise UnsupportedCaseError("sageattn takes no attention mask (padded batch)")
    if q.shape[-1] not in (64, 96, 128):
        raise UnsupportedCaseError(f"sageattn supports head dims 64, 96 and 128, not {q.shape[-1]}")
    if q.requires_grad or k.requires_grad or v.requires_grad:
        raise NotImplementedError("SageAttention is inference-only (no backward pass)")
    from sageattention import sageattn

    out = sageattn(q, k.clone(), v, tensor_layout="NHD", is_causal=causal, sm_scale=softmax_scale)
    return _first(out)


def attention_call(
    backend: BackendName,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    softmax_scale: float | None = None,
    seqlens: Sequence[int] | None = None,
) -> torch.Tensor:
    """Run ``backend``'s kernel on ``(batch, seqlen, heads, head_dim)`` inputs.

    Returns ``(batch, seqlen, heads_q, head_dim)`` in the inputs' dtype, differentiable where
    the backend has a backward pass. Raises ``UnsupportedCaseError`` for a case the backend does
    not implement, ``ValueError`` for a backend that launches no kernel of its own; the
    backend's own exceptions pass through (they are the evidence).
    """
    match backend:
        case "sdpa" | "sdpa_math" | "sdpa_flash" | "sdpa_mem_efficient" | "sdpa_cudnn":
            return _sdpa(
                backend, q, k, v, causal=causal, softmax_scale=softmax_scale, seqlens=seqlens
            )
        case "sdpa_cpu_fused":
            return _sdpa(
                backend, q, k, v, causal=causal, softmax_scale=softmax_scale, seqlens=seqlens
            )
        case "flex_attention":
            return _flex(q, k, v, causal=causal, softmax_scale=softmax_scale, seqlens=seqlens)
        case "flash_attn_2" | "flash_attn_3" | "flash_attn_4":
            return _flash_attn(
                backend, q, k, v, causal=causal, softmax_scale=softmax_scale, seqlens=seqlens
            )
        case "xformers":
            return _xformers(q, k, v, causal=causal, softmax_scale=softmax_scale, seqlens=seqlens)
        case "sageattention":
            return _sage(q, k, v, causal=causal, softmax_scale=softmax_scale, seqlens=seqlens)
        case "eager":
            return eager_attention(
                q, k, v, causal=causal, softmax_scale=softmax_scale, seqlens=seqlens
            )
        case _:
            raise ValueError(f"{backend} launches no attention kernel of its own")


def _import_reason(module: str) -> str | None:
    try:
        importlib.import_module(module)
    except Exception as exc:  # a broken extension raises anything (ImportError, OSError...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"import {module} failed: {type(exc).__name__}: {first}"[:300]
    return None


def _cuda_capability(device: str) -> tuple[int, int] | None:
    torch = _torch()
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(torch.device(device))
    return int(major), int(minor)


def available_ops(device: str) -> dict[BackendName, str | None]:
    """For each kernel backend: None when it can be launched on ``device``, else the reason.

    ``device`` is ``"cpu"`` or ``"cuda"`` / ``"cuda:N"``. Imports the backends, so call it in
    a child process (the verify and bench children do).
    """
    torch = _torch()
    on_cuda = device.startswith("cuda")
    result: dict[BackendName, str | None] = {}
    if on_cuda and not torch.cuda.is_available():
        cuda_reason: str | None = (
            "this torch has no CUDA support"
            if torch.version.cuda is None
            else "torch sees no CUDA device"
        )
    else:
        cuda_reason = None
    cc = _cuda_capability(device) if cuda_reason is None else None
    for backend in KERNEL_BACKENDS:
        reason: str | None = None
        if not on_cuda and backend not in CPU_BACKENDS:
            reason = "needs a CUDA device"
        elif on_cuda and backend == "sdpa_cpu_fused":
            reason = "CPU-only kernel"
        elif on_cuda and cuda_reason is not None:
            reason = cuda_reason
        else:
            reason = _backend_reason(backend, device, cc)
        result[backend] = reason
    return result


def _distribution_reason(backend: BackendName) -> str | None:
    """None when one of the backend's distributions is installed, else "not installed".

    Presence is decided by distribution, not by whether an import succeeds: flash-attn-4 ships
    ``flash_attn/cute/`` without ``flash_attn/__init__.py``, so ``import flash_attn`` succeeds
    (a namespace package) where flash-attn 2 is not installed at all.
    """
    import importlib.metadata

    dists = BACKENDS[backend].distributions
    for dist in dists:
        try:
            importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        return None
    return f"not installed (no {' or '.join(dists)} distribution)" if dists else None


def _backend_reason(backend: BackendName, device: str, cc: tuple[int, int] | None) -> str | None:
    torch = _torch()
    missing = _distribution_reason(backend)
    if missing is not None:
        return missing
    if backend == "sdpa" or backend.startswith("sdpa_"):
        reason = _import_reason("torch.nn.attention")
        if reason is None and not hasattr(
            importlib.import_module("torch.nn.attention"), "sdpa_kernel"
        ):
            reason = "needs torch.nn.attention.sdpa_kernel (torch 2.3 or newer)"
        if reason is not None:
            return reason
    match backend:
        case "sdpa" | "sdpa_math" | "eager" | "sdpa_cpu_fused":
            return None
        case "sdpa_flash":
            flash_available = getattr(
                torch.backends.cuda, "is_flash_attention_available", lambda: True
            )
            if not flash_available():
                return "this torch build has no flash SDPA kernel"
            # torch's CUDA flash kernel needs sm80+ (sdp_utils.cpp check_sm_version).
            if cc is not None and cc < (8, 0):
                return (
                    "torch's flash SDPA kernel needs compute capability 8.0+, "
                    f"GPU is {cc[0]}.{cc[1]}"
                )
            return None
        case "sdpa_mem_efficient":
            return None
        case "sdpa_cudnn":
            if not torch.backends.cudnn.is_available():
                return "this torch build has no cuDNN"
            return None
        case "flex_attention":
            return _import_reason("torch.nn.attention.flex_attention")
        case "flash_attn_2":
            reason = _import_reason("flash_attn")
            if reason is None and cc is not None and cc < (8, 0):
                # flash-attn 2 README: Ampere, Ada or Hopper GPUs (Turing: use 1.x).
                return f"flash-attn 2 needs compute capability 8.0+, GPU is {cc[0]}.{cc[1]}"
            return reason
        case "flash_attn_3":
            reason = _import_reason("flash_attn_interface")
            if reason is None and cc is not None and cc[0] != 9:
                # flash-attn hopper/README: FlashAttention-3 is for Hopper (H100/H800).
                return f"flash-attn 3 needs a Hopper GPU (9.x), GPU is {cc[0]}.{cc[1]}"
            return reason
        case "flash_attn_4":
            reason = _import_reason("flash_attn.cute")
            if reason is None and cc is not None and cc < (8, 0):
                # flash_attn/cute/interface.py selects SM80/SM90/SM100/SM120 kernel paths.
                return f"flash-attn 4 needs compute capability 8.0+, GPU is {cc[0]}.{cc[1]}"
            return reason
        case "xformers":
            return _import_reason("xformers.ops")
        case "sageattention":
            reason = _import_reason("sageattention")
            if reason is None and cc is not None and cc < (8, 0):
                # sageattention/core.py sageattn: sm80, sm86, sm89, sm90, sm120 only.
                return f"SageAttention needs compute capability 8.0+, GPU is {cc[0]}.{cc[1]}"
            return reason
        case _:
            return f"{backend} launches no attention kernel of its own ({device})"


_SDP_CHOICE: dict[int, BackendName] = {
    0: "sdpa_math",
    1: "sdpa_flash",
    2: "sdpa_mem_efficient",
    3: "sdpa_cudnn",
}
"""``torch._fused_sdp_choice`` return values (``torch.nn.attention.SDPBackend``: MATH=0,
FLASH_ATTENTION=1, EFFICIENT_ATTENTION=2, CUDNN_ATTENTION=3; torch/_C/__init__.pyi)."""


def sdpa_dispatch_choice(
    device: str,
    *,
    dtype: str | None = None,
    batch: int = 4,
    heads: int = 16,
    seqlen: int = 1024,
    head_dim: int = 128,
    causal: bool = True,
) -> BackendName | None:
    """The kernel SDPA's default dispatch picks for these inputs, without running one.

    ``torch._fused_sdp_choice`` answers from the same checks the dispatcher makes (the priority
    list ``torch._C._get_sdp_priority_order`` does not: on an H200 with torch 2.11 it listed
    flash first while cuDNN ran). On CPU tensors FLASH_ATTENTION is the CPU fused kernel.
    None when this torch has no such function or it raised.
    """
    torch = _torch()
    choose = getattr(torch, "_fused_sdp_choice", None)
    if choose is None:
        return None
    name = dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    try:
        q = torch.empty(batch, heads, seqlen, head_dim, dtype=getattr(torch, name), device=device)
        choice = int(choose(q, q, q, None, 0.0, causal))
    except Exception:
        return None
    kernel = _SDP_CHOICE.get(choice)
    if kernel == "sdpa_flash" and not device.startswith("cuda"):
        return "sdpa_cpu_fused"
    return kernel
