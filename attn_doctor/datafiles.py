"""Locate and read the data files in ``wheels_index/`` (shipped inside the package).

In a built wheel the directory is ``attn_doctor/wheels_index``; in a source checkout or an
editable install it is ``wheels_index/`` at the repository root. Exactly one function reads
these files; callers validate what they get and raise ``IndexDataError`` naming the entry.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

from attn_doctor.errors import IndexDataError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def index_dir() -> Path:
    """The directory holding the index data files."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "wheels_index", here.parent / "wheels_index"):
        if candidate.is_dir():
            return candidate
    raise IndexDataError(
        "the wheels_index data directory is missing from this installation",
        hint="Reinstall attn-doctor; a source checkout must keep wheels_index/ at its root.",
    )


@functools.cache
def read_toml(name: str, directory: Path | None = None) -> dict[str, Any]:
    """Parse ``wheels_index/<name>`` (cached: the files cannot change within a run)."""
    path = (directory or index_dir()) / name
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise IndexDataError(f"cannot read index file {name}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise IndexDataError(f"index file {name} is not valid TOML: {exc}") from exc
