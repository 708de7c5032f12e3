"""The people's table of ``attn-doctor verify``, also shown by ``check --verify``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from attn_doctor.verify.runner import BackendVerdict, VerifyReport


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"


def _kernel_cell(v: BackendVerdict) -> str:
    if v.unsloth is not None:
        return f"unsloth {v.unsloth.status}"
    if v.kernel is None:
        return "-"
    return v.kernel.status


def _model_cell(v: BackendVerdict) -> str:
    ran = [r for r in v.model if r.status != "skipped"]
    return ", ".join(f"{r.family} {r.status}" for r in ran) or "-"


def render_verify(report: VerifyReport, *, verbose: bool = False) -> None:
    """The people's table: one row per backend, the summary line last.

    Backend names are never cut (the flash-attn 2, 3 and 4 rows must be told apart at 80
    columns): the name column does not wrap, and the note column folds instead.
    ``verbose`` adds the worst error against what was allowed and the logits' difference.
    """
    from rich.table import Table

    from attn_doctor.report.console import make_console

    console = make_console()
    table = Table(title=f"attn-doctor verify ({report.device})", show_lines=False)
    width = max((len(v.backend) for v in report.backends), default=7)
    table.add_column("backend", no_wrap=True, min_width=width)
    table.add_column("result", no_wrap=True)
    table.add_column("kernel", no_wrap=True)
    if verbose:
        table.add_column("max err / allowed", no_wrap=True)
    table.add_column("model", overflow="fold")
    if verbose:
        table.add_column("logits diff", no_wrap=True)
    table.add_column("note", overflow="fold", ratio=1)
    for v in report.backends:
        if v.passed is True:
            verdict = "[green]verified[/]"
        elif v.passed is False:
            verdict = "[red]FAILED[/]"
        elif v.requested:
            verdict = "[red]not verified[/]"
        else:
            verdict = "[dim]n/a here[/]"
        note = v.failure or "; ".join(v.notes)
        row = [v.backend, verdict, _kernel_cell(v)]
        if verbose:
            row.append(
                "-"
                if v.kernel is None or v.kernel.max_error is None
                else f"{_fmt(v.kernel.max_error)} / {_fmt(v.kernel.allowed)}"
            )
        row.append(_model_cell(v))
        if verbose:
            diffs = [r.logits_max_diff for r in v.model if r.logits_max_diff is not None]
            row.append(_fmt(max(diffs)) if diffs else "-")
        row.append(note if verbose else note[:200])
        table.add_row(*row)
    console.print(table)
    if report.model is not None and report.model.declared:
        for d in report.model.declared:
            console.print(
                f"{d.family} ({d.model_class}) declares: sdpa={d.sdpa} "
                f"flash_attn={d.flash_attn} flex_attn={d.flex_attn}"
            )
    if report.model is not None and report.model.reason:
        console.print(f"model check: {report.model.reason}")
    colour = "green" if report.ok else "red"
    console.print(f"[{colour}]{report.summary}[/]", soft_wrap=False, overflow="fold")
