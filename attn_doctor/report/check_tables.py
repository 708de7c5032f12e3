"""The two tables of ``check``'s human view: the ranked choices and (``--verbose``) every
backend's status. Cells hold short text; a command, a wheel name or a reason goes on a line of
its own under the table, numbered by the rank it belongs to."""

from __future__ import annotations

import re
from collections.abc import Sequence

from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.diagnosis import Diagnosis, Recommendation, Tri
from attn_doctor.report.text import Cell, Column, Painter, table, wrap

_STATUS_STYLE = {"ready": ("green",), "install": ("yellow",), "blocked": ("red",)}
_TRI_STYLE: dict[Tri, tuple[str, ...]] = {"yes": ("green",), "no": ("red",), "unknown": ("dim",)}
_SOURCE_NOTE = re.compile(r"^(?P<head>.+?) \((?P<detail>[a-z][a-z0-9-]*: [^()]+)\)$")
_REGISTER = "; register it first: "


def name_of(backend: BackendName) -> str:
    """A backend's title without its trailing qualifier in parentheses ("flash-attn 4 (CuTe
    DSL)" is "flash-attn 4"): still its whole name, short enough for a table cell. The full
    title is in the answer line, ``--verbose`` and ``--json``."""
    title = BACKENDS[backend].title
    head, sep, _ = title.partition(" (")
    return head if sep and title.endswith(")") else title


def split_way(way: str) -> tuple[str, str | None]:
    """``attn-doctor install X (source: wheel)`` -> (``attn-doctor install X``, ``source:
    wheel``); any other text is returned whole, with no detail."""
    m = _SOURCE_NOTE.match(way)
    if m is None:
        return way, None
    return m["head"], m["detail"]


def _ranks(numbers: Sequence[int]) -> str:
    """``1, 2, 4-9``."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ",".join(parts)


def _backend_cell(rec: Recommendation) -> str:
    text = name_of(rec.backend)
    if rec.kernel is not None:
        text += " → " + name_of(rec.kernel).removeprefix("torch SDPA: ")
    return text


def _speed_cell(rec: Recommendation) -> str:
    if rec.score is None:
        return "—"
    return f"{rec.score:.3g} TFLOP/s" if rec.measured else f"×{rec.score:.2g}"


def _how(rec: Recommendation, *, verbose: bool) -> tuple[str, bool, str | None] | None:
    """What to show under the table for one rank: (text, is it a command, detail)."""
    way = rec.way
    if rec.status == "ready":
        if _REGISTER in way:
            return f"call {way.split(_REGISTER, 1)[1]} first", True, None
        return (way, False, None) if verbose else None
    if rec.status == "install":
        command, detail = split_way(way)
        return command, True, detail
    if way.startswith("fix first: "):
        return way, True, None
    return way, False, None


def ranked_lines(diagnosis: Diagnosis, *, width: int, paint: Painter, verbose: bool) -> list[str]:
    """Per GPU group: the ranked table, then how to get each rank, then what the marks mean."""
    groups: dict[int | None, list[Recommendation]] = {}
    for rec in diagnosis.recommendations:
        groups.setdefault(rec.gpu_index, []).append(rec)
    lines: list[str] = []
    columns = (
        Column("#", align_right=True),
        Column("backend", wraps=True),
        Column("attn_implementation"),
        Column("status"),
        Column("speed", wraps=True),
    )
    for gpu, group in groups.items():
        recs = sorted(group, key=lambda r: r.rank)
        where = "" if gpu is None else f" on GPU {gpu}"
        if lines:
            lines.append("")
        title = f"Ranked{where}, best first (check, install --auto and the runtime agree)"
        lines += [paint(line, "bold") for line in wrap(title, width)]
        rows: list[list[Cell]] = [
            [
                (str(r.rank), ()),
                (_backend_cell(r), ("bold",) if r.rank == 1 else ()),
                (r.attn_implementation or "—", ()),
                (r.status + ("" if r.auto else "*"), _STATUS_STYLE[r.status]),
                (_speed_cell(r), ()),
            ]
            for r in recs
        ]
        lines += table(columns, rows, width=width, paint=paint, indent="  ")
        lines += _how_lines(recs, width=width, paint=paint, verbose=verbose)
        lines += _legend(recs, width=width)
    return lines


def _how_lines(
    recs: Sequence[Recommendation], *, width: int, paint: Painter, verbose: bool
) -> list[str]:
    grouped: dict[tuple[str, bool], list[int]] = {}
    details: dict[tuple[str, bool], str | None] = {}
    for rec in recs:
        how = _how(rec, verbose=verbose)
        if how is not None:
            grouped.setdefault(how[:2], []).append(rec.rank)
            details[how[:2]] = how[2]
    if not grouped:
        return []
    labels = {key: _ranks(ranks) for key, ranks in grouped.items()}
    pad = max(len(label) for label in labels.values())
    lines = ["How to get them (by rank):"]
    for key, label in labels.items():
        text, is_command = key
        first = f"  {label:>{pad}}  "
        if is_command:
            lines.append(first + paint(text, "cyan"))
        else:
            lines += wrap(text, width, first=first, indent=" " * len(first))
        detail = details[key]
        if verbose and detail:
            lines += wrap(f"from {detail}", width, indent=" " * len(first))
    if verbose:
        lines.append("Why (by rank):")
        for rec in recs:
            first = f"  {rec.rank:>{pad}}  "
            lines += wrap(rec.reason, width, first=first, indent=" " * len(first))
    return lines


def _legend(recs: Sequence[Recommendation], *, width: int) -> list[str]:
    parts = []
    if any(not r.auto for r in recs):
        parts.append(
            "*: chosen only on request (compiles or downloads on first use, or quantised)."
        )
    if any(r.score is not None and not r.measured for r in recs):
        parts.append("×N: published speed, relative to torch SDPA's usual kernel on this device.")
    if any(r.measured for r in recs):
        parts.append("TFLOP/s: measured here by attn-doctor bench.")
    return wrap(" ".join(parts), width) if parts else []


def backend_lines(diagnosis: Diagnosis, *, width: int, paint: Painter) -> list[str]:
    """``--verbose``: every backend's state, then why, one paragraph each."""
    columns = (
        Column("backend", wraps=True),
        Column("installed"),
        Column("imports"),
        Column("compatible"),
        Column("usable"),
    )
    rows: list[list[Cell]] = []
    for b in diagnosis.backends:
        record = BACKENDS[b.backend]
        title = record.title + (f" {b.version}" if b.version and record.distribution else "")
        rows.append([
            (title, ()),
            (b.installed, _TRI_STYLE[b.installed]),
            (b.importable, _TRI_STYLE[b.importable]),
            (b.compatible, _TRI_STYLE[b.compatible]),
            ("yes" if b.usable else "no", ("bold", "green") if b.usable else ("red",)),
        ])  # fmt: skip
    lines = [paint("Backends", "bold")]
    lines += table(columns, rows, width=width, paint=paint, indent="  ")
    lines.append("Why:")
    for b in diagnosis.backends:
        lines += wrap(b.reason, width, first=f"  {name_of(b.backend)}: ", indent="    ")
    return lines
