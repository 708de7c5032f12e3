"""``install --python X`` acts on, and answers for, the environment of X: real interpreters,
real virtual environments (made without pip, holding only the metadata a test needs)."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, SNAPSHOTS
from tests.notorch import run_without_torch

PYTORCH_CPU = "https://download.pytorch.org/whl/cpu"


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["NO_COLOR"] = "1"
    env.pop("FORCE_COLOR", None)
    return env


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m attn_doctor ARGS`` from this (torch) environment."""
    return subprocess.run(
        [sys.executable, "-m", "attn_doctor", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=_child_env(),
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def envelope(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"not one JSON document:\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    assert isinstance(doc, dict)
    return doc


def make_venv(
    where: Path, dists: dict[str, str] | None = None, modules: tuple[str, ...] = ()
) -> Path:
    """A venv without pip whose site-packages holds a minimal ``*.dist-info`` for each of
    ``dists`` (name -> version) and an empty package for each of ``modules``."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120
    )
    python = where / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    site = Path(purelib)
    for name, version in (dists or {}).items():
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
        (info / "INSTALLER").write_text("pip\n", encoding="utf-8")
    for module in modules:
        (site / module).mkdir()
        (site / module / "__init__.py").write_text("", encoding="utf-8")
    return python


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No torch, no pip."""
    return make_venv(tmp_path_factory.mktemp("target") / "bare")


@pytest.fixture(scope="module")
def torch_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CUDA torch (its metadata only, as the probe reads it first), no pip."""
    return make_venv(tmp_path_factory.mktemp("target") / "torch", {"torch": "2.8.0+cu128"})


def test_auto_from_a_torch_env_answers_for_a_venv_without_torch(bare_venv: Path) -> None:
    assert importlib.util.find_spec("torch") is not None  # the doctor's own env has torch
    proc = run_cli("install", "--auto", "--dry-run", "--json", "--python", str(bare_venv))
    doc = envelope(proc)
    assert proc.returncode == 1, proc.stderr
    error = doc["error"]
    assert isinstance(error, dict)
    assert error["code"] == "blocked"
    assert f"torch is not installed in {bare_venv}" in error["message"]
    # The fix and the next step are for that environment, by its interpreter.
    hint = str(error["hint"])
    # each command on its own line
    assert f"\n  {shlex.quote(str(bare_venv))} -m pip install torch " in hint
    assert f"\n  attn-doctor install --auto --python {shlex.quote(str(bare_venv))}" in hint


def test_from_an_env_without_torch_it_sees_the_targets_torch(
    torch_venv: Path, tmp_path: Path
) -> None:
    proc = run_without_torch(
        tmp_path, "install", "--auto", "--dry-run", "--json", "--python", str(torch_venv)
    )
    doc = envelope(proc)
    assert proc.returncode == 0, proc.stderr
    result = doc["result"]
    assert isinstance(result, dict)
    assert "torch 2.8.0+cu128" in str(result["note"])  # X's torch, not "torch is not installed"


def test_the_plan_pins_the_targets_torch_and_runs_the_targets_pip(
    torch_venv: Path, tmp_path: Path
) -> None:
    args = ["install", "flash-attn", "--requirement", "flash-attn==2.8.3", "--wheelhouse",
            str(tmp_path), "--python", str(torch_venv), "--json"]  # fmt: skip
    proc = run_cli(*args, "--dry-run")
    doc = envelope(proc)
    assert proc.returncode == 0, proc.stderr
    result = doc["result"]
    assert isinstance(result, dict)
    assert result["constraints"] == ["torch==2.8.0+cu128"]
    (command,) = result["commands"]
    argv = shlex.split(command)
    assert argv[:3] == [str(torch_venv), "-m", "pip"]
    constraints = Path(argv[argv.index("-c") + 1])
    assert constraints.read_text(encoding="utf-8") == "torch==2.8.0+cu128\n"
    notes = result["plan"]["notes"]
    assert any("no pip yet" in note and "ensurepip" in note for note in notes)
    # Acting on a venv without pip: a --python that is not what it should be (exit 2).
    refused = run_cli(*args, "--yes")
    error = envelope(refused)["error"]
    assert refused.returncode == 2, refused.stderr
    assert isinstance(error, dict)
    assert error["code"] == "no-pip"
    assert "ensurepip" in str(error["hint"])


def test_an_installed_backend_that_imports_is_not_planned_again(tmp_path: Path) -> None:
    venv = make_venv(
        tmp_path / "fa", {"torch": "2.8.0+cu128", "flash-attn": "2.8.3"}, modules=("flash_attn",)
    )
    proc = run_cli("install", "flash-attn", "--dry-run", "--json", "--python", str(venv))
    doc = envelope(proc)
    assert proc.returncode == 0, proc.stderr
    result = doc["result"]
    assert isinstance(result, dict)
    assert result["plan"] is None
    assert f"flash-attn 2.8.3 is already installed in {venv}" in str(result["note"])


def test_checks_torch_fix_names_the_inspected_interpreter(tmp_path: Path) -> None:
    proc = run_without_torch(tmp_path, "check", "--json")
    doc = envelope(proc)
    result = doc["result"]
    assert isinstance(result, dict)
    findings = result["diagnosis"]["findings"]
    (no_torch,) = [f for f in findings if f["id"] == "no-torch"]
    assert no_torch["fix"] == (
        f"{shlex.quote(sys.executable)} -m pip install torch --index-url {PYTORCH_CPU}"
    )


# --- no shown command names a file that does not exist -----------------------------------

_FILE_OPTIONS = ("-c", "--constraint", "-r", "--requirement", "--find-links")


def _commands(result: dict[str, object]) -> list[str]:
    out = [str(c) for c in result.get("commands") or ()]  # type: ignore[attr-defined]
    plan = result.get("plan")
    if isinstance(plan, dict):
        out += [str(c) for c in plan.get("commands") or ()]
    for group in result.get("groups") or ():  # type: ignore[attr-defined]
        out += _commands(group)
    return out


def _named_files(command: str, *, windows: bool) -> list[str]:
    argv = shlex.split(command, posix=not windows)
    assert "constraints.txt" not in argv, command
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in _FILE_OPTIONS]


def test_no_shown_command_names_a_file_that_does_not_exist(
    torch_venv: Path, tmp_path: Path
) -> None:
    runs = [
        (["install", "flash-attn", "--requirement", "flash-attn==2.8.3", "--wheelhouse",
          str(tmp_path), "--dry-run"], False),
        (["install", "flash-attn", "--requirement", "flash-attn==2.8.3", "--wheelhouse",
          str(tmp_path), "--python", str(torch_venv), "--dry-run"], False),
        (["install", "xformers", "--snapshot", str(SNAPSHOTS / "t4-colab.json")], False),
        (["install", "flash-attn", "--snapshot", str(SNAPSHOTS / "h100-linux-recent-torch.json")],
         False),
        (["install", "flash-attn", "--snapshot", str(SNAPSHOTS / "rtx4090-windows.json")], True),
        (["install", "--auto", "--snapshot", str(SNAPSHOTS)], False),
    ]  # fmt: skip
    seen = 0
    for args, windows in runs:
        proc = run_cli(*args, "--json")
        doc = envelope(proc)
        assert proc.returncode in (0, 1), (args, proc.stderr)
        result = doc["result"]
        assert isinstance(result, dict), (args, doc)
        for command in _commands(result):
            seen += 1
            for name in _named_files(command, windows=windows):
                assert Path(name).exists(), f"{command!r} names {name!r}, which does not exist"
    assert seen >= 6


def test_the_probe_reads_the_other_interpreters_python_and_packages(torch_venv: Path) -> None:
    from attn_doctor.probe import probe_environment

    env = probe_environment(python=str(torch_venv), environ=_child_env())
    assert env.python.executable == str(torch_venv)
    assert env.python.in_venv is True
    assert env.python.pip_version is None  # made without pip: absent, and said so
    assert env.torch is not None
    assert env.torch.version == "2.8.0+cu128"
    assert env.torch.build == "cuda"  # from the local label: no torch/version.py there
    assert env.package("transformers") is None  # this process has it; the venv does not


def test_a_missing_interpreter_is_an_unknown_not_this_one(tmp_path: Path) -> None:
    from attn_doctor.probe import probe_environment

    env = probe_environment(python=str(tmp_path / "no-such-python"), environ=_child_env())
    assert env.torch is None
    assert env.python.version == "unknown"
    assert any(u.field == "python" and "no-such-python" in u.reason for u in env.unknowns)
