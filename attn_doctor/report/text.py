"""Plain-text layout for people's output that must start fast: wrapping, small tables, colour.

``check`` is run far more often than any other command, and most of its time used to go to
importing and laying out rich tables. These helpers do the little that its view needs, in a
few milliseconds, with two rules rich does not keep:

- text wraps at spaces only: a word longer than the line (a path, a URL, a wheel name) stays
  whole on a line of its own, and a command is never wrapped at all;
- a table holds short text; each column is as wide as its longest word at least, so no cell is
  ever cut with "…".

Colour is ANSI SGR, on when the stream is a terminal (or ``FORCE_COLOR``), off with
``NO_COLOR`` (``attn_doctor.report.console``'s rule).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from attn_doctor.report.console import color_enabled, console_width

_SGR = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "magenta": "35",
    "cyan": "36",
}


@dataclass(frozen=True)
class Painter:
    """Wraps text in ANSI colour codes, or leaves it alone when colour is off."""

    color: bool = False

    def __call__(self, text: str, *styles: str) -> str:
        if not self.color or not styles or not text:
            return text
        codes = ";".join(_SGR[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SPACES = re.compile(r"[ \t\n]+")
GLUE = "\u00a0"
"""Joins words that must stay on one line ("triton 3.6.0")."""


def visible_len(text: str) -> int:
    """Characters ``text`` takes on screen (colour codes take none)."""
    return len(_ANSI.sub("", text))


def wrap(text: str, width: int, *, indent: str = "", first: str | None = None) -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken at spaces only.

    ``first`` prefixes the first line (default ``indent``), ``indent`` the others; either may
    be coloured. A word longer than the room left stays whole on its own line, even past
    ``width``. A no-break space (``GLUE``) holds two words together and prints as a space.
    """
    head = indent if first is None else first
    lines: list[str] = []
    current, col = head, visible_len(head)
    start = col
    for word in _SPACES.split(text.strip()):
        if not word:
            continue
        size = visible_len(word)
        if col > start and col + 1 + size > width:
            lines.append(current)
            current, col = indent, visible_len(indent)
            start = col
        if col > start:
            current += " "
            col += 1
        current += word
        col += size
    lines.append(current)
    return [line.rstrip().replace(GLUE, " ") for line in lines]


@dataclass(frozen=True)
class Column:
    """A table column: its header, and whether its cells may wrap at spaces."""

    header: str
    wraps: bool = False
    align_right: bool = False


Cell = tuple[str, tuple[str, ...]]
"""A cell's text and its styles."""


def _words_width(text: str) -> int:
    return max((len(w) for w in _SPACES.split(text)), default=0)


def table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    *,
    width: int,
    paint: Painter,
    indent: str = "",
    gap: int = 2,
) -> list[str]:
    """Rows laid out in columns at most ``width`` wide in all (when the longest words allow).

    Columns that may wrap give up room, widest first, down to their longest word; text is
    never cut. Where even that does not fit, each row becomes a wrapped paragraph. The header
    is bold; the last column has no padding after it.
    """
    if not rows:
        return []
    n = len(columns)
    want = [max([len(columns[i].header), *(len(row[i][0]) for row in rows)]) for i in range(n)]
    least = [
        want[i] if not columns[i].wraps
        else max(_words_width(columns[i].header), *(_words_width(row[i][0]) for row in rows))
        for i in range(n)
    ]  # fmt: skip
    widths = list(want)
    excess = len(indent) + sum(widths) + gap * (n - 1) - width
    while excess > 0:
        shrinkable = [i for i in range(n) if widths[i] > least[i]]
        if not shrinkable:
            break
        i = max(shrinkable, key=lambda j: widths[j] - least[j])
        widths[i] -= 1
        excess -= 1
    if excess > 0:  # too narrow even for the longest words: one paragraph per row
        return _stacked(columns, rows, width=width, paint=paint, indent=indent)
    head_cells = [(columns[i].header, ("bold",)) for i in range(n)]
    out = _row_lines(head_cells, widths, columns, paint=paint, indent=indent, gap=gap)
    for row in rows:
        out += _row_lines(row, widths, columns, paint=paint, indent=indent, gap=gap)
    return out


def _stacked(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    *,
    width: int,
    paint: Painter,
    indent: str,
) -> list[str]:
    """Each row as ``first cell  header: value · header: value``, wrapped at spaces."""
    lines: list[str] = []
    for row in rows:
        first = f"{indent}{paint(row[0][0], *row[0][1])}  "
        parts = [
            f"{columns[i].header}:{GLUE}{paint(text.replace(' ', GLUE), *styles)}"
            for i, (text, styles) in enumerate(row)
            if i and text
        ]
        lines += wrap(f"{GLUE}· ".join(parts), width, first=first, indent=indent + "    ")
    return lines


def _row_lines(
    row: Sequence[Cell],
    widths: Sequence[int],
    columns: Sequence[Column],
    *,
    paint: Painter,
    indent: str,
    gap: int,
) -> list[str]:
    cells = [
        wrap(text, widths[i]) if columns[i].wraps else [text] for i, (text, _) in enumerate(row)
    ]
    height = max(len(c) for c in cells)
    lines = []
    for k in range(height):
        parts = []
        for i, cell in enumerate(cells):
            text = cell[k] if k < len(cell) else ""
            pad = " " * max(0, widths[i] - len(text))
            styled = paint(text, *row[i][1])
            parts.append(pad + styled if columns[i].align_right else styled + pad)
        lines.append((indent + (" " * gap).join(parts)).rstrip())
    return lines


def output_width(stream: IO[str], environ: Mapping[str, str] | None = None) -> int:
    """``COLUMNS`` when set, else the terminal's width, else ``PIPE_WIDTH`` (the console rule)."""
    env = os.environ if environ is None else environ
    isatty = stream.isatty()
    width = console_width(isatty, env)
    if width is None:
        width = shutil.get_terminal_size((80, 24)).columns
    return max(width, 40)


def output_painter(stream: IO[str], environ: Mapping[str, str] | None = None) -> Painter:
    env = os.environ if environ is None else environ
    return Painter(color_enabled(stream.isatty(), env))


def write_lines(lines: Sequence[str], stream: IO[str] | None = None) -> None:
    """Write the lines, each without trailing spaces; characters the stream's encoding cannot
    hold (a Windows code page in a pipe) become ``?`` rather than an exception."""
    out = sys.stdout if stream is None else stream
    text = "\n".join(line.rstrip() for line in lines) + "\n"
    encoding = getattr(out, "encoding", None) or "utf-8"
    if encoding.lower().replace("-", "") not in ("utf8", "utf8sig"):
        text = text.encode(encoding, errors="replace").decode(encoding)
    out.write(text)
    out.flush()
