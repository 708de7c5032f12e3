"""The pip (and uv) command line for an install, built once (pure).

The plan shows these command lines and the installer runs the same argument vectors: the one
builder for both, so what ``install --dry-run --json`` prints is what runs. Nothing here
starts a process; ``attn_doctor.install.pip`` runs them.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Literal

from attn_doctor.errors import UsageError
from attn_doctor.plan.integrity import pinned_requirement
from attn_doctor.plan.types import WheelCandidate

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


CONSTRAINTS_PLACEHOLDER = "constraints.txt"
"""How the temporary constraints file is named in displayed commands."""


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
) -> tuple[str, ...]:
    """The exact command lines that install ``cand``: the plan shows them, the installer runs
    the same argument vectors. The one builder for both."""
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in build_env)
    cmds = []
    if cand.torch_requirement is not None:
        argv = build_argv(
            [
                "install",
                *index_args,
                *index_url_args(cand.index_url, index_args),
                cand.torch_requirement,
            ],
            python=python,
            installer=installer,
            constraints_file=CONSTRAINTS_PLACEHOLDER,
        )
        cmds.append(shlex.join(argv))
    if pre_requirements:
        argv = build_argv(
            ["install", *index_args, *pre_requirements],
            python=python,
            installer=installer,
            constraints_file=CONSTRAINTS_PLACEHOLDER,
        )
        cmds.append(shlex.join(argv))
    argv = build_argv(
        candidate_install_args(cand, index_args),
        python=python,
        installer=installer,
        constraints_file=CONSTRAINTS_PLACEHOLDER,
    )
    cmds.append(f"{prefix} {shlex.join(argv)}".strip())
    return tuple(cmds)
