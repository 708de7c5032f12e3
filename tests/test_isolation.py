"""The suite never reads the user's home: a bench cache there must not change any test.

``check`` re-ranks its recommendation by the cached ``attn-doctor bench`` result for this
machine, read from ``~/.cache/attn-doctor/bench.json``. A test that read the real one would
pass or fail by what the machine's owner ran before (CI was red on a machine where bench had
run once). ``tests/conftest.py`` points HOME and XDG_* at an empty folder for the session.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from attn_doctor.bench.cache import cache_key, cache_path, save_bench_result
from tests.bench_data import result, sweep

from .conftest import HOME_PREFIX, REPO_ROOT


def _home_with_a_bench_cache(home: Path) -> list[str]:
    """A real-looking home whose bench cache ranks eager first on this CPU; returns the
    ranking it holds."""
    torch_version = importlib.metadata.version("torch")
    planted = dataclasses.replace(
        result(sweep("eager", {1024: 0.01, 4096: 0.1}), sweep("sdpa_cpu_fused", {1024: 50.0})),
        device="cpu",
        device_name="cpu",
        torch_version=torch_version,
        cache_key=cache_key(device="cpu", device_name="", torch_version=torch_version),
    )
    assert planted.recommendation is not None
    save_bench_result(planted, home / ".cache" / "attn-doctor" / "bench.json")
    return [name for name, _ in planted.recommendation.ranking]


def _ranking(env: dict[str, str]) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "attn_doctor", "check", "--json"],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, check=False, timeout=300,
    )  # fmt: skip
    doc = json.loads(proc.stdout)
    return [r["backend"] for r in doc["result"]["diagnosis"]["recommendations"]]


def _as_a_user(home: Path) -> dict[str, str]:
    """The environment of a user whose home is ``home`` (no XDG variables set)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env["HOME"] = str(home)
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def test_the_suite_runs_in_its_own_home() -> None:
    home = Path(os.environ["HOME"])
    assert cache_path().is_relative_to(home)
    assert Path.home() == home
    assert home.name.startswith(HOME_PREFIX)  # made empty for this run, not the user's
    for key in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        assert Path(os.environ[key]).is_relative_to(home)


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="the bench cache is keyed by torch"
)
@pytest.mark.functional
def test_a_bench_cache_in_the_real_home_changes_no_test(tmp_path: Path) -> None:
    real_home = tmp_path / "alice"
    planted = _home_with_a_bench_cache(real_home)
    # The cache matters: check, run as that user, re-ranks by it...
    assert planted[0] == "eager"
    assert _ranking(_as_a_user(real_home))[0] == "eager"
    # ...while the suite, started by that user, never sees it: the test that compares the
    # live check with its saved snapshot passes.
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_cli_check.py::test_this_machine_json_and_no_torch_import"],
        capture_output=True, text=True, env=_as_a_user(real_home), cwd=REPO_ROOT,
        check=False, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "1 passed" in proc.stdout
