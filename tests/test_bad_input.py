"""Bad input, as a newcomer gives it: one line naming the input and what is wrong, exit 2,
no traceback (unless ``--debug``), nothing changed."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from attn_doctor import cli
from attn_doctor.errors import ExitCode
from attn_doctor.install.journal import Journal, journal_path, write_journal
from attn_doctor.install.state import EnvState

from .conftest import REPO_ROOT, SNAPSHOTS
from .notorch import run_without_torch


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}  # HOME and XDG_* are the suite's isolated ones
    env.pop("FORCE_COLOR", None)
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-m", "attn_doctor", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        check=False,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def assert_clean_usage_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, the error on one line of stderr (a hint line may follow), no traceback."""
    assert proc.returncode == ExitCode.USAGE, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines, "no error message"
    assert lines[0].startswith("attn-doctor: error: ")
    assert all(line.startswith(("  hint: ", "   ")) for line in lines[1:])
    for needle in needles:
        assert needle in lines[0]


# --- snapshots --------------------------------------------------------------------------


@pytest.fixture
def h100() -> dict[str, object]:
    data = json.loads((SNAPSHOTS / "h100-linux-recent-torch.json").read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.functional
def test_binary_snapshot_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "photo.json"
    bad.write_bytes(bytes(range(256)) * 8)
    proc = run("check", "--snapshot", str(bad))
    assert_clean_usage_error(proc, str(bad), "not a text file")
    proc = run("explain", "--snapshot", str(bad), "CUDA error: no kernel image")
    assert_clean_usage_error(proc, str(bad), "not a text file")


@pytest.mark.functional
def test_deeply_nested_snapshot_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "nested.json"
    bad.write_text("[" * 100_000)
    assert_clean_usage_error(run("check", "--snapshot", str(bad)), str(bad), "nested too deeply")


@pytest.mark.functional
def test_huge_snapshot_is_refused_without_being_read(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as fh:  # sparse: 200 MB that cost no disk
        fh.truncate(200_000_000)
    start = time.monotonic()
    proc = run("check", "--snapshot", str(big))
    assert_clean_usage_error(proc, str(big), "larger than 8 MiB")
    assert time.monotonic() - start < 30  # the whole file would take far longer to parse


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("host", "ram_total_bytes", "-5", "snapshot.host.ram_total_bytes: -5 is out of range"),
        ("host", "cpu_count", "0", "snapshot.host.cpu_count: 0 is out of range"),
        ("host", "wsl", "7", "snapshot.host.wsl: 7 is out of range"),
        ("torch_runtime", "seconds", "1e999", "torch_runtime.seconds: inf is out of range"),
    ],
    ids=["negative-ram", "no-cpus", "wsl-7", "infinite-ram"],
)
@pytest.mark.functional
def test_snapshot_numbers_out_of_range_are_refused(
    tmp_path: Path, h100: dict[str, object], section: str, key: str, value: str, message: str
) -> None:
    part = h100.get(section) or {}
    assert isinstance(part, dict)
    part[key] = "@VALUE@"
    h100[section] = part
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(h100).replace('"@VALUE@"', value))  # 1e999: valid JSON, inf
    assert_clean_usage_error(run("check", "--snapshot", str(bad)), message)


@pytest.mark.functional
def test_save_snapshot_where_it_cannot_be_written_is_exit_2(tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "me.json"
    proc = run("check", "--save-snapshot", str(target))
    assert_clean_usage_error(proc, f"--save-snapshot {target}", "No such file or directory")
    assert proc.stdout == ""  # refused before the report, not after it


# --- install ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("python", "why"),
    [
        ("/bin/true", "it printed nothing"),
        ("/nonexistent/python", "No such file or directory"),
        ("/etc/passwd", "Permission denied"),
        ("/bin/sleep", "it exited 1"),
    ],
    ids=["true", "absent", "not-executable", "sleep"],
)
@pytest.mark.functional
def test_install_with_a_python_that_is_not_one_is_exit_2(python: str, why: str) -> None:
    if not Path(python).exists() and python != "/nonexistent/python":
        pytest.skip(f"{python} is not on this system")
    proc = run("install", "xformers", "--python", python, "--dry-run")
    assert_clean_usage_error(proc, f"--python {python}", "not a working Python", why)
    rollback = run("install", "--rollback", "--python", python)
    assert_clean_usage_error(rollback, f"--python {python}")


