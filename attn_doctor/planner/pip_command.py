"""The pip (and uv) command line for an install, built once (pure).

The plan shows these command lines and the installer runs the same argument vectors: the one
builder for both, so what ``install --dry-run --json`` prints is what runs. Nothing here
starts a process; ``attn_doctor.install.pip`` runs them.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from attn_doctor.errors import UsageError
from attn_doctor.planner.integrity import pinned_requirement
from attn_doctor.planner.plans import WheelCandidate
from attn_doctor.shell import Shell, join_command, quote_arg

if TYPE_CHECKING:
    from attn_doctor.facts import Environment

Installer = Literal["pip", "uv"]

PIP_QUIET_FLAGS: tuple[str, ...] = ("--no-input", "--disable-pip-version-check")


def build_argv(
    args: Sequence[str],
    *,
    python: str,
    installer: Installer = "pip",
    requirements_file: str | None = None,
    constraints_file: str | None = None,
    uv: str | None = None,
) -> list[str]:
    """The argument vector for one pip (or uv) call. Pure: used for display and for running.

    For uv, ``args[0]`` is the pip subcommand (``install``, ``uninstall``); uv prompts for
    nothing, so ``-y`` is dropped and pip's global flags are not passed.
    """
    if not args:
        raise UsageError("run_pip: no pip subcommand given")
    extra: list[str] = []
    if requirements_file is not None:
        extra += ["-r", requirements_file]
    if installer == "uv":
        sub, rest = args[0], [a for a in args[1:] if a not in ("-y", "--yes")]
        if constraints_file is not None:
            extra += ["--constraint", constraints_file]
        return [uv or "uv", "pip", sub, "--python", python, *rest, *extra]
    if constraints_file is not None:
        extra += ["-c", constraints_file]
    return [python, "-m", "pip", args[0], *PIP_QUIET_FLAGS, *args[1:], *extra]


def shell_of(env: Environment) -> Shell:
    """The shell a command for the machine ``env`` describes is pasted into."""
    return "windows" if env.host.os == "windows" else "posix"


def powershell_note(python: str, shell: Shell) -> str | None:
    """For a Windows plan whose interpreter path must be quoted: PowerShell runs a quoted
    path only after its call operator ``&`` (cmd runs it as shown)."""
    if shell != "windows" or quote_arg(python, shell) == python:
        return None
    return "in PowerShell, put & before the quoted interpreter path (cmd runs the line as shown)"


def env_prefix(build_env: Sequence[tuple[str, str]], shell: Shell = "posix") -> str:
    """Environment settings before a command: ``K=V `` (POSIX), ``set "K=V" && `` (cmd)."""
    if shell == "posix":
        return "".join(f"{k}={shlex.quote(v)} " for k, v in build_env)
    return "".join(f'set "{k}={v}" && ' for k, v in build_env)


def interpreter(env: Environment) -> str:
    """The interpreter of the environment ``env`` describes (``python`` when not recorded)."""
    return env.python.executable or "python"


def pip_fix(env: Environment, *args: str) -> str:
    """``X -m pip ARGS`` for the environment ``env`` describes, quoted for its shell: a fix
    names the interpreter it is for, so the ``pip`` first on PATH cannot be another one's."""
    return join_command([interpreter(env), "-m", "pip", *args], shell_of(env))


def doctor_fix(env: Environment, *args: str) -> str:
    """``attn-doctor ARGS --python X`` (X: the environment ``env`` describes)."""
    argv = ["attn-doctor", *args]
    if env.python.executable:
        argv += ["--python", env.python.executable]
    return join_command(argv, shell_of(env))


CONSTRAINTS_PLACEHOLDER = "constraints.txt"
"""Kept for callers that name no file; shown commands name a written file or inline pins."""


def index_url_args(index_url: str | None, index_args: Sequence[str] = ()) -> list[str]:
    """The candidate's own index, as upstream documents it (xformers' README installs from
    PyTorch's ``cu126`` index with ``--index-url``): the only index, so pip cannot take a
    same-named wheel of another CUDA variant from elsewhere.
    Offline (``--no-index``) it is dropped."""
    if index_url and "--no-index" not in index_args:
        return ["--index-url", index_url]
    return []


def candidate_install_args(cand: WheelCandidate, index_args: Sequence[str] = ()) -> list[str]:
    """pip's arguments to install one candidate (constraints are added by ``build_argv``)."""
    args = ["install", *index_args, *index_url_args(cand.index_url, index_args)]
    args += list(cand.pip_args)
    if cand.source == "source-build":
        if "--no-build-isolation" not in args:
            args.append("--no-build-isolation")
        if "-v" not in args and "--verbose" not in args:
            args.append("-v")  # the compiler's output goes to the kept log
    args.append(pinned_requirement(cand))
    return args


def command_lines(
    cand: WheelCandidate,
    *,
    python: str,
    installer: Installer = "pip",
    index_args: Sequence[str] = (),
    build_env: Sequence[tuple[str, str]] = (),
    pre_requirements: Sequence[str] = (),
    constraints_file: str | None = None,
    pins: Sequence[str] = (),
    shell: Shell = "posix",
) -> tuple[str, ...]:
    """The exact command lines that install ``cand``: the plan shows them, the installer runs
    the same argument vectors. The one builder for both.

    The torch pins go in ``constraints_file`` (``-c FILE``: a file that was written) when one
    is named, else inline as requirements (``pins``): a requirement on the installed version
    is already satisfied, so it keeps torch where it is just as a constraint does, and the
    line pastes on a machine where no file of ours exists. ``shell``: whose quoting.
    """
    inline = list(pins) if constraints_file is None else []

    def line(args: list[str], prefix: str = "") -> str:
        argv = build_argv(
            args, python=python, installer=installer, constraints_file=constraints_file
        )
        return prefix + join_command(argv, shell)

    cmds = []
    if cand.torch_requirement is not None:
        cmds.append(
            line(
                [
                    "install",
                    *index_args,
                    *index_url_args(cand.index_url, index_args),
                    cand.torch_requirement,
                ]
            )
        )
    if pre_requirements:
        cmds.append(line(["install", *index_args, *pre_requirements, *inline]))
    cmds.append(
        line([*candidate_install_args(cand, index_args), *inline], env_prefix(build_env, shell))
    )
    return tuple(cmds)


def target_install_command(env: Environment, backend: str, requirement: str, dest: Path) -> str:
    """The install to run on the snapshot's machine from the wheelhouse (copied there under
    the same name), for its interpreter and quoted for its shell."""
    return doctor_fix(
        env, "install", backend, "--wheelhouse", str(dest), "--requirement", requirement
    )
