"""Run one verify step in a child process with a timeout; a crash or hang becomes a result.

The child is ``python -m attn_doctor.verify._child ...``; it prints one JSON document on its
last stdout line. A kernel that segfaults kills only the child: the parent reports the signal.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from attn_doctor.probe.runner import run_isolated

ChildStatus = Literal["ok", "crashed", "timeout", "error"]


@dataclass(frozen=True, kw_only=True)
class ChildOutcome:
    """What came back from one child process."""

    status: ChildStatus
    """ok: JSON came back; crashed: killed by a signal; timeout; error: exit != 0 or bad JSON."""
    data: dict[str, Any] | None
    reason: str | None
    """Why not ok: the signal name, the timeout, or the tail of stderr."""
    seconds: float


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def signal_name(returncode: int) -> str:
    """``-11`` -> ``SIGSEGV``; unknown numbers as ``signal 77``."""
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def child_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The child's environment: ours, plus attn_doctor importable even when not installed."""
    env = dict(os.environ if environ is None else environ)
    package_parent = str(Path(__file__).resolve().parent.parent.parent)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = package_parent if not old else package_parent + os.pathsep + old
    # Keep the child's warnings (e.g. flex_attention's) out of its JSON line, and never let a
    # user's PYTHONWARNINGS=error turn a library's warning into a backend failure: the runs
    # record their warnings as notes (attn_doctor.verify.warned).
    env["PYTHONWARNINGS"] = "ignore"
    return env


def run_child(
    args: Sequence[str],
    *,
    timeout: float,
    python: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ChildOutcome:
    """Run ``python -m attn_doctor.verify._child *args`` and parse its last stdout line."""
    cmd = [python or sys.executable, "-m", "attn_doctor.verify._child", *args]
    ran = run_isolated(cmd, timeout=timeout, env=child_env(environ))
    if ran.start_error is not None:
        return ChildOutcome(status="error", data=None, reason=ran.start_error, seconds=0.0)
    if ran.timed_out or ran.returncode is None:
        return ChildOutcome(
            status="timeout",
            data=None,
            reason=f"no answer within {timeout:g} s (killed)",
            seconds=ran.seconds,
        )
    stdout, stderr = ran.stdout, ran.stderr
    seconds = ran.seconds
    returncode = ran.returncode
    if returncode < 0:
        return ChildOutcome(
            status="crashed",
            data=None,
            reason=f"killed by {signal_name(returncode)}"
            + (f": {_tail(stderr, 4)}" if stderr.strip() else ""),
            seconds=seconds,
        )
    lines = stdout.strip().splitlines()
    data: object = None
    if lines:
        try:
            data = json.loads(lines[-1])
        except json.JSONDecodeError:
            data = None
    if returncode != 0 or not isinstance(data, dict):
        return ChildOutcome(
            status="error",
            data=None,
            reason=f"child exited with {returncode}: "
            + (_tail(stderr) or _tail(stdout) or "no output"),
            seconds=seconds,
        )
    return ChildOutcome(status="ok", data=data, reason=None, seconds=seconds)
