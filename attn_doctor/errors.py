"""Exit codes and the one exception class per exit code.

Exit codes are part of the public contract and never change meaning between releases. This
table is the one source: ``--help`` prints ``EXIT_CODE_SUMMARY`` and README.md's table
repeats it (a test compares them). ``cli.main`` is the only place that turns exceptions
into codes.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable


class ExitCode(enum.IntEnum):
    """Stable process exit codes."""

    OK = 0
    """Healthy: nothing at error level was found (warnings may exist unless ``--strict``)."""
    PROBLEMS = 1
    """The command ran and found problems: an error-level finding, a failed verification."""
    USAGE = 2
    """Bad input: unknown option or backend name, malformed snapshot or index file."""
    INTERNAL = 3
    """A bug in attn-doctor itself; the traceback is printed to stderr."""
    INSTALL_FAILED = 4
    """An install failed or its check failed; the environment was rolled back."""
    LOCKED = 5
    """Another attn-doctor install holds the environment's lock."""
    INCOMPLETE = 6
    """Some inputs could not be read (``fleet``): the report covers every readable one and
    names each unreadable input with what is wrong with it."""
    INTERRUPTED = 130
    """Interrupted by the user (Ctrl-C)."""


class AttnDoctorError(Exception):
    """Base class: an error with a stable exit code and a message meant for people."""

    exit_code: ExitCode = ExitCode.INTERNAL
    code: str = "internal"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(AttnDoctorError):
    """The user asked for something that cannot be done as asked."""

    exit_code = ExitCode.USAGE
    code = "usage"


class NoPlanner(UsageError):
    """attn-doctor has no install planner for this backend (install it by hand)."""

    code = "no-planner"


class SnapshotError(UsageError):
    """A snapshot file is unreadable, malformed, or from a newer schema."""

    code = "bad-snapshot"


class IndexDataError(UsageError):
    """A wheels_index data file is malformed; the message names the bad entry."""

    code = "bad-index"


class ProblemsFound(AttnDoctorError):
    """The command completed and found problems (the report says which)."""

    exit_code = ExitCode.PROBLEMS
    code = "problems"


class NoWayToInstall(ProblemsFound):
    """No source can install the backend on this machine as it is (the message says why, the
    hint names the ways out): a fact found about the machine, not bad input."""

    code = "no-way-to-install"


class InstallFailed(AttnDoctorError):
    """An install step failed; the prior state was restored."""

    exit_code = ExitCode.INSTALL_FAILED
    code = "install-failed"


class Locked(AttnDoctorError):
    """Another install holds this environment's lock."""

    exit_code = ExitCode.LOCKED
    code = "locked"


SUMMARY_WORDS: dict[ExitCode, str] = {
    ExitCode.OK: "healthy",
    ExitCode.PROBLEMS: "problems found",
    ExitCode.USAGE: "usage error or bad input file",
    ExitCode.INTERNAL: "internal error",
    ExitCode.INSTALL_FAILED: "install failed (rolled back)",
    ExitCode.LOCKED: "another install holds the lock",
    ExitCode.INCOMPLETE: "some inputs unreadable (fleet: the rest reported)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}
"""A few words per exit code, for ``--help``."""

EXIT_CODE_SUMMARY = ", ".join(f"{int(code)} {words}" for code, words in SUMMARY_WORDS.items())
"""One line per code would crowd ``--help``: ``0 healthy, 1 problems found, …``."""


def did_you_mean(word: str, choices: Iterable[str], *, limit: int = 3) -> str | None:
    """``did you mean 'fa2'?`` for a near miss among ``choices``, or None."""
    close = difflib.get_close_matches(word, list(dict.fromkeys(choices)), n=limit, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"
