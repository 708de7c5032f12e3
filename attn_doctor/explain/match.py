"""The pure matcher: which known symptoms does a message, traceback or log show?

Every line is scanned (long logs bury the cause far from the last line): each pattern is
searched over the whole text once (multi-line mode, so ``^``/``$`` are line anchors) and hits
are mapped back to line numbers. An entry matches when one of its ``patterns`` matches and
each of its ``requires`` patterns matches somewhere in the text. Entries superseded by a more
specific matching entry are dropped; the rest are ranked, most specific first.
"""

from __future__ import annotations

import bisect
import functools
import html
import re
from dataclasses import dataclass
from typing import Any

from attn_doctor.explain.kb import KnowledgeBase, Symptom

MAX_LINE_CHARS = 400
"""Matched lines are shown up to this length (tracebacks can carry very long lines)."""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_HTML_ENTITY = re.compile(r"&(?:quot|apos|lt|gt|amp|#39|#x27|#34);")
_LEVEL = r"(?:INFO|WARN(?:ING)?|ERROR|DEBUG|CRITICAL|FATAL|TRACE)"
_LOG_PREFIX = re.compile(
    r"^(?:"
    # distributed launchers: torchrun's "[rank0]:" / "[default0]:", mpirun's "[1,0]<stderr>:"
    r"\[(?:rank|default)\d+\](?:<std(?:out|err)>)?:[ \t]?"
    r"|\[\d+,\d+\]<std(?:out|err)>:[ \t]?"
    # Ray and vLLM workers: "(RayWorkerWrapper pid=12, ip=10.0.0.1) ", "(VllmWorker rank=0 pid=7) "
    r"|\((?:[\w.:=-]+ )*pid=\d+(?:, ip=[\d.]+)?\)[ \t]?"
    # a timestamp, then optionally a logger name and a level (logging, loguru, CI runners)
    r"|\[?\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"(?:[ \t]+[A-Z]{2}\d+)?\]?[ \t]*"
    r"(?:[-|:][ \t]*)?(?:(?!" + _LEVEL + r"\b)[\w.]+[ \t]+-[ \t]+)?"
    r"(?:\[?" + _LEVEL + r"\]?[ \t]*(?:[-|:][ \t]*)?(?:[\w.<>]+:[\w<>]+:\d+[ \t]+-[ \t]+)?)?"
    # vLLM's "ERROR 05-01 12:00:00 [engine.py:12] " and older "INFO 05-01 12:00:00 engine.py:12] "
    r"|"
    + _LEVEL
    + r"[ \t]+\d{2}-\d{2}[ \t]+\d{2}:\d{2}:\d{2}(?:\.\d+)?[ \t]+\[?[\w./-]+:\d+\][ \t]?"
    # syslog / journald: "May 01 12:00:00 host python[123]: "
    r"|[A-Z][a-z]{2}[ \t]+\d{1,2}[ \t]+\d{2}:\d{2}:\d{2}[ \t]+[\w.-]+[ \t]+[\w./-]+\[\d+\]:[ \t]?"
    # docker compose: "worker-1  | " / "worker_1  | "
    r"|[\w.-]+[-_]\d+[ \t]+\|[ \t]?"
    # pytest's failure lines ("E       "), Markdown and e-mail quotes ("> ")
    r"|E[ \t]{3,}"
    r"|>[ \t]?"
    r")+",
    re.MULTILINE,
)
"""What loggers, launchers and quoting put before every line of a message: removed, so a
message reads the same in a bare traceback, a multi-GPU log, a container log or a reply."""
_NOTICE_LEVEL = re.compile(r"\b(INFO|WARN(?:ING)?|DEBUG)\b")
NOTICE_PREFIX = re.compile(r"(?:INFO|WARN(?:ING)?|DEBUG):\s")
"""A line logged at a notice level, as ``split_lines`` writes its prefix (``LEVEL: ``)."""


def _bare(prefix: re.Match[str]) -> str:
    """A line's prefix, gone; a notice's level (INFO, WARNING) is kept as ``LEVEL: ``, since
    a fallback said at that level is a notice, not the failure."""
    level = _NOTICE_LEVEL.search(prefix.group(0))
    return f"{level.group(1)}: " if level else ""


_ESCAPED_BREAK = re.compile(
    r"\\n(?=\s|Traceback\b|[A-Z]\w*(?:Error|Exception|Warning)\b|File \\?\")"
)
"""A newline written as ``\\n`` inside a JSON or repr string (a structured log's message), at
a place a traceback breaks; a Windows path's ``\\nvidia`` is not one."""
_JSON_ESCAPE = re.compile(r"\\([\\\"nt])")


