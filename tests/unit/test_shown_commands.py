"""Commands a plan or a fix shows: they name their interpreter, quote for the target
machine's shell, name no file that was not written, and state only known facts."""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from pathlib import Path

import pytest

from attn_doctor.diagnose import diagnose
from attn_doctor.facts import Environment
from attn_doctor.index import load_index
from attn_doctor.planner.pip_command import doctor_fix, pip_fix
from attn_doctor.probe.interpreter import is_this_interpreter, parse_interpreter_report
from attn_doctor.resolve import plan_backend, plan_install
from attn_doctor.rules_data import load_rules
from attn_doctor.shell import join_command, quote_arg
from tests.conftest import SNAPSHOTS
from tests.index_envs import make_env


def load(name: str) -> Environment:
    return Environment.from_json((SNAPSHOTS / f"{name}.json").read_text())


def with_python(env: Environment, executable: str) -> Environment:
    return dataclasses.replace(env, python=dataclasses.replace(env.python, executable=executable))


@pytest.mark.parametrize(
    ("arg", "posix", "windows"),
    [
        ("torch==2.8.0+cu128", "torch==2.8.0+cu128", "torch==2.8.0+cu128"),
        ("kernels>=0.19.1,<0.20.0", "'kernels>=0.19.1,<0.20.0'", '"kernels>=0.19.1,<0.20.0"'),
        ("torch==2.7.*", "'torch==2.7.*'", '"torch==2.7.*"'),
        (r"C:\Users\me\venv\Scripts\python.exe", r"'C:\Users\me\venv\Scripts\python.exe'",
         r"C:\Users\me\venv\Scripts\python.exe"),
        ("/opt/my env/bin/python", "'/opt/my env/bin/python'", '"/opt/my env/bin/python"'),
        ("flash-attn @ https://x/a.whl", "'flash-attn @ https://x/a.whl'",
         '"flash-attn @ https://x/a.whl"'),
        ("", "''", '""'),
    ],
    ids=["pin", "range", "wildcard", "windows-path", "space", "url-requirement", "empty"],
)  # fmt: skip
def test_quoting_per_shell(arg: str, posix: str, windows: str) -> None:
    assert quote_arg(arg, "posix") == posix
    assert quote_arg(arg, "windows") == windows
    assert shlex.split(join_command([arg], "posix")) == [arg]


def test_fixes_name_the_interpreter_in_its_shells_quoting() -> None:
    linux = with_python(load("cpu-only-laptop"), "/opt/my env/bin/python")
    assert pip_fix(linux, "install", "torch==2.8.*") == (
        "'/opt/my env/bin/python' -m pip install 'torch==2.8.*'"
    )
    assert doctor_fix(linux, "install", "xformers") == (
        "attn-doctor install xformers --python '/opt/my env/bin/python'"
    )
    windows = with_python(load("rtx4090-windows"), r"C:\Program Files\Python312\python.exe")
    assert pip_fix(windows, "install", "-U", "transformers>=4.53.0") == (
        r'"C:\Program Files\Python312\python.exe" -m pip install -U "transformers>=4.53.0"'
    )
    unknown = dataclasses.replace(linux, python=dataclasses.replace(linux.python, executable=None))
    assert pip_fix(unknown, "install", "torch") == "python -m pip install torch"


def test_checks_torch_fix_names_the_snapshots_interpreter() -> None:
    env = load("no-torch-gpu")
    diag = diagnose(env, load_rules())
    (fix,) = [f.fix for f in diag.findings if f.id == "no-torch"]
    assert fix is not None
    assert fix.startswith(f"{env.python.executable} -m pip install ")


def test_a_windows_plan_pastes_into_cmd_and_powershell() -> None:
    env = load("rtx4090-windows")
    plan = plan_install(env, load_index(), "flash_attn_2")
    (command,) = plan.commands
    assert "'" not in command  # POSIX quotes mean nothing to cmd
    assert command.startswith(r"C:\Users\me\venv\Scripts\python.exe -m pip install ")
    assert f'"{plan.candidate.requirement}"' in command  # "name @ URL" is one argument
    assert "torch==2.7.1+cu128" in command  # the pin, inline: no file of ours there
    # The C++11 ABI is a libstdc++ flag: a Windows plan does not mention it.
    assert "C++11 ABI" not in plan.candidate.reason


