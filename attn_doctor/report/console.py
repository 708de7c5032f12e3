"""Consoles: people's output, colour by TTY, ``NO_COLOR`` and ``FORCE_COLOR``.

Progress and diagnostics go to stderr; in ``--json`` mode nothing but the envelope reaches
stdout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from rich.console import Console


def _color_system(stream_isatty: bool, environ: Mapping[str, str]) -> bool:
    if environ.get("NO_COLOR"):
        return False
    if environ.get("FORCE_COLOR"):
        return True
    return stream_isatty


def make_console(*, stderr: bool = False, environ: Mapping[str, str] | None = None) -> Console:
    """A rich Console on stdout (or stderr) honouring NO_COLOR / FORCE_COLOR and the TTY."""
    env = os.environ if environ is None else environ
    stream = sys.stderr if stderr else sys.stdout
    color = _color_system(stream.isatty(), env)
    return Console(
        file=stream,
        stderr=stderr,
        force_terminal=color if env.get("FORCE_COLOR") else None,
        no_color=not color,
        highlight=False,
        soft_wrap=False,
        width=None if stream.isatty() else 120,
    )
