"""The adapter contract: what differs per backend, behind one ``Protocol``.

A backend is a record (``wheels_index/backends.toml``) plus one adapter object built from it.
The record holds the facts (GPU floor, dtypes, distributions, modules); the adapter holds the
behaviour the facts cannot express:

- ``call``: launch the kernel on the common layout (``attn_doctor.adapters.tensors``);
- ``unavailable_here``: why it cannot run on a device, judged from the record alone (no import,
  no child process); ``unavailable_reason`` adds what only an import can tell;
- ``planner``: its install planner, as an entry point (``module:function`` in
  ``attn_doctor.resolve``; None: attn-doctor does not install it), and ``releases``,
  the releases that planner knows;
- ``integration``: the function that registers it with transformers' ``AttentionInterface``
  (None: built into transformers, or not a transformers backend).

``RecordAdapter`` implements everything from the record; each adapter class overrides only
what its backend does differently (huggingface/kernels ``backends.py``: one small class per
backend kind).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from attn_doctor.backends import BackendRule

if TYPE_CHECKING:
    import torch

Registration = Callable[[], None]
"""Registers a backend's attention function with transformers (idempotent)."""


class BackendAdapter(Protocol):
    """One backend's behaviour; built from its record by ``attn_doctor.adapters.adapter_for``."""

    @property
    def record(self) -> BackendRule:
        """The backend's record: every fact about it."""
        ...

    @property
    def launches_kernel(self) -> bool:
        """True when ``call`` launches an attention kernel (the record's verify kind)."""
        ...

    @property
    def planner(self) -> str | None:
        """Its install planner as ``module:function`` (None: no planner)."""
        ...

    @property
    def releases(self) -> str | None:
        """``module:function(index)`` listing the releases its planner knows, for
        ``install NAME==VERSION`` (None: not versioned)."""
        ...

    @property
    def integration(self) -> Registration | None:
        """The call that registers it with transformers (None: nothing to register)."""
        ...

    def call(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        *,
        causal: bool,
        softmax_scale: float | None = None,
        seqlens: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """Run the kernel on ``(batch, seqlen, heads, head_dim)`` inputs.

        Raises ``UnsupportedCaseError`` for a case the backend does not implement and
        ``ValueError`` when it launches no kernel of its own; the backend's own exceptions pass
        through (they are the evidence).
        """
        ...

    def unavailable_here(self, device: str, cc: tuple[int, int] | None) -> str | None:
        """Why it cannot run on ``device`` (GPU ``cc``), from the record alone; None: it may."""
        ...

    def unavailable_reason(self, device: str, cc: tuple[int, int] | None) -> str | None:
        """``unavailable_here`` plus what installing and importing it tells (child side)."""
        ...


def import_reason(module: str) -> str | None:
    """None when ``module`` imports, else the first line of why not."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # a broken extension raises anything (ImportError, OSError...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"import {module} failed: {type(exc).__name__}: {first}"[:300]
    return None


def distribution_reason(record: BackendRule) -> str | None:
    """None when one of the backend's distributions is installed, else "not installed".

    Presence is decided by distribution, not by whether an import succeeds: flash-attn-4 ships
    ``flash_attn/cute/`` without ``flash_attn/__init__.py``, so ``import flash_attn`` succeeds
    (a namespace package) where flash-attn 2 is not installed at all.
    """
    dists = record.distributions
    for dist in dists:
        try:
            importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        return None
    return f"not installed (no {' or '.join(dists)} distribution)" if dists else None


def _cc_text(sm: int) -> str:
    return f"{sm // 10}.{sm % 10}"


@dataclass(frozen=True)
class RecordAdapter:
    """The behaviour every backend shares, read from its record; subclasses add the rest."""

    record: BackendRule

    @property
    def launches_kernel(self) -> bool:
        return self.record.verify.kind == "kernel"

    @property
    def planner(self) -> str | None:
        return None

    @property
    def releases(self) -> str | None:
        return None

    @property
    def integration(self) -> Registration | None:
        return None

    def call(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        *,
        causal: bool,
        softmax_scale: float | None = None,
        seqlens: Sequence[int] | None = None,
    ) -> torch.Tensor:
        raise ValueError(f"{self.record.name} launches no attention kernel of its own")

    def unavailable_here(self, device: str, cc: tuple[int, int] | None) -> str | None:
        r = self.record
        if not self.launches_kernel:
            return f"{r.name} launches no attention kernel of its own ({device})"
        on_cuda = device.startswith("cuda")
        if not on_cuda and not r.verify.cpu:
            return "needs a CUDA device"
        if on_cuda and r.vendors == ("cpu",):
            return "CPU-only kernel"
        if cc is None:
            return None
        sm = cc[0] * 10 + cc[1]
        here = f"GPU is {cc[0]}.{cc[1]}"
        if sm < r.min_sm:
            return f"{r.title} needs compute capability {_cc_text(r.min_sm)}+, {here}"
        if r.max_sm is not None and sm > r.max_sm:
            return f"{r.title} supports compute capability up to {_cc_text(r.max_sm)}, {here}"
        generations = sorted({*r.sm_majors, *r.sm_majors_code_only})
        if r.sm_majors and cc[0] not in generations:
            listed = ", ".join(f"{g}.x" for g in generations)
            return f"{r.title} supports GPU generations {listed}, {here}"
        return None

    def unavailable_reason(self, device: str, cc: tuple[int, int] | None) -> str | None:
        # The device first (a CUDA kernel on CPU), then presence, the GPU, the import.
        return (
            self.unavailable_here(device, None)
            or distribution_reason(self.record)
            or self.unavailable_here(device, cc)
            or (import_reason(self.record.module) if self.record.module else None)
        )
