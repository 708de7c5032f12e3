"""``attn-doctor fleet``: is every node of a cluster ready, and which nodes differ?

Exit codes: 0 every node ready with the same best backend (``--strict``: and the same deciding
facts), 1 some nodes differ, are not ready or could not be checked, 6 some inputs could not be
read (each is listed with what is wrong; every other node is reported), 2 bad usage, or no
input could be read at all (the message names each file).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from attn_doctor.errors import ExitCode, SnapshotError, UsageError

if TYPE_CHECKING:
    from attn_doctor.fleet.types import NodeInput, UnreadableInput


@click.command("fleet")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "json_mode", is_flag=True, help="Print one versioned JSON document.")
@click.option("--strict", is_flag=True, help="Exit 1 also when ready nodes differ in their facts.")
@click.option(
    "--ray",
    "use_ray",
    is_flag=True,
    help="Run `attn-doctor check --json` on every alive node of the current Ray cluster.",
)
@click.option(
    "--ray-address",
    default="auto",
    show_default=True,
    help="The Ray cluster to connect to (as for ray.init).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1.0),
    default=180.0,
    show_default=True,
    help="With --ray: seconds each node's check may take before it is reported as hung.",
)
@click.option("--deep", is_flag=True, help="With --ray: run `check --deep` on each node.")
@click.option(
    "--save-snapshots",
    "save_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Also write each node's snapshot to DIR/NODE.json (then: install --snapshot DIR).",
)
def fleet_command(
    *,
    paths: tuple[Path, ...],
    json_mode: bool,
    strict: bool,
    use_ray: bool,
    ray_address: str,
    timeout: float,
    deep: bool,
    save_dir: Path | None,
) -> None:
    """Check many machines: group nodes by the facts that decide attention backends.

    \b
    Reads snapshots (check --save-snapshot) or `check --json` documents: FILES, FOLDERS of
    *.json files, or `-` for stdin (one JSON document, or one per line).
    With --ray, checks every node of the current Ray cluster instead.
    """
    from attn_doctor.fleet.decide import Diagnoser
    from attn_doctor.fleet.group import build_report

    nodes: list[NodeInput]
    unreadable: list[UnreadableInput] = []
    if use_ray:
        if paths:
            raise UsageError("--ray gathers the nodes itself: give no files with it")
        from attn_doctor.fleet.ray_gather import gather_with_ray

        nodes = gather_with_ray(address=ray_address, timeout=timeout, deep=deep)
    else:
        if deep:
            raise UsageError("--deep runs on the nodes: only with --ray")
        nodes, unreadable = _read_inputs(paths)
    if save_dir is not None:
        _save_snapshots(nodes, save_dir)
    report = build_report(nodes, Diagnoser().diagnose, unreadable)
    ok = report.all_ready_and_same and not (strict and len(report.groups) > 1)
    code = ExitCode.OK if ok else ExitCode.PROBLEMS
    if unreadable:
        code = ExitCode.INCOMPLETE
    if json_mode:
        from attn_doctor.report.envelope import make_envelope, write_envelope

        write_envelope(make_envelope("fleet", result=report, exit_code=code))
    else:
        from attn_doctor.fleet.view import render_fleet
        from attn_doctor.report.console import make_console

        render_fleet(report, make_console())
    sys.exit(int(code))


def _read_inputs(paths: tuple[Path, ...]) -> tuple[list[NodeInput], list[UnreadableInput]]:
    """Every readable node, and each unreadable input; nothing readable at all is bad input."""
    from attn_doctor.fleet.read import read_inputs

    if not paths:
        if sys.stdin.isatty():
            raise UsageError(
                "give snapshot files or folders, `-` for stdin, or --ray",
                hint="e.g. attn-doctor fleet snapshots/  (see docs/fleet.md)",
            )
        paths = (Path("-"),)
    files = [p for p in paths if str(p) != "-"]
    if len(files) < len(paths) - 1:
        raise UsageError("`-` (stdin) may be given once")
    stdin = sys.stdin.buffer if len(files) < len(paths) else None
    nodes, unreadable = read_inputs(files, stdin)
    if not nodes and unreadable:
        first = unreadable[0]
        more = f" (and {len(unreadable) - 1} more unreadable)" if len(unreadable) > 1 else ""
        raise SnapshotError(
            f"{first.source}: {first.error}{more}",
            hint="Make them with: attn-doctor check --json (or --save-snapshot FILE)",
        )
    return nodes, unreadable


def _save_snapshots(nodes: list[NodeInput], folder: Path) -> None:
    """Each node's facts as ``FOLDER/NODE.json`` (characters unsafe in file names become _)."""
    import re

    from attn_doctor.snapshot import save_snapshot

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {folder}: {exc.strerror or exc}") from exc
    for node in nodes:
        if node.environment is not None:
            name = re.sub(r"[^A-Za-z0-9._#-]", "_", node.name)
            save_snapshot(node.environment, folder / f"{name}.json")
