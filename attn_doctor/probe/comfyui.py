"""Find a ComfyUI installation: a folder holding ``comfy/cli_args.py`` and ``main.py``.

Looked for in the folder ``--comfyui`` names, else the current folder, else its ``ComfyUI``
subfolder (the portable build unpacks ``ComfyUI_windows_portable/ComfyUI`` next to
``python_embeded``). Files only: nothing is imported or run. Never raises.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Literal

from attn_doctor.facts import ComfyUIFacts

_VERSION = re.compile(r"""^__version__\s*=\s*["']([^"']+)["']""", re.MULTILINE)


def is_comfyui(folder: Path) -> bool:
    """ComfyUI's own files are there (its CLI flags live in ``comfy/cli_args.py``)."""
    try:
        return (folder / "comfy" / "cli_args.py").is_file() and (folder / "main.py").is_file()
    except OSError:
        return False


def parse_version(text: str) -> str | None:
    """``__version__`` from ``comfyui_version.py``."""
    m = _VERSION.search(text)
    return m.group(1) if m else None


def _embedded_python(folder: Path) -> str | None:
    for base in (folder, folder.parent):
        for name in ("python.exe", "python"):
            exe = base / "python_embeded" / name
            try:
                if exe.is_file():
                    return str(exe)
            except OSError:
                continue
    return None


def comfyui_facts(folder: Path, found_by: Literal["cwd", "option"]) -> ComfyUIFacts:
    version = None
    with contextlib.suppress(OSError, UnicodeDecodeError):
        version = parse_version((folder / "comfyui_version.py").read_text(encoding="utf-8"))
    return ComfyUIFacts(
        path=str(folder),
        found_by=found_by,
        version=version,
        python=_embedded_python(folder),
    )


def probe_comfyui(cwd: Path, option: Path | None = None) -> ComfyUIFacts | None:
    """The ComfyUI installation named by ``option``, else one in ``cwd`` (None: none found)."""
    if option is not None:
        for folder in (option, option / "ComfyUI"):
            if is_comfyui(folder):
                return comfyui_facts(folder, "option")
        return None
    for folder in (cwd, cwd / "ComfyUI"):
        if is_comfyui(folder):
            return comfyui_facts(folder, "cwd")
    return None
