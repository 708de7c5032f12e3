"""verify never claims more than it ran (issue 20): real runs of ``python -m attn_doctor``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "attn_doctor", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )


def _no_cuda() -> bool:
    torch = pytest.importorskip("torch")
    return not torch.cuda.is_available()


def test_named_backends_that_cannot_run_here_fail() -> None:
    if not _no_cuda():
        pytest.skip("a CUDA device is here: fa2 and xformers may run")
    proc = _run("verify", "fa2", "xformers", "--no-model", "--json")
    assert proc.returncode == 1, proc.stderr
    envelope = json.loads(proc.stdout)
    assert envelope["ok"] is False
    result = envelope["result"]
    assert result["verified"] == 0
    for verdict in result["backends"]:
        assert verdict["passed"] is None
        assert verdict["requested"] is True
        assert verdict["from_record"] is True  # judged without a child
        assert verdict["failure"]
    assert "not verified: flash_attn_2" in result["summary"]


def test_device_cuda_without_cuda_is_a_clear_error() -> None:
    if not _no_cuda():
        pytest.skip("a CUDA device is here")
    proc = _run("verify", "sdpa", "--device", "cuda", "--no-model", "--json")
    assert proc.returncode == 2, proc.stderr
    envelope = json.loads(proc.stdout)
    assert envelope["ok"] is False
    assert envelope["error"]["code"] == "usage"
    assert envelope["error"]["message"].startswith("--device cuda: torch ")


def test_sdpa_without_transformers_verifies_its_kernel(tmp_path: Path) -> None:
    """The model step that cannot run is "not run, because ...", not a failure.

    A ``transformers`` package that raises ``ModuleNotFoundError`` on import, first on the
    path, stands for an environment without transformers (the README's check-only venv) in
    the model child, which imports it for real.
    """
    pytest.importorskip("torch")
    plant = tmp_path / "transformers"
    plant.mkdir()
    (plant / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'transformers'\", name='transformers')\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(tmp_path), str(REPO_ROOT), env.get("PYTHONPATH")) if p
    )
    proc = _run("verify", "sdpa", "--device", "cpu", "--quick", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    envelope = json.loads(proc.stdout)
    assert envelope["ok"] is True
    (verdict,) = envelope["result"]["backends"]
    assert verdict["passed"] is True
    assert verdict["kernel"]["status"] == "passed"
    assert "model check not run, because transformers is not installed" in verdict["notes"]
