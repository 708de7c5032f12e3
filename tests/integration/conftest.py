"""Integration fixtures: a throw-away venv with a fake CUDA torch, and a local wheelhouse."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.integration.wheels import build_fake_ecosystem

REPO_ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def venv_python(venv: Path) -> Path:
    if sys.platform == "win32":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def isolated_env() -> dict[str, str]:
    """This process's environment without any pip configuration (files or PIP_* variables).

    The tests must see only their own wheelhouse: a machine-wide find-links directory or
    constraints file would change what pip resolves.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.pop("FORCE_COLOR", None)
    return env


def pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
        capture_output=True,
        text=True,
        check=True,
        env=isolated_env(),
    )


def freeze(python: Path) -> str:
    return pip(python, "freeze", "--all").stdout


def _unpack_bundled_pip(python: Path) -> None:
    """Put pip (and setuptools) into a venv by unpacking the wheels ensurepip bundles.

    Both are pure Python: the same result as ``ensurepip`` (real installs, with their RECORD
    files) in a fraction of the time.
    """
    import ensurepip
    import zipfile

    wheels = sorted((Path(ensurepip.__file__).parent / "_bundled").glob("*.whl"))
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(purelib)


@pytest.fixture(scope="session")
def wheelhouses(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("wheels")
    wheelhouse, preinstall = root / "wheelhouse", root / "preinstall"
    build_fake_ecosystem(wheelhouse, preinstall)
    return wheelhouse, preinstall


@pytest.fixture(scope="session")
def wheelhouse(wheelhouses: tuple[Path, Path]) -> Path:
    return wheelhouses[0]


@pytest.fixture(scope="session")
def base_venv(tmp_path_factory: pytest.TempPathFactory, wheelhouses: tuple[Path, Path]) -> Path:
    """A venv (with pip, without system site-packages) holding torch 2.8.0+cu128."""
    wheelhouse, preinstall = wheelhouses
    venv = tmp_path_factory.mktemp("venvs") / "base"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True
    )
    py = venv_python(venv)
    _unpack_bundled_pip(py)
    pip(
        py,
        "install",
        "--no-index",
        "--find-links",
        str(wheelhouse),
        "--find-links",
        str(preinstall),
        "torch==2.8.0+cu128",
        "einops==0.7.0",
    )
    return venv


@pytest.fixture
def venv(base_venv: Path, tmp_path: Path) -> Path:
    """A fresh copy of the base venv for one test (copying is far faster than creating)."""
    dest = tmp_path / "venv"
    shutil.copytree(base_venv, dest, symlinks=True)
    return dest


def run_cli(args: Sequence[str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m attn_doctor ARGS`` from the source tree, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "attn_doctor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env=isolated_env(),
        stdin=subprocess.DEVNULL,
        check=False,
    )
