"""The built wheel ships the data and the schemas, and works from outside the source tree."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, isolated_home_env

# Every test here starts processes: the functional lane (see tests/conftest.py).
pytestmark = pytest.mark.functional


@pytest.mark.slow
def test_wheel_ships_the_index_and_the_schemas(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO_ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("attn_doctor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {Path(n).name for n in names if n.startswith("attn_doctor/wheels_index/")}
    assert shipped == {p.name for p in (REPO_ROOT / "wheels_index").glob("*.toml")}
    assert "attn_doctor/schemas/check.schema.json" in names
    assert not any("__pycache__" in n or n.startswith("tests/") for n in names)
    # From the unpacked wheel (no repository around it), the data directory is found.
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = "import attn_doctor.datafiles as d; print(d.index_dir())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", **isolated_home_env()},
    )
    assert Path(out.stdout.strip()) == target / "attn_doctor" / "wheels_index"