@pytest.mark.functional
def test_install_backend_and_auto_says_not_both() -> None:
    proc = run("install", "--auto", "xformers")
    assert_clean_usage_error(proc, "a backend (xformers) or --auto, not both")


@pytest.fixture
def bare_venv(tmp_path: Path) -> Path:
    """A venv without pip: only its prefix matters (where the journal lives)."""
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True
    )
    return venv


@pytest.mark.functional
def test_binary_journal_then_rollback_is_exit_2(bare_venv: Path) -> None:
    journal_path(bare_venv).write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff" * 50)
    proc = run("install", "--rollback", "--python", str(bare_venv / "bin" / "python"))
    assert_clean_usage_error(proc, str(journal_path(bare_venv)), "unreadable")
    assert journal_path(bare_venv).exists()  # nothing deleted: the user decides


@pytest.mark.functional
def test_leftover_journal_refuses_before_the_plan(bare_venv: Path) -> None:
    py = str(bare_venv / "bin" / "python")
    prior = EnvState(python=py, prefix=str(bare_venv), purelib="", distributions=())
    write_journal(
        bare_venv,
        Journal(pid=1, started_at="2026-11-29T10:00:00+00:00", step="installing",
                backend="xformers", requirement="xformers==0.0.33", prior=prior),
    )  # fmt: skip
    proc = run("install", "xformers", "--python", py, "--dry-run")
    assert_clean_usage_error(proc, "interrupted at step 'installing'")
    assert "Plan:" not in proc.stdout
    assert proc.stdout == ""


# --- torch-less environments -----------------------------------------------------------


@pytest.mark.functional
def test_verify_without_torch_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = run_without_torch(tmp_path, "verify")
    assert_clean_usage_error(proc, "torch is not installed")
    assert "FAILED" not in proc.stdout
    assert "install torch" in proc.stderr.lower()
    doc = json.loads(run_without_torch(tmp_path, "verify", "--json").stdout)
    assert doc["exit_code"] == ExitCode.USAGE
    assert doc["result"] is None or "backends" not in doc["result"]


@pytest.mark.functional
def test_install_auto_without_torch_says_install_torch_first(tmp_path: Path) -> None:
    """Not bad input but a blocked machine: exit 1 (``blocked``), one line and the command."""
    proc = run_without_torch(tmp_path, "install", "--auto", "--dry-run")
    assert proc.returncode == ExitCode.PROBLEMS, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("attn-doctor: error: ")
    assert "install torch first" in lines[0]
    # check's no-torch fix, CPU here, for the interpreter it is about
    # on its own line, never inside prose, then the command to run again
    assert "  hint: install torch, then run --auto again:" in lines
    cmd = f"{shlex.quote(sys.executable)} -m pip install torch"
    assert any(line.startswith(f"    {cmd}") for line in lines), proc.stderr
    assert any(line.startswith("    attn-doctor install --auto") for line in lines)
    doc = json.loads(run_without_torch(tmp_path, "install", "--auto", "--json").stdout)
    assert doc["error"]["code"] == "blocked"


# --- the command line itself ------------------------------------------------------------


@pytest.mark.functional
def test_bare_command_prints_help_without_error() -> None:
    proc = run()
    assert proc.returncode == 0
    assert proc.stderr == ""
    assert "error:" not in proc.stdout.lower()
    assert "Usage: attn-doctor" in proc.stdout
    assert "check" in proc.stdout


@click.command("boom")
def _boom_command() -> None:
    raise RuntimeError("a bug\nspanning lines")


@pytest.fixture
def boom(monkeypatch: pytest.MonkeyPatch) -> None:
    """A subcommand with a bug in it (the only way to reach the internal-error path)."""
    monkeypatch.setitem(cli.COMMANDS, "boom", f"{__name__}:_boom_command")


@pytest.mark.usefixtures("boom")
def test_a_bug_is_one_line_and_the_traceback_needs_debug(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["boom"])
    assert exit_info.value.code == ExitCode.INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "internal error: RuntimeError: a bug spanning lines" in err.splitlines()[0]
    assert "--debug" in err
    with pytest.raises(SystemExit):
        cli.main(["--debug", "boom"])
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "RuntimeError: a bug" in err


def test_debug_shows_the_traceback_of_a_usage_error_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(SystemExit):
        cli.main(["check", "--snapshot", str(bad)])
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--debug", "check", "--snapshot", str(bad)])
    assert exit_info.value.code == ExitCode.USAGE
    assert "Traceback" in capsys.readouterr().err
