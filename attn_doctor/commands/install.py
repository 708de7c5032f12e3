"""``attn-doctor install``: show the plan, then install it without ever moving torch.

Exit codes: 0 installed (or plan shown, or nothing to install), 1 no way to install here or
``--auto`` blocked, 2 usage (including: no terminal and no ``--yes``, a leftover journal, a
``--python`` that is not an interpreter or has no pip), 4 install failed or refused (the
environment is as before), 5 locked.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.commands.install_plan import (
    DEFAULT_SOURCES,
    SOURCE_CHOICES,
    NoPip,
    already_installed,
    check_source_allowed,
    explicit_plan,
    jsonable,
    no_pip_note,
    parse_target,
    plan_console,
    plan_for_environment,
    print_plan,
    probe_target,
    wheelhouse_args,
)
from attn_doctor.errors import (
    AttnDoctorError,
    ExitCode,
    InstallFailed,
    UsageError,
)
from attn_doctor.planner.plans import InstallPlan

if TYPE_CHECKING:
    from packaging.specifiers import SpecifierSet

    from attn_doctor.install.state import RollbackResult


def _confirm(yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            "refusing to install without confirmation: stdin is not a terminal",
            hint="Pass --yes to install from a script (or --dry-run to only see the plan).",
        )
    click.confirm("Proceed?", abort=True, err=True)


def _emit(json_mode: bool, result: object, code: ExitCode, error: AttnDoctorError | None) -> None:
    from attn_doctor.report.envelope import make_envelope, write_envelope

    if json_mode:
        write_envelope(
            make_envelope("install", result=jsonable(result), exit_code=code, error=error)
        )


@click.command("install")
@click.argument("backend", required=False)
@click.option("--auto", is_flag=True, help="Install the best backend for this machine.")
@click.option(
    "--dry-run", is_flag=True, help="Print the plan and the exact commands; change nothing."
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (scripts).")
@click.option("--json", "json_mode", is_flag=True, help="Print one versioned JSON document.")
@click.option(
    "--source",
    "sources",
    multiple=True,
    type=click.Choice(SOURCE_CHOICES),
    help="Allowed sources (repeatable); default: official, community, hub. "
    "source-build must be asked for.",
)
@click.option(
    "--wheelhouse",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Offline: install only from the wheels in DIR (pip --no-index --find-links DIR).",
)
@click.option(
    "--requirement",
    help="Install exactly this requirement: NAME==VERSION (planned by the resolver, or refused "
    "with the reason) or NAME @ URL (e.g. xformers==0.0.32.post2).",
)
@click.option("--installer", type=click.Choice(["pip", "uv"]), default="pip", show_default=True)
@click.option(
    "--snapshot",
    "snapshot_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Plan for the machine recorded in this snapshot (prints the plan; installs nothing). "
    "Several, or a folder: one plan per group of alike nodes (as attn-doctor fleet groups).",
)
@click.option(
    "--python",
    "python",
    default=sys.executable,
    show_default="this interpreter",
    help="The interpreter whose environment to plan for and install into (it is run to read "
    "its Python, torch and packages; every command is EXE -m pip).",
)
@click.option(
    "--rollback", is_flag=True, help="Undo an interrupted install recorded in the journal."
)
@click.option(
    "--no-verify",
    "no_verify",
    is_flag=True,
    help="Skip the kernel verification after the import check (not recommended).",
)
@click.option(
    "--check-timeout",
    type=click.FloatRange(min=1.0),
    default=300.0,
    show_default=True,
    help="Seconds the post-install import check (and each kernel check) may take.",
)
def install_command(
    *,
    backend: str | None,
    auto: bool,
    dry_run: bool,
    yes: bool,
    json_mode: bool,
    sources: tuple[str, ...],
    wheelhouse: Path | None,
    requirement: str | None,
    installer: str,
    snapshot_paths: tuple[Path, ...],
    python: str,
    rollback: bool,
    no_verify: bool,
    check_timeout: float,
) -> None:
    """Install an attention backend without ever changing torch; roll back if it fails."""

    from attn_doctor.install.build import missing_build_requirements
    from attn_doctor.install.execute import (
        InstallInterrupted,
        InstallOptions,
        InstallRolledBack,
        build_environment,
        display_commands,
        execute_install,
        merge_constraints,
        refuse_leftover_journal,
        rollback_interrupted,
    )
    from attn_doctor.install.pip import protected_constraints, write_constraints_file
    from attn_doctor.install.state import record_state
    from attn_doctor.planner.pip_command import (
        Installer,
        interpreter,
        powershell_note,
        shell_of,
    )

    inst: Installer = "uv" if installer == "uv" else "pip"
    if rollback:
        if backend or auto:
            raise UsageError("--rollback takes no backend")
        rb = rollback_interrupted(python, installer="uv" if installer == "uv" else None)
        _emit(json_mode, {"rollback": rb}, ExitCode.OK, None)
        if not json_mode:
            con = plan_console()
            if not rb.found:
                con.print("No interrupted install to roll back.")
            else:
                con.print(
                    f"Rolled back the interrupted install of {rb.requirement} "
                    f"(it stopped at '{rb.journal_step}'):"
                )
                if rb.result is not None:
                    for line in _rollback_lines(rb.result):
                        con.print(f"  {line}")
        sys.exit(int(ExitCode.OK))

    if auto and requirement is not None:
        raise UsageError("--requirement names its backend: drop --auto")
    if backend is None and requirement is not None and not auto:
        backend = requirement  # `install --requirement flash-attn==2.6.3` names its backend
    if backend and auto:
        raise UsageError(
            f"a backend ({backend}) or --auto, not both",
            hint=f"attn-doctor install {backend}, or attn-doctor install --auto",
        )
    if not backend and not auto:
        raise UsageError(
            "name one backend, or pass --auto", hint="e.g. attn-doctor install xformers"
        )
    chosen: BackendName | None = None
    versions: SpecifierSet | None = None
    url: str | None = None
    if backend:
        chosen, versions, url = parse_target(backend)
    if requirement is not None and chosen is not None:
        req_backend, req_versions, req_url = parse_target(requirement)
        if req_backend != chosen:
            raise UsageError(f"--requirement {requirement!r} is not a requirement on {backend!r}")
        if versions is not None and req_versions is not None and versions != req_versions:
            raise UsageError(f"{backend!r} and --requirement {requirement!r} disagree")
        versions = versions or req_versions
        url = url or req_url
    if url is not None and versions is None:
        requirement = f"{BACKENDS[chosen].distribution if chosen else ''} @ {url}"
    elif requirement is not None and url is None:
        requirement = None  # a name and version: the resolver plans exactly that version
    if chosen is not None and versions is not None and wheelhouse is not None:
        requirement = f"{BACKENDS[chosen].distribution}{versions}"
    allowed = sources or DEFAULT_SOURCES

    if chosen is not None and BACKENDS[chosen].distribution is None:
        msg = f"{BACKENDS[chosen].title} comes with torch: there is nothing to install"
        _emit(json_mode, {"plan": None, "note": msg}, ExitCode.OK, None)
        if not json_mode:
            plan_console().print(msg)
        sys.exit(int(ExitCode.OK))

    if len(snapshot_paths) > 1 or any(p.is_dir() for p in snapshot_paths):
        from attn_doctor.commands.group_plans import install_plans_for_groups

        code = install_plans_for_groups(
            snapshot_paths, backend=chosen, sources=allowed, installer=inst, json_mode=json_mode
        )
        sys.exit(int(code))
    snapshot_path = snapshot_paths[0] if snapshot_paths else None
    explicit = chosen is not None and (requirement is not None or wheelhouse is not None)
    state = None
    if snapshot_path is not None:
        from attn_doctor.snapshot import load_snapshot

        env = load_snapshot(snapshot_path)
    else:
        state = record_state(python)
        refuse_leftover_journal(state.prefix)  # before the plan: it could not be carried out
        env = probe_target(python)  # the environment acted on is the one probed
    installed = None
    if chosen is not None and url is None:
        live = snapshot_path is None
        installed = already_installed(env, chosen, versions, live=live, timeout=check_timeout)
    if installed is not None:
        _emit(json_mode, {"plan": None, "note": installed}, ExitCode.OK, None)
        if not json_mode:
            plan_console().print(installed, markup=False)
        sys.exit(int(ExitCode.OK))
    if state is None:
        from attn_doctor.resolve import protected_lines

        pins = protected_lines(env)
    else:
        pins = protected_constraints(state.versions())
    if explicit:
        assert chosen is not None
        plan = explicit_plan(chosen, requirement=requirement, wheelhouse=wheelhouse, protected=pins)
    else:
        plan = plan_for_environment(
            env, backend=chosen, sources=allowed, versions=versions, live=state is not None
        )
    constraints = plan.protected if state is None else merge_constraints(pins, plan.protected)
    check_source_allowed(plan, allowed)
    if not plan.candidate.requirement:
        how = plan.candidate.attn_implementation
        msg = f"nothing to pip install: load the model with attn_implementation={how!r}"
        _emit(json_mode, {"plan": plan, "note": msg}, ExitCode.OK, None)
        if not json_mode:
            plan_console().print(msg)
        sys.exit(int(ExitCode.OK))
    if plan.candidate.url and wheelhouse is None and snapshot_path is None:
        plan = _confirm_url(plan)
    index_args = wheelhouse_args(wheelhouse)
    options = InstallOptions(
        python=python,
        installer=inst,
        index_args=index_args,
        check_timeout=check_timeout,
        verify_kernels=not no_verify,
    )
    # Show what will run (here, or on the snapshot's machine with its own interpreter).
    build_env = plan.candidate.build_env
    pre: tuple[str, ...] = ()
    if plan.candidate.source == "source-build" and snapshot_path is None:
        build_env = build_environment(plan, options)
        pre = missing_build_requirements(python)
    shown_python = python
    constraints_file: str | None = None
    if snapshot_path is not None:
        # Pasted on the snapshot's machine, where no file of ours exists: pins inline.
        if python == sys.executable:
            shown_python = interpreter(env)
    else:
        written = write_constraints_file(constraints)
        constraints_file = None if written is None else str(written)
        if state is not None and state.get("pip") is None and inst == "pip":
            plan = dataclasses.replace(plan, notes=(*plan.notes, no_pip_note(python)))
    ps_note = powershell_note(shown_python, shell_of(env))
    if ps_note is not None:
        plan = dataclasses.replace(plan, notes=(*plan.notes, ps_note))
    commands = display_commands(
        plan,
        python=shown_python,
        installer=inst,
        index_args=index_args,
        build_env=build_env,
        pre_requirements=pre,
        constraints_file=constraints_file,
        pins=constraints,
        shell=shell_of(env),
    )
    # The plan's commands are the ones that run here (one builder: install.pip.command_lines).
    plan = dataclasses.replace(plan, commands=commands)
    if not json_mode:
        print_plan(plan_console(), plan, commands, constraints)
    if snapshot_path is not None or dry_run:
        _emit(
            json_mode,
            {
                "plan": plan,
                "constraints": constraints,
                "constraints_file": constraints_file,
                "commands": commands,
                "dry_run": True,
            },
            ExitCode.OK,
            None,
        )
        sys.exit(int(ExitCode.OK))

    if state is not None and state.get("pip") is None and inst == "pip":
        raise NoPip(python)
    _confirm(yes)
    echo = None
    if not json_mode and sys.stderr.isatty():

        def echo(line: str) -> None:
            click.echo(f"  | {line}", err=True)

    options = dataclasses.replace(options, echo=echo)
    try:
        report = execute_install(plan, options)
    except (InstallRolledBack, InstallInterrupted) as exc:
        _emit(json_mode, {"plan": plan, "report": exc.report}, exc.exit_code, exc)
        if json_mode:
            sys.exit(int(exc.exit_code))
        con = plan_console()
        if exc.report.rolled_back is not None:
            rb_res = exc.report.rolled_back
            con.print("Rolled back:" if rb_res.exact else "Rollback INCOMPLETE:")
            for line in _rollback_lines(rb_res):
                con.print(f"  {line}")
        raise
    except AttnDoctorError as exc:
        if json_mode:
            _emit(json_mode, {"plan": plan}, exc.exit_code, exc)
            sys.exit(int(exc.exit_code))
        raise
    _emit(json_mode, {"plan": plan, "report": report}, ExitCode.OK, None)
    if not json_mode:
        con = plan_console()
        con.print(
            f"[green]Installed[/green] {plan.candidate.requirement} in {report.seconds:.1f} s"
        )
        for line in report.changes.lines():
            con.print(f"  {line}")
        if report.check is not None:
            con.print(f"  check: import {report.check.module} -> {report.check.status}")
        if report.kernel_check is not None:
            con.print(f"  kernels: {report.kernel_check}")
        if report.build_seconds is not None:
            con.print(f"  source build took {report.build_seconds / 60:.1f} min; log: {report.log}")
    sys.exit(int(ExitCode.OK))


def _rollback_lines(result: RollbackResult) -> list[str]:
    """People's account of a rollback: what was removed, what was put back and how."""
    back = {spec.split("==")[0] for spec in result.restored + result.reinstalled}
    lines = [f"removed   {name} (added by the install)" for name in result.uninstalled
             if name not in back]  # fmt: skip
    lines += [f"restored  {spec} (byte-exact, from the backup)" for spec in result.restored]
    lines += [f"restored  {spec} (reinstalled, --no-deps)" for spec in result.reinstalled]
    lines += [f"NOT restored: {line}" for line in result.remaining.lines()]
    return lines


def _confirm_url(plan: InstallPlan) -> InstallPlan:
    """Check the candidate's URL exists before acting; record the answer in the plan."""
    import dataclasses

    from attn_doctor.install.urlcheck import confirm_url

    url = plan.candidate.url
    assert url is not None
    result = confirm_url(url)
    if result.exists is False:
        raise InstallFailed(
            f"the wheel URL does not exist ({result.detail}): {url}; nothing was changed",
            hint="The index entry may be wrong; run `attn-doctor check` for other ways.",
        )
    candidate = dataclasses.replace(plan.candidate, confirmed_online=result.exists)
    notes = plan.notes
    if result.exists is None:
        notes = (*notes, f"the URL could not be confirmed online ({result.detail})")
    return dataclasses.replace(plan, candidate=candidate, notes=notes)
