"""Helpers for the runtime tests: planted packages and a clean environment."""

from __future__ import annotations

import os
from pathlib import Path

SEGFAULT = "import ctypes\nctypes.string_at(0)\n"
"""A module body that dies with SIGSEGV on import, like a broken CUDA extension."""


def plant(
    root: Path, module: str, *, dist: str | None, version: str = "1.0", body: str = ""
) -> Path:
    """Create package ``module`` (dotted names make sub-packages) under ``root``.

    ``body`` goes into the innermost ``__init__.py``. With ``dist``, a ``.dist-info`` directory
    makes the package look pip-installed with that name and version.
    """
    parts = module.split(".")
    directory = root
    for i, part in enumerate(parts):
        directory = directory / part
        directory.mkdir(parents=True, exist_ok=True)
        init = directory / "__init__.py"
        if not init.exists() or i == len(parts) - 1:
            init.write_text(body if i == len(parts) - 1 else "", encoding="utf-8")
    if dist is not None:
        set_version(root, dist, version)
    return directory


def set_version(root: Path, dist: str, version: str) -> None:
    """(Re)write the distribution metadata of ``dist`` under ``root``."""
    stem = dist.replace("-", "_")
    for old in root.glob(f"{stem}-*.dist-info"):
        for child in old.iterdir():
            child.unlink()
        old.rmdir()
    info = root / f"{stem}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
    )


OVERRIDES = (
    "ATTN_DOCTOR_BACKEND",
    "ATTN_DOCTOR_DISABLE",
    "ATTN_DOCTOR_IMPORT_TIMEOUT",
    "DISABLE_FLASH_ATTN",
    "USE_FLASH_ATTENTION",
    "XFORMERS_DISABLED",
    "USE_XFORMERS",
    "PYTHONPATH",
    "XDG_CACHE_HOME",
)


def clean_environ(cache: Path, *paths: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any override, with its own cache directory."""
    env = {k: v for k, v in os.environ.items() if k not in OVERRIDES}
    env["XDG_CACHE_HOME"] = str(cache)
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
    env.update(extra)
    return env
