"""The only code that reads the machine. Every probe returns facts; none raises.

``probe_environment`` assembles the full ``Environment``. Anything that imports the user's
packages (torch, flash_attn, xformers, unsloth) runs in a child process with a timeout
(``--deep`` only); without ``deep`` nothing of theirs is imported at all.

One module per concern, each a pure parser of recorded text plus a reader:
``host``, ``python_env``, ``nvidia``, ``amd``, ``cuda_toolkit``, ``torch_meta``,
``packages``, ``env_vars``, ``imports``, ``transformers_src`` (constants read from the
installed transformers' files).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

from attn_doctor._version import __version__
from attn_doctor.facts import Environment, HostFacts, PythonFacts, Unknown
from attn_doctor.probe.amd import probe_amd_and_apple
from attn_doctor.probe.comfyui import probe_comfyui
from attn_doctor.probe.cuda_toolkit import probe_cuda_toolkit
from attn_doctor.probe.distributions import scan_distributions, search_path
from attn_doctor.probe.env_vars import select_env_vars
from attn_doctor.probe.host import os_name, probe_host
from attn_doctor.probe.hub_cache import probe_hub_kernels
from attn_doctor.probe.imports import (
    ImportBoard,
    import_in_child,
    probe_deep,
    probe_torch_runtime,
)
from attn_doctor.probe.interpreter import (
    InterpreterReport,
    is_this_interpreter,
    probe_interpreter,
)
from attn_doctor.probe.model_config import SdpaProbeInputs
from attn_doctor.probe.nvidia import probe_nvidia
from attn_doctor.probe.packages import probe_packages
from attn_doctor.probe.python_env import probe_uv, python_facts_without_uv
from attn_doctor.probe.runner import DEFAULT_TOOL_TIMEOUT, children_end_on_interrupt, unknown
from attn_doctor.probe.torch_meta import probe_torch
from attn_doctor.probe.transformers_src import probe_transformers_constants

__all__ = [
    "import_in_child",
    "probe_environment",
    "probe_torch_runtime",
]


def _guard(field: str, future: Future[Any], unknowns: list[Unknown]) -> Any:
    """A reader's result; a bug in a reader becomes an Unknown instead of a crash."""
    try:
        return future.result()
    except Exception as exc:
        unknowns.append(unknown(field, f"probe failed: {type(exc).__name__}: {exc}"))
        return None


def _other_python_facts(
    python: str, report: InterpreterReport | str
) -> tuple[PythonFacts, list[Unknown]]:
    """Another interpreter's facts (``pip_version`` is read from its metadata later)."""
    if isinstance(report, str):
        return PythonFacts(version="unknown", implementation="unknown", executable=python), []
    return report.python, []


