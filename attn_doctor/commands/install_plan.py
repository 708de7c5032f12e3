"""What ``attn-doctor install`` would do: the plan for a machine (this one, a snapshot, or a
group of fleet nodes), ``--auto``'s choice through the one decision, and how a plan is shown.

Shared by ``install``, ``download`` and the per-group plans; nothing here installs.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attn_doctor.backends import BACKENDS, BackendName, parse_backend
from attn_doctor.errors import (
    AttnDoctorError,
    ExitCode,
    NoWayToInstall,
    ProblemsFound,
    UsageError,
)
from attn_doctor.facts import Environment
from attn_doctor.planner.plans import InstallPlan, SourceKind, WheelCandidate

if TYPE_CHECKING:
    from packaging.specifiers import SpecifierSet

    from attn_doctor.index import Index

SOURCE_CHOICES = ("official", "community", "hub", "source-build")
DEFAULT_SOURCES = ("official", "community", "hub")


def wheelhouse_args(wheelhouse: Path | None) -> tuple[str, ...]:
    """Offline: pip sees only the wheelhouse directory."""
    if wheelhouse is None:
        return ()
    return ("--no-index", "--find-links", str(wheelhouse.resolve()))


def explicit_plan(
    backend: BackendName,
    *,
    requirement: str | None,
    wheelhouse: Path | None,
    protected: Sequence[str],
) -> InstallPlan:
    """A plan from the user's own requirement (or the backend's distribution) and wheelhouse."""
    info = BACKENDS[backend]
    req = requirement or info.distribution
    if req is None:
        raise UsageError(f"{info.title} is part of torch: there is nothing to install")
    where = f"your wheelhouse {wheelhouse}" if wheelhouse is not None else "the package index"
    candidate = WheelCandidate(
        backend=backend,
        source="wheelhouse" if wheelhouse is not None else "pypi",
        trust="official",
        requirement=req,
        reason=f"{req} as you asked, from {where}",
    )
    return InstallPlan(
        backend=backend,
        candidate=candidate,
        protected=tuple(protected),
        commands=(),
        notes=("chosen by you (--requirement/--wheelhouse), not by the resolver",),
    )


class Blocked(ProblemsFound):
    """``--auto``: the best backend cannot work until a problem is fixed (exit 1)."""

    code = "blocked"


def parse_target(text: str) -> tuple[BackendName, SpecifierSet | None, str | None]:
    """``xformers``, ``flash-attn==2.6.3`` or ``flash-attn @ URL`` -> (backend, versions, url).

    Raises ``UsageError`` (one line, exit 2) for anything that is not a requirement on a known
    backend: ``xformers>=``, ``xformers==``, extras or markers.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    text = text.strip()
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", text):
        return parse_backend(text), None, None
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        first = str(exc).splitlines()[0] if str(exc) else "cannot parse it"
        raise UsageError(f"malformed requirement {text!r}: {first}") from None
    if req.extras or req.marker is not None:
        raise UsageError(f"{text!r}: extras and markers are not supported here")
    backend = parse_backend(req.name)
    if req.url:
        return backend, None, req.url
    return backend, req.specifier if str(req.specifier) else None, None


class NothingToInstall(AttnDoctorError):
    """``--auto`` found the best backend already installed and usable (exit 0)."""

    exit_code = ExitCode.OK
    code = "nothing-to-install"


_SOURCE_KINDS: dict[str, tuple[SourceKind, ...]] = {
    "official": ("upstream-release", "pypi", "pytorch-index", "wheelhouse"),
    "community": ("community",),
    "hub": ("hub",),
    "source-build": ("source-build",),
}


def resolve_plan(
    *,
    backend: BackendName | None,
    sources: Sequence[str],
    snapshot: Path | None,
    python: str,
    versions: SpecifierSet | None = None,
) -> InstallPlan:
    """The resolver's plan for this machine (or the snapshot's).

    ``backend=None`` means ``--auto``: the first backend in ``check``'s ranking that is a
    package (not built into torch) and that some allowed source can provide here.
    """
    from attn_doctor.snapshot import load_snapshot

    env = load_snapshot(snapshot) if snapshot is not None else probe_target(python)
    return plan_for_environment(
        env, backend=backend, sources=sources, versions=versions, live=snapshot is None
    )


