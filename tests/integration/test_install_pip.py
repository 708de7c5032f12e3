"""Real pip in a throw-away venv, through attn-doctor's own code and its command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attn_doctor.install.journal import journal_path, read_journal
from attn_doctor.install.lock import env_lock
from attn_doctor.install.pip import run_pip
from tests.integration.conftest import (
    REPO_ROOT,
    freeze,
    isolated_env,
    run_cli,
    venv_python,
)


def _envelope(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not one JSON document:\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    assert isinstance(data, dict)
    return data


def _install(python: Path, wheelhouse: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        [
            "install",
            *extra,
            "--python",
            str(python),
            "--wheelhouse",
            str(wheelhouse),
            "--yes",
            "--json",
        ]
    )


def _site_file(venv: Path, rel: str) -> bytes:
    (path,) = venv.glob(f"lib/python*/site-packages/{rel}")
    return path.read_bytes()


def test_install_succeeds_without_moving_torch(venv: Path, wheelhouse: Path) -> None:
    py = venv_python(venv)
    proc = _install(py, wheelhouse, "flash-attn")
    env = _envelope(proc)
    assert proc.returncode == 0, proc.stderr
    assert env["ok"] is True
    result = env["result"]
    assert isinstance(result, dict)
    report = result["report"]
    assert report["check"]["status"] == "ok"
    assert report["constraints"] == ["torch==2.8.0+cu128", "triton==3.4.0"]
    assert [d["name"] for d in report["changes"]["added"]] == ["flash-attn"]
    frozen = freeze(py).splitlines()
    assert "flash-attn==2.8.3" in frozen
    assert "torch==2.8.0+cu128" in frozen
    assert "einops==0.8.1" in frozen
    assert not journal_path(venv).exists()
    assert not list((venv / ".attn-doctor" / "runs").iterdir())
    logs = list((venv / ".attn-doctor" / "logs").iterdir())
    assert len(logs) == 1
    assert "--dry-run" in logs[0].read_text()


def test_xformers_picks_the_build_for_the_installed_torch(venv: Path, wheelhouse: Path) -> None:
    py = venv_python(venv)
    proc = _install(py, wheelhouse, "xformers")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    frozen = freeze(py).splitlines()
    assert "xformers==0.0.32.post2" in frozen
    assert "torch==2.8.0+cu128" in frozen


def test_wheel_that_would_change_torch_is_refused(venv: Path, wheelhouse: Path) -> None:
    py = venv_python(venv)
    before = freeze(py)
    proc = _install(py, wheelhouse, "xformers", "--requirement", "xformers==0.0.33")
    env = _envelope(proc)
    assert proc.returncode == 4
    error = env["error"]
    assert isinstance(error, dict)
    assert error["code"] == "install-failed"
    assert "torch==2.8.0+cu128" in error["message"]
    assert "xformers 0.0.33 depends on torch==2.9.0" in error["message"]
    assert freeze(py) == before
    assert not journal_path(venv).exists()


def test_full_local_label_pin_refuses_a_cpu_torch_of_the_same_version(
    venv: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """``==2.8.0`` would let pip swap 2.8.0+cu128 for 2.8.0+cpu; ``==2.8.0+cu128`` does not."""
    py = str(venv_python(venv))
    links = ["--no-index", "--find-links", str(wheelhouse)]
    report = tmp_path / "report.json"
    loose = run_pip(
        ["install", "--dry-run", "--report", str(report), *links, "torch==2.8.0+cpu"],
        python=py,
        constraints=["torch==2.8.0"],
        env=isolated_env(),
    )
    assert loose.ok
    installs = json.loads(report.read_text())["install"]
    assert [i["metadata"]["version"] for i in installs] == ["2.8.0+cpu"]
    exact = run_pip(
        ["install", "--dry-run", *links, "torch==2.8.0+cpu"],
        python=py,
        constraints=["torch==2.8.0+cu128"],
        env=isolated_env(),
        check=False,
    )
    assert exact.returncode == 1
    assert "ResolutionImpossible" in exact.stderr


def test_failing_import_check_rolls_back_exactly(venv: Path, wheelhouse: Path) -> None:
    py = venv_python(venv)
    before = freeze(py)
    einops_before = _site_file(venv, "einops/__init__.py")
    # flash-attn 2.7.4.post1 upgrades einops 0.7.0 -> 0.8.1 (0.7.0 is in no wheelhouse:
    # only the backup can bring it back), then fails its import.
    proc = _install(py, wheelhouse, "flash-attn", "--requirement", "flash-attn==2.7.4.post1")
    env = _envelope(proc)
    assert proc.returncode == 4
    error = env["error"]
    assert isinstance(error, dict)
    assert "undefined symbol" in error["message"]
    assert "rolled back" in error["message"]
    result = env["result"]
    assert isinstance(result, dict)
    rolled = result["report"]["rolled_back"]
    assert rolled["restored"] == ["einops==0.7.0"]
    assert rolled["remaining"] == {"added": [], "removed": [], "changed": []}
    assert freeze(py) == before
    assert _site_file(venv, "einops/__init__.py") == einops_before
    assert not journal_path(venv).exists()


def test_second_install_is_refused_while_the_lock_is_held(venv: Path, wheelhouse: Path) -> None:
    py = venv_python(venv)
    before = freeze(py)
    with env_lock(venv):
        proc = _install(py, wheelhouse, "flash-attn")
    env = _envelope(proc)
    assert proc.returncode == 5
    error = env["error"]
    assert isinstance(error, dict)
    assert error["code"] == "locked"
    assert f"process {os.getpid()}" in error["message"]
    assert freeze(py) == before


def test_killed_install_is_detected_and_rolled_back(venv: Path, wheelhouse: Path) -> None:
    py = venv_python(venv)
    before = freeze(py)
    # flash-attn 2.6.3's import sleeps: kill attn-doctor (and its children) mid-check, after
    # pip has changed the environment.
    cmd = [sys.executable, "-m", "attn_doctor", "install", "flash-attn", "--requirement",
           "flash-attn==2.6.3", "--python", str(py), "--wheelhouse", str(wheelhouse), "--yes",
           "--json"]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        env=isolated_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            journal = read_journal(venv) if journal_path(venv).exists() else None
            if journal is not None and journal.step == "checking":
                break
            assert proc.poll() is None, "attn-doctor ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("the install never reached its check step")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert "flash-attn==2.6.3" in freeze(py)

    again = _install(py, wheelhouse, "flash-attn")
    env = _envelope(again)
    assert again.returncode == 2
    error = env["error"]
    assert isinstance(error, dict)
    assert "interrupted" in error["message"]
    assert "--rollback" in str(error["hint"])
    # Refused before the plan: a plan that cannot be carried out is not shown.
    people = run_cli(["install", "flash-attn", "--python", str(py), "--wheelhouse",
                      str(wheelhouse), "--dry-run"])  # fmt: skip
    assert people.returncode == 2
    assert "Plan:" not in people.stdout
    assert "interrupted" in people.stderr

    undo = run_cli(["install", "--rollback", "--python", str(py), "--json"])
    assert undo.returncode == 0, undo.stdout + undo.stderr
    rb = _envelope(undo)["result"]
    assert isinstance(rb, dict)
    assert rb["rollback"]["found"] is True
    assert rb["rollback"]["journal_step"] == "checking"
    assert freeze(py) == before
    assert not journal_path(venv).exists()


def test_dry_run_and_non_tty_without_yes_change_nothing(venv: Path, wheelhouse: Path) -> None:
    py = venv_python(venv)
    before = freeze(py)
    args = ["install", "flash-attn", "--python", str(py), "--wheelhouse", str(wheelhouse)]
    dry = run_cli([*args, "--dry-run"])
    assert dry.returncode == 0, dry.stderr
    assert "-c constraints.txt" not in dry.stdout  # a file that does not exist
    # The pins file the shown command names was written, and holds the pins.
    named = Path(dry.stdout.split(" -c ", 1)[1].split()[0])
    assert "torch==2.8.0+cu128" in named.read_text(encoding="utf-8").splitlines()
    assert "torch==2.8.0+cu128" in dry.stdout
    refused = run_cli(args)
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert freeze(py) == before


def _uv() -> str | None:
    import shutil

    return shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(_uv() is None, reason="uv is not installed")
def test_uv_installer_in_a_venv_without_pip(wheelhouses: tuple[Path, Path], tmp_path: Path) -> None:
    """--installer uv where the target has no pip: uv's dry run predicts, uv installs."""
    wheelhouse, preinstall = wheelhouses
    uv = _uv()
    assert uv is not None
    venv = tmp_path / "nopip"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = str(venv_python(venv))
    env = isolated_env()
    env["PATH"] = f"{Path(uv).parent}{os.pathsep}{env.get('PATH', '')}"
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", py, "--no-index", "--find-links",
         str(wheelhouse), "--find-links", str(preinstall), "torch==2.8.0+cu128", "einops==0.7.0"],
        check=True, env=env,
    )  # fmt: skip

    def uv_freeze() -> str:
        return subprocess.run(
            [uv, "pip", "freeze", "--python", py], capture_output=True, text=True, check=True
        ).stdout

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "attn_doctor", "install", *args, "--python", py,
             "--wheelhouse", str(wheelhouse), "--installer", "uv", "--yes", "--json"],
            capture_output=True, text=True, cwd=REPO_ROOT, env=env, check=False,
        )  # fmt: skip

    before = uv_freeze()
    refused = cli("xformers", "--requirement", "xformers==0.0.33")
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "torch==2.8.0+cu128" in _envelope(refused)["error"]["message"]  # type: ignore[index]
    failed = cli("flash-attn", "--requirement", "flash-attn==2.7.4.post1")
    assert failed.returncode == 4, failed.stdout + failed.stderr
    report = _envelope(failed)["result"]["report"]  # type: ignore[index]
    assert report["predicted"] == [["einops", "0.8.1"], ["flash-attn", "2.7.4.post1"]]
    assert report["rolled_back"]["restored"] == ["einops==0.7.0"]
    assert uv_freeze() == before


