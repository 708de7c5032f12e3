"""Consoles: people's output, colour by TTY, ``NO_COLOR`` and ``FORCE_COLOR``.

Progress and diagnostics go to stderr; in ``--json`` mode nothing but the envelope reaches
stdout. Output to a pipe or a file is as wide as ``COLUMNS`` says (120 when it says nothing,
so that tables stay readable in a log) and carries no trailing spaces: rich pads every table
row to the table's width, which a terminal hides and a file or ``grep`` does not.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

PIPE_WIDTH = 120
"""Width of output to a pipe or a file when ``COLUMNS`` is not set."""


def color_enabled(stream_isatty: bool, environ: Mapping[str, str]) -> bool:
    """Colour on a terminal, or with ``FORCE_COLOR``; never with ``NO_COLOR``."""
    if environ.get("NO_COLOR"):
        return False
    if environ.get("FORCE_COLOR"):
        return True
    return stream_isatty


def console_width(stream_isatty: bool, environ: Mapping[str, str]) -> int | None:
    """``COLUMNS`` when set (a terminal's or a script's choice), else the terminal's own
    width (None: rich asks the terminal), else ``PIPE_WIDTH``."""
    columns = environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return None if stream_isatty else PIPE_WIDTH


class StripTrailingSpaces:
    """A text stream wrapper that removes the spaces rich pads each line with.

    Whole lines are written as they complete; a partial line waits for its end (or a flush).
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._pending = ""

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._stream.fileno()

    def write(self, text: str) -> int:
        data = self._pending + text
        head, sep, tail = data.rpartition("\n")
        if sep:
            self._stream.write("\n".join(line.rstrip(" ") for line in head.split("\n")) + "\n")
        self._pending = tail
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._stream.write(self._pending.rstrip(" "))
            self._pending = ""
        self._stream.flush()


def make_console(*, stderr: bool = False, environ: Mapping[str, str] | None = None) -> Console:
    """A rich Console on stdout (or stderr) honouring NO_COLOR / FORCE_COLOR, COLUMNS and the
    TTY."""
    from rich.console import Console

    env = os.environ if environ is None else environ
    stream = sys.stderr if stderr else sys.stdout
    isatty = stream.isatty()
    color = color_enabled(isatty, env)
    target: IO[str] = stream if isatty else StripTrailingSpaces(stream)  # type: ignore[assignment]
    return Console(
        file=target,
        stderr=stderr,
        force_terminal=color if env.get("FORCE_COLOR") else None,
        no_color=not color,
        highlight=False,
        soft_wrap=False,
        width=console_width(isatty, env),
    )


class _Describe:
    """A renderable whose text is asked for again at each refresh."""

    def __init__(self, describe: Callable[[], str]) -> None:
        self._describe = describe

    def __rich__(self) -> str:
        return self._describe()


@contextlib.contextmanager
def progress_on_stderr(
    describe: Callable[[], str], *, environ: Mapping[str, str] | None = None
) -> Iterator[None]:
    """A spinner line on stderr showing ``describe()`` (refreshed), only when stderr is a
    terminal: in a pipe, a log or a CI job it prints nothing at all."""
    if not sys.stderr.isatty():
        yield
        return
    console = make_console(stderr=True, environ=environ)
    with console.status(_Describe(describe), refresh_per_second=4):
        yield
