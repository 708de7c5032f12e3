"""Backends that launch no kernel of their own: unsloth (a fine-tuning framework) and the
Hugging Face Hub kernel (fetched by the ``kernels`` package on first use)."""

from __future__ import annotations

from dataclasses import dataclass

from attn_doctor.adapters.base import RecordAdapter


@dataclass(frozen=True)
class UnslothAdapter(RecordAdapter):
    """Verified by a model forward, installed from the package index."""

    @property
    def planner(self) -> str | None:
        return "attn_doctor.resolve.unsloth:plan_unsloth"

    @property
    def releases(self) -> str | None:
        return "attn_doctor.resolve.unsloth:unsloth_versions"


@dataclass(frozen=True)
class HubKernelsAdapter(RecordAdapter):
    """Not verified by attn-doctor (the kernel arrives from the Hub at first use)."""

    @property
    def planner(self) -> str | None:
        return "attn_doctor.resolve.hub:plan_hub"
