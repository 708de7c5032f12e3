"""Answers that scripts can use: a closed pipe, a saved ``check --json`` as a snapshot, a fleet
folder with a truncated file, Ctrl-C during ``check --deep``. Real processes, real pipes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attn_doctor.errors import ExitCode
from tests.conftest import REPO_ROOT, SNAPSHOTS

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes and signals")
CLI = [sys.executable, "-m", "attn_doctor"]


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", **extra}
    env.pop("FORCE_COLOR", None)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p
    )
    return env


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=_env(),
        check=False,
        timeout=300,
    )


def _closed_early(*args: str) -> tuple[int, str]:
    """Run with stdout on a pipe whose reader has already gone: every write meets EPIPE."""
    proc = subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO_ROOT,
        env=_env(),
    )
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err.decode()


CASES = [
    pytest.param(("check", "--snapshot", str(SNAPSHOTS / "h200-real.json")), id="check"),
    pytest.param(("check", "--snapshot", str(SNAPSHOTS / "driver-too-old.json")), id="check-1"),
    pytest.param(("check", "--json", "--snapshot", str(SNAPSHOTS / "t4-colab.json")), id="json"),
    pytest.param(("explain", "No module named 'flash_attn'"), id="explain"),
]


@posix_only
@pytest.mark.parametrize("args", CASES)
def test_a_closed_pipe_exits_quietly_with_the_commands_own_code(args: tuple[str, ...]) -> None:
    full = _run(*args)
    assert full.returncode in (ExitCode.OK, ExitCode.PROBLEMS), full.stderr
    code, err = _closed_early(*args)
    assert code == full.returncode
    assert "Traceback" not in err
    assert "BrokenPipe" not in err
    assert "error" not in err


@posix_only
@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("head") is None, reason="bash")
def test_check_piped_to_head_exits_as_check_does() -> None:
    """The shell form: `check | head -1`, the pipeline's first status."""
    snapshot = SNAPSHOTS / "h200-real.json"
    script = (
        f"{sys.executable} -m attn_doctor check --snapshot {snapshot} | head -1; "
        'exit "${PIPESTATUS[0]}"'
    )
    piped = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=_env(),
        check=False,
        timeout=300,
    )
    assert piped.returncode == _run("check", "--snapshot", str(snapshot)).returncode
    assert len(piped.stdout.splitlines()) == 1
    assert "Traceback" not in piped.stderr


