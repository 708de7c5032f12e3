"""The child-process import check and its on-disk cache, with real child interpreters."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from attn_doctor.loadtime import importcheck
from tests.conftest import REPO_ROOT
from tests.runtime_helpers import SEGFAULT, clean_environ, plant, set_version

COUNTING = (
    "import os, pathlib\n"
    "p = pathlib.Path(os.environ['MARKER'])\n"
    "p.write_text(p.read_text() + 'x' if p.exists() else 'x')\n"
)
"""Appends one character to $MARKER per import: counts how often a child really imported."""


def _imports(marker: Path) -> int:
    return len(marker.read_text()) if marker.exists() else 0


@pytest.mark.functional
def test_ok_error_crash_and_timeout(tmp_path: Path) -> None:
    site = tmp_path / "site"
    plant(site, "good_pkg", dist=None)
    plant(site, "bad_pkg", dist=None, body="raise ImportError('undefined symbol: _ZN3c10')\n")
    plant(site, "crash_pkg", dist=None, body=SEGFAULT)
    plant(site, "slow_pkg", dist=None, body="import time\ntime.sleep(30)\n")
    env = clean_environ(tmp_path / "cache", site)

    ok = importcheck.import_in_child("good_pkg", timeout=60, environ=env)
    assert ok.status == "ok"
    bad = importcheck.import_in_child("bad_pkg", timeout=60, environ=env)
    assert bad.status == "error"
    assert bad.detail == "ImportError: undefined symbol: _ZN3c10"
    crash = importcheck.import_in_child("crash_pkg", timeout=60, environ=env)
    assert crash.status == "crashed"
    assert crash.detail == "SIGSEGV"
    slow = importcheck.import_in_child("slow_pkg", timeout=1, environ=env)
    assert slow.status == "timeout"
    missing = importcheck.import_in_child("no_such_pkg_here", timeout=60, environ=env)
    assert missing.status == "error"
    assert "ModuleNotFoundError" in (missing.detail or "")
    assert "crash_pkg" not in sys.modules


@pytest.mark.functional
def test_cache_hit_and_invalidation_on_version_change(tmp_path: Path) -> None:
    site = tmp_path / "site"
    plant(site, "counted", dist="counted-dist", version="1.0", body=COUNTING)
    marker = tmp_path / "marker"
    env = clean_environ(tmp_path / "cache", site, MARKER=str(marker))

    first = importcheck.check_import("counted", distributions=["counted-dist"], environ=env)
    assert (first.result.status, first.cached, _imports(marker)) == ("ok", False, 1)
    second = importcheck.check_import("counted", distributions=["counted-dist"], environ=env)
    assert (second.cached, second.key, _imports(marker)) == (True, first.key, 1)

    cache_file = tmp_path / "cache" / "attn-doctor" / "imports.json"
    entry = json.loads(cache_file.read_text())["entries"][first.key]
    assert entry["key"]["versions"]["counted-dist"] == "1.0"
    assert entry["key"]["module"] == "counted"
    assert entry["key"]["python"] == sys.executable

    set_version(site, "counted-dist", "1.1")  # the backend was upgraded
    third = importcheck.check_import("counted", distributions=["counted-dist"], environ=env)
    assert (third.cached, _imports(marker)) == (False, 2)
    assert third.key != first.key


@pytest.mark.functional
def test_cache_invalidated_when_torch_changes(tmp_path: Path) -> None:
    site = tmp_path / "site"
    shadow = tmp_path / "shadow"  # earlier on the path: its torch metadata wins
    shadow.mkdir()
    plant(site, "counted", dist=None, body=COUNTING)
    marker = tmp_path / "marker"
    env = clean_environ(tmp_path / "cache", shadow, site, MARKER=str(marker))

    before = importcheck.check_import("counted", environ=env)
    set_version(shadow, "torch", "99.0.0+cu999")
    after = importcheck.check_import("counted", environ=env)
    assert after.key != before.key
    assert (after.cached, _imports(marker)) == (False, 2)
    key = importcheck.cache_key("counted", environ=env)
    assert key["versions"]["torch"] == "99.0.0+cu999"


@pytest.mark.functional
def test_cache_invalidated_when_module_file_changes(tmp_path: Path) -> None:
    site = tmp_path / "site"
    init = plant(site, "counted", dist=None, body=COUNTING) / "__init__.py"
    marker = tmp_path / "marker"
    env = clean_environ(tmp_path / "cache", site, MARKER=str(marker))
    importcheck.check_import("counted", environ=env)
    stat = init.stat()
    import os

    os.utime(init, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000_000))
    again = importcheck.check_import("counted", environ=env)
    assert (again.cached, _imports(marker)) == (False, 2)


@pytest.mark.functional
def test_crash_is_cached_timeout_is_not(tmp_path: Path) -> None:
    site = tmp_path / "site"
    plant(site, "crash_pkg", dist=None, body=SEGFAULT)
    plant(site, "slow_pkg", dist=None, body="import time\ntime.sleep(30)\n")
    env = clean_environ(tmp_path / "cache", site)
    importcheck.check_import("crash_pkg", environ=env)
    cached = importcheck.check_import("crash_pkg", environ=env)
    assert cached.cached
    assert cached.result.status == "crashed"
    importcheck.check_import("slow_pkg", environ=env, timeout=1)
    assert not importcheck.check_import("slow_pkg", environ=env, timeout=1).cached


@pytest.mark.functional
def test_processes_starting_together_check_once(tmp_path: Path) -> None:
    """Like the ranks of a distributed job that all load the model at once."""
    import subprocess

    site = tmp_path / "site"
    plant(site, "counted", dist=None, body=COUNTING + "import time\ntime.sleep(1)\n")
    marker = tmp_path / "marker"
    env = clean_environ(tmp_path / "cache", site, MARKER=str(marker))
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from attn_doctor.loadtime.importcheck import check_import\n"
        "print(check_import('counted').result.status)\n"
    )
    env["PYTHONPATH"] = f"{site}"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert outputs == ["ok"] * 4
    assert _imports(marker) == 1


@pytest.mark.functional
def test_unreadable_cache_is_ignored(tmp_path: Path) -> None:
    site = tmp_path / "site"
    plant(site, "good_pkg", dist=None)
    env = clean_environ(tmp_path / "cache", site)
    cache_file = tmp_path / "cache" / "attn-doctor" / "imports.json"
    cache_file.parent.mkdir(parents=True)
    cache_file.write_text("{not json")
    checked = importcheck.check_import("good_pkg", environ=env)
    assert checked.result.status == "ok"
    assert json.loads(cache_file.read_text())["schema"] == importcheck.CACHE_SCHEMA


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),  # ~/.cache/attn-doctor, with the suite's own HOME (read at run time)
        ({"XDG_CACHE_HOME": "/x"}, Path("/x/attn-doctor")),
    ],
    ids=["default", "xdg"],
)
def test_cache_dir(environ: dict[str, str], expected: Path | None) -> None:
    want = expected if expected is not None else Path.home() / ".cache" / "attn-doctor"
    assert importcheck.cache_dir(environ) == want
