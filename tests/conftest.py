"""Shared fixtures, and the two lanes of the suite.

Unit tests are pure and in-process: every test outside ``tests/functional/`` and
``tests/integration/`` runs under ``no_subprocess``, which makes starting a process (pip,
``python -m attn_doctor``, a child import, ``git``) fail the test with a message that says
where it belongs. Tests in those two folders are marked ``functional`` here; heavy in-process
tests (a model forward, a 100 MiB log, a hypothesis sweep) are marked ``slow``. The fast lane
is ``python -m pytest -m "not functional and not slow"``; CI runs everything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).parent / "snapshots"
REPO_ROOT = Path(__file__).resolve().parent.parent


_ISOLATED = ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME")
HOME_PREFIX = "attn-doctor-tests-home-"
_saved_environ: dict[str, str | None] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Point HOME, XDG_CACHE_HOME, XDG_CONFIG_HOME and XDG_DATA_HOME at an empty folder for
    the whole run, from before collection (a parametrize list that calls ``Path.home()`` is
    evaluated then) to the end.

    The tool keeps a bench cache, an import-check cache and an install journal under the
    user's cache; a test that read the real one would pass or fail by what the machine's
    owner ran before. Child processes inherit the same variables.
    """
    home = Path(tempfile.mkdtemp(prefix=HOME_PREFIX))
    _saved_environ.update({k: os.environ.get(k) for k in _ISOLATED})
    os.environ["HOME"] = str(home)
    os.environ["XDG_CACHE_HOME"] = str(home / ".cache")
    os.environ["XDG_CONFIG_HOME"] = str(home / ".config")
    os.environ["XDG_DATA_HOME"] = str(home / ".local" / "share")


@pytest.fixture(autouse=True, scope="session")
def _no_terminal_size() -> None:
    """No COLUMNS or LINES in the children's environment: human output to a pipe is as wide
    as COLUMNS says, and GNU readline, once something in the test process imports it,
    exports COLUMNS=80 behind ``os.environ``'s back. A test that wants a width sets it."""
    for key in ("COLUMNS", "LINES"):
        os.environ.pop(key, None)
        os.unsetenv(key)


def pytest_unconfigure(config: pytest.Config) -> None:
    home = os.environ.get("HOME", "")
    if Path(home).name.startswith(HOME_PREFIX):
        shutil.rmtree(home, ignore_errors=True)
    for key, value in _saved_environ.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


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


_FUNCTIONAL_DIRS = (REPO_ROOT / "tests" / "functional", REPO_ROOT / "tests" / "integration")


def _is_functional(item: pytest.Item) -> bool:
    """In tests/functional or tests/integration, or marked ``functional`` (a test that
    starts a process in a file of mostly pure ones)."""
    if item.get_closest_marker("functional"):
        return True
    path = Path(str(item.path)).resolve()
    return any(path.is_relative_to(folder) for folder in _FUNCTIONAL_DIRS)


class ProcessInUnitTest(RuntimeError):
    """A unit test tried to start a process."""


@pytest.fixture(autouse=True)
def no_subprocess(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests cannot start processes (the cibuildwheel and pip habit): processes belong to
    the functional lane, where their cost is expected. ``subprocess`` and ``asyncio`` go
    through ``subprocess.Popen``; ``multiprocessing`` and ``os.system`` through the ``os``
    calls patched here."""
    if _is_functional(request.node):
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise ProcessInUnitTest(
            f"{request.node.nodeid} started a process; unit tests are pure and in-process. "
            "Move it to tests/functional/ (or give the code a runner to pass in)."
        )

    class _NoPopen:
        def __class_getitem__(cls, item: object) -> type[_NoPopen]:
            return cls

        def __init__(self, *args: object, **kwargs: object) -> None:
            refuse()

    monkeypatch.setattr(subprocess, "Popen", _NoPopen)
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    functional = pytest.mark.functional
    for item in items:
        if _is_functional(item):
            item.add_marker(functional)
    if any(item.get_closest_marker("gpu") for item in items) and not _has_cuda():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if item.get_closest_marker("gpu"):
                item.add_marker(skip)
