"""One adapter per backend, built from its record: the record's ``adapter`` names the class."""

from __future__ import annotations

import functools

from attn_doctor.adapters.base import BackendAdapter, RecordAdapter
from attn_doctor.adapters.flash_attn import FlashAttnAdapter
from attn_doctor.adapters.flashinfer import FlashInferAdapter
from attn_doctor.adapters.packages import HubKernelsAdapter, UnslothAdapter
from attn_doctor.adapters.sageattention import SageAdapter
from attn_doctor.adapters.torch_kernels import EagerAdapter, FlexAdapter, SdpaAdapter
from attn_doctor.adapters.xformers import XformersAdapter
from attn_doctor.backends import BACKEND_NAMES, BACKENDS, AdapterKind, BackendName

ADAPTER_CLASSES: dict[AdapterKind, type[RecordAdapter]] = {
    "torch-sdpa": SdpaAdapter,
    "flex-attention": FlexAdapter,
    "eager": EagerAdapter,
    "flash-attn": FlashAttnAdapter,
    "xformers": XformersAdapter,
    "sageattention": SageAdapter,
    "flashinfer": FlashInferAdapter,
    "unsloth": UnslothAdapter,
    "hub-kernels": HubKernelsAdapter,
}
"""The class for each adapter kind a record may name."""


@functools.cache
def adapter_for(backend: BackendName) -> BackendAdapter:
    """The adapter of ``backend``, built from its record (cached: records do not change)."""
    record = BACKENDS[backend]
    return ADAPTER_CLASSES[record.adapter](record)


def kernel_backends() -> tuple[BackendName, ...]:
    """Backends whose adapter launches a kernel of its own, in record order."""
    return tuple(n for n in BACKEND_NAMES if adapter_for(n).launches_kernel)


def adapter_of_implementation(attn_implementation: str) -> BackendAdapter | None:
    """The adapter of the package kernel behind a transformers ``attn_implementation`` value
    (``flash_attention_2``, ``xformers``…); None for torch's own (``sdpa``, ``eager``)."""
    for name in BACKEND_NAMES:
        record = BACKENDS[name]
        if (
            record.attn_implementation == attn_implementation
            and record.distributions
            and record.verify.kind == "kernel"
        ):
            return adapter_for(name)
    return None
