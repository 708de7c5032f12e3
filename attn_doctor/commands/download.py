"""``attn-doctor download``: fetch the wheels another (air-gapped) machine needs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from attn_doctor.backends import parse_backend
from attn_doctor.errors import ExitCode, UsageError
from attn_doctor.planner.pip_command import target_install_command


@click.command("download")
@click.argument("backend", required=False)
@click.option("--auto", is_flag=True, help="The best backend for the snapshot's machine.")
@click.option(
    "--snapshot",
    "snapshot_paths",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    help="The target machine's facts (attn-doctor check --save-snapshot FILE). Several, or a "
    "folder: one wheelhouse for every group of alike nodes (as attn-doctor fleet groups).",
)
@click.option(
    "--dest",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory to fill; use it as --wheelhouse on the target.",
)
@click.option("--requirement", help="Download exactly this requirement instead of the plan's.")
@click.option(
    "--source",
    "sources",
    multiple=True,
    type=click.Choice(("official", "community", "hub", "source-build")),
    help="Allowed sources (repeatable), as for install.",
)
@click.option(
    "--find-links",
    "find_links",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Take the wheels from this directory instead of the index (no network).",
)
@click.option("--json", "json_mode", is_flag=True, help="Print one versioned JSON document.")
def download_command(
    *,
    backend: str | None,
    auto: bool,
    snapshot_paths: tuple[Path, ...],
    dest: Path,
    requirement: str | None,
    sources: tuple[str, ...],
    find_links: Path | None,
    json_mode: bool,
) -> None:
    """Download the wheels that the machine in a snapshot needs, for an offline install."""
    from attn_doctor.commands.install_plan import (
        DEFAULT_SOURCES,
        explicit_plan,
        jsonable,
        resolve_plan,
    )
    from attn_doctor.install.download import download_for_snapshot
    from attn_doctor.install.pip import protected_constraints
    from attn_doctor.report.envelope import make_envelope, write_envelope
    from attn_doctor.snapshot import load_snapshot

    if bool(backend) == auto:
        raise UsageError("name one backend, or pass --auto")
    chosen = parse_backend(backend) if backend else None
    if len(snapshot_paths) > 1 or snapshot_paths[0].is_dir():
        from attn_doctor.commands.group_plans import download_for_groups

        code = download_for_groups(
            snapshot_paths,
            dest=dest,
            backend=chosen,
            requirement=requirement,
            sources=sources or DEFAULT_SOURCES,
            find_links=find_links,
            json_mode=json_mode,
        )
        sys.exit(int(code))
    snapshot_path = snapshot_paths[0]
    env = load_snapshot(snapshot_path)
    if requirement is not None:
        if chosen is None:
            raise UsageError("--requirement needs a backend name")
        pins = protected_constraints({"torch": env.torch.version} if env.torch else {})
        plan = explicit_plan(chosen, requirement=requirement, wheelhouse=None, protected=pins)
    else:
        plan = resolve_plan(
            backend=chosen,
            sources=sources or DEFAULT_SOURCES,
            snapshot=snapshot_path,
            python=sys.executable,
        )
    cand = plan.candidate
    if not cand.requirement or cand.source in ("hub", "source-build"):
        what = cand.requirement or cand.attn_implementation
        raise UsageError(f"the plan for this machine ({cand.source}: {what}) has no wheel to fetch")
    index_args: list[str] = []
    if find_links is not None:
        index_args = ["--no-index", "--find-links", str(find_links.resolve())]
    elif cand.index_url:
        from attn_doctor.planner.pip_command import index_url_args

        index_args = index_url_args(cand.index_url)
    report = download_for_snapshot(env, cand.requirement, dest, index_args=index_args)
    if json_mode:
        write_envelope(
            make_envelope("download", result=jsonable({"plan": plan, "download": report}))
        )
    else:
        click.echo(f"Downloaded into {report.dest}:")
        for name in report.files:
            click.echo(f"  {name}")
        for line in report.skipped:
            click.echo(f"  skipped {line}")
        for line in report.notes:
            click.echo(f"  note    {line}")
        click.echo(
            f"On the target: {target_install_command(env, plan.backend, cand.requirement, dest)}"
        )
    sys.exit(int(ExitCode.OK))
