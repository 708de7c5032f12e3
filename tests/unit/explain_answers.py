"""What explain answers for a text, for the class tests: the answer ids in order, the first,
and what the first says (its cause, its fix commands and its note)."""

from __future__ import annotations

from attn_doctor.explain import explain_text


def answers(text: str) -> list[str]:
    return [e.match.symptom_id for e in explain_text(text, None).explanations]


def first(text: str) -> str | None:
    found = answers(text)
    return found[0] if found else None


def said(text: str) -> str:
    e = explain_text(text, None).explanations[0]
    return " ".join([e.cause, *(r.command for r in e.fix), e.fix_note or ""])
