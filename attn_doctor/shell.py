"""Command lines that paste into a shell: quoting for POSIX shells and for Windows' cmd and
PowerShell, and pip for attn-doctor's own interpreter.

Low in the house (standard library only): the facts' errors, the fleet and bench hints, and
the planner's commands all quote through here.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from typing import Literal

__all__ = ["Shell", "join_command", "own_pip", "quote_arg"]

Shell = Literal["posix", "windows"]
"""Whose quoting a shown command uses: a POSIX shell's, or one that pastes into both cmd and
PowerShell (double quotes)."""

_WINDOWS_BARE = re.compile(r"[A-Za-z0-9_\-.:/\\=+]+")
"""Arguments that cmd and PowerShell both pass through unquoted. Anything else (a space,
``<``, ``>``, ``,``, ``&``, ``|``, ``@``, ``*``, ``'``…) is double-quoted: cmd redirects on
``<``/``>``, PowerShell makes ``a,b`` an array and ``@`` a splat."""


def quote_arg(arg: str, shell: Shell = "posix") -> str:
    """One argument, quoted for ``shell`` only when it needs it."""
    if shell == "posix":
        return shlex.quote(arg)
    if arg and _WINDOWS_BARE.fullmatch(arg):
        return arg
    return '"' + arg.replace('"', '\\"') + '"'


def join_command(argv: Sequence[str], shell: Shell = "posix") -> str:
    """A command line that pastes into ``shell`` and runs ``argv``."""
    return " ".join(quote_arg(a, shell) for a in argv)


def own_pip(*args: str) -> str:
    """``X -m pip ARGS`` for the interpreter attn-doctor runs under, quoted for its shell."""
    import sys

    shell: Shell = "windows" if sys.platform == "win32" else "posix"
    return join_command([sys.executable, "-m", "pip", *args], shell)
