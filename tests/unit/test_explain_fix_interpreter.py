"""explain's fix commands name the interpreter of the machine they are for: ``X -m pip …``,
quoted for that machine's shell, so the ``pip`` first on PATH cannot be another Python's."""

from __future__ import annotations

import dataclasses

from attn_doctor.explain.fix import render_fix
from attn_doctor.facts import Environment, PythonFacts
from tests.explain_envs import make_env, with_host


def _env(executable: str | None) -> Environment:
    env = make_env()
    return dataclasses.replace(
        env,
        python=PythonFacts(
            version="3.11.7", implementation="cpython", abi_tag="cp311", executable=executable
        ),
    )


def test_pip_commands_run_with_the_machines_interpreter() -> None:
    env = _env("/opt/venv/bin/python")
    fix = render_fix("pip uninstall -y flash-attn && pip install 'flash-attn==2.8.3'", env)
    assert fix.command == (
        "/opt/venv/bin/python -m pip uninstall -y flash-attn && "
        "/opt/venv/bin/python -m pip install 'flash-attn==2.8.3'"
    )
    # other commands, and pip inside a word or a comment's text, are left as written
    assert render_fix("attn-doctor install flash_attn_2", env).command == (
        "attn-doctor install flash_attn_2"
    )
    assert render_fix("export CC=gcc   # then pip retries", env).command == (
        "export CC=gcc   # then pip retries"
    )


def test_a_windows_interpreter_path_is_quoted_for_its_shell() -> None:
    env = dataclasses.replace(
        with_host(make_env(), os="windows"),
        python=PythonFacts(
            version="3.11.7",
            implementation="cpython",
            abi_tag="cp311",
            executable="C:\\Program Files\\Python311\\python.exe",
        ),
    )
    fix = render_fix("pip install --upgrade kernels", env)
    assert (
        fix.command == '"C:\\Program Files\\Python311\\python.exe" -m pip install --upgrade kernels'
    )


def test_without_a_machine_or_its_interpreter_the_command_stays_as_written() -> None:
    assert render_fix("pip install kernels", None).command == "pip install kernels"
    assert render_fix("pip install kernels", _env(None)).command == "pip install kernels"
