"""Exit codes and the one exception class per exit code.

Exit codes are part of the public contract (documented in README.md) and never change
meaning between releases. ``cli.main`` is the only place that turns exceptions into codes.
"""

from __future__ import annotations

import enum


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
