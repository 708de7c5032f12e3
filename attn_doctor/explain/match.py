"""The pure matcher: which known symptoms does a message, traceback or log show?

Every line is scanned (long logs bury the cause far from the last line). An entry matches
when one of its ``patterns`` matches a line and each of its ``requires`` patterns matches
some line. Entries superseded by a more specific matching entry are dropped; the rest are
ranked, most specific first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from attn_doctor.explain.kb import KnowledgeBase, Symptom

MAX_LINE_CHARS = 400
"""Matched lines are shown up to this length (tracebacks can carry very long lines)."""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True, kw_only=True)
class Match:
    """One known symptom found in the text."""

    symptom_id: str
    title: str
    line_number: int
    """1-based number of the first line that matched."""
    line: str
    """That line, stripped (and shortened to ``MAX_LINE_CHARS``)."""
    pattern: str
    """The pattern that matched it."""
    captures: tuple[tuple[str, str], ...] = ()
    """Named groups the patterns captured from the text (first value of each)."""
    hits: int = 1
    """How many lines matched one of the entry's patterns."""
    specificity: int = 0
    """Length of the matched text: a longer match is a more specific recognition."""

    def captured(self) -> dict[str, str]:
        return dict(self.captures)


def split_lines(text: str) -> list[str]:
    """The text's lines with colour codes and carriage-return progress bars removed."""
    raw_lines = _ANSI.sub("", text).replace("\r\n", "\n").split("\n")
    if raw_lines and raw_lines[-1] == "":
        raw_lines.pop()
    # A bare carriage return redraws the line (progress bars): keep what was drawn last.
    return [raw.rsplit("\r", 1)[-1] for raw in raw_lines]


def _match_one(symptom: Symptom, lines: list[str]) -> Match | None:
    first: tuple[int, str, re.Match[str]] | None = None
    hits = 0
    best = 0
    captures: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        for pattern in symptom.patterns:
            m = pattern.search(line)
            if m is None:
                continue
            hits += 1
            best = max(best, len(m.group(0)))
            for key, value in m.groupdict().items():
                if value is not None and key not in captures:
                    captures[key] = value
            if first is None:
                first = (number, line, m)
            break
    if first is None:
        return None
    for req in symptom.requires:
        if not any(req.search(line) for line in lines):
            return None
    number, line, m = first
    shown = line.strip()
    if len(shown) > MAX_LINE_CHARS:
        start = max(0, min(m.start() - 40, len(line) - MAX_LINE_CHARS))
        shown = ("…" if start else "") + line[start : start + MAX_LINE_CHARS].strip() + "…"
    return Match(
        symptom_id=symptom.id,
        title=symptom.title,
        line_number=number,
        line=shown,
        pattern=m.re.pattern,
        captures=tuple(sorted(captures.items())),
        hits=hits,
        specificity=best + 20 * len(symptom.requires),
    )


def match_symptoms(text: str, kb: KnowledgeBase) -> list[Match]:
    """All known symptoms in ``text``, most specific first. Pure: no I/O, no facts."""
    lines = split_lines(text)
    found = {s.id: m for s in kb.symptoms if (m := _match_one(s, lines)) is not None}
    superseded: set[str] = set()
    for sid in found:
        symptom = kb.get(sid)
        if symptom is not None:
            superseded.update(symptom.supersedes)
    kept = [m for sid, m in found.items() if sid not in superseded]
    order = {s.id: i for i, s in enumerate(kb.symptoms)}
    kept.sort(key=lambda m: (-m.specificity, m.line_number, order[m.symptom_id]))
    return kept
