"""Plan once for many nodes: ``install --snapshot`` and ``download --snapshot`` over a fleet.

The snapshots are grouped as ``attn-doctor fleet`` groups them (same group numbers), and each
group gets one plan, made for the group's first node: nodes in one group have the same
deciding facts, so one plan (and one set of wheels) serves them all. Nodes whose check failed
have no facts and are left out (``fleet`` lists them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from attn_doctor.backends import BackendName
from attn_doctor.errors import AttnDoctorError, ExitCode, ProblemsFound, UsageError
from attn_doctor.facts import Environment
from attn_doctor.fleet.decide import Diagnoser
from attn_doctor.fleet.group import build_report
from attn_doctor.fleet.read import read_paths
from attn_doctor.fleet.view import node_list
from attn_doctor.planner.pip_command import Installer, interpreter, powershell_note, shell_of
from attn_doctor.planner.plans import InstallPlan


@dataclass(frozen=True, kw_only=True)
class GroupTarget:
    """One group of alike nodes, planned for through its first node."""

    group: int
    nodes: tuple[str, ...]
    environment: Environment


def group_targets(paths: Sequence[Path]) -> list[GroupTarget]:
    """The fleet's groups in these files and folders (bad input: ``SnapshotError``)."""
    nodes = list(read_paths(paths))
    report = build_report(nodes, Diagnoser().diagnose)
    envs = {n.name: n.environment for n in nodes if n.environment is not None}
    if not report.groups:
        raise UsageError("no node in these snapshots has facts to plan for")
    return [
        GroupTarget(group=g.id, nodes=g.nodes, environment=envs[g.nodes[0]]) for g in report.groups
    ]


def _header(target: GroupTarget) -> str:
    count = len(target.nodes)
    return (
        f"Group {target.group} ({count} node{'' if count == 1 else 's'}: {node_list(target.nodes)})"
    )


def _emit(command: str, result: object, code: ExitCode, error: AttnDoctorError | None) -> None:
    from attn_doctor.commands.install_plan import jsonable
    from attn_doctor.report.envelope import make_envelope, write_envelope

    write_envelope(make_envelope(command, result=jsonable(result), exit_code=code, error=error))


def _finish(command: str, entries: list[dict[str, Any]],
            failed: list[tuple[int, AttnDoctorError]], json_mode: bool,
            extra: dict[str, Any]) -> ExitCode:  # fmt: skip
    """The run's exit: 0 when every group has a plan (or needs none); 1 when a group has no
    way to install or is blocked (a fact about those nodes); 2 when a group's request was bad
    input for it."""
    error: AttnDoctorError | None = None
    if failed:
        message = (
            f"no plan for group{'s' if len(failed) > 1 else ''} "
            + ", ".join(str(g) for g, _ in failed)
            + " (see each group above)"
        )
        usage = any(isinstance(exc, UsageError) for _, exc in failed)
        error = UsageError(message) if usage else ProblemsFound(message)
    code = ExitCode.OK if error is None else error.exit_code
    if json_mode:
        _emit(command, {"groups": entries, **extra}, code, error)
    elif error is not None:
        import click

        click.echo(f"attn-doctor: error: {error.message}", err=True)
    return code


