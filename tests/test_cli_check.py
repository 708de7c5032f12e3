"""`attn-doctor check` end to end, as a user and a provisioning script run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from attn_doctor.errors import ExitCode

from .conftest import REPO_ROOT, SNAPSHOTS

# Every test here starts processes: the functional lane (see tests/conftest.py).
pytestmark = pytest.mark.functional

SCHEMA = json.loads((REPO_ROOT / "attn_doctor" / "schemas" / "check.schema.json").read_text())


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    full_env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [sys.executable, "-m", "attn_doctor", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=full_env,
        check=False,
        timeout=300,
    )


def envelope(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    doc = json.loads(proc.stdout)  # stdout holds one JSON document and nothing else
    jsonschema.validate(doc, SCHEMA)
    assert doc["exit_code"] == proc.returncode
    return doc


@pytest.mark.parametrize(
    ("snapshot", "code", "finding"),
    [
        ("h100-linux-recent-torch", ExitCode.OK, None),
        ("cpu-torch-on-gpu-box", ExitCode.PROBLEMS, "cpu-torch-on-nvidia-gpu"),
        ("driver-too-old", ExitCode.PROBLEMS, "driver-too-old-for-torch"),
        ("broken-flash-attn-undefined-symbol", ExitCode.PROBLEMS, "flash-attn-abi-mismatch"),
        ("t4-colab", ExitCode.OK, "gpu-unsupported-by-backend"),
    ],
    ids=["healthy-h100", "cpu-torch", "old-driver", "abi-mismatch", "t4-warning"],
)
def test_json_on_snapshots(snapshot: str, code: ExitCode, finding: str | None) -> None:
    proc = run("check", "--json", "--snapshot", str(SNAPSHOTS / f"{snapshot}.json"))
    assert proc.returncode == code, proc.stderr
    doc = envelope(proc)
    assert doc["command"] == "check"
    assert doc["ok"] is (code == ExitCode.OK)
    result = doc["result"]
    assert isinstance(result, dict)
    ids = {f["id"] for f in result["diagnosis"]["findings"]}
    if finding is not None:
        assert finding in ids
    assert result["diagnosis"]["recommendations"], "a ranked recommendation is always given"


def test_strict_fails_on_warnings() -> None:
    path = str(SNAPSHOTS / "t4-colab.json")
    assert run("check", "--snapshot", path).returncode == ExitCode.OK
    assert run("check", "--snapshot", path, "--strict").returncode == ExitCode.PROBLEMS


def test_human_view_shows_fix_and_recommendation() -> None:
    proc = run("check", "--snapshot", str(SNAPSHOTS / "cpu-torch-on-gpu-box.json"))
    assert proc.returncode == ExitCode.PROBLEMS
    out = proc.stdout
    assert "cpu-torch-on-nvidia-gpu" in out
    assert "fix:" in out
    assert "download.pytorch.org/whl/cu" in out
    assert "Ranked on GPU 0, best first" in out
    assert "\x1b[" not in out  # NO_COLOR is honoured


def test_this_machine_json_and_no_torch_import(tmp_path: Path) -> None:
    saved = tmp_path / "me.json"
    proc = run("check", "--json", "--save-snapshot", str(saved))
    assert proc.returncode in (ExitCode.OK, ExitCode.PROBLEMS), proc.stderr
    doc = envelope(proc)
    result = doc["result"]
    assert isinstance(result, dict)
    assert result["environment"]["python"]["version"].startswith(
        ".".join(map(str, sys.version_info[:2]))
    )
    # The saved snapshot diagnoses the same way on "another machine".
    again = run("check", "--json", "--snapshot", str(saved))
    again_result = envelope(again)["result"]
    assert isinstance(again_result, dict)
    assert again_result["diagnosis"] == result["diagnosis"]


def test_check_does_not_import_torch_in_process() -> None:
    code = (
        "import sys\n"
        "from attn_doctor.cli import main\n"
        "try:\n"
        "    main(['check', '--json'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "mods = ('torch', 'transformers', 'xformers', 'flash_attn')\n"
        "heavy = [m for m in mods if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=False
    )
    assert "HEAVY=" in proc.stderr
    assert proc.stderr.rsplit("HEAVY=", 1)[1].strip() == ""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"schema_version": 99, "host": {}, "python": {}}', "newer than this attn-doctor"),
        (
            '{"schema_version": 1, "host": {"os": "linux"}, '
            '"python": {"version": 3.11, "implementation": "cpython"}}',
            "python.version: expected a string",
        ),
    ],
    ids=["not-json", "future-version", "bad-field"],
)
def test_bad_snapshot_is_a_usage_error(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    proc = run("check", "--snapshot", str(bad))
    assert proc.returncode == ExitCode.USAGE
    assert message in proc.stderr
    assert proc.stdout == ""
    doc = envelope(run("check", "--json", "--snapshot", str(bad)))
    assert doc["exit_code"] == ExitCode.USAGE
    error = doc["error"]
    assert isinstance(error, dict)
    assert error["code"] == "bad-snapshot"
    assert message in error["message"]


def test_missing_snapshot_file(tmp_path: Path) -> None:
    proc = run("check", "--snapshot", str(tmp_path / "absent.json"))
    assert proc.returncode == ExitCode.USAGE
    assert "cannot read snapshot" in proc.stderr


def test_unknown_option_is_usage_error() -> None:
    proc = run("check", "--no-such-option")
    assert proc.returncode == ExitCode.USAGE
    assert "no such option" in proc.stderr.lower()


@pytest.mark.slow
def test_check_verify_proves_the_usable_backends_on_this_machine() -> None:
    proc = run("check", "--verify", "--json")
    assert proc.returncode in (ExitCode.OK, ExitCode.PROBLEMS), proc.stderr
    result = envelope(proc)["result"]
    assert isinstance(result, dict)
    verification = result["verification"]
    usable = {b["backend"] for b in result["diagnosis"]["backends"] if b["usable"]}
    verified = {v["backend"] for v in verification["backends"]}
    assert usable <= verified  # every backend check calls usable was launched
    assert verification["ok"] is True
    for verdict in verification["backends"]:
        assert verdict["passed"] is True, verdict["failure"]


def test_verify_with_a_snapshot_is_a_usage_error() -> None:
    proc = run("check", "--verify", "--snapshot", str(SNAPSHOTS / "a100-linux.json"))
    assert proc.returncode == ExitCode.USAGE
