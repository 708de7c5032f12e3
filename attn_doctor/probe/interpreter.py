"""Another Python interpreter on this machine, as it sees itself (``install --python X``).

The environment acted on must be the one probed: X's Python version, ABI tag, venv, pip and
its ``sys.path`` come from X itself, run in a child process with a small standard-library
script (X need not have attn-doctor, and may be a different Python version). The
distributions on that path are then read from the outside by the probe's own metadata readers
(``distributions.scan_distributions``): torch, its CUDA flavour and C++11 ABI, the attention
packages, exactly as for this interpreter, and nothing of X's is imported.

``parse_interpreter_report`` is the pure half (recorded output in, facts out);
``probe_interpreter`` runs X. Neither raises for X's sake: a failure is a reason string.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from attn_doctor.facts import PythonFacts
from attn_doctor.probe.python_env import abi_tag
from attn_doctor.probe.runner import Completed, run_tool

INTERPRETER_TIMEOUT_S = 30.0
"""Seconds X may take to start and print its facts (a cold start on a network file system)."""

# Runs under X: the standard library only, and syntax that Python 3.6 still parses.
INTERPRETER_SCRIPT = r"""
import json, os, platform, sys, sysconfig
try:
    import importlib.util as _u
    pip = _u.find_spec("pip") is not None
except Exception:
    pip = False
soabi = sysconfig.get_config_var("SOABI")
print(json.dumps({
    "executable": sys.executable,
    "version": platform.python_version(),
    "version_info": list(sys.version_info[:2]),
    "implementation": sys.implementation.name,
    "soabi": soabi if isinstance(soabi, str) else None,
    "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "path": [p for p in sys.path if p],
    "has_pip": pip,
    "system": platform.system(),
    "machine": platform.machine(),
}))
"""


@dataclass(frozen=True, kw_only=True)
class InterpreterReport:
    """What X says about itself."""

    python: PythonFacts
    """Its version, implementation, ABI tag, venv (``pip_version`` is filled from its
    metadata by the caller; ``executable`` is the path as the user gave it)."""
    prefix: str
    search_path: tuple[str, ...]
    """X's ``sys.path`` without the empty entry (the current directory of ``-c``)."""
    has_pip: bool
    """``pip`` is importable by X (``X -m pip`` can work)."""


def is_this_interpreter(python: str | None) -> bool:
    """True when ``python`` names the interpreter running attn-doctor (or is None).

    Compared by path, not by ``realpath``: a venv's ``bin/python`` is a symlink to the base
    interpreter, and two venvs of one base are still two environments.
    """
    if python is None:
        return True
    # Path.absolute, not resolve: resolving would follow the venv's symlink to the base.
    return os.path.normcase(Path(python).absolute()) == os.path.normcase(
        Path(sys.executable).absolute()
    )


def parse_interpreter_report(
    text: str, *, executable: str, conda_env: str | None = None
) -> InterpreterReport:
    """X's JSON report as facts (pure). ``ValueError`` when ``text`` is not that report."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    info = data["version_info"]
    if not (isinstance(info, list) and len(info) == 2 and all(isinstance(v, int) for v in info)):
        raise ValueError("version_info is not [major, minor]")
    impl = str(data["implementation"])
    free_threaded = bool(data.get("free_threaded"))
    soabi = data.get("soabi")
    path = data.get("path")
    if not isinstance(path, list):
        raise ValueError("path is not a list")
    prefix, base = str(data["prefix"]), str(data.get("base_prefix") or data["prefix"])
    facts = PythonFacts(
        version=str(data["version"]),
        implementation=impl,
        executable=executable,
        abi_tag=abi_tag(
            implementation=impl,
            version=(info[0], info[1]),
            free_threaded=free_threaded,
            soabi=soabi if isinstance(soabi, str) else None,
        ),
        free_threaded=free_threaded,
        in_venv=prefix != base,
        conda_env=conda_env,
    )
    return InterpreterReport(
        python=facts,
        prefix=prefix,
        search_path=tuple(str(p) for p in path if p),
        has_pip=bool(data.get("has_pip")),
    )


def probe_interpreter(
    python: str,
    *,
    environ: Mapping[str, str] | None = None,
    timeout: float = INTERPRETER_TIMEOUT_S,
) -> InterpreterReport | str:
    """Run ``python`` and read its report; on failure, why (a sentence). Never raises."""
    env = dict(os.environ if environ is None else environ)
    # X's own site-packages, not attn-doctor's: a PYTHONHOME meant for this interpreter
    # would point X at the wrong standard library.
    env.pop("PYTHONHOME", None)
    res = run_tool([python, "-c", INTERPRETER_SCRIPT], timeout=timeout, environ=env)
    if isinstance(res, str):
        return res
    return _report_from(res, python, env.get("CONDA_DEFAULT_ENV") or None)


def _report_from(res: Completed, python: str, conda_env: str | None) -> InterpreterReport | str:
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or [""])[-1][:200]
        return f"`{python}` exited {res.returncode}" + (f": {last}" if last else "")
    try:
        return parse_interpreter_report(res.stdout, executable=python, conda_env=conda_env)
    except (ValueError, KeyError, TypeError):
        shown = " ".join(res.stdout.split())[:80]
        if shown:
            return f"`{python}` printed {shown!r}, not its facts"
        return f"`{python}` printed nothing"