def install_plans_for_groups(
    paths: Sequence[Path],
    *,
    backend: BackendName | None,
    sources: Sequence[str],
    installer: Installer,
    json_mode: bool,
) -> ExitCode:
    """``install --snapshot A --snapshot B`` (or a folder): one plan per group; installs nothing."""
    from attn_doctor.commands.install_plan import (
        NothingToInstall,
        check_source_allowed,
        plan_console,
        plan_for_environment,
        print_plan,
    )
    from attn_doctor.install.execute import display_commands

    console = None if json_mode else plan_console()
    entries: list[dict[str, Any]] = []
    failed: list[tuple[int, AttnDoctorError]] = []
    for target in group_targets(paths):
        entry: dict[str, Any] = {"group": target.group, "nodes": target.nodes}
        if console is not None:
            console.print(f"[bold]{_header(target)}[/bold]")
        try:
            plan = plan_for_environment(target.environment, backend=backend, sources=sources)
            check_source_allowed(plan, sources)
        except NothingToInstall as exc:
            entry["note"] = exc.message
        except (UsageError, ProblemsFound) as exc:
            entry["error"] = exc.message
            failed.append((target.group, exc))
        else:
            # Pasted on the group's nodes, where no file of ours exists: the pins inline.
            commands = display_commands(
                plan,
                python=interpreter(target.environment),
                installer=installer,
                index_args=(),
                build_env=plan.candidate.build_env,
                pre_requirements=(),
                pins=plan.protected,
                shell=shell_of(target.environment),
            )
            note = powershell_note(interpreter(target.environment), shell_of(target.environment))
            plan = replace(plan, commands=commands, notes=(*plan.notes, *([note] if note else [])))
            entry.update(plan=plan, constraints=plan.protected, commands=commands)
            if console is not None:
                print_plan(console, plan, commands, plan.protected)
        if console is not None:
            for key in ("note", "error"):
                if key in entry:
                    console.print(f"  {key}: {entry[key]}", markup=False)
            console.print()
        entries.append(entry)
    return _finish("install", entries, failed, json_mode, {"dry_run": True})


def download_for_groups(
    paths: Sequence[Path],
    *,
    dest: Path,
    backend: BackendName | None,
    requirement: str | None,
    sources: Sequence[str],
    find_links: Path | None,
    json_mode: bool,
) -> ExitCode:
    """``download --snapshot DIR``: one wheelhouse holding what every group needs."""
    import click

    from attn_doctor.commands.install_plan import (
        NothingToInstall,
        explicit_plan,
        plan_for_environment,
    )
    from attn_doctor.install.download import download_for_snapshot
    from attn_doctor.install.pip import protected_constraints
    from attn_doctor.planner.pip_command import target_install_command

    entries: list[dict[str, Any]] = []
    failed: list[tuple[int, AttnDoctorError]] = []
    for target in group_targets(paths):
        env = target.environment
        entry: dict[str, Any] = {"group": target.group, "nodes": target.nodes}
        entries.append(entry)
        if not json_mode:
            click.echo(_header(target))
        plan: InstallPlan
        try:
            if requirement is not None:
                if backend is None:
                    raise UsageError("--requirement needs a backend name")
                pins = protected_constraints({"torch": env.torch.version} if env.torch else {})
                plan = explicit_plan(
                    backend, requirement=requirement, wheelhouse=None, protected=pins
                )
            else:
                plan = plan_for_environment(env, backend=backend, sources=sources)
        except NothingToInstall as exc:
            entry["note"] = exc.message
        except (UsageError, ProblemsFound) as exc:
            entry["error"] = exc.message
            failed.append((target.group, exc))
        else:
            entry["plan"] = plan
            cand = plan.candidate
            if not cand.requirement or cand.source in ("hub", "source-build"):
                what = cand.requirement or cand.attn_implementation
                entry["note"] = f"no wheel to fetch ({cand.source}: {what})"
            else:
                index_args: list[str] = []
                if find_links is not None:
                    index_args = ["--no-index", "--find-links", str(find_links.resolve())]
                elif cand.index_url:
                    index_args = ["--extra-index-url", cand.index_url]
                report = download_for_snapshot(env, cand.requirement, dest, index_args=index_args)
                entry["download"] = report
                if not json_mode:
                    for name in report.files:
                        click.echo(f"  {name}")
                    for line in report.skipped:
                        click.echo(f"  skipped {line}")
                    shown = target_install_command(env, plan.backend, cand.requirement, dest)
                    click.echo(f"  on these nodes: {shown}")
        if not json_mode:
            for key in ("note", "error"):
                if key in entry:
                    click.echo(f"  {key}: {entry[key]}")
    if not json_mode:
        click.echo(f"Wheelhouse for every group: {dest}")
    return _finish("download", entries, failed, json_mode, {"dest": str(dest)})
