"""The post-install check: import the backend's module in a child process, with a timeout.

A broken extension may raise, segfault or hang on import; the child takes the blow and the
result says which. (``attn_doctor.probe.imports.import_in_child`` is the probe layer's version
of the same idea; this one is kept small and local to the installer.)
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Mapping

from attn_doctor.facts import ImportResult

_IMPORT_SCRIPT = r"""
import importlib, sys, traceback
try:
    importlib.import_module(sys.argv[1])
except BaseException as exc:
    traceback.print_exc()
    sys.stderr.write("\nATTN-DOCTOR-ERROR: %s: %s\n" % (type(exc).__name__, exc))
    sys.exit(1)
"""


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def check_import(
    python: str, module: str, timeout: float = 300.0, *, env: Mapping[str, str] | None = None
) -> ImportResult:
    """Import ``module`` in a fresh ``python`` process; never raises.

    ``env`` replaces the child's environment (default: this process's).
    """
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [python, "-c", _IMPORT_SCRIPT, module],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env=None if env is None else dict(env),
        )
    except subprocess.TimeoutExpired:
        return ImportResult(
            module=module,
            status="timeout",
            detail=f"import did not finish within {timeout:.0f} s",
            seconds=time.monotonic() - start,
        )
    except OSError as exc:
        return ImportResult(
            module=module,
            status="error",
            detail=f"cannot run {python}: {exc.strerror or exc}",
            seconds=time.monotonic() - start,
        )
    seconds = time.monotonic() - start
    if proc.returncode == 0:
        return ImportResult(module=module, status="ok", seconds=seconds)
    tail = "\n".join(proc.stderr.strip().splitlines()[-15:]) or None
    if proc.returncode < 0:
        return ImportResult(
            module=module,
            status="crashed",
            detail=f"the importing process died of {_signal_name(proc.returncode)}",
            traceback_tail=tail,
            seconds=seconds,
        )
    detail = None
    for line in reversed(proc.stderr.splitlines()):
        if line.startswith("ATTN-DOCTOR-ERROR: "):
            detail = line.removeprefix("ATTN-DOCTOR-ERROR: ")
            break
    return ImportResult(
        module=module,
        status="error",
        detail=detail or f"exit status {proc.returncode}",
        traceback_tail=tail,
        seconds=seconds,
    )