class NoPip(UsageError):
    """``--python X`` names an environment without pip, and pip is the installer (exit 2:
    a ``--python`` that is not what it should be)."""

    code = "no-pip"

    def __init__(self, python: str) -> None:
        super().__init__(
            f"--python {python}: this environment has no pip, so `{python} -m pip` cannot "
            "install into it; nothing was changed",
            hint=f"Add pip to it ({_quoted(python)} -m ensurepip), or pass --installer uv.",
        )


def no_pip_note(python: str) -> str:
    """The plan's note for an environment without pip (a dry run shows it, install refuses)."""
    return f"this environment has no pip yet: run {_quoted(python)} -m ensurepip first"


def _quoted(python: str) -> str:
    from attn_doctor.shell import quote_arg

    return quote_arg(python, "windows" if sys.platform == "win32" else "posix")


def already_installed(
    env: Environment,
    backend: BackendName,
    versions: SpecifierSet | None,
    *,
    live: bool,
    timeout: float,
) -> str | None:
    """What to say instead of a plan when ``backend`` is already installed in ``env`` (at a
    version ``versions`` allows) and imports there (a plan would only reinstall it); None
    when a plan is due.

    Live, the import is tried in a child of the target interpreter; for a snapshot, its
    ``--deep`` import result is used (without one, nothing is claimed and the plan is shown).
    """
    info = BACKENDS[backend]
    pkg = next((p for d in info.distributions if (p := env.package(d)) is not None), None)
    if pkg is None or info.module is None:
        return None
    if versions is not None and not versions.contains(pkg.version, prereleases=True):
        return None
    if live:
        from attn_doctor.probe import import_in_child

        result = import_in_child(info.module, timeout=timeout, python=env.python.executable)
    else:
        found = env.import_result(info.module)
        if found is None:
            return None
        result = found
    if result.status != "ok":
        return None
    where = env.python.executable or "this environment"
    return (
        f"{pkg.name} {pkg.version} is already installed in {where} and `import {info.module}` "
        f"works there: nothing to install (to change it, name a version: "
        f"attn-doctor install {pkg.name}==VERSION)"
    )


def probe_target(python: str) -> Environment:
    """The facts of the environment ``python`` belongs to, read from ``python`` itself (its
    Python, its torch, its packages): the environment acted on is the one probed."""
    from attn_doctor.probe import probe_environment

    return probe_environment(python=python)


def plan_for_environment(
    env: Environment,
    *,
    backend: BackendName | None,
    sources: Sequence[str],
    versions: SpecifierSet | None = None,
    live: bool = False,
) -> InstallPlan:
    """The resolver's plan for the machine ``env`` describes (``backend=None``: ``--auto``,
    the one decision's top choice). ``live``: ``env`` is this machine (its bench cache is
    evidence)."""
    from attn_doctor.index import load_index
    from attn_doctor.resolve import plan_install

    index = load_index()
    kinds = tuple(k for s in sources for k in _SOURCE_KINDS.get(s, ()))
    if backend is not None:
        return plan_install(env, index, backend, allow_sources=kinds, versions=versions)
    return _auto_plan(env, index, kinds, live=live)


