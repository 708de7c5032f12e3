"""One pass over the installed distributions, the way the target interpreter would see them.

``importlib.metadata`` reads ``*.dist-info`` directories on a search path without importing
anything. The search path is this interpreter's ``sys.path`` plus any ``PYTHONPATH`` entries
in the ``environ`` passed to the probe (so a probe for a child environment sees what the
child would import). When two directories hold the same distribution, the first one on the
path wins, as it does for ``import``.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

_SEPARATORS = re.compile(r"[-_.]+")


def canonicalize_name(name: str) -> str:
    """PEP 503's normalised name (``packaging.utils.canonicalize_name``, without importing
    ``packaging.tags`` and its ELF readers on ``check``'s start-up path)."""
    return _SEPARATORS.sub("-", name).lower()


def search_path(environ: Mapping[str, str]) -> list[str]:
    """``PYTHONPATH`` entries from ``environ`` not already on ``sys.path``, then ``sys.path``.

    The empty entry (the current directory, which ``python -c`` puts first) is left out: the
    doctor's working directory says nothing about what a training script imports.
    """
    extra = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]
    return [*extra, *(p for p in sys.path if p)]


def scan_distributions(paths: list[str]) -> dict[str, importlib.metadata.Distribution]:
    """Every distribution on ``paths``, keyed by canonical name; the first one found wins."""
    found: dict[str, importlib.metadata.Distribution] = {}
    for dist in importlib.metadata.distributions(path=paths):
        # The name in the *.dist-info directory's name is enough to key the map; parsing every
        # METADATA file of a large environment would cost more than the rest of the probe.
        raw = getattr(dist, "_normalized_name", None)
        if not isinstance(raw, str) or not raw:
            try:
                raw = dist.metadata["Name"]
            except Exception:  # noqa: S112 - a broken dist-info is skipped; the rest count
                continue
        if not raw:
            continue
        name = canonicalize_name(raw)
        found.setdefault(name, dist)
    return found


def dist_location(dist: importlib.metadata.Distribution) -> str | None:
    """The directory the distribution is installed into (site-packages), if known."""
    try:
        return str(Path(str(dist.locate_file(""))).resolve())
    except Exception:
        return None


def dist_requires(dist: importlib.metadata.Distribution) -> tuple[str, ...]:
    try:
        return tuple(dist.requires or ())
    except Exception:
        return ()


def dist_read_text(dist: importlib.metadata.Distribution, name: str) -> str | None:
    try:
        return dist.read_text(name)
    except Exception:
        return None


def dist_file(dist: importlib.metadata.Distribution, relpath: str) -> Path | None:
    """An installed file of the distribution (``torch/version.py``), if it exists.

    Tries the install location first, then the RECORD (editable and odd layouts).
    """
    try:
        candidate = Path(str(dist.locate_file(relpath)))
        if candidate.is_file():
            return candidate
    except Exception:  # noqa: S110 - fall through to the RECORD
        pass
    try:
        files = dist.files or []
    except Exception:
        return None
    for f in files:
        if str(f).replace("\\", "/").endswith(relpath):
            path = Path(str(f.locate()))
            if path.is_file():
                return path
    return None


def this_interpreter_paths() -> list[str]:
    """``sys.path`` without the empty entry."""
    return [p for p in sys.path if p]
