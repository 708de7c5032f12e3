"""What ComfyUI's portable build has in its own ``python_embeded`` (pure).

The probe reads that interpreter's packages from the outside (``ComfyUIFacts.packages``); this
says, in ComfyUI's flags, what they allow: a flag whose package is missing there fails, and
xformers, when installed there, is used by itself. Commands for that interpreter are quoted for
the shell its path belongs to (a Windows path: cmd's and PowerShell's double quotes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.facts import ComfyUIFacts, Environment
from attn_doctor.planner.pip_command import shell_of
from attn_doctor.probe.distributions import canonicalize_name
from attn_doctor.shell import Shell, join_command

_WINDOWS_PATH = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)|\.exe$", re.IGNORECASE)


@dataclass(frozen=True)
class EmbeddedState:
    """ComfyUI's flags against the packages of its ``python_embeded``."""

    have: tuple[str, ...]
    """``torch 2.7.1+cu128``, ``xformers 0.0.31``, ``no sageattention``… in record order."""
    failing: tuple[tuple[str, BackendName], ...]
    """(flag, backend) whose package is not installed there."""
    defaults: tuple[BackendName, ...]
    """Backends ComfyUI uses by itself, installed there (xformers)."""


def other_python(env: Environment) -> ComfyUIFacts | None:
    """The ComfyUI found here, when it runs under another interpreter than the inspected one."""
    comfy = env.comfyui
    here = env.python.executable
    if comfy is None or comfy.python is None or here is None or comfy.python == here:
        return None
    return comfy


def shell_for(python: str, env: Environment) -> Shell:
    """Whose quoting a command for ``python`` needs: a Windows path's, else the machine's."""
    return "windows" if _WINDOWS_PATH.search(python) else shell_of(env)


def embedded_state(comfy: ComfyUIFacts) -> EmbeddedState | None:
    """None: its packages were not read."""
    if comfy.packages is None:
        return None
    pkgs = {canonicalize_name(p.name): p for p in comfy.packages}
    torch = pkgs.get("torch")
    have = [f"torch {torch.version}" if torch is not None else "no torch"]
    failing: list[tuple[str, BackendName]] = []
    defaults: list[BackendName] = []
    for backend, record in BACKENDS.items():
        entry = record.framework_entry("comfyui", comfy.version)
        if entry is None or record.builtin or record.distribution is None:
            continue
        installed = next(
            (pkgs[n] for d in record.distributions if (n := canonicalize_name(d)) in pkgs), None
        )
        if installed is not None:
            have.append(f"{installed.name} {installed.version}")
            if entry.default:
                defaults.append(backend)
        else:
            have.append(f"no {record.distribution}")
            if not entry.default:
                failing.append((entry.name, backend))
    return EmbeddedState(have=tuple(have), failing=tuple(failing), defaults=tuple(defaults))


def install_for_comfyui(env: Environment, comfy: ComfyUIFacts, backend: BackendName) -> str:
    """``attn-doctor install BACKEND --python "…\\python_embeded\\python.exe"``: the plan for
    ComfyUI's own interpreter (its commands are then ``"…\\python.exe" -m pip …``)."""
    assert comfy.python is not None
    dist = BACKENDS[backend].distribution or backend
    return join_command(
        ["attn-doctor", "install", dist, "--python", comfy.python], shell_for(comfy.python, env)
    )


def check_for_comfyui(env: Environment, comfy: ComfyUIFacts) -> str:
    """attn-doctor installed into, and run by, ComfyUI's own interpreter."""
    assert comfy.python is not None
    shell = shell_for(comfy.python, env)
    return (
        join_command([comfy.python, "-m", "pip", "install", "attn-doctor"], shell)
        + " && "
        + join_command([comfy.python, "-m", "attn_doctor", "check"], shell)
    )


def and_join(items: list[str] | tuple[str, ...]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