def probe_environment(
    *,
    deep: bool = False,
    timeout: float = 60.0,
    environ: Mapping[str, str] | None = None,
    nvml: ModuleType | Any | None = None,
    python: str | None = None,
    board: ImportBoard | None = None,
    cwd: Path | None = None,
    comfyui: Path | None = None,
    sdpa_inputs: SdpaProbeInputs | None = None,
) -> Environment:
    """Read every fact about this machine. Never imports torch in this process.

    ``timeout`` bounds each ``--deep`` child process (an import); quick tools (nvidia-smi,
    nvcc, uv) get ``min(timeout, 10 s)``. ``environ`` replaces ``os.environ`` for everything
    read from the environment (PATH lookups, CUDA_HOME, PYTHONPATH for metadata and for the
    children, the recorded variables). ``nvml`` replaces the ``pynvml`` module (tests).
    ``python`` is the interpreter whose environment is described (default: this one): for
    another one, its Python facts and ``sys.path`` come from running it, and the packages are
    read from that path; the ``--deep`` children run it too.
    ``board`` is told which ``--deep`` imports run (for a progress line).
    ``cwd`` is where a ComfyUI folder, ``kernels.lock`` and ``pyproject.toml`` are looked for
    (default: the current folder); ``comfyui`` names a ComfyUI folder (``check --comfyui``).
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    tool_timeout = min(timeout, DEFAULT_TOOL_TIMEOUT)
    unknowns: list[Unknown] = []
    created_at = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    with (
        ThreadPoolExecutor(max_workers=6, thread_name_prefix="attn-doctor-probe") as ex,
        children_end_on_interrupt(ex),  # Ctrl-C ends a hung nvidia-smi or nvcc at once
    ):
        # The slow readers (subprocesses, NVML) start first and run while the rest is read.
        f_other = None
        if python is not None and not is_this_interpreter(python):
            f_other = ex.submit(probe_interpreter, python, environ=env)
        f_nvidia = ex.submit(probe_nvidia, env, timeout=tool_timeout, nvml=nvml)
        f_amd = ex.submit(probe_amd_and_apple, env, timeout=tool_timeout)
        f_uv = ex.submit(probe_uv, env, timeout=tool_timeout)
        f_host = ex.submit(probe_host, env)
        other: InterpreterReport | str | None = None
        if f_other is not None:
            other = f_other.result()  # never raises: a failure is a reason
            if isinstance(other, str):
                unknowns.append(unknown("python", f"--python {python}: {other}"))
                unknowns.append(unknown("packages", f"the packages of {python} were not read"))
        if other is None:
            f_dists = ex.submit(scan_distributions, search_path(env))
            f_python = ex.submit(python_facts_without_uv, env)
        else:
            paths = [] if isinstance(other, str) else list(other.search_path)
            f_dists = ex.submit(scan_distributions, paths)
            f_python = ex.submit(_other_python_facts, python or "", other)

        amd_result = _guard("gpus", f_amd, unknowns)
        amd_gpus, rocm_version, amd_unknowns = amd_result if amd_result else ((), None, [])
        unknowns.extend(amd_unknowns)
        f_cuda = ex.submit(probe_cuda_toolkit, env, timeout=tool_timeout, rocm_version=rocm_version)

        dists = _guard("packages", f_dists, unknowns) or {}
        torch_result = _guard("torch", ex.submit(probe_torch, dists), unknowns)
        packages_result = _guard("packages", ex.submit(probe_packages, dists), unknowns)
        constants_result = _guard(
            "transformers_constants", ex.submit(probe_transformers_constants, dists), unknowns
        )

        host_result = _guard("host", f_host, unknowns)
        host, host_unknowns = host_result or (HostFacts(os=os_name(platform.system())), [])
        unknowns.extend(host_unknowns)
        python_result = _guard("python", f_python, unknowns)
        python_facts, python_unknowns = python_result or (
            PythonFacts(version=platform.python_version(), implementation=sys.implementation.name),
            [],
        )
        unknowns.extend(python_unknowns)
        uv_version = _guard("python.uv_version", f_uv, unknowns)
        if other is not None and "pip" in dists:
            python_facts = replace(python_facts, pip_version=dists["pip"].version)
        python_facts = replace(python_facts, uv_version=uv_version)

        nvidia = _guard("driver", f_nvidia, unknowns)
        cuda_result = _guard("cuda_toolkit", f_cuda, unknowns)

    torch_facts, torch_unknowns = torch_result if torch_result else (None, [])
    unknowns.extend(torch_unknowns)
    packages, package_unknowns = packages_result if packages_result else ((), [])
    unknowns.extend(package_unknowns)
    constants, constants_unknowns = constants_result if constants_result else (None, [])
    unknowns.extend(constants_unknowns)
    gpus = tuple(amd_gpus)
    driver = None
    if nvidia is not None:
        driver = nvidia.driver
        gpus = (*nvidia.gpus, *gpus)
        unknowns.extend(nvidia.unknowns)
    if cuda_result is not None:
        cuda_toolkit, cuda_unknowns = cuda_result
        unknowns.extend(cuda_unknowns)
    else:
        cuda_toolkit = None

    here = Path.cwd() if cwd is None else cwd
    comfyui_facts = probe_comfyui(here, comfyui)
    if comfyui is not None and comfyui_facts is None:
        unknowns.append(
            unknown("comfyui", f"{comfyui} is not a ComfyUI folder (no comfy/cli_args.py, main.py)")
        )
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    hub_kernels, hub_unknowns = probe_hub_kernels(here, env, home)
    unknowns.extend(hub_unknowns)

    imports: tuple[Any, ...] = ()
    torch_runtime = None
    if deep:
        imports, torch_runtime = probe_deep(
            dists.keys(),
            timeout=timeout,
            python=python,
            environ=env,
            board=board,
            sdpa_inputs=sdpa_inputs,
        )

    kwargs: dict[str, Any] = {}
    if driver is not None:
        kwargs["driver"] = driver
    if cuda_toolkit is not None:
        kwargs["cuda_toolkit"] = cuda_toolkit
    return Environment(
        attn_doctor_version=__version__,
        created_at=created_at,
        host=host,
        python=python_facts,
        gpus=gpus,
        torch=torch_facts,
        packages=packages,
        env_vars=select_env_vars(env),
        imports=imports,
        torch_runtime=torch_runtime,
        transformers_constants=constants,
        deep=deep,
        comfyui=comfyui_facts,
        hub_kernels=hub_kernels,
        unknowns=tuple(unknowns),
        **kwargs,
    )