def test_check_reads_a_saved_check_json_document(tmp_path: Path) -> None:
    saved = _run("check", "--json", "--snapshot", str(SNAPSHOTS / "h200-real.json"))
    document = tmp_path / "node.json"
    document.write_text(saved.stdout)
    again = _run("check", "--json", "--snapshot", str(document))
    assert again.returncode == saved.returncode, again.stderr
    first, second = json.loads(saved.stdout), json.loads(again.stdout)
    assert second["result"]["environment"] == first["result"]["environment"]
    assert second["result"]["diagnosis"] == first["result"]["diagnosis"]
    human = _run("check", "--snapshot", str(document))
    assert human.returncode == saved.returncode
    assert "H200" in human.stdout
    other = tmp_path / "fleet.json"
    other.write_text(json.dumps({**first, "command": "fleet"}))
    refused = _run("check", "--snapshot", str(other))
    assert refused.returncode == ExitCode.USAGE
    assert "`fleet` document" in refused.stderr
    cut = tmp_path / "cut.json"
    cut.write_text(saved.stdout[: len(saved.stdout) // 3])
    truncated = _run("check", "--snapshot", str(cut))
    assert truncated.returncode == ExitCode.USAGE
    assert f"--snapshot {cut}: truncated" in truncated.stderr


def test_fleet_reports_every_readable_node_and_names_the_truncated_file(tmp_path: Path) -> None:
    for name in ("a100-linux", "h200-real"):
        shutil.copy(SNAPSHOTS / f"{name}.json", tmp_path / f"{name}.json")
    whole = (SNAPSHOTS / "t4-colab.json").read_text()
    truncated = tmp_path / "t4-colab.json"
    truncated.write_text(whole[: len(whole) // 2])
    human = _run("fleet", str(tmp_path))
    assert human.returncode == ExitCode.INCOMPLETE, human.stderr
    assert "a100-linux" in human.stdout
    assert "h200-real" in human.stdout
    assert str(truncated) in human.stdout
    assert "truncated" in human.stdout
    doc = json.loads(_run("fleet", "--json", str(tmp_path)).stdout)
    assert doc["exit_code"] == ExitCode.INCOMPLETE
    assert doc["result"]["nodes"] == 2
    (bad,) = doc["result"]["unreadable"]
    assert bad["source"] == str(truncated)
    assert bad["error"].startswith("truncated")


HANGING = """\
import os, time
with open(os.environ["ATTN_DOCTOR_TEST_MARK"], "a") as fh:
    fh.write(f"{os.getpid()}\\n")
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is gone for our purpose: it runs nothing any more.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and ") Z " in stat.read_text())


@posix_only
def test_ctrl_c_during_deep_ends_the_hanging_imports(tmp_path: Path) -> None:
    """A package whose import hangs; Ctrl-C ends its child, says so, and exits 130."""
    site = tmp_path / "site"
    (site / "xformers").mkdir(parents=True)
    (site / "xformers" / "__init__.py").write_text(HANGING)
    dist = site / "xformers-0.0.99.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: xformers\nVersion: 0.0.99\n")
    mark = tmp_path / "pids"
    env = _env(ATTN_DOCTOR_TEST_MARK=str(mark))
    env["PYTHONPATH"] = os.pathsep.join((str(site), env["PYTHONPATH"]))
    proc = subprocess.Popen(
        [*CLI, "check", "--deep", "--timeout", "300"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO_ROOT,
        env=env,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not (mark.exists() and mark.read_text().strip()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the hanging import never started"
            time.sleep(0.1)
        children = [int(line) for line in mark.read_text().split()]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "interrupted" in err
    assert "child process" in err
    assert "Traceback" not in err
    deadline = time.monotonic() + 30  # generous: the children were killed before the exit
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in children)


def test_children_run_again_after_an_interruption_in_this_process() -> None:
    """A caught Ctrl-C (a notebook, a test) must not leave the process unable to start the
    next child."""
    from concurrent.futures import ThreadPoolExecutor

    from attn_doctor.probe.runner import children_end_on_interrupt, run_isolated

    with (
        pytest.raises(KeyboardInterrupt),
        ThreadPoolExecutor(max_workers=1) as pool,
        children_end_on_interrupt(pool),
    ):
        raise KeyboardInterrupt
    ran = run_isolated([sys.executable, "-c", "print(42)"], timeout=60, env=dict(os.environ))
    assert ran.start_error is None
    assert ran.stdout.strip() == "42"


HANGING_TOOL = """#!/bin/sh
echo $$ >> "$ATTN_DOCTOR_TEST_MARK"
sleep 600
"""


@posix_only
def test_ctrl_c_ends_a_hanging_probe_tool_within_2_s(tmp_path: Path) -> None:
    """A wedged driver hangs nvidia-smi; Ctrl-C ends it (its process group) and the run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("nvidia-smi", "nvcc"):
        tool = bin_dir / name
        tool.write_text(HANGING_TOOL)
        tool.chmod(0o755)
    mark = tmp_path / "pids"
    env = _env(ATTN_DOCTOR_TEST_MARK=str(mark))
    env["PATH"] = os.pathsep.join((str(bin_dir), env.get("PATH", "")))
    proc = subprocess.Popen(
        [*CLI, "check", "--timeout", "300"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO_ROOT,
        env=env,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (mark.exists() and mark.read_text().strip()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the hanging tool never started"
            time.sleep(0.05)
        tools = [int(line) for line in mark.read_text().split()]
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "Traceback" not in err
    assert took < 2.0, f"Ctrl-C took {took:.1f} s"
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in tools) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in tools)
