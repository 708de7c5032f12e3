"""Confirm a matched symptom on a machine: evaluate its checks against the facts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from attn_doctor.explain.checks import CheckResult, evaluate_check
from attn_doctor.explain.kb import KnowledgeBase, Symptom, load_symptoms
from attn_doctor.explain.match import Match
from attn_doctor.facts import Environment

ConfirmationStatus = Literal["confirmed", "contradicted", "unknown"]


@dataclass(frozen=True, kw_only=True)
class Confirmation:
    """What this machine's facts say about a matched symptom's cause.

    ``confirmed``: every check holds here. ``contradicted``: at least one check is false here
    (the message may come from another machine, or the cause is another one). ``unknown``:
    no check is false but some could not be evaluated, or the entry has no machine checks.
    """

    status: ConfirmationStatus
    summary: str
    checks: tuple[CheckResult, ...] = ()


def confirm(match: Match, env: Environment, *, kb: KnowledgeBase | None = None) -> Confirmation:
    """Evaluate the matched symptom's checks on ``env`` with the values the message gave.

    ``kb`` is the knowledge base ``match`` came from (the shipped one when omitted). Pure: it
    reads only ``env``.
    """
    base = kb if kb is not None else load_symptoms()
    symptom = base.get(match.symptom_id)
    if symptom is None:
        raise KeyError(f"symptom {match.symptom_id!r} is not in the knowledge base")
    return confirm_symptom(symptom, match, env)


def confirm_symptom(
    symptom: Symptom, match: Match, env: Environment, *, import_scope: str | None = None
) -> Confirmation:
    """``confirm`` for a symptom already looked up (``import_scope``: see ``evaluate_check``)."""
    if not symptom.checks:
        return Confirmation(
            status="unknown",
            summary="no machine check applies to this cause; the message itself is the evidence",
        )
    results = tuple(
        evaluate_check(c, env, match.captured(), import_scope=import_scope) for c in symptom.checks
    )
    contradicted = [r for r in results if r.status == "contradicted"]
    unknown = [r for r in results if r.status == "unknown"]
    if contradicted:
        return Confirmation(
            status="contradicted",
            summary="not the cause on this machine: " + "; ".join(r.reason for r in contradicted),
            checks=results,
        )
    if unknown:
        done = len(results) - len(unknown)
        return Confirmation(
            status="unknown",
            summary=f"{done} of {len(results)} checks confirmed; could not check: "
            + "; ".join(r.reason for r in unknown),
            checks=results,
        )
    return Confirmation(
        status="confirmed",
        summary="confirmed on this machine: " + "; ".join(r.reason for r in results),
        checks=results,
    )


def facts_unavailable(reason: str) -> Confirmation:
    """The confirmation when no facts could be read (the probe failed or was skipped)."""
    return Confirmation(
        status="unknown", summary=f"could not confirm: facts unavailable ({reason})"
    )
