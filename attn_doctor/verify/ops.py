"""Launching a backend's kernel, and whether it can be launched here: verify's view of the
backend adapters (``attn_doctor.adapters``).

Each backend's adapter holds its call on the common ``(batch, seqlen, heads, head_dim)`` layout
(``attn_doctor.adapters.tensors``) and why it cannot run; this module iterates them for the
verify and bench children and answers which kernel SDPA's default dispatch picks. torch and the
backends are imported inside functions: callers are the verify and bench child processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from attn_doctor.adapters import UnsupportedCaseError, adapter_for, eager_attention, kernel_backends
from attn_doctor.adapters.tensors import padding_mask, torch_module
from attn_doctor.backends import BACKENDS, BackendName

if TYPE_CHECKING:
    import torch

__all__ = [
    "CPU_BACKENDS",
    "KERNEL_BACKENDS",
    "UnsupportedCaseError",
    "attention_call",
    "available_ops",
    "eager_attention",
    "max_head_dim",
    "padding_mask",
    "sdpa_dispatch_choice",
]

KERNEL_BACKENDS: tuple[BackendName, ...] = kernel_backends()
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
    """Run ``backend``'s kernel on ``(batch, seqlen, heads, head_dim)`` inputs (its adapter's
    ``call``).

    Returns ``(batch, seqlen, heads_q, head_dim)`` in the inputs' dtype, differentiable where
    the backend has a backward pass. Raises ``UnsupportedCaseError`` for a case the backend does
    not implement, ``ValueError`` for a backend that launches no kernel of its own; the
    backend's own exceptions pass through (they are the evidence).
    """
    return adapter_for(backend).call(
        q, k, v, causal=causal, softmax_scale=softmax_scale, seqlens=seqlens
    )


def _cuda_capability(device: str) -> tuple[int, int] | None:
    torch = torch_module()
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(torch.device(device))
    return int(major), int(minor)


def available_ops(device: str) -> dict[BackendName, str | None]:
    """For each kernel backend: None when it can be launched on ``device``, else the reason.

    ``device`` is ``"cpu"`` or ``"cuda"`` / ``"cuda:N"``. Imports the backends, so call it in
    a child process (the verify and bench children do).
    """
    torch = torch_module()
    cuda_reason: str | None = None
    if device.startswith("cuda") and not torch.cuda.is_available():
        cuda_reason = (
            "this torch has no CUDA support"
            if torch.version.cuda is None
            else "torch sees no CUDA device"
        )
    cc = _cuda_capability(device) if cuda_reason is None else None
    result: dict[BackendName, str | None] = {}
    for backend in KERNEL_BACKENDS:
        adapter = adapter_for(backend)
        result[backend] = (
            adapter.unavailable_here(device, None)
            or cuda_reason
            or (adapter.unavailable_reason(device, cc))
        )
    return result


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
    mask: bool = False,
) -> BackendName | None:
    """The kernel SDPA's default dispatch picks for these inputs, without running one.

    ``torch._fused_sdp_choice`` answers from the same checks the dispatcher makes (the priority
    list ``torch._C._get_sdp_priority_order`` does not: on an H200 with torch 2.11 it listed
    flash first while cuDNN ran). On CPU tensors FLASH_ATTENTION is the CPU fused kernel.
    None when this torch has no such function or it raised.
    """
    torch = torch_module()
    choose = getattr(torch, "_fused_sdp_choice", None)
    if choose is None:
        return None
    name = dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    try:
        q = torch.empty(batch, heads, seqlen, head_dim, dtype=getattr(torch, name), device=device)
        attn_mask = None
        if mask:  # a boolean mask (sliding-window models): SDPA's is_causal is then off
            ones = torch.ones(seqlen, seqlen, dtype=torch.bool, device=device)
            attn_mask = ones.tril().expand(batch, 1, seqlen, seqlen)
        choice = int(choose(q, q, q, attn_mask, 0.0, causal and attn_mask is None))
    except Exception:
        return None
    kernel = _SDP_CHOICE.get(choice)
    if kernel == "sdpa_flash" and not device.startswith("cuda"):
        return "sdpa_cpu_fused"
    return kernel
