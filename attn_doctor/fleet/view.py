"""The human view of ``attn-doctor fleet``: groups, outliers and why, failed nodes."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from attn_doctor.fleet.types import FleetGroup, FleetReport, Outlier

_STATE_STYLE = {"ready": "green", "not-ready": "bold red", "failed": "bold red"}
_SUMMARY_FACTS = ("gpus", "driver", "torch")
_MAX_NAMES = 6


def node_list(names: tuple[str, ...] | list[str]) -> str:
    """At most a few names, then how many more."""
    shown = ", ".join(names[:_MAX_NAMES])
    more = len(names) - _MAX_NAMES
    return f"{shown}, … {more} more" if more > 0 else shown


def _group_row(group: FleetGroup, reference: FleetGroup) -> list[str | Text]:
    facts = {f.name: f.value for f in group.facts}
    lines = [facts.get("gpus", "?"), f"driver {facts.get('driver', '?')}",
             f"torch {facts.get('torch', '?')}"]  # fmt: skip
    if group is not reference:
        ref = {f.name: f.value for f in reference.facts}
        changed = [n for n in facts if n not in _SUMMARY_FACTS and facts[n] != ref.get(n)]
        changed += [n for n in ref if n not in facts]
        if changed:
            lines.append("also differs in: " + ", ".join(changed))
    style = _STATE_STYLE[group.state]
    best = group.best_backend or "none"
    if group.attn_implementation:
        best += f"\n({group.attn_implementation})"
    return [
        str(group.id) + ("\n(reference)" if group is reference else ""),
        Text(f"{len(group.nodes)}: {node_list(group.nodes)}"),
        f"[{style}]{group.state}[/{style}]",
        Text(best),
        Text("\n".join(lines)),
    ]


def _why(outlier: Outlier) -> str:
    lines = [f"{d.name}: {d.value} (reference: {d.reference})" for d in outlier.differences]
    lines += [f"{f.severity}: {f.title} [{f.id}]" for f in outlier.findings]
    return "\n".join(lines) or "same facts; its own check recorded another verdict"


def render_fleet(report: FleetReport, console: Console) -> None:
    """Print the report: the groups table, the outliers table, failures, the verdict."""
    if report.groups:
        reference = report.groups[0]
        t = Table(title="Groups", box=box.SIMPLE_HEAD, title_justify="left")
        for column in ("group", "nodes", "state", "best backend", "GPUs, driver, torch"):
            t.add_column(column, overflow="fold")
        for group in report.groups:
            t.add_row(*_group_row(group, reference))
        console.print(t)
        if reference.problems:
            console.print("  reference group's own findings:")
            for p in reference.problems:
                console.print(f"    {p.severity}: {p.title} [{p.id}]", markup=False)
    if report.outliers:
        t = Table(title="Outliers, and what sets them apart", box=box.SIMPLE_HEAD,
                  title_justify="left")  # fmt: skip
        for column in ("nodes", "group", "state", "best backend", "differs from the reference"):
            t.add_column(column, overflow="fold")
        # One row per outlier group: its nodes differ in the same way.
        rows: dict[int, list[Outlier]] = {}
        for o in report.outliers:
            rows.setdefault(o.group, []).append(o)
        for gid, members in rows.items():
            head = members[0]
            style = _STATE_STYLE[head.state]
            t.add_row(
                Text(node_list([m.node for m in members])),
                str(gid),
                f"[{style}]{head.state}[/{style}]",
                head.best_backend or "none",
                Text(_why(head)),
            )
        console.print(t)
    if report.failures:
        t = Table(title="Not checked", box=box.SIMPLE_HEAD, title_justify="left")
        t.add_column("node")
        t.add_column("reason", overflow="fold")
        for f in report.failures:
            t.add_row(Text(f.node), Text(f.reason))
        console.print(t)
    if report.unreadable:
        # A path is never folded (it would not paste); what is wrong goes on the next line.
        console.print("Unreadable inputs (not in this report)", style="bold red")
        for u in report.unreadable:
            console.print(Text(f"  {u.source}"), soft_wrap=True)
            console.print(Text(f"      {u.error}"))
    style = "green" if report.all_ready_and_same and not report.unreadable else "bold red"
    console.print(f"[{style}]{report.verdict}[/{style}]")
