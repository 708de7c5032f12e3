"""Score `attn-doctor explain` on the frozen batches of real messages (tests/data/explain/batches).

Each batch is a folder of messages frozen before the rules were changed for them; each file
starts with ``# source: URL``, ``# expected: a|b`` (the answer ids naming the settled cause;
``none`` for a control) and ``# cause: …``. A message scores when explain's top answer (offline,
no machine facts) is one of the expected ids; a control scores when explain gives no answer.

``python -m tests.unit.explain_batches`` prints each batch's score and its misses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

BATCHES = Path(__file__).resolve().parent.parent / "data" / "explain" / "batches"


@dataclass(frozen=True, kw_only=True)
class Sample:
    path: Path
    source: str
    expected: tuple[str, ...]
    """Accepted top answers; empty for a control (which must get none)."""
    cause: str
    text: str

    @property
    def control(self) -> bool:
        return not self.expected


def read_sample(path: Path) -> Sample:
    head: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").split("\n")
    while lines and (m := re.fullmatch(r"# (source|expected|cause): (.*)", lines[0])):
        head[m.group(1)] = m.group(2).strip()
        lines.pop(0)
    expected = head.get("expected", "")
    return Sample(
        path=path,
        source=head["source"],
        expected=() if expected == "none" else tuple(expected.split("|")),
        cause=head.get("cause", ""),
        text="\n".join(lines),
    )


def batch_samples(batch: str) -> list[Sample]:
    return [read_sample(p) for p in sorted((BATCHES / batch).glob("*.txt"))]


def top_answer(text: str) -> str | None:
    from attn_doctor.explain import explain_text

    result = explain_text(text, None)
    return result.explanations[0].match.symptom_id if result.explanations else None


@dataclass(frozen=True, kw_only=True)
class Score:
    hits: int
    messages: int
    controls_matched: int
    controls: int
    misses: tuple[tuple[str, str, str | None], ...]
    """(file, expected, got) of each miss (a control matched included)."""

    @property
    def percent(self) -> float:
        return 100.0 * self.hits / self.messages if self.messages else 0.0


def score_batch(batch: str) -> Score:
    hits = controls_matched = 0
    misses: list[tuple[str, str, str | None]] = []
    samples = batch_samples(batch)
    for s in samples:
        got = top_answer(s.text)
        if s.control:
            if got is not None:
                controls_matched += 1
                misses.append((s.path.name, "none", got))
        elif got in s.expected:
            hits += 1
        else:
            misses.append((s.path.name, "|".join(s.expected), got))
    return Score(
        hits=hits,
        messages=sum(1 for s in samples if not s.control),
        controls_matched=controls_matched,
        controls=sum(1 for s in samples if s.control),
        misses=tuple(misses),
    )


def main() -> None:
    for folder in sorted(p for p in BATCHES.iterdir() if p.is_dir()):
        sc = score_batch(folder.name)
        print(
            f"{folder.name}: {sc.hits}/{sc.messages} ({sc.percent:.0f}%), "
            f"controls matched {sc.controls_matched}/{sc.controls}"
        )
        for name, want, got in sc.misses:
            print(f"   miss {name}: expected {want}, got {got}")


if __name__ == "__main__":
    main()
