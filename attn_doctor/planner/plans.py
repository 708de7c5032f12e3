"""The resolver's output types: ways to get a backend onto a machine, and why not.

``attn_doctor.resolve`` produces them (pure); ``attn_doctor.install`` executes an
``InstallPlan``; the report renders them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from attn_doctor.backends import BackendName

SourceKind = Literal[
    "upstream-release",  # a project's own GitHub release assets (flash-attn)
    "pypi",  # the package index (xformers, flash-attn-4, unsloth)
    "pytorch-index",  # PyTorch's per-CUDA wheel indexes (xformers cuXXX builds)
    "community",  # community build projects (labelled; offered only where upstream has none)
    "hub",  # Hugging Face Hub kernels through the `kernels` package
    "source-build",  # compile from the source archive
    "wheelhouse",  # a local directory of wheels (--wheelhouse, air-gapped)
]
Trust = Literal["official", "community", "third-party index"]


@dataclass(frozen=True, kw_only=True)
class WheelCandidate:
    """One concrete way to get a backend, ready to hand to pip (or to transformers)."""

    backend: BackendName
    source: SourceKind
    trust: Trust
    requirement: str
    """What pip is given: ``xformers==0.0.32.post2``, ``flash-attn @ https://…whl``, a path."""
    version: str | None = None
    filename: str | None = None
    url: str | None = None
    index_url: str | None = None
    """Extra index to use (PyTorch's per-CUDA index for xformers), if any."""
    pip_args: tuple[str, ...] = ()
    """Extra pip arguments, e.g. ``--no-deps`` or ``--no-build-isolation``."""
    build_env: tuple[tuple[str, str], ...] = ()
    """Environment for source builds: ``MAX_JOBS``, ``FLASH_ATTN_CUDA_ARCHS``…"""
    attn_implementation: str | None = None
    """For Hub kernels: the ``attn_implementation`` value that uses it (no pip install)."""
    verified: bool = False
    """The index entry behind it is confirmed against upstream (not inferred)."""
    confirmed_online: bool | None = None
    """URL existence checked over the network (None: not checked, e.g. offline)."""
    reason: str = ""
    provenance: tuple[str, ...] = ()
    estimated_minutes: float | None = None
    """For source builds: the expected build time on this machine."""
    sha256: str | None = None
    """The file's sha256 where its source publishes one (the package index's JSON API); a URL
    install is pinned to it (``URL#sha256=…``). None: not known."""
    torch_requirement: str | None = None
    """Only with ``allow_torch_change``: the torch this candidate needs installed first
    (``torch==2.8.*``); None means the installed torch stays as it is."""


@dataclass(frozen=True, kw_only=True)
class Rejection:
    """A way that does not fit this machine, and the exact reason."""

    backend: BackendName
    source: SourceKind
    what: str
    """The wheel or route considered."""
    reason: str


@dataclass(frozen=True, kw_only=True)
class BackendPlan:
    """Every way to get one backend here, best first, and every way that does not fit."""

    backend: BackendName
    candidates: tuple[WheelCandidate, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    ways_out: tuple[str, ...] = ()
    """When nothing fits: the nearest alternatives, as sentences with commands."""
    already_installed: str | None = None
    """Installed version, when the backend is already present and usable."""


@dataclass(frozen=True, kw_only=True)
class InstallPlan:
    """What ``attn-doctor install`` will do, shown before it does anything."""

    backend: BackendName
    candidate: WheelCandidate
    protected: tuple[str, ...]
    """Constraint lines pinning what must not move: ``torch==2.8.0+cu128``, ``triton==3.4.0``."""
    commands: tuple[str, ...]
    """The exact commands, for display and ``--dry-run``."""
    notes: tuple[str, ...] = ()


Status = Literal["ready", "install", "blocked"]
"""Whether a backend is ready here, needs an install, or is blocked (the decision's input)."""


@dataclass(frozen=True, kw_only=True)
class Option:
    """One backend as the caller sees it on this machine, before ranking."""

    backend: BackendName
    status: Status
    way: str
    """How to get it: "built into torch", "installed (2.8.3)", the install command, or the
    fix that unblocks it."""
    reason: str
    source: str = "installed"
    """Trust of the way: ``torch``, ``installed`` or a resolver ``SourceKind``."""
    auto: bool = True
    """False: a deliberate choice, listed after every automatic option."""
