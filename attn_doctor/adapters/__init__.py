"""Backends as adapters: one object per backend behind ``BackendAdapter``, built from its
record (``base`` holds the contract, ``registry`` the classes, one module per backend kind)."""

from attn_doctor.adapters.base import BackendAdapter
from attn_doctor.adapters.registry import adapter_for, adapter_of_implementation, kernel_backends
from attn_doctor.adapters.tensors import UnsupportedCaseError, eager_attention

__all__ = [
    "BackendAdapter",
    "UnsupportedCaseError",
    "adapter_for",
    "adapter_of_implementation",
    "eager_attention",
    "kernel_backends",
]
