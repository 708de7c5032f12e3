"""The environment of a source build of flash-attn (and other torch CUDA extensions).

Rules, from flash-attn's own ``setup.py`` (``NinjaBuildExtension``):
- ``MAX_JOBS = min(cpu_count // 2, free GiB / (5 GiB x NVCC_THREADS))`` (main; 2.8.x used
  ``free GiB / 9``), computed by ``plan.machine.source_build_jobs`` from the rules data, the
  same number ``check``, ``explain`` and the resolver show; attn-doctor sets the variable
  itself, so that the value is shown in the plan and logged;
- ``FLASH_ATTN_CUDA_ARCHS`` (``;``-separated, default ``80;90;100;120`` at v2.8.3) selects the
  SASS targets; setup.py does not read ``TORCH_CUDA_ARCH_LIST``, which is set as well for
  other extensions built with ``torch.utils.cpp_extension``. Building only this GPU's arch
  cuts the build time and memory by the number of archs left out;
- ``FLASH_ATTENTION_FORCE_BUILD=TRUE`` stops setup.py from guessing a release-wheel URL: the
  plan already decided that no prebuilt wheel fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from attn_doctor.planner.machine import SOURCE_BUILD_NVCC_THREADS

GB = 1024**3
NVCC_THREADS = SOURCE_BUILD_NVCC_THREADS
"""Set explicitly, so that MAX_JOBS (computed for it) matches what nvcc really runs."""

FLASH_ATTN_ARCHS: tuple[str, ...] = ("80", "90", "100", "120")
"""The arch tokens flash-attn 2.8.3's setup.py turns into -gencode flags."""

BUILD_REQUIREMENTS: tuple[tuple[str, str], ...] = (
    # (module to import, distribution to install) needed with --no-build-isolation
    ("setuptools", "setuptools"),
    ("wheel", "wheel"),
    ("packaging", "packaging"),
    ("ninja", "ninja"),
    ("psutil", "psutil"),
    ("einops", "einops"),
)


@dataclass(frozen=True, kw_only=True)
class BuildSettings:
    """What a source build will run with, and why."""

    env: tuple[tuple[str, str], ...]
    max_jobs: int
    archs: tuple[str, ...]
    reasons: tuple[str, ...]


def max_jobs_for(cpu_count: int | None, ram_available_bytes: int | None) -> int:
    """flash-attn's own MAX_JOBS rule, with the rules data's constants."""
    from attn_doctor.planner.machine import source_build_jobs
    from attn_doctor.rules_data import load_rules

    build = load_rules().source_build
    return source_build_jobs(
        cpu_count,
        ram_available_bytes,
        gib_per_nvcc_thread=build.gb_per_nvcc_thread,
        nvcc_threads=NVCC_THREADS,
    )


def arch_token(compute_capability: str) -> str:
    """``"8.6"`` -> ``"86"``."""
    major, _, minor = compute_capability.partition(".")
    return f"{int(major)}{int(minor or 0)}"


def flash_attn_arch_for(compute_capability: str) -> str | None:
    """The flash-attn arch token whose SASS runs on this GPU (same major, highest minor <=).

    8.6/8.9 run sm_80 code; 9.0 -> 90; 10.x -> 100; 12.x -> 120. None below 8.0.
    """
    token = int(arch_token(compute_capability))
    fitting = [a for a in FLASH_ATTN_ARCHS if int(a) // 10 == token // 10 and int(a) <= token]
    return max(fitting, key=int) if fitting else None


def source_build_settings(
    *,
    cpu_count: int | None,
    ram_available_bytes: int | None,
    compute_capabilities: Sequence[str],
) -> BuildSettings:
    """The environment for building flash-attn from source on a machine with these facts."""
    from attn_doctor.rules_data import load_rules

    jobs = max_jobs_for(cpu_count, ram_available_bytes)
    per_job = load_rules().source_build.gb_per_nvcc_thread * NVCC_THREADS
    reasons = [
        f"MAX_JOBS={jobs}: {cpu_count or 'unknown'} cores / 2"
        + (
            f", {ram_available_bytes / GB:.0f} GiB available / {per_job} GiB per job "
            f"({NVCC_THREADS} nvcc threads)"
            if ram_available_bytes is not None
            else ", available RAM unknown"
        )
    ]
    archs: list[str] = []
    for cc in compute_capabilities:
        token = flash_attn_arch_for(cc)
        if token is not None and token not in archs:
            archs.append(token)
    env: list[tuple[str, str]] = [
        ("MAX_JOBS", str(jobs)),
        ("NVCC_THREADS", str(NVCC_THREADS)),
        ("FLASH_ATTENTION_FORCE_BUILD", "TRUE"),
    ]
    if archs:
        env.append(("FLASH_ATTN_CUDA_ARCHS", ";".join(archs)))
        env.append(("TORCH_CUDA_ARCH_LIST", ";".join(sorted(set(compute_capabilities)))))
        reasons.append(
            f"FLASH_ATTN_CUDA_ARCHS={';'.join(archs)}: only this machine's GPU arch "
            f"(upstream default builds {len(FLASH_ATTN_ARCHS)})"
        )
    else:
        reasons.append("no GPU arch known: building upstream's default arch list (slow)")
    return BuildSettings(env=tuple(env), max_jobs=jobs, archs=tuple(archs), reasons=tuple(reasons))


_FIND_SPEC_SCRIPT = r"""
import importlib.util, json, sys
print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]))
"""


def missing_build_requirements(python: str) -> tuple[str, ...]:
    """Distributions from ``BUILD_REQUIREMENTS`` whose module ``python`` cannot find."""
    import json
    import subprocess

    modules = [m for m, _ in BUILD_REQUIREMENTS]
    proc = subprocess.run(
        [python, "-c", _FIND_SPEC_SCRIPT, *modules],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        return tuple(d for _, d in BUILD_REQUIREMENTS)
    missing = set(json.loads(proc.stdout))
    return tuple(d for m, d in BUILD_REQUIREMENTS if m in missing)
