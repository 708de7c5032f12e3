"""The resolver: every way to get a backend onto this machine, from every source, and why not.

Pure: a function of (``Environment``, ``Index``, request). It never reads the machine, never
touches the network and never proposes anything that would replace the installed torch unless
``allow_torch_change=True``. Candidates are ranked best first; every source that does not fit
leaves a ``Rejection`` with the exact reason; when nothing fits, ``ways_out`` says what would.

Ranking: an official prebuilt wheel for this exact torch/CUDA/Python/ABI/platform/GPU first
(newest release first); then community builds (only when upstream has nothing); then a source
build. The Hub kernel route is its own backend (``hub_kernels``) and is named in ``ways_out``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import cast

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from attn_doctor.adapters import adapter_for
from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.errors import NoPlanner, NoWayToInstall, UsageError
from attn_doctor.facts import Environment
from attn_doctor.index.records import Index
from attn_doctor.planner.integrity import integrity_note
from attn_doctor.planner.pip_command import command_lines, shell_of
from attn_doctor.planner.plans import BackendPlan, InstallPlan, Rejection, SourceKind
from attn_doctor.resolve.common import (
    ALL_SOURCES,
    PROTECTED,
    PYTORCH_INDEX,
    Machine,
    Planner,
    machine_of,
    torch_variant,
    vendor_torch,
)
from attn_doctor.resolve.flash_attn_4 import flash_attn_4_runtime
from attn_doctor.resolve.frameworks import (
    framework_constraints,
    framework_notes,
    limit_for_frameworks,
)
from attn_doctor.shell import join_command

__all__ = [
    "ALL_SOURCES",
    "PYTORCH_INDEX",
    "Machine",
    "check_versions",
    "flash_attn_4_runtime",
    "known_versions",
    "machine_of",
    "plan_backend",
    "plan_install",
    "protected_lines",
    "torch_variant",
    "vendor_torch",
]

_BUILTIN: frozenset[BackendName] = frozenset(n for n in BACKENDS if BACKENDS[n].builtin)


def planner_for(backend: BackendName, python: str = "python") -> Planner:
    """The install planner the backend's adapter names (``module:function``).

    Raises ``NoPlanner`` (exit code 2) when attn-doctor has none for it.
    """
    ref = adapter_for(backend).planner
    record = BACKENDS[backend]
    if ref is None:
        dist = record.distribution
        raise NoPlanner(
            f"attn-doctor has no install planner for {record.title}",
            hint=(
                f"install {dist} by hand, then prove it works here:\n  "
                + join_command([python, "-m", "pip", "install", dist])
                + "\n  "
                if dist
                else "prove it works here:\n  "
            )
            + f"attn-doctor verify {backend}",
        )
    module, _, name = ref.partition(":")
    return cast(Planner, getattr(importlib.import_module(module), name))


def known_versions(index: Index, backend: BackendName) -> tuple[str, ...]:
    """Every release of ``backend`` the index knows, oldest first (empty: not versioned)."""
    ref = adapter_for(backend).releases
    if ref is None:
        return ()
    module, _, name = ref.partition(":")
    releases = cast(
        Callable[[Index], Iterable[str]], getattr(importlib.import_module(module), name)
    )
    return tuple(sorted(set(releases(index)), key=Version))


def check_versions(index: Index, backend: BackendName, versions: SpecifierSet) -> None:
    """Raise ``UsageError`` when no release the index knows satisfies ``versions``."""
    known = known_versions(index, backend)
    name = BACKENDS[backend].distribution or backend
    if not known:
        raise UsageError(f"{name} takes no version: drop {versions}")
    if not any(versions.contains(v, prereleases=True) for v in known):
        raise UsageError(
            f"{name}{versions}: no such release in the index (known: {known[0]} … {known[-1]})"
        )


def plan_backend(
    env: Environment,
    index: Index,
    backend: BackendName,
    *,
    allow_sources: Iterable[SourceKind] = ALL_SOURCES,
    allow_torch_change: bool = False,
    versions: SpecifierSet | None = None,
) -> BackendPlan:
    """Every way to get ``backend`` onto the machine ``env`` describes, best first, and why not.

    With ``versions`` (``==0.0.30``) only releases it accepts are planned; when none fits,
    ``ways_out`` names the versions that do fit here. Raises ``UsageError`` when the index
    knows no release it accepts.
    """
    if versions is not None:
        check_versions(index, backend, versions)
    m = machine_of(env)
    allow = frozenset(allow_sources)
    info = BACKENDS[backend]
    installed = env.package(info.distribution) if info.distribution else None
    if backend in _BUILTIN:
        return BackendPlan(
            backend=backend,
            ways_out=(f"{info.title} ships with torch: nothing to install.",),
            already_installed=m.torch,
        )
    planner = planner_for(backend, env.python.executable or "python")
    plan = planner(m, index, allow, allow_torch_change, versions)
    if versions is not None:
        plan = _only_versions(plan, versions, planner(m, index, allow, allow_torch_change))
    plan = gate_on_device(plan, env)
    if installed is not None:
        plan = replace(plan, already_installed=installed.version)
    return limit_for_frameworks(env, backend, plan)


def gate_on_device(plan: BackendPlan, env: Environment) -> BackendPlan:
    """No install for a backend that check says cannot run on any GPU here: the same device
    verdict (``plan.compat.device_verdict``, from the backend's record in backends.toml)
    refuses every candidate, with check's reason."""
    gpus = env.gpus
    if not plan.candidates or not gpus:
        return plan
    from attn_doctor.planner.compat import device_verdict
    from attn_doctor.rules_data import load_rules

    rule = load_rules().backend(plan.backend)
    verdicts = [device_verdict(rule, gpu) for gpu in gpus]
    if any(v.compatible != "no" for v in verdicts):
        return plan
    why = f"check says it cannot run here: {verdicts[0].reason}"
    refused = tuple(
        Rejection(backend=plan.backend, source=c.source, what=c.requirement, reason=why)
        for c in plan.candidates
    )
    return replace(plan, candidates=(), rejections=refused + plan.rejections)


def _only_versions(plan: BackendPlan, versions: SpecifierSet, unpinned: BackendPlan) -> BackendPlan:
    """Keep the candidates ``versions`` accepts; when none is left, say which versions fit."""
    kept = tuple(
        c
        for c in plan.candidates
        if c.version is not None and versions.contains(c.version, prereleases=True)
    )
    if kept:
        return replace(plan, candidates=kept)
    fit = sorted(
        {c.version for c in unpinned.candidates if c.version is not None},
        key=Version,
        reverse=True,
    )
    ways = (
        f"Versions that fit here: {', '.join(fit)}." if fit else "No version fits here.",
        *plan.ways_out,
    )
    return replace(plan, candidates=(), ways_out=ways)


def plan_install(
    env: Environment,
    index: Index,
    backend: BackendName,
    *,
    allow_sources: Iterable[SourceKind] = ALL_SOURCES,
    allow_torch_change: bool = False,
    choice: int = 0,
    versions: SpecifierSet | None = None,
) -> InstallPlan:
    """The install plan for the ``choice``-th candidate (best first).

    Raises ``NoWayToInstall`` (exit 1) when no candidate fits (the hint carries the ways out).
    """
    plan = plan_backend(
        env,
        index,
        backend,
        allow_sources=allow_sources,
        allow_torch_change=allow_torch_change,
        versions=versions,
    )
    if not plan.candidates:
        reasons = "; ".join(r.reason for r in plan.rejections[:3]) or "no source offers it"
        what = (
            f"{BACKENDS[backend].distribution or backend}{versions}"
            if versions is not None
            else BACKENDS[backend].title
        )
        raise NoWayToInstall(
            f"no way to install {what} here: {reasons}",
            hint=" ".join(plan.ways_out) or None,
        )
    if not 0 <= choice < len(plan.candidates):
        raise UsageError(f"choice {choice} is out of range (0..{len(plan.candidates) - 1})")
    cand = plan.candidates[choice]
    protected = protected_lines(env, except_torch=cand.torch_requirement is not None)
    py = env.python.executable or "python"
    notes: list[str] = []
    if cand.torch_requirement is not None:
        notes.append(
            f"torch {env.torch.version if env.torch else '(none)'} WILL BE REPLACED: "
            f"{cand.torch_requirement}"
        )
    if cand.source == "hub":
        notes.append(f"then load models with attn_implementation='{cand.attn_implementation}'")
    # The same builder the installer runs (``install.pip.command_lines``).
    commands = command_lines(
        cand, python=py, build_env=cand.build_env, pins=protected, shell=shell_of(env)
    )
    if cand.source == "community":
        what = "community build" if cand.trust == "community" else f"{cand.trust} wheel"
        notes.append(f"{what}: not produced by the backend's authors")
    integrity = integrity_note(cand)
    if integrity is not None:
        notes.append(integrity)
    if not cand.verified:
        notes.append("the index entry behind this choice is not confirmed against upstream")
    notes += framework_notes(env, backend, cand)
    protected = (*protected, *framework_constraints(env))
    if cand.confirmed_online is None and cand.url:
        notes.append("the URL was not checked online (the installer confirms it before acting)")
    return InstallPlan(
        backend=backend,
        candidate=cand,
        protected=protected,
        commands=commands,
        notes=tuple(notes),
    )


def protected_lines(env: Environment, *, except_torch: bool = False) -> tuple[str, ...]:
    """Constraint lines pinning the installed torch, torchvision, torchaudio and triton."""
    lines: list[str] = []
    for name in PROTECTED:
        if name == "torch":
            if env.torch is not None and not except_torch:
                lines.append(f"torch=={env.torch.version}")
            continue
        pkg = env.package(name)
        if pkg is not None and not except_torch:
            lines.append(f"{name}=={pkg.version}")
    return tuple(lines)
