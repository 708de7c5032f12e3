"""Shared fixtures. Unit tests must not touch the machine: see ``no_subprocess``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).parent / "snapshots"
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point HOME, XDG_CACHE_HOME and XDG_CONFIG_HOME at an empty folder for the whole suite.

    The tool keeps a bench cache, an import-check cache and an install journal under the
    user's cache; a test that read the real one would pass or fail by what the machine's
    owner ran before. Child processes inherit the same variables.
    """
    home = tmp_path_factory.mktemp("home")
    saved = {k: os.environ.get(k) for k in _ISOLATED}
    os.environ["HOME"] = str(home)
    os.environ["XDG_CACHE_HOME"] = str(home / ".cache")
    os.environ["XDG_CONFIG_HOME"] = str(home / ".config")
    os.environ["XDG_DATA_HOME"] = str(home / ".local" / "share")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_ISOLATED = ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME")


def isolated_home_env() -> dict[str, str]:
    """The suite's HOME and XDG_* folders: add them to any environment a test builds from
    scratch for a child process (one without HOME would find the real home in passwd)."""
    return {k: os.environ[k] for k in _ISOLATED if k in os.environ}


def _has_cuda() -> bool:
    try:
        import torch
    except Exception:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any(item.get_closest_marker("gpu") for item in items) and not _has_cuda():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if item.get_closest_marker("gpu"):
                item.add_marker(skip)
