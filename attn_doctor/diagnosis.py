"""What the planner concludes: findings, the backend table, the ranked recommendation.

These are the planner's output types (``attn_doctor.diagnose``); the report renders
them and ``--json`` serialises them with ``attn_doctor.facts.encode``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from attn_doctor.backends import BackendName

Severity = Literal["error", "warning", "info"]
Tri = Literal["yes", "no", "unknown"]


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """One fact a finding rests on: where it came from and its value."""

    fact: str
    """Dotted fact path (``driver.version``), ``index:<file>#<entry>`` or ``import:<module>``."""
    value: str


@dataclass(frozen=True, kw_only=True)
class Finding:
    """A problem or notable fact, with its cause, the evidence and the fix."""

    id: str
    """Stable kebab-case rule id, e.g. ``driver-too-old-for-torch``."""
    severity: Severity
    title: str
    cause: str
    evidence: tuple[Evidence, ...] = ()
    fix: str | None = None
    """A command (or short instruction) that fixes it on this machine."""
    fix_note: str | None = None
    backends: tuple[BackendName, ...] = ()
    """Backends this finding affects."""
    sources: tuple[str, ...] = ()
    """Upstream references the rule rests on (file@tag, release notes, issue threads)."""


@dataclass(frozen=True, kw_only=True)
class BackendStatus:
    """One row of the backend table."""

    backend: BackendName
    installed: Tri
    importable: Tri
    """``unknown`` unless ``--deep`` tried the import (or the backend is torch-internal)."""
    compatible: Tri
    """Compatible with this GPU, OS, torch and Python per the rules data."""
    usable: bool
    """installed and compatible and not known to fail importing."""
    version: str | None = None
    reason: str
    """Why: the one-line summary shown in the table."""
    attn_implementation: str | None = None


Readiness = Literal["ready", "install", "blocked"]


@dataclass(frozen=True, kw_only=True)
class Recommendation:
    """A ranked choice of the one decision (``attn_doctor.decide``), with its reasons."""

    rank: int
    backend: BackendName
    attn_implementation: str | None
    usable_now: bool
    """True if it works as installed (``status == "ready"``)."""
    reason: str
    gpu_index: int | None = None
    """The GPU this recommendation is for (None: all / CPU)."""
    status: Readiness = "ready"
    """``ready``: works now; ``install``: needs the install in ``way``; ``blocked``: cannot
    work until the problem in ``way`` is fixed."""
    way: str = ""
    """How to get it: built in, installed, the install command, or the fix that unblocks it."""
    score: float | None = None
    """What it was ranked by: TFLOP/s measured here, or its published speed relative to torch
    SDPA's flash kernel (``measured`` says which)."""
    measured: bool = False
    kernel: BackendName | None = None
    """For ``sdpa``: the kernel its default dispatch really runs here."""
    kernel_source: str | None = None
    activate: BackendName | None = None
    """For ``sdpa``: a verified kernel measured faster than the default dispatch here."""
    auto: bool = True
    """False: a deliberate choice (compiles or downloads on first use, or is quantised)."""


@dataclass(frozen=True, kw_only=True)
class FrameworkAdvice:
    """The one decision spoken in one framework's own knob, for one device."""

    framework: str
    """``transformers``, ``diffusers``, ``vllm``, ``sglang`` or ``comfyui``."""
    framework_version: str | None = None
    """Its installed version (None: asked for with ``--for`` but not installed here)."""
    backend: BackendName
    name: str
    """The backend's name in that framework (``FLASH_ATTN``, ``_native_cudnn``, ``fa3``…)."""
    knob: str
    """The exact setting: ``vllm serve MODEL --attention-backend FLASH_ATTN``…"""
    status: Readiness
    way: str
    reason: str
    gpu_index: int | None = None
    alternatives: tuple[str, ...] = ()
    """The next names in the decision's order, for that framework."""
    source: str
    """Where the name comes from (upstream file@tag)."""
    verified: bool


@dataclass(frozen=True, kw_only=True)
class Diagnosis:
    """The planner's whole answer for one Environment."""

    findings: tuple[Finding, ...]
    backends: tuple[BackendStatus, ...]
    recommendations: tuple[Recommendation, ...]
    folklore: tuple[str, ...] = ()
    """Where common advice ("Windows -> xformers, Linux -> flash-attn") is wrong here, and why."""
    frameworks: tuple[FrameworkAdvice, ...] = ()
    """For each framework installed here (or asked for with ``check --for``): the knob."""

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    @property
    def has_warnings(self) -> bool:
        return any(f.severity == "warning" for f in self.findings)
