"""Carry out an ``InstallPlan``, step by step, never leaving torch or the environment changed.

    lock -> leftover journal? -> record prior state -> pip dry run (with the torch pins)
         -> back up what pip will replace -> journal -> pip install -> import check
         -> success: drop journal and backups | failure: roll back exactly, then fail (exit 4)

The dry run is where a plan that would move torch is refused: the constraints pin every
installed protected distribution to its exact version, so pip's resolver fails, and nothing
has been touched. The prediction is checked once more (a protected name in pip's report is
refused even if the pins let it through), and the state after the install is compared too.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from attn_doctor.backends import BACKENDS
from attn_doctor.errors import ExitCode, InstallFailed, UsageError
from attn_doctor.facts import ImportResult, encode
from attn_doctor.install.build import missing_build_requirements, source_build_settings
from attn_doctor.install.journal import (
    Journal,
    Step,
    read_journal,
    remove_journal,
    write_journal,
)
from attn_doctor.install.lock import env_lock
from attn_doctor.install.pip import (
    PROTECTED_DISTRIBUTIONS,
    canonical_name,
    protected_constraints,
    run_pip,
    stderr_tail,
    write_constraints_file,
)
from attn_doctor.install.state import (
    Backup,
    RollbackResult,
    StateDiff,
    backup_distributions,
    diff_state,
    record_state,
    rollback,
)
from attn_doctor.planner.integrity import downloaded_sha256, first_download_note
from attn_doctor.planner.pip_command import Installer, candidate_install_args, command_lines
from attn_doctor.planner.plans import InstallPlan
from attn_doctor.probe.imports import import_in_child
from attn_doctor.shell import Shell, quote_arg

STATE_DIR_NAME = ".attn-doctor"


@dataclass(frozen=True, kw_only=True)
class InstallOptions:
    """How to act: which interpreter, which installer, where the wheels come from."""

    python: str
    installer: Installer = "pip"
    index_args: tuple[str, ...] = ()
    """``("--no-index", "--find-links", DIR)`` for a wheelhouse; empty for the default index."""
    check_timeout: float = 300.0
    environ: Mapping[str, str] | None = None
    """The child processes' environment (default: this process's)."""
    echo: Callable[[str], None] | None = None
    """Receives progress lines (pip's output during long steps)."""
    cpu_count: int | None = None
    ram_available_bytes: int | None = None
    """Facts for a source build's MAX_JOBS (read with psutil when omitted)."""
    verify_kernels: bool = True
    """After the import check, launch the backend's kernels against a reference
    (``attn-doctor verify``); a failure there rolls back like a failed import."""


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """What pip says it would install (name -> version), from its dry-run report."""

    install: tuple[tuple[str, str], ...]
    hashes: tuple[tuple[str, str], ...] = ()
    """(canonical name, sha256) of each file pip downloaded, from its report's download_info."""


@dataclass(frozen=True, kw_only=True)
class InstallReport:
    """The outcome of ``execute_install`` (also attached to a failure)."""

    backend: str
    requirement: str
    python: str
    constraints: tuple[str, ...]
    commands: tuple[str, ...]
    predicted: tuple[tuple[str, str], ...] = ()
    changes: StateDiff = field(default_factory=StateDiff)
    check: ImportResult | None = None
    rolled_back: RollbackResult | None = None
    seconds: float = 0.0
    build_seconds: float | None = None
    build_env: tuple[tuple[str, str], ...] = ()
    log: str | None = None
    notes: tuple[str, ...] = ()
    kernel_check: str | None = None
    """The kernel verification's verdict in one line (or why it did not run)."""


class InstallRolledBack(InstallFailed):
    """An install or its check failed; ``report`` says what happened and what was undone."""

    def __init__(self, message: str, *, report: InstallReport, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.report = report


# --- pure parts ---------------------------------------------------------------------------


def install_args(plan: InstallPlan, index_args: Sequence[str]) -> list[str]:
    """pip's arguments for the plan's install (without constraints, added by ``run_pip``)."""
    return candidate_install_args(plan.candidate, index_args)


def merge_constraints(from_state: Sequence[str], from_plan: Sequence[str]) -> tuple[str, ...]:
    """The state's pins win; the plan's lines are kept for names the state does not pin."""
    from packaging.requirements import InvalidRequirement, Requirement

    pinned = set()
    for line in from_state:
        pinned.add(canonical_name(Requirement(line).name))
    out = list(from_state)
    for line in from_plan:
        try:
            name = canonical_name(Requirement(line).name)
        except InvalidRequirement as exc:
            raise UsageError(f"plan: bad constraint line {line!r}: {exc}") from exc
        if name not in pinned:
            out.append(line)
            pinned.add(name)
    return tuple(out)


def display_commands(
    plan: InstallPlan,
    *,
    python: str,
    installer: Installer,
    index_args: Sequence[str],
    build_env: Sequence[tuple[str, str]] = (),
    pre_requirements: Sequence[str] = (),
    constraints_file: str | None = None,
    pins: Sequence[str] = (),
    shell: Shell = "posix",
) -> tuple[str, ...]:
    """The exact commands the install will run, for the plan shown before acting: the pins
    in ``constraints_file`` (a written file) or, without one, inline (``pins``)."""
    return command_lines(
        plan.candidate,
        python=python,
        installer=installer,
        index_args=index_args,
        build_env=build_env,
        pre_requirements=pre_requirements,
        constraints_file=constraints_file,
        pins=pins,
        shell=shell,
    )


def parse_report(text: str) -> Prediction:
    """pip's ``--report`` JSON (install list) as (canonical name, version) pairs."""
    data = json.loads(text)
    items = []
    hashes = []
    for item in data.get("install", []):
        meta = item.get("metadata", {})
        items.append((canonical_name(str(meta["name"])), str(meta["version"])))
        digest = downloaded_sha256(item)
        if digest is not None:
            hashes.append((canonical_name(str(meta["name"])), digest))
    return Prediction(install=tuple(sorted(items)), hashes=tuple(sorted(hashes)))


def explain_refusal(output: str, constraints: Sequence[str]) -> str | None:
    """When pip failed because of a pin, the sentence that says so (pure).

    ``output`` is pip's stdout and stderr; pip prints the conflict's causes on stdout
    ("The conflict is caused by: ... The user requested (constraint) torch==2.8.0+cu128").
    """
    lines = output.splitlines()
    causes: list[str] = []
    for i, line in enumerate(lines):
        if line.strip().startswith("The conflict is caused by"):  # pip
            for follow in lines[i + 1 :]:
                if not follow.strip():
                    break
                causes.append(follow.strip())
        elif line.strip().startswith("cause:"):  # uv: "cause: Because x depends on torch==…"
            causes.append(line.strip().removeprefix("cause:").strip())
            for follow in lines[i + 1 :]:
                if not follow.startswith(" ") or not follow.strip():
                    break
                causes.append(follow.strip())
    pinned = [c for c in constraints if any(c.split("==")[0] in cause for cause in causes)]
    if not pinned:
        return None
    needs = [c for c in causes if "(constraint)" not in c]
    return (
        "refused: this needs a different "
        + " / ".join(c.split("==")[0] for c in pinned)
        + f" than the installed one ({', '.join(pinned)}, pinned so that it cannot change)"
        + (f": {'; '.join(needs)}" if needs else "")
        + "; nothing was changed"
    )


# --- acting -------------------------------------------------------------------------------


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _run_id() -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{os.getpid()}"


def parse_uv_dry_run(text: str) -> Prediction:
    """``uv pip install --dry-run`` output: its `` + name==version`` lines (pure)."""
    items = []
    for line in text.splitlines():
        m = re.match(r"^\s*\+\s+([A-Za-z0-9._-]+)==(\S+)", line)
        if m:
            items.append((canonical_name(m.group(1)), m.group(2)))
    return Prediction(install=tuple(sorted(items)))


def predict(
    args: Sequence[str],
    *,
    python: str,
    constraints: Sequence[str],
    environ: Mapping[str, str] | None,
    log: Path | None,
    installer: Installer = "pip",
) -> Prediction:
    """What would be installed; raises ``InstallFailed`` when the resolver refuses.

    pip's ``install --dry-run --report`` (JSON) when pip is in the target; with
    ``--installer uv`` and no pip there, uv's ``--dry-run`` text.
    """
    with tempfile.TemporaryDirectory(prefix="attn-doctor-report-") as tmp:
        report = Path(tmp) / "report.json"
        res = run_pip(
            [args[0], "--dry-run", "--report", str(report), *args[1:]],
            python=python,
            constraints=constraints,
            env=environ,
            log=log,
            check=False,
        )
        if not res.ok and installer == "uv" and "No module named pip" in res.stderr:
            res = run_pip(
                [args[0], "--dry-run", *args[1:]],
                python=python,
                constraints=constraints,
                env=environ,
                log=log,
                check=False,
                installer="uv",
            )
            if res.ok:
                return parse_uv_dry_run(res.stdout + "\n" + res.stderr)
        if not res.ok:
            refusal = explain_refusal(res.stdout + "\n" + res.stderr, constraints)
            raise InstallFailed(
                refusal or f"the dry run failed (exit {res.returncode}): {res.command}",
                hint=stderr_tail(res.stderr) or None,
            )
        return parse_report(report.read_text(encoding="utf-8"))


def _protected_changes(diff: StateDiff) -> list[str]:
    names = set(PROTECTED_DISTRIBUTIONS)
    out = [f"{a.name} {a.version} -> {b.version}" for a, b in diff.changed if a.name in names]
    out += [f"{d.name} {d.version} removed" for d in diff.removed if d.name in names]
    out += [f"{d.name} {d.version} added" for d in diff.added if d.name in names]
    return out


def build_environment(plan: InstallPlan, options: InstallOptions) -> tuple[tuple[str, str], ...]:
    """The resolver's build environment over attn-doctor's defaults (source builds only)."""
    if plan.candidate.source != "source-build":
        return ()
    cpu, ram = options.cpu_count, options.ram_available_bytes
    if cpu is None or ram is None:
        import psutil

        cpu = cpu if cpu is not None else (os.cpu_count() or 1)
        ram = ram if ram is not None else int(psutil.virtual_memory().available)
    defaults = dict(
        source_build_settings(cpu_count=cpu, ram_available_bytes=ram, compute_capabilities=()).env
    )
    defaults.update(dict(plan.candidate.build_env))
    return tuple(defaults.items())


def check_module(plan: InstallPlan) -> str | None:
    """The module whose import proves the installed backend loads."""
    return BACKENDS[plan.backend].module


def _state_dir(prefix: str, run_id: str) -> Path:
    return Path(prefix) / STATE_DIR_NAME / "runs" / run_id


def verify_installed_kernels(plan: InstallPlan, python: str, *, timeout: float) -> tuple[str, bool]:
    """Launch the installed backend's kernels against a reference (quick matrix, no model).

    Returns the verdict in one line and whether it *failed*: a backend that cannot launch
    here (no GPU) is not a failure, only unverified, and says so.
    """
    from attn_doctor.probe.interpreter import is_this_interpreter

    if not is_this_interpreter(python):  # by path: two venvs of one base are two environments
        # The verify child runs attn-doctor's own code; in another environment it would see
        # attn-doctor's site-packages beside the target's, and could test the wrong torch.
        return (
            "not run: the target is another interpreter; with attn-doctor installed there, run "
            f"`{quote_arg(python, 'windows' if sys.platform == 'win32' else 'posix')} -m "
            f"attn_doctor verify {plan.backend}`",
            False,
        )
    from attn_doctor.verify.runner import verify_backends

    report = verify_backends([plan.backend], include_model=False, quick=True, timeout=timeout)
    verdict = next((v for v in report.backends if v.backend == plan.backend), None)
    if verdict is None:
        return "not run: verify has no kernel check for this backend", False
    if not verdict.usable:
        why = verdict.failure or "the backend cannot launch on this machine"
        return f"not run here: {why}", False
    if verdict.passed is False:
        return verdict.failure or "failed", True
    return "passed (kernel vs reference, flash-attn's error rule)", False


def refuse_leftover_journal(prefix: str) -> None:
    """``UsageError`` when an interrupted install's journal is in ``prefix``: nothing may be
    installed on top of it (and no plan is worth showing) before ``install --rollback``."""
    leftover = read_journal(prefix)
    if leftover is not None:
        raise UsageError(
            f"an earlier install (process {leftover.pid}, {leftover.started_at}, "
            f"{leftover.requirement}) was interrupted at step '{leftover.step}'",
            hint="Run `attn-doctor install --rollback` (with the same --python) to "
            "restore the environment recorded before it, then install again.",
        )


class InstallInterrupted(InstallFailed):
    """Ctrl-C (or SIGTERM) during an install: the environment was rolled back; exit 130."""

    exit_code = ExitCode.INTERRUPTED
    code = "interrupted"

    def __init__(self, message: str, *, report: InstallReport, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.report = report


def execute_install(plan: InstallPlan, options: InstallOptions) -> InstallReport:
    """Install the plan's candidate into ``options.python``; roll back exactly on failure.

    Raises ``Locked`` (another install runs), ``UsageError`` (a leftover journal: run
    ``install --rollback`` first), ``InstallFailed`` (refused before anything changed) or
    ``InstallRolledBack`` (failed after acting; the environment was restored).
    """
    start = time.monotonic()
    python = options.python
    first = record_state(python)
    prefix = first.prefix
    with env_lock(prefix):
        refuse_leftover_journal(prefix)
        prior = record_state(python)
        constraints = merge_constraints(protected_constraints(prior.versions()), plan.protected)
        run_id = _run_id()
        state_dir = _state_dir(prefix, run_id)
        log = Path(prefix) / STATE_DIR_NAME / "logs" / f"{run_id}-{plan.backend}.log"
        build_env = build_environment(plan, options)
        child_env: dict[str, str] | None = None
        if build_env:
            child_env = dict(os.environ if options.environ is None else options.environ)
            child_env.update(build_env)
        elif options.environ is not None:
            child_env = dict(options.environ)
        pre: tuple[str, ...] = ()
        if plan.candidate.source == "source-build":
            pre = missing_build_requirements(python)
        shown = write_constraints_file(constraints, environ=options.environ)
        commands = display_commands(
            plan,
            python=python,
            installer=options.installer,
            index_args=options.index_args,
            build_env=build_env,
            pre_requirements=pre,
            constraints_file=None if shown is None else str(shown),
            pins=constraints,
            shell="windows" if sys.platform == "win32" else "posix",
        )
        report = InstallReport(
            backend=plan.backend,
            requirement=plan.candidate.requirement,
            python=python,
            constraints=constraints,
            commands=commands,
            build_env=build_env,
            log=str(log),
        )
        args = install_args(plan, options.index_args)
        steps: list[list[str]] = []
        if pre:  # --no-build-isolation: the build's own requirements must be there first
            steps.append(["install", *options.index_args, *pre])
        steps.append(args)

        journal = Journal(
            pid=os.getpid(),
            started_at=_now(),
            step="prepared",
            backend=plan.backend,
            requirement=plan.candidate.requirement,
            prior=prior,
            state_dir=str(state_dir),
            index_args=options.index_args,
            installer=options.installer,
            log=str(log),
            plan=_plan_dict(plan),
        )
        state_dir.mkdir(parents=True, exist_ok=True)
        write_journal(prefix, journal)
        backups: tuple[Backup, ...] = ()
        check: ImportResult | None = None
        build_seconds: float | None = None
        acted = False
        try:
            for i, step_args in enumerate(steps):
                # 1. Predict, with the pins: a plan that would move torch fails here.
                prediction = predict(
                    step_args,
                    python=python,
                    constraints=constraints,
                    environ=child_env,
                    log=log,
                    installer=options.installer,
                )
                touched = [n for n, _ in prediction.install if n in PROTECTED_DISTRIBUTIONS]
                if touched:
                    raise InstallFailed(
                        f"refused: installing {' '.join(step_args[-1:])} would change "
                        + ", ".join(touched),
                        hint="Pick a build made for the installed torch (`attn-doctor check`).",
                    )
                report = _replace(report, predicted=report.predicted + prediction.install)
                seen = first_download_note(plan.candidate, prediction.hashes)
                if seen is not None:  # an unpinned wheel: its digest, recorded on first download
                    report = _replace(report, notes=(*report.notes, seen))
                    journal = _step(
                        prefix, journal, journal.step, plan={**journal.plan, "sha256_seen": seen}
                    )
                # 2. Back up what pip will replace (byte-exact, for the rollback).
                saved = {b.name for b in backups}
                replaced = [
                    n for n, _ in prediction.install if prior.get(n) is not None and n not in saved
                ]
                backups += backup_distributions(python, replaced, state_dir / "backups")
                journal = _step(prefix, journal, "installing", backups=backups)
                # 3. Act. From here on, any failure (or Ctrl-C) rolls back.
                acted = True
                t0 = time.monotonic()
                run_pip(
                    step_args,
                    python=python,
                    constraints=constraints,
                    env=child_env,
                    log=log,
                    installer=options.installer,
                    echo=options.echo,
                )
                if plan.candidate.source == "source-build" and i == len(steps) - 1:
                    build_seconds = time.monotonic() - t0
            after = record_state(python)
            changes = diff_state(prior, after)
            report = _replace(report, changes=changes, build_seconds=build_seconds)
            moved = _protected_changes(changes)
            if moved:
                raise InstallFailed("the install changed protected packages: " + ", ".join(moved))
            journal = _step(prefix, journal, "checking")
            module = check_module(plan)
            if module is not None:
                check = import_in_child(
                    module, timeout=options.check_timeout, python=python, environ=child_env
                )
                report = _replace(report, check=check)
                if check.status != "ok":
                    raise InstallFailed(
                        f"the installed {plan.candidate.requirement} does not import: "
                        f"`import {module}` {check.status}: {check.detail}",
                        hint=_short_tail(check.traceback_tail),
                    )
                if options.verify_kernels:
                    verdict, failed = verify_installed_kernels(
                        plan, python, timeout=options.check_timeout
                    )
                    report = _replace(report, kernel_check=verdict)
                    if failed:
                        raise InstallFailed(
                            f"the installed {plan.candidate.requirement} imports, but its kernel "
                            f"failed verification: {verdict}",
                            hint=f"attn-doctor verify {plan.backend} shows every case",
                        )
        except BaseException as exc:
            if not acted:  # refused before pip changed anything: nothing to undo
                remove_journal(prefix)
                shutil.rmtree(state_dir, ignore_errors=True)
                raise
            journal = _step(prefix, journal, "rolling-back")
            result = rollback(
                prior,
                record_state(python),
                backups=backups,
                index_args=options.index_args,
                installer=options.installer,
                log=log,
                environ=child_env,
            )
            report = _replace(report, rolled_back=result, seconds=time.monotonic() - start)
            if result.exact:
                remove_journal(prefix)
                shutil.rmtree(state_dir, ignore_errors=True)
            if isinstance(exc, KeyboardInterrupt):  # Ctrl-C: rolled back, say so and stop
                state = (
                    f"rolled back to its prior state ({_undone(result)})"
                    if result.exact
                    else "NOT fully rolled back: " + "; ".join(result.remaining.lines())
                )
                raise InstallInterrupted(
                    f"interrupted while installing {plan.candidate.requirement}; "
                    f"the environment was {state}",
                    report=report,
                    hint=None
                    if result.exact
                    else (
                        f"The journal was kept: run `attn-doctor install --rollback --python "
                        f"{python}`. Log: {log}"
                    ),
                ) from exc
            if not isinstance(exc, Exception):
                raise  # SystemExit and the like: rolled back, now stop
            message = exc.message if isinstance(exc, InstallFailed) else str(exc)
            if result.exact:
                message += "; the environment was rolled back to its prior state"
                hint = exc.hint if isinstance(exc, InstallFailed) else None
            else:
                message += "; the ROLLBACK IS INCOMPLETE: " + "; ".join(result.remaining.lines())
                hint = (
                    "The journal was kept: fix the cause, then run `attn-doctor install "
                    f"--rollback --python {python}`. Log: {log}"
                )
            raise InstallRolledBack(message, report=report, hint=hint) from exc

        remove_journal(prefix)
        shutil.rmtree(state_dir, ignore_errors=True)
        return _replace(report, seconds=time.monotonic() - start)


@dataclass(frozen=True, kw_only=True)
class RollbackReport:
    """The outcome of ``rollback_interrupted``."""

    python: str
    found: bool
    """A leftover journal was found."""
    journal_step: str | None = None
    requirement: str | None = None
    result: RollbackResult | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def rollback_interrupted(python: str, *, installer: Installer | None = None) -> RollbackReport:
    """Undo an interrupted install recorded in the environment's journal (if any)."""
    prefix = record_state(python).prefix
    with env_lock(prefix):
        journal = read_journal(prefix)
        if journal is None:
            return RollbackReport(python=python, found=False, notes=("no interrupted install",))
        log = Path(journal.log) if journal.log else None
        result = rollback(
            journal.prior,
            record_state(python),
            backups=journal.backups,
            index_args=journal.index_args,
            installer=installer or journal.installer,
            log=log,
        )
        report = RollbackReport(
            python=python,
            found=True,
            journal_step=journal.step,
            requirement=journal.requirement,
            result=result,
        )
        if not result.exact:
            raise InstallFailed(
                "the rollback could not restore everything: " + "; ".join(result.remaining.lines()),
                hint=f"The journal was kept. Log: {log}",
            )
        remove_journal(prefix)
        if journal.state_dir:
            shutil.rmtree(journal.state_dir, ignore_errors=True)
        return report


def _undone(result: RollbackResult) -> str:
    """One clause: what the rollback removed and put back."""
    back = {spec.split("==")[0] for spec in result.restored + result.reinstalled}
    parts = [f"removed {', '.join(n for n in result.uninstalled if n not in back)}"]
    if back:
        parts.append(f"restored {', '.join(result.restored + result.reinstalled)}")
    if parts[0] == "removed ":
        parts.pop(0)
    return "; ".join(parts) or "nothing had changed yet"


def _step(prefix: str, journal: Journal, step: Step, **changes: object) -> Journal:
    import dataclasses

    new = dataclasses.replace(journal, step=step, **changes)  # type: ignore[arg-type]
    write_journal(prefix, new)
    return new


def _replace(report: InstallReport, **changes: object) -> InstallReport:
    import dataclasses

    return dataclasses.replace(report, **changes)  # type: ignore[arg-type]


def _short_tail(tail: str | None, lines: int = 4) -> str | None:
    if not tail:
        return None
    kept = [ln for ln in tail.splitlines() if not ln.startswith("ATTN-DOCTOR-ERROR")]
    return "\n".join(kept[-lines:]) or None


def _plan_dict(plan: InstallPlan) -> dict[str, object]:
    data = encode(plan)
    assert isinstance(data, dict)
    return data