def _unescape(line: str) -> list[str]:
    """A line holding an escaped traceback (an escaped line break before an indented line, a
    traceback or an error), as its lines."""
    if not _ESCAPED_BREAK.search(line):
        return [line]
    text = _JSON_ESCAPE.sub(lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), line)
    return text.split("\n")


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
    """The text's lines with colour codes, carriage-return progress bars, HTML escapes and
    log-line prefixes (``_LOG_PREFIX``) removed, and a traceback escaped inside a JSON or repr
    string laid out on its own lines."""
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    if "&" in text and _HTML_ENTITY.search(text):
        text = html.unescape(text)
    if "\\n" in text and _ESCAPED_BREAK.search(text):
        text = "\n".join(part for line in text.split("\n") for part in _unescape(line))
    text = _LOG_PREFIX.sub(_bare, text)
    carriage = "\r" in text
    raw_lines = (text.replace("\r\n", "\n") if carriage else text).split("\n")
    if raw_lines and raw_lines[-1] == "":
        raw_lines.pop()
    if carriage:
        # A bare carriage return redraws the line (progress bars): keep what was drawn last.
        raw_lines = [raw.rsplit("\r", 1)[-1] for raw in raw_lines]
    return raw_lines


def count_lines(text: str) -> int:
    """``len(split_lines(text))`` without building the list (for very long logs)."""
    n = text.count("\n")
    return n + 1 if text and not text.endswith("\n") else n


@functools.lru_cache(maxsize=1024)
def required_literal(pattern: re.Pattern[str]) -> str | None:
    """The longest literal text every match of ``pattern`` must contain, or None.

    Read from the parsed pattern's top-level sequence (so a plain substring test can skip the
    regex on texts that cannot match). Case-insensitive patterns get no literal. An internal
    parser is used, so any surprise falls back to "no literal": this is only a speed-up.
    """
    if pattern.flags & re.IGNORECASE:
        return None
    try:
        parser: Any = getattr(re, "_parser", None)
        if parser is None:  # Python 3.10
            import sre_parse as parser
        literal_op = parser.LITERAL
        best = run = ""
        for op, arg in parser.parse(pattern.pattern, pattern.flags):
            if op == literal_op:
                run += chr(arg)
                best = max(best, run, key=len)
            else:
                run = ""
    except Exception:  # a parser change must never break matching
        return None
    return best if len(best) >= 3 else None


def _match_one(symptom: Symptom, text: str, starts: list[int]) -> Match | None:
    """Search the whole (normalised) text once per pattern, then map offsets to lines."""
    hits: list[re.Match[str]] = []
    for pattern in symptom.patterns:
        literal = required_literal(pattern)
        if literal is not None and literal not in text:
            continue
        hits.extend(pattern.finditer(text))
    if not hits:
        return None
    for req in symptom.requires:
        if req.search(text) is None:
            return None
    hits.sort(key=lambda m: m.start())
    captures: dict[str, str] = {}
    for m in hits:
        for key, value in m.groupdict().items():
            if value is not None:
                captures.setdefault(key, value)
    first = hits[0]
    index = bisect.bisect_right(starts, first.start()) - 1
    line_start = starts[index]
    line_end = text.find("\n", line_start)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    shown = line.strip()
    if len(shown) > MAX_LINE_CHARS:
        at = first.start() - line_start
        cut = max(0, min(at - 40, len(line) - MAX_LINE_CHARS))
        shown = ("…" if cut else "") + line[cut : cut + MAX_LINE_CHARS].strip() + "…"
    lines_hit = {bisect.bisect_right(starts, m.start()) for m in hits}
    return Match(
        symptom_id=symptom.id,
        title=symptom.title,
        line_number=index + 1,
        line=shown,
        pattern=first.re.pattern,
        captures=tuple(sorted(captures.items())),
        hits=len(lines_hit),
        specificity=max(len(m.group(0)) for m in hits) + 20 * len(symptom.requires),
    )


def match_symptoms(text: str, kb: KnowledgeBase) -> list[Match]:
    """All known symptoms in ``text``, most specific first. Pure: no I/O, no facts."""
    lines = split_lines(text)
    norm = "\n".join(lines)
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    found = {s.id: m for s in kb.symptoms if (m := _match_one(s, norm, starts)) is not None}
    superseded: set[str] = set()
    for sid in found:
        symptom = kb.get(sid)
        if symptom is not None:
            superseded.update(symptom.supersedes)
    kept = [m for sid, m in found.items() if sid not in superseded]
    order = {s.id: i for i, s in enumerate(kb.symptoms)}
    kept.sort(key=lambda m: (-m.specificity, m.line_number, order[m.symptom_id]))
    return kept
