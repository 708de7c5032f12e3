"""The closed set of attention backends attn-doctor knows, and their fixed names.

What each backend *needs* (GPU generation, OS, dtypes, head dims) is data in
``wheels_index/backends.toml``; this module holds only identities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

BackendName = Literal[
    "flash_attn_2",
    "flash_attn_3",
    "flash_attn_4",
    "xformers",
    "unsloth",
    "sdpa_flash",
    "sdpa_mem_efficient",
    "sdpa_cudnn",
    "sdpa_math",
    "sdpa_cpu_fused",
    "flex_attention",
    "hub_kernels",
    "eager",
]

BACKEND_NAMES: tuple[BackendName, ...] = get_args(BackendName)


@dataclass(frozen=True, kw_only=True)
class BackendInfo:
    """Identity of one backend: how people name it and how code reaches it."""

    name: BackendName
    title: str
    module: str | None
    """Module whose import proves the package is loadable (None for torch-internal ones)."""
    distribution: str | None
    """PyPI distribution that provides it (None for torch-internal ones)."""
    attn_implementation: str | None
    """The transformers ``attn_implementation`` value that selects it, if there is one."""


BACKENDS: dict[BackendName, BackendInfo] = {
    b.name: b
    for b in (
        BackendInfo(
            name="flash_attn_2",
            title="flash-attn 2",
            module="flash_attn",
            distribution="flash-attn",
            attn_implementation="flash_attention_2",
        ),
        BackendInfo(
            name="flash_attn_3",
            title="flash-attn 3 (Hopper)",
            module="flash_attn_interface",
            distribution="flash-attn-3",
            attn_implementation="flash_attention_3",
        ),
        BackendInfo(
            name="flash_attn_4",
            title="flash-attn 4 (CuTe DSL)",
            module="flash_attn.cute",
            distribution="flash-attn-4",
            attn_implementation="flash_attention_4",
        ),
        BackendInfo(
            name="xformers",
            title="xformers memory_efficient_attention",
            module="xformers.ops",
            distribution="xformers",
            attn_implementation=None,
        ),
        BackendInfo(
            name="unsloth",
            title="unsloth",
            module="unsloth",
            distribution="unsloth",
            attn_implementation=None,
        ),
        BackendInfo(
            name="sdpa_flash",
            title="torch SDPA: flash kernel",
            module=None,
            distribution=None,
            attn_implementation="sdpa",
        ),
        BackendInfo(
            name="sdpa_mem_efficient",
            title="torch SDPA: memory-efficient kernel",
            module=None,
            distribution=None,
            attn_implementation="sdpa",
        ),
        BackendInfo(
            name="sdpa_cudnn",
            title="torch SDPA: cuDNN kernel",
            module=None,
            distribution=None,
            attn_implementation="sdpa",
        ),
        BackendInfo(
            name="sdpa_math",
            title="torch SDPA: math (reference)",
            module=None,
            distribution=None,
            attn_implementation="sdpa",
        ),
        BackendInfo(
            name="sdpa_cpu_fused",
            title="torch SDPA: CPU fused kernel",
            module=None,
            distribution=None,
            attn_implementation="sdpa",
        ),
        BackendInfo(
            name="flex_attention",
            title="torch FlexAttention",
            module=None,
            distribution=None,
            attn_implementation="flex_attention",
        ),
        BackendInfo(
            name="hub_kernels",
            title="Hugging Face Hub kernel (kernels-community/flash-attn2)",
            module="kernels",
            distribution="kernels",
            attn_implementation="kernels-community/flash-attn2",
        ),
        BackendInfo(
            name="eager",
            title="eager (plain PyTorch)",
            module=None,
            distribution=None,
            attn_implementation="eager",
        ),
    )
}


def parse_backend(text: str) -> BackendName:
    """Map a user's backend name (``flash-attn``, ``fa2``, ``xformers``…) to a ``BackendName``.

    Raises ``UsageError`` listing the known names.
    """
    from attn_doctor.errors import UsageError

    key = text.strip().lower().replace("-", "_")
    aliases: dict[str, BackendName] = {
        "fa2": "flash_attn_2",
        "flash_attn": "flash_attn_2",
        "flash_attention_2": "flash_attn_2",
        "fa3": "flash_attn_3",
        "flash_attention_3": "flash_attn_3",
        "fa4": "flash_attn_4",
        "flash_attention_4": "flash_attn_4",
        "flex": "flex_attention",
        "sdpa": "sdpa_flash",
        "math": "sdpa_math",
        "cudnn": "sdpa_cudnn",
        "mem_efficient": "sdpa_mem_efficient",
        "kernels": "hub_kernels",
    }
    if key in aliases:
        return aliases[key]
    for name in BACKEND_NAMES:
        if key == name:
            return name
    raise UsageError(
        f"unknown backend {text!r}",
        hint="known backends: " + ", ".join(BACKEND_NAMES),
    )
