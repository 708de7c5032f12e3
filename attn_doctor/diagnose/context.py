"""What every diagnosis rule shares: the context, its finding builder and small fact helpers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from attn_doctor.backends import BACKEND_NAMES, BACKENDS, BackendName
from attn_doctor.diagnosis import (
    Evidence,
    Finding,
    Severity,
)
from attn_doctor.facts import Environment, PackageFacts

if TYPE_CHECKING:
    from attn_doctor.index import Index
    from attn_doctor.planner.plans import BackendPlan
from attn_doctor.decide import BenchEvidence, Request
from attn_doctor.rules_data import Rules

SEVERITY_ORDER: dict[Severity, int] = {"error": 0, "warning": 1, "info": 2}

# Findings after which torch cannot use the GPU at all: nothing GPU-side is usable now.
TORCH_BLOCKERS = frozenset(
    {
        "no-torch",
        "cpu-torch-on-nvidia-gpu",
        "cpu-torch-on-amd-gpu",
        "rocm-torch-on-nvidia-gpu",
        "cuda-torch-on-amd-gpu",
        "driver-too-old-for-torch",
        "torch-lacks-gpu-arch",
        "torch-cuda-unavailable",
        "torch-import-failed",
    }
)

PACKAGE_BACKENDS: tuple[BackendName, ...] = tuple(
    n for n in BACKEND_NAMES if BACKENDS[n].distributions
)

TRITON_DISTRIBUTIONS = ("triton", "pytorch-triton-rocm", "triton-windows", "pytorch-triton")


@dataclass(frozen=True, kw_only=True)
class Ctx:
    env: Environment
    rules: Rules
    evidence: BenchEvidence | None = None
    """What a cached ``attn-doctor bench`` run measured on this machine."""
    request: Request = dataclasses.field(default_factory=Request)
    index: Index | None = None
    """The wheel index: when given, "needs install" says exactly which way fits here."""
    _routes: dict[BackendName, BackendPlan] = dataclasses.field(
        default_factory=dict, init=False, repr=False
    )

    def route(self, name: BackendName) -> BackendPlan | None:
        """The resolver's plan for installing ``name`` here (None without an index)."""
        if self.index is None:
            return None
        if name not in self._routes:
            from attn_doctor.resolve import plan_backend

            self._routes[name] = plan_backend(self.env, self.index, name)
        return self._routes[name]

    def finding(
        self,
        rule_id: str,
        severity: Severity,
        title: str,
        cause: str,
        evidence: list[Evidence],
        *,
        fix: str | None = None,
        fix_note: str | None = None,
        backends: tuple[BackendName, ...] = (),
        sources: tuple[str, ...] = (),
    ) -> Finding:
        return Finding(
            id=rule_id,
            severity=severity,
            title=title,
            cause=cause,
            evidence=tuple(evidence),
            fix=fix,
            fix_note=fix_note,
            backends=backends,
            sources=tuple(dict.fromkeys(self.rules.sources_for(rule_id) + sources)),
        )


def evidence_of(fact: str, value: object) -> Evidence:
    return Evidence(fact=fact, value="null" if value is None else str(value))


def version_of(env: Environment, name: str) -> str | None:
    pkg = env.package(name)
    return pkg.version if pkg is not None else None


def first_package(env: Environment, *names: str) -> PackageFacts | None:
    for name in names:
        pkg = env.package(name)
        if pkg is not None:
            return pkg
    return None
