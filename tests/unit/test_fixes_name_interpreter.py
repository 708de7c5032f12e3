"""Shown commands name the interpreter they are for (issue 20: the environment acted on)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from attn_doctor.decide import _install_way
from attn_doctor.facts import Environment
from attn_doctor.snapshot import load_snapshot
from tests.conftest import SNAPSHOTS


def _env(executable: str | None) -> Environment:
    env = load_snapshot(SNAPSHOTS / "h200-real.json")
    return dataclasses.replace(env, python=dataclasses.replace(env.python, executable=executable))


def test_install_way_names_another_interpreter_only() -> None:
    assert _install_way(_env(sys.executable), "xformers") == "attn-doctor install xformers"
    assert _install_way(_env(None), "xformers") == "attn-doctor install xformers"
    assert (
        _install_way(_env("/other/venv/bin/python"), "xformers")
        == "attn-doctor install xformers --python /other/venv/bin/python"
    )


def test_a_hint_puts_each_command_on_its_own_line(capsys: pytest.CaptureFixture[str]) -> None:
    from attn_doctor.cli import _fail
    from attn_doctor.errors import AttnDoctorError, ExitCode

    error = AttnDoctorError("done", hint="run these:\n  a --b\n  c d")
    with pytest.raises(SystemExit) as info:
        _fail(error, json_mode=False, command="install", code=ExitCode.OK)
    assert info.value.code == 0
    # an exit-0 answer keeps its hint
    assert capsys.readouterr().out == "done\n  hint: run these:\n    a --b\n    c d\n"
    with pytest.raises(SystemExit):
        _fail(error, json_mode=False, command="install", code=ExitCode.PROBLEMS)
    assert capsys.readouterr().err.endswith("  hint: run these:\n    a --b\n    c d\n")


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
def test_verify_tells_another_venv_of_the_same_base_from_its_own(tmp_path: Path) -> None:
    """A venv's python is a symlink to the base interpreter: by realpath, every venv of one
    base would be attn-doctor's own, and verify would judge it by attn-doctor's packages."""
    from attn_doctor.verify.runner import _same_python

    other = tmp_path / "venv" / "bin" / "python"
    other.parent.mkdir(parents=True)
    other.symlink_to(sys.executable)
    assert not _same_python(str(other))
    assert _same_python(sys.executable)
    assert _same_python(None)


def test_verify_reads_a_cpu_only_torch_from_its_files() -> None:
    """No child is started to ask a CPU build of torch for a CUDA device."""
    import importlib.metadata

    from attn_doctor.verify.runner import _cpu_build_here

    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("torch is not installed")
    assert _cpu_build_here(None) == version.endswith("+cpu")
    assert not _cpu_build_here("/another/venv/bin/python")
