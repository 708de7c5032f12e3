"""Fix templates filled in with this machine's facts.

A template writes ``<placeholder>`` where a fact goes (``<torch_version>``, ``<max_jobs>``…)
or ``<msg.NAME>`` for a value captured from the error message. A placeholder whose fact is
unknown stays in the command as written, and the rendered fix lists it, so a command is
never completed with a guess. With a machine's facts, a ``pip …`` command is written for that
machine's interpreter (``X -m pip …``), so the ``pip`` first on PATH cannot be another
Python's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from attn_doctor.facts import Environment
from attn_doctor.planner.pip_command import pip_fix

_PLACEHOLDER = re.compile(r"<([a-z_][a-z0-9_.]*)>")


def _torch_release(env: Environment) -> str | None:
    return None if env.torch is None else env.torch.version.partition("+")[0]


def _torch_mm(env: Environment) -> str | None:
    rel = _torch_release(env)
    if rel is None:
        return None
    parts = rel.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else None


def _torch_cuda_tag(env: Environment) -> str | None:
    if env.torch is None or env.torch.cuda is None:
        return None
    major, _, minor = env.torch.cuda.partition(".")
    return f"cu{major}{(minor or '0').split('.')[0]}"


def _cuda_major(env: Environment) -> str | None:
    if env.torch is None or env.torch.cuda is None:
        return None
    return env.torch.cuda.split(".")[0]


def _python_tag(env: Environment) -> str | None:
    if env.python.abi_tag:
        return env.python.abi_tag
    major, _, rest = env.python.version.partition(".")
    minor = rest.split(".")[0]
    return f"cp{major}{minor}" if major and minor else None


def _python_mm(env: Environment) -> str | None:
    parts = env.python.version.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else None


def _cxx11_abi(env: Environment) -> str | None:
    if env.torch is None or env.torch.cxx11_abi is None:
        return None
    return "TRUE" if env.torch.cxx11_abi else "FALSE"


def _platform_tag(env: Environment) -> str | None:
    match (env.host.os, env.host.arch):
        case ("linux", "x86_64"):
            return "linux_x86_64"
        case ("linux", "aarch64"):
            return "linux_aarch64"
        case ("windows", "x86_64" | "amd64" | "AMD64"):
            return "win_amd64"
        case _:
            return None


def _max_jobs(env: Environment) -> str | None:
    from attn_doctor.explain.checks import suggested_max_jobs

    jobs = suggested_max_jobs(env)
    return None if jobs is None else str(jobs)


def _first_gpu_cc(env: Environment) -> str | None:
    for g in env.nvidia_gpus:
        if g.compute_capability:
            return g.compute_capability
    return None


def _first_gpu_sm(env: Environment) -> str | None:
    for g in env.nvidia_gpus:
        if g.sm is not None:
            return str(g.sm)
    return None


def _half_dtype(env: Environment) -> str | None:
    sms = [g.sm for g in env.nvidia_gpus if g.sm is not None]
    if not sms:
        return None
    # bf16 tensor-core math starts with Ampere (sm_80); older GPUs take fp16.
    return "bfloat16" if min(sms) >= 80 else "float16"


def _pkg_version(name: str) -> Callable[[Environment], str | None]:
    def get(env: Environment) -> str | None:
        pkg = env.package(name)
        return None if pkg is None else pkg.version.partition("+")[0]

    return get


def _torch_triton_requirement(env: Environment) -> str | None:
    if env.torch is None:
        return None
    for req in env.torch.requires:
        name = re.split(r"[\s=<>!~;\[]", req.strip(), maxsplit=1)[0]
        if name.lower() in ("triton", "pytorch-triton"):
            return req.split(";")[0].replace(" ", "")
    return None


def _flash_attn_wheel(env: Environment) -> str | None:
    """The prebuilt flash-attn wheel the resolver picks for this machine (pip requirement)."""
    from attn_doctor.index import load_index
    from attn_doctor.resolve import plan_backend

    plan = plan_backend(env, load_index(), "flash_attn_2")
    for cand in plan.candidates:
        if cand.source in ("upstream-release", "community") and cand.url:
            return f"'{cand.requirement}'"
    return None


PLACEHOLDERS: Mapping[str, Callable[[Environment], str | None]] = {
    "flash_attn_wheel": _flash_attn_wheel,
    "torch_version": _torch_release,
    "torch_version_full": lambda env: None if env.torch is None else env.torch.version,
    "torch_mm": _torch_mm,
    "torch_cuda": lambda env: None if env.torch is None else env.torch.cuda,
    "torch_cuda_tag": _torch_cuda_tag,
    "cuda_major": _cuda_major,
    "cxx11_abi": _cxx11_abi,
    "python_tag": _python_tag,
    "python_mm": _python_mm,
    "platform_tag": _platform_tag,
    "max_jobs": _max_jobs,
    "driver_version": lambda env: env.driver.version,
    "driver_cuda": lambda env: env.driver.cuda_version,
    "nvcc_release": lambda env: env.cuda_toolkit.release,
    "gpu_cc": _first_gpu_cc,
    "gpu_sm": _first_gpu_sm,
    "half_dtype": _half_dtype,
    "flash_attn_version": _pkg_version("flash-attn"),
    "xformers_version": _pkg_version("xformers"),
    "cutlass_dsl_version": _pkg_version("nvidia-cutlass-dsl"),
    "torch_triton_requirement": _torch_triton_requirement,
}
"""Every placeholder a fix template may use, and the fact it is filled from."""


_PIP = re.compile(r"(^|&&\s*|;\s*)pip3? (?=\S)")
"""A ``pip`` run at the start of a command or after ``&&``/``;``."""


def placeholders_in(template: str) -> list[str]:
    return _PLACEHOLDER.findall(template)


@dataclass(frozen=True, kw_only=True)
class RenderedFix:
    """One fix command, filled in as far as this machine's facts allow."""

    template: str
    command: str
    unfilled: tuple[str, ...] = ()
    """Placeholders left in ``command`` because their fact is unknown here."""


def render_fix(
    template: str, env: Environment | None, captures: Mapping[str, str] | None = None
) -> RenderedFix:
    """Fill ``template``'s placeholders from ``env`` and the message's captures."""
    caps = captures or {}
    unfilled: list[str] = []

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        value: str | None = None
        if name.startswith("msg."):
            value = caps.get(name[4:])
        elif env is not None and name in PLACEHOLDERS:
            value = PLACEHOLDERS[name](env)
        if value is None:
            unfilled.append(name)
            return m.group(0)
        return value

    command = _PLACEHOLDER.sub(sub, template)
    if env is not None and env.python.executable:
        command = _PIP.sub(lambda m: m.group(1) + pip_fix(env) + " ", command)
    return RenderedFix(template=template, command=command, unfilled=tuple(dict.fromkeys(unfilled)))