def test_an_unknown_abi_is_printed_as_unknown() -> None:
    index = load_index()
    known = plan_backend(make_env(torch="2.9.1+cu128", abi=True), index, "flash_attn_2")
    unknown = plan_backend(make_env(torch="2.9.1+cu128", abi=None), index, "flash_attn_2")
    community = [c for c in known.candidates if c.source == "community"]
    assert community, "the H100 with torch 2.9 gets a community wheel"
    assert "like this torch" in community[0].reason
    for cand in unknown.candidates:
        assert "like this torch" not in cand.reason
    assert any("ABI flag is unknown" in r.reason for r in unknown.rejections)
    windows = load("rtx4090-windows")
    assert windows.torch is not None
    assert windows.torch.cxx11_abi is None  # unknown there, and never printed as TRUE


# --- the other interpreter's own report ------------------------------------------------

# A venv's python 3.12 (recorded output of probe/interpreter.py's script).
REPORT = json.dumps(
    {
        "executable": "/home/u/venv/bin/python",
        "version": "3.12.7",
        "version_info": [3, 12],
        "implementation": "cpython",
        "soabi": "cpython-312-x86_64-linux-gnu",
        "free_threaded": False,
        "prefix": "/home/u/venv",
        "base_prefix": "/usr",
        "path": ["/usr/lib/python312.zip", "/home/u/venv/lib/python3.12/site-packages"],
        "has_pip": False,
        "system": "Linux",
        "machine": "x86_64",
    }
)


def test_the_interpreter_report_becomes_python_facts() -> None:
    report = parse_interpreter_report(REPORT, executable="venv/bin/python")
    assert report.python.version == "3.12.7"
    assert report.python.abi_tag == "cp312"
    assert report.python.in_venv is True
    assert report.python.executable == "venv/bin/python"  # as the user named it
    assert report.search_path[-1] == "/home/u/venv/lib/python3.12/site-packages"
    assert report.has_pip is False


@pytest.mark.parametrize("text", ["", "[]", "{}", '{"version_info": [3]}', "not json"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        parse_interpreter_report(text, executable="x")


def test_a_venv_interpreter_is_not_this_one_even_when_it_links_here(tmp_path: Path) -> None:
    link = tmp_path / "python"
    link.symlink_to(sys.executable)
    assert is_this_interpreter(None)
    assert is_this_interpreter(sys.executable)
    assert not is_this_interpreter(str(link))  # a venv's python is a link to its base


def test_a_quoted_windows_interpreter_gets_the_powershell_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from attn_doctor.cli import main

    env = with_python(load("rtx4090-windows"), r"C:\Program Files\Python312\python.exe")
    snap = tmp_path / "node.json"
    snap.write_text(env.to_json(), encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["install", "flash-attn", "--snapshot", str(snap), "--json"])
    assert info.value.code == 0
    result = json.loads(capsys.readouterr().out)["result"]
    (command,) = result["commands"]
    assert command.startswith(r'"C:\Program Files\Python312\python.exe" -m pip install ')
    assert any("PowerShell" in note for note in result["plan"]["notes"])


def test_a_backend_installed_and_importing_on_the_snapshot_is_not_planned_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from attn_doctor.cli import main

    snap = str(SNAPSHOTS / "a100-linux.json")  # --deep: `import flash_attn` ok there
    with pytest.raises(SystemExit) as info:
        main(["install", "flash-attn", "--snapshot", snap, "--json"])
    assert info.value.code == 0
    result = json.loads(capsys.readouterr().out)["result"]
    assert result["plan"] is None
    assert "flash-attn 2.7.4.post1 is already installed" in result["note"]
    # Another version is a change, and is planned.
    with pytest.raises(SystemExit) as info:
        main(["install", "flash-attn==2.8.3", "--snapshot", snap, "--json"])
    assert info.value.code == 0
    assert json.loads(capsys.readouterr().out)["result"]["plan"]["backend"] == "flash_attn_2"


def test_a_group_with_no_way_to_install_exits_1_not_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No way to install flash-attn on a T4 (sm75) is a fact about those nodes (exit 1)."""
    from attn_doctor.cli import main

    for name in ("t4-colab", "a100-linux"):
        (tmp_path / f"{name}.json").write_text(load(name).to_json(), encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["install", "flash-attn==2.8.3", "--snapshot", str(tmp_path), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert info.value.code == 1
    assert doc["error"]["code"] == "problems"
    groups = doc["result"]["groups"]
    assert any("no way to install" in g.get("error", "") for g in groups)
    planned = [g for g in groups if g.get("plan")]
    assert planned, groups
    for group in planned:  # pasteable on those nodes: the pins inline, no file of ours
        assert group["plan"]["commands"] == group["commands"]
        assert all(" -c " not in c for c in group["commands"])
