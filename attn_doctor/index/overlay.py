"""Where ``attn-doctor index update`` keeps its overlay, and reading it back.

Kept apart from the updater (which needs ``urllib`` and ``zipfile``): every data read and
``check`` itself ask whether an overlay is there, on the start-up path.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attn_doctor._version import __version__

OVERLAY_FILE = "overlay.json"
OVERLAY_SCHEMA = 1


def cache_root(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "attn-doctor"


def overlay_path(environ: Mapping[str, str]) -> Path:
    return cache_root(environ) / "index"


def read_overlay(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """The overlay's description when one exists for this attn-doctor version, else None."""
    path = overlay_path(environ) / OVERLAY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != OVERLAY_SCHEMA:
        return None
    if data.get("attn_doctor_version") != __version__:
        return None  # written by another attn-doctor: its bundled data may be newer
    return data


def knowledge_line(environ: Mapping[str, str], today: dt.date | None = None) -> str:
    """Where check's knowledge comes from and how old it is, in one line."""
    data = read_overlay(environ)
    if data is None:
        return (
            f"knowledge: the data bundled with attn-doctor {__version__} "
            "(run `attn-doctor index update` for newer releases)"
        )
    updated = str(data.get("updated", ""))
    try:
        day = dt.date.fromisoformat(updated[:10])
        age = ((today or dt.datetime.now(dt.timezone.utc).date()) - day).days
        old = f", {age} day{'s' if age != 1 else ''} old"
    except ValueError:
        old = ""
    names = ", ".join(
        f"{s.get('name')} ({s.get('trust')}, {str(s.get('status')).split(':')[0]})"
        for s in data.get("sources", [])
        if isinstance(s, dict)
    )
    return f"knowledge: index update of {updated}{old} from {names}; bundled data otherwise"