def test_rollback_without_a_backup_reinstalls_or_says_what_it_could_not(
    venv: Path, wheelhouses: tuple[Path, Path]
) -> None:
    """The fallback path: a change nobody backed up is reinstalled from the index given, and
    what cannot be found there is reported, with the journal kept for a later --rollback."""
    from attn_doctor.errors import InstallFailed
    from attn_doctor.install.execute import rollback_interrupted
    from attn_doctor.install.journal import Journal, write_journal
    from attn_doctor.install.state import record_state, rollback

    wheelhouse, preinstall = wheelhouses
    py = venv_python(venv)
    before = freeze(py)
    prior = record_state(str(py))
    links = ("--no-index", "--find-links", str(wheelhouse))
    run_pip(["install", *links, "einops==0.8.1", "xformers"], python=str(py), env=isolated_env())

    # einops 0.7.0 is not in the wheelhouse: the rollback cannot bring it back.
    write_journal(
        venv,
        Journal(
            pid=1,
            started_at="t",
            step="installing",
            backend="xformers",
            requirement="xformers",
            prior=prior,
            index_args=links,
        ),
    )
    with pytest.raises(InstallFailed, match=r"einops 0\.7\.0 -> 0\.8\.1"):
        rollback_interrupted(str(py))
    assert journal_path(venv).exists()
    partly = freeze(py)
    assert "xformers" not in partly  # what could be undone was undone
    assert "einops==0.8.1" in partly  # and what could not be restored was left working

    # With the directory that has it, the same rollback completes.
    result = rollback(
        prior,
        record_state(str(py)),
        index_args=(*links, "--find-links", str(preinstall)),
        environ=isolated_env(),
    )
    assert result.reinstalled == ("einops==0.7.0",)
    assert result.exact
    assert freeze(py) == before


def test_ctrl_c_during_the_check_rolls_back_and_exits_130(venv: Path, wheelhouse: Path) -> None:
    py = venv_python(venv)
    before = freeze(py)
    cmd = [sys.executable, "-m", "attn_doctor", "install", "flash-attn", "--requirement",
           "flash-attn==2.6.3", "--python", str(py), "--wheelhouse", str(wheelhouse),
           "--yes"]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        env=isolated_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        journal = read_journal(venv) if journal_path(venv).exists() else None
        if journal is not None and journal.step == "checking":
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the foreground group
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    # Not just "interrupted": what happened to the environment, and to what state.
    assert "interrupted while installing flash-attn==2.6.3" in err
    assert "rolled back to its prior state" in err
    assert "removed flash-attn" in err
    assert "Traceback" not in err
    assert freeze(py) == before
    assert not journal_path(venv).exists()
