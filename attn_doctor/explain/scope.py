"""What explain answers for: attention backends and the stacks around them. A generic answer
(an extension built for another torch) is true of any compiled extension; when the message
names only extensions of other libraries (pytorch3d, causal_conv1d, mmcv), the answer is left
out and the facts are shown instead, so a near-miss is not taken for an attention failure. The
same for a Triton kernel out of shared memory that the message names as a state-space model's
(Mamba's SSD kernels)."""

from __future__ import annotations

import re

from attn_doctor.explain.answer import ATTENTION_NAME, backends_in_text
from attn_doctor.explain.evidence import TextFacts

GENERIC_EXTENSION_ANSWERS = frozenset(
    {
        "extension-built-for-other-torch",
        "torch-extension-abi-mismatch",
    }
)
"""Answers whose cause holds for any compiled torch extension."""

_ATTENTION_STACK = re.compile(
    r"flash|xformers|sage|flashinfer|vllm|sglang|sgl_kernel|transformer_engine|fmha|attn"
    r"|attention|triton|^torch$|^torch_|unsloth|^kernels$|deepspeed|apex|_qattn|_fused",
    re.I,
)
"""Package or module names of the attention backends and the stacks that build on them."""


_OTHER_TRITON_KERNELS = re.compile(
    r"\bmamba\w*|\bmamba_ssm\b|\bselective_scan\w*|\bcausal_conv1d\w*|\bssd_\w+|\bchunk_scan\w*"
    r"|\bfused_moe\w*|\bfused_experts\w*",
    re.I,
)
"""Triton kernels of other layers, named in the message: state-space (Mamba) scans and
mixture-of-experts matmuls (vLLM's fused_moe); a Triton resource error in them is not
attention's."""
_SHARED_MEMORY_ANSWERS = frozenset(
    {"triton-attention-kernel-out-of-shared-memory", "flex-attention-out-of-shared-memory"}
)


_KERNEL_SOURCE = re.compile(r"\(at (?P<path>[^()\n]+?\.(?:cu|cuh|hip|cpp)):\d+\)")
"""The source file of the kernel that failed, as a CUDA error check names it ("no kernel image
is available for execution on the device (at …/kernels/awq/gemv_awq.cu:318)")."""
_KERNEL_ANSWERS = frozenset(
    {"cuda-no-kernel-image", "gpu-outside-backend-range", "flash-attn-no-kernel-image"}
)
"""Answers about a kernel and the GPU: they hold for any CUDA kernel, attention's or not."""


def _other_kernel(f: TextFacts, answer_id: str) -> str | None:
    """The failing kernel's own source, when the message names it and it is not attention's."""
    if answer_id not in _KERNEL_ANSWERS:
        return None
    body = "\n".join(f.lines)
    m = _KERNEL_SOURCE.search(body)
    if m is None or ATTENTION_NAME.search(m.group("path")) or backends_in_text(body):
        return None
    name = re.split(r"[\\/]", m.group("path"))[-1]
    return (
        f"the failing kernel is {name}, not an attention kernel: the cause may be the same "
        "(no build of that kernel for this GPU), but it is outside what explain covers"
    )


def outside_scope(f: TextFacts, answer_id: str) -> str | None:
    """Why a generic answer is left out for this message, or None to keep it."""
    if (other := _other_kernel(f, answer_id)) is not None:
        return other
    if answer_id in _SHARED_MEMORY_ANSWERS:
        body = "\n".join(f.lines)
        if (m := _OTHER_TRITON_KERNELS.search(body)) and not ATTENTION_NAME.search(body):
            return (
                f"the Triton kernel is {m.group(0)}'s (a state-space or mixture-of-experts layer), "
                "not attention's: "
                "the cause may be the same (a kernel asking for more shared memory than the GPU "
                "has), but it is outside what explain covers"
            )
        return None
    if answer_id not in GENERIC_EXTENSION_ANSWERS or not f.extension_owners:
        return None
    if any(_ATTENTION_STACK.search(o) or backends_in_text(o) for o in f.extension_owners):
        return None
    names = ", ".join(f.extension_owners)
    return (
        f"the extension is {names}'s, not an attention backend's: the cause may be the same "
        "(built for another torch), but it is outside what explain covers"
    )
