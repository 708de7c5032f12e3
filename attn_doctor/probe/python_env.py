"""The Python interpreter attn-doctor runs under: version, ABI tag, venv, pip, uv, conda."""

from __future__ import annotations

import importlib.metadata
import platform
import re
import sys
import sysconfig
from collections.abc import Mapping

from attn_doctor.facts import PythonFacts, Unknown
from attn_doctor.probe.runner import run_tool, unknown, which

_UV_VERSION = re.compile(r"^uv\s+(\d+\.\d+\.\d+\S*)", re.MULTILINE)


def parse_uv_version(output: str) -> str | None:
    """``0.9.5`` from ``uv 0.9.5 (d5f39331a 2025-10-21)``."""
    m = _UV_VERSION.search(output)
    return m.group(1) if m else None


def abi_tag(
    *, implementation: str, version: tuple[int, int], free_threaded: bool, soabi: str | None
) -> str | None:
    """The first ABI tag this interpreter accepts, as wheel filenames spell it.

    CPython: ``cp311``, ``cp313t`` (free-threaded). PyPy and others: from ``SOABI``
    (``pypy310_pp73``), as ``packaging.tags._generic_abi`` does. None when it cannot be told.
    """
    if implementation == "cpython":
        return f"cp{version[0]}{version[1]}{'t' if free_threaded else ''}"
    if not soabi:
        return None
    parts = soabi.split("-")
    if soabi.startswith("pypy"):  # pypy310-pp73-x86_64-linux-gnu -> pypy310_pp73
        abi = "-".join(parts[:2])
    elif soabi.startswith("graalpy"):
        abi = "-".join(parts[:3])
    else:
        abi = soabi
    return re.sub(r"[^\w]+", "_", abi)


def _is_free_threaded() -> bool:
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def python_facts_without_uv(environ: Mapping[str, str]) -> tuple[PythonFacts, list[Unknown]]:
    """Everything except ``uv --version`` (which needs a subprocess; see ``probe_uv``)."""
    unknowns: list[Unknown] = []
    free_threaded = _is_free_threaded()
    impl = sys.implementation.name
    soabi = sysconfig.get_config_var("SOABI")
    tag = abi_tag(
        implementation=impl,
        version=(sys.version_info[0], sys.version_info[1]),
        free_threaded=free_threaded,
        soabi=soabi if isinstance(soabi, str) else None,
    )
    if tag is None:
        unknowns.append(unknown("python.abi_tag", f"no ABI tag rule for {impl}"))
    try:
        pip_version: str | None = importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        pip_version = None  # absent, which is a fact (uv-made venvs have no pip)
    facts = PythonFacts(
        version=platform.python_version(),
        implementation=impl,
        executable=sys.executable or None,
        abi_tag=tag,
        free_threaded=free_threaded,
        in_venv=sys.prefix != getattr(sys, "base_prefix", sys.prefix),
        pip_version=pip_version,
        conda_env=environ.get("CONDA_DEFAULT_ENV") or None,
    )
    return facts, unknowns


def probe_uv(environ: Mapping[str, str], *, timeout: float) -> str | None:
    """``uv --version`` when uv is on PATH; None when it is not (absence is not an unknown)."""
    uv = which("uv", environ)
    if uv is None:
        return None
    res = run_tool([uv, "--version"], timeout=timeout, environ=environ)
    if isinstance(res, str):
        return None
    return parse_uv_version(res.output)
