"""The probe's one way to run a program and read a file; neither ever raises.

Every reader in this package goes through ``run_tool`` and ``read_text``: a failure comes
back as a reason string (what was run, what went wrong), which the caller turns into an
``Unknown`` entry. Nothing here is a shell command: argv lists only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from attn_doctor.facts import Unknown

DEFAULT_TOOL_TIMEOUT = 10.0
"""Seconds a quick tool (``nvidia-smi``, ``nvcc --version``, ``uv --version``) may take.
A hung ``nvidia-smi`` (a wedged driver does that) must not hang the doctor."""


@dataclass(frozen=True, kw_only=True)
class Completed:
    """A program that ran to completion (whatever its exit status)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout then stderr: some tools print their version on either."""
        return self.stdout + ("\n" + self.stderr if self.stderr else "")


def which(name: str, environ: Mapping[str, str]) -> str | None:
    """``shutil.which`` over the ``PATH`` in ``environ`` (not necessarily ``os.environ``)."""
    return shutil.which(name, path=environ.get("PATH", os.defpath))


def run_tool(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TOOL_TIMEOUT,
    environ: Mapping[str, str] | None = None,
) -> Completed | str:
    """Run ``argv`` and capture its output as text; on failure return why, as a sentence."""
    env = dict(os.environ if environ is None else environ)
    # Tools print their versions in English only with the C locale (nvidia-smi, nvcc do not
    # translate today, but a localised "Version" would silently defeat the parsers).
    env["LC_ALL"] = "C"
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError:
        return f"{argv[0]} not found"
    except subprocess.TimeoutExpired:
        return f"`{' '.join(argv)}` did not finish within {timeout:g} s"
    except OSError as exc:
        return f"`{' '.join(argv)}` could not be run: {exc.strerror or exc}"
    return Completed(
        argv=tuple(argv), returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr
    )


def read_text(path: str | Path, *, limit: int = 1 << 20) -> str | None:
    """The file's text (at most ``limit`` characters), or None when it cannot be read."""
    try:
        with Path(path).open(encoding="utf-8", errors="replace") as fh:
            return fh.read(limit)
    except (OSError, ValueError):
        return None


def unknown(field: str, reason: str) -> Unknown:
    """Shorthand used by every reader."""
    return Unknown(field=field, reason=reason)


def is_windows() -> bool:
    return sys.platform == "win32"
