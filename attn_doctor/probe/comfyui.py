"""Find a ComfyUI installation: a folder holding ``comfy/cli_args.py`` and ``main.py``.

Looked for in the folder ``--comfyui`` names, else the current folder, else its ``ComfyUI``
subfolder (the portable build unpacks ``ComfyUI_windows_portable/ComfyUI`` next to
``python_embeded``). Files only: nothing is imported or run. Never raises.

The portable build's packages are read from the outside: the ``*.dist-info`` folders of
``python_embeded/Lib/site-packages`` (and of any folder its ``pythonXY._pth`` lists), with the
metadata readers the probe uses for its own interpreter.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Literal

from attn_doctor.facts import ComfyUIFacts, PackageFacts
from attn_doctor.probe.distributions import scan_distributions
from attn_doctor.probe.packages import is_watched, package_facts

_VERSION = re.compile(r"""^__version__\s*=\s*["']([^"']+)["']""", re.MULTILINE)
_PYTHON_XY = re.compile(r"^python(\d)(\d+)\.(?:_pth|dll)$", re.IGNORECASE)


def is_comfyui(folder: Path) -> bool:
    """ComfyUI's own files are there (its CLI flags live in ``comfy/cli_args.py``)."""
    try:
        return (folder / "comfy" / "cli_args.py").is_file() and (folder / "main.py").is_file()
    except OSError:
        return False


def parse_comfyui_version(text: str) -> str | None:
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


def embedded_python_version(embeded: Path) -> str | None:
    """``3.12`` from ``python312._pth`` or ``python312.dll`` in ``python_embeded``."""
    try:
        names = sorted(p.name for p in embeded.iterdir())
    except OSError:
        return None
    for name in names:
        m = _PYTHON_XY.match(name)
        if m:
            return f"{m.group(1)}.{m.group(2)}"
    return None


def embedded_site_paths(embeded: Path) -> list[str]:
    """``Lib/site-packages`` and the folders the ``pythonXY._pth`` files list (relative to
    ``python_embeded``; zip archives, ``import`` lines and comments left out)."""
    candidates = [embeded / "Lib" / "site-packages"]
    with contextlib.suppress(OSError):
        for pth in sorted(embeded.glob("*._pth")):
            with contextlib.suppress(OSError, UnicodeDecodeError):
                for line in pth.read_text(encoding="utf-8").splitlines():
                    entry = line.strip()
                    if not entry or entry.startswith(("#", "import ")) or entry == ".":
                        continue
                    candidates.append(embeded / entry.replace("\\", "/"))
    out: list[str] = []
    for path in candidates:
        try:
            if path.is_dir() and str(path) not in out:
                out.append(str(path))
        except OSError:
            continue
    return out


def embedded_packages(embeded: Path) -> tuple[PackageFacts, ...] | None:
    """torch and the watched distributions installed in ``python_embeded`` (None: no
    site-packages there, or it could not be read)."""
    paths = embedded_site_paths(embeded)
    if not paths:
        return None
    try:
        dists = scan_distributions(paths)
    except Exception:
        return None
    out = []
    for name in sorted(dists):
        if name != "torch" and not is_watched(name):
            continue
        try:
            facts, _ = package_facts(name, dists[name])
        except Exception:  # noqa: S112 - a corrupt dist-info is skipped; the rest count
            continue
        out.append(facts)
    return tuple(out)


def comfyui_facts(folder: Path, found_by: Literal["cwd", "option"]) -> ComfyUIFacts:
    version = None
    with contextlib.suppress(OSError, UnicodeDecodeError):
        version = parse_comfyui_version((folder / "comfyui_version.py").read_text(encoding="utf-8"))
    python = _embedded_python(folder)
    embeded = Path(python).parent if python is not None else None
    return ComfyUIFacts(
        path=str(folder),
        found_by=found_by,
        version=version,
        python=python,
        python_version=embedded_python_version(embeded) if embeded is not None else None,
        packages=embedded_packages(embeded) if embeded is not None else None,
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