def _auto_plan(
    env: Environment, index: Index, kinds: Sequence[SourceKind], *, live: bool
) -> InstallPlan:
    """``--auto``: the top of the one decision (``attn_doctor.decide``) for this machine.

    Installs only when the top choice needs an install; when it is ready, says why nothing is
    needed (``NothingToInstall``); when it is blocked, says what to fix first (``Blocked``).
    """
    from attn_doctor.diagnose import diagnose
    from attn_doctor.planner.pip_command import doctor_fix
    from attn_doctor.resolve import plan_install
    from attn_doctor.rules_data import load_rules

    evidence = None
    if live:
        from attn_doctor.bench.cache import bench_evidence

        evidence = bench_evidence(env)
    diagnosis = diagnose(env, load_rules(), evidence=evidence, index=index)
    top = diagnosis.recommendations[0] if diagnosis.recommendations else None
    if top is None:
        raise NoWayToInstall("--auto: no attention backend can run on this machine")
    title = BACKENDS[top.backend].title
    match top.status:
        case "ready":
            kernel = (
                f" (it runs {BACKENDS[top.kernel].title} here: {top.kernel_source})"
                if top.kernel is not None
                else ""
            )
            raise NothingToInstall(
                f"nothing to install: the best backend here is {title}{kernel}, {top.way}; "
                + _how_to_use(top.backend, top.attn_implementation)
            )
        case "blocked":
            fix = top.way.removeprefix("fix first: ")
            where = env.python.executable or "this environment"
            again = doctor_fix(env, "install", "--auto")
            if env.torch is None:
                raise Blocked(
                    f"--auto: torch is not installed in {where}; install torch first "
                    "(every attention backend is built for one torch)",
                    hint=f"install torch, then run --auto again:\n  {fix}\n  {again}",
                )
            problem = top.reason.split(";")[0]
            raise Blocked(
                f"--auto installs nothing until this is fixed: {problem} ({title} would be "
                "the best choice here)",
                hint=f"fix this first, then run --auto again:\n  {fix}\n  {again}",
            )
    return plan_install(env, index, top.backend, allow_sources=kinds)


def _how_to_use(backend: BackendName, attn_implementation: str | None) -> str:
    if backend == "xformers":
        return (
            "in transformers call attn_doctor.register_xformers_attention() and load models "
            "with attn_implementation='xformers'"
        )
    if attn_implementation is None:
        return f"use {BACKENDS[backend].title} through its own API"
    return f"load models with attn_implementation={attn_implementation!r}"


def plan_console() -> Any:
    from attn_doctor.report.console import make_console

    return make_console(stderr=False)


def print_plan(
    console: Any, plan: InstallPlan, commands: Sequence[str], constraints: Sequence[str]
) -> None:
    cand = plan.candidate
    label = {"community": " (community build)", "third-party index": " (third-party index)"}.get(
        cand.trust, ""
    )
    console.print(f"[bold]Plan:[/bold] {BACKENDS[plan.backend].title}")
    # Requirements, reasons and notes are data: "flashinfer-python[cu13]" is not rich markup.
    console.print(f"  install  {cand.requirement}", markup=False)
    console.print(f"  source   {cand.source}{label}")
    if cand.reason:
        console.print(f"  why      {cand.reason}", markup=False)
    notes = list(plan.notes)
    if cand.confirmed_online is None and cand.url and not any("URL" in n for n in notes):
        notes.insert(0, "the URL was not checked online (unconfirmed)")
    for note in notes:
        console.print(f"  note     {note}", markup=False)
    console.print("  pinned (pip must fail rather than change these):")
    for line in constraints or ("(none installed)",):
        console.print(f"    {line}")
    console.print("  commands:")
    for cmd in commands:
        console.print(f"    {cmd}", markup=False, soft_wrap=True)


def jsonable(value: object) -> object:
    """Dataclasses (facts, plans, reports) inside dicts and tuples as JSON-ready data."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    return value


def check_source_allowed(plan: InstallPlan, allowed: Sequence[str]) -> None:
    cand = plan.candidate
    if cand.source == "source-build":
        kind = "source-build"
    elif cand.source == "hub":
        kind = "hub"
    elif cand.trust != "official":  # a community build or a third-party index
        kind = "community"
    else:
        kind = "official"
    if kind not in allowed:
        raise UsageError(
            f"the plan needs a {kind} source ({cand.requirement}), which --source does not allow",
            hint=f"Add --source {kind} to allow it.",
        )
