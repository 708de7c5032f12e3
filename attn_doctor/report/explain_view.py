"""Human rendering of an ``ExplainResult`` (``attn-doctor explain`` without ``--json``)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from attn_doctor.explain.engine import ExplainResult, Explanation
from attn_doctor.report.console import make_console

_MARK = {"confirmed": "[green]✓[/]", "contradicted": "[red]✗[/]", "unknown": "[yellow]?[/]"}
_STATUS = {
    "confirmed": "[green]confirmed on this machine[/]",
    "contradicted": "[red]not the cause on this machine[/]",
    "unknown": "[yellow]not confirmed[/]",
}


def render_explain(
    result: ExplainResult,
    *,
    snapshot: Path | None = None,
    console: Console | None = None,
    read_note: str | None = None,
) -> None:
    """``read_note``: printed first, e.g. that only the end of a long log was read."""
    out = console or make_console()
    where = f"the machine in {snapshot}" if snapshot else "this machine"
    if read_note:
        out.print(f"[yellow]{escape(read_note)}[/]")
    if not result.matched:
        out.print(
            f"[bold]No known cause[/] matched these {result.lines} line(s). attn-doctor's "
            "knowledge base does not recognise this message; it is not a guess either way."
        )
        _render_message_facts(out, result)
        _render_rejected(out, result)
        out.print(f"The facts of {where} that usually decide attention-backend failures:")
        _render_facts(out, result, where)
        out.print(
            "Next: [bold]attn-doctor check --deep[/] imports each backend in a child process "
            "and reports what fails."
        )
        return
    n = len(result.explanations)
    out.print(f"[bold]{n} known cause{'s' if n > 1 else ''}[/] in {result.lines} line(s):")
    for i, exp in enumerate(result.explanations, start=1):
        _render_one(out, i, exp)
    _render_rejected(out, result)
    if not result.facts_available:
        out.print(
            f"[yellow]Could not confirm on {where}: facts unavailable "
            f"({escape(result.facts_unavailable_reason or 'unknown reason')}).[/]"
        )
    else:
        out.print(f"[dim]Facts from {where}:[/]")
        _render_facts(out, result, where)


def render_explanations(out: Console, result: ExplainResult) -> None:
    """Only the numbered causes (used inside ``check``'s report); a line when none matched."""
    if not result.matched:
        out.print("   [dim]no known cause matched; see the error text above[/]")
    for i, exp in enumerate(result.explanations, start=1):
        _render_one(out, i, exp)


def _render_one(out: Console, number: int, exp: Explanation) -> None:
    m = exp.match
    status = exp.confirmation.status
    out.print()
    out.print(f"[bold]{number}. {escape(m.title)}[/]  ({_STATUS[status]})  [dim]{m.symptom_id}[/]")
    if m.line:
        out.print(f"   line {m.line_number}: [italic]{escape(m.line)}[/]")
    if m.captures and not exp.evidence:
        values = ", ".join(f"{k}={v}" for k, v in m.captures)
        out.print(f"   [dim]From the message: {escape(values)}[/]")
    out.print(f"   [bold]Cause:[/] {escape(exp.cause)}")
    if not exp.confirmation.checks:
        out.print(f"   [bold]Here:[/] {escape(exp.confirmation.summary)}")
    else:
        out.print("   [bold]Here:[/]")
    for check in exp.confirmation.checks:
        facts = ", ".join(f"{e.fact}={e.value}" for e in check.evidence)
        extra = f" [dim]({escape(facts)})[/]" if facts else ""
        mark = _MARK[check.status]
        out.print(f"     {mark} {escape(check.check)}: {escape(check.reason)}{extra}")
    if status == "contradicted":
        out.print(
            "   [dim]This machine's facts rule this cause out: was the message produced on "
            "another machine or environment? (--snapshot FILE confirms against that one)[/]"
        )
    if exp.fix:
        out.print(
            "   [bold]Fix:[/]"
            if status != "contradicted"
            else "   [bold]Fix[/] (where the cause holds):"
        )
        for fix in exp.fix:
            out.print(f"     [cyan]{escape(fix.command)}[/]")
            if fix.unfilled:
                out.print(f"       [dim]fill in: {', '.join(fix.unfilled)} (not known here)[/]")
    if exp.fix_note:
        out.print(f"   [dim]{escape(exp.fix_note)}[/]")
    if exp.note:
        out.print(f"   [dim]Note: {escape(exp.note)}[/]")
    if exp.evidence:
        shown = ", ".join(f"{e.fact}={e.value}" for e in exp.evidence)
        out.print(f"   [dim]From the message: {escape(shown)}[/]")
    if exp.source:
        out.print(f"   [dim]Knowledge used: {escape(exp.source)}[/]")
    if exp.threads:
        verified = "" if exp.verified else " (entry not fully verified)"
        out.print(f"   [dim]Reported upstream{verified}: {' '.join(exp.threads)}[/]")


def _render_message_facts(out: Console, result: ExplainResult) -> None:
    if not result.message_facts:
        out.print("The message itself names no package, torch build, GPU or module.")
        return
    out.print("What the message shows:")
    for ev in result.message_facts:
        out.print(f"   {escape(ev.fact)}: {escape(ev.value)}")


def _render_rejected(out: Console, result: ExplainResult) -> None:
    for rej in result.rejected:
        out.print(
            f"[dim]Not the answer: {escape(rej.title)} ({rej.id}): "
            f"{escape('; '.join(rej.reasons))}.[/]"
        )


def _render_facts(out: Console, result: ExplainResult, where: str) -> None:
    if not result.key_facts:
        reason = result.facts_unavailable_reason or "no facts"
        out.print(f"   [yellow]facts of {where} unavailable ({escape(reason)})[/]")
        out.print(
            "   Compare by hand: torch version and its CUDA, the NVIDIA driver and its CUDA, "
            "the GPU's compute capability, nvcc, glibc, and the flash-attn / xformers versions."
        )
        return
    for ev in result.key_facts:
        out.print(f"   {escape(ev.fact)}: {escape(ev.value)}")
