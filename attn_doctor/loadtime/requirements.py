"""What the runtime selector checks per ``attn_implementation``, derived from the records.

Each backend record of ``wheels_index/backends.toml`` with a ``runtime`` table gives one
``Requirement``: its transformers value, the modules that prove it loads, its distributions,
and what it needs (device, compute capability, dtype, head dim, the model's declared support).
The order here is the record order; the preference order is the one decision's
(``attn_doctor.decide.rank``), not this file's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from attn_doctor.backends import BACKEND_NAMES, BACKENDS, BackendName, ModelFlag, RuntimeDevice

if TYPE_CHECKING:
    from attn_doctor.backends import BackendRule

DeviceType = RuntimeDevice

TORCH_DTYPE: dict[str, str] = {
    "fp64": "float64",
    "fp32": "float32",
    "fp16": "float16",
    "bf16": "bfloat16",
}
"""The records' dtype names -> torch's (fp8 is not a model dtype and is dropped)."""


@dataclass(frozen=True, kw_only=True)
class Requirement:
    """What one ``attn_implementation`` needs before the selector will return it."""

    value: str
    backend: BackendName
    modules: tuple[str, ...] = ()
    """Modules a child process must import (each in its own child) for the value to count."""
    distributions: tuple[str, ...] = ()
    min_version: str | None = None
    """Lowest installed version that counts (PEP 440)."""
    devices: tuple[DeviceType, ...] = ()
    min_sm: int | None = None
    max_sm: int | None = None
    train_min_sm: int | None = None
    dtypes: tuple[str, ...] = ()
    bf16_min_sm: int | None = None
    max_head_dim: int | None = None
    training_dropout: bool = True
    softcap: bool = True
    """False when attention logit soft-capping (Gemma 2's ``attn_logit_softcapping``) is
    unsupported."""
    backward: bool = True
    """False for inference-only kernels."""
    model_flags: tuple[ModelFlag, ...] = ()
    """``PreTrainedModel`` class attributes (without the underscore) that must all be True."""
    needs_registration: bool = False
    registration: str | None = None
    auto: bool = True
    source: str
    verified: bool


def requirement_of(record: BackendRule) -> Requirement | None:
    """The selector's view of one backend record (None: not a runtime candidate)."""
    spec = record.runtime
    if spec is None or record.attn_implementation is None:
        return None
    dtypes = spec.dtypes or record.dtypes
    # A GPU-only backend inherits the record's compute-capability range.
    gpu_only = "cpu" not in spec.devices
    min_sm = spec.min_sm if spec.min_sm is not None or not gpu_only else record.min_sm or None
    max_sm = spec.max_sm if spec.max_sm is not None or not gpu_only else record.max_sm
    if record.builtin and "fp32" in dtypes and "fp64" not in dtypes:
        dtypes = (*dtypes, "fp64")  # torch's own kernels take every float dtype
    return Requirement(
        value=record.attn_implementation,
        backend=record.name,
        modules=record.modules,
        distributions=record.distributions,
        min_version=spec.min_version,
        devices=spec.devices,
        min_sm=min_sm,
        max_sm=max_sm,
        train_min_sm=spec.train_min_sm,
        dtypes=tuple(TORCH_DTYPE[d] for d in dtypes if d in TORCH_DTYPE),
        bf16_min_sm=spec.bf16_min_sm,
        max_head_dim=record.max_head_dim,
        training_dropout=spec.training_dropout,
        softcap=spec.softcap,
        backward=spec.backward,
        model_flags=spec.model_flags,
        needs_registration=record.registration is not None,
        registration=record.registration,
        auto=spec.auto,
        source=spec.source,
        verified=record.verified,
    )


@functools.cache
def load_requirements() -> tuple[Requirement, ...]:
    """Every runtime candidate's requirement, in record order (cached for the run)."""
    out = []
    for name in BACKEND_NAMES:
        req = requirement_of(BACKENDS[name])
        if req is not None:
            out.append(req)
    return tuple(out)
