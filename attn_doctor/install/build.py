"""The environment of a source build of flash-attn (and other torch CUDA extensions).

Rules, from flash-attn's own ``setup.py`` (``NinjaBuildExtension``, 2.7.x-2.8.x):
- each ninja job peaks at about 8-9 GB of RAM with ``NVCC_THREADS=4``, so
  ``MAX_JOBS = max(1, min(cpu_count // 2, available_GB // 9))``; attn-doctor applies the same
  rule but sets the variable itself, so that the value is shown in the plan and logged;
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

GB = 1024**3
RAM_PER_JOB_BYTES = 9 * GB
"""flash-attn setup.py: "each JOB peak memory cost is ~8-9GB when threads = 4"."""
NVCC_THREADS = 4

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
    """flash-attn's rule: one job per two cores, at most one per 9 GB of available RAM."""
    by_cores = max(1, (cpu_count or 2) // 2)
    if ram_available_bytes is None:
        return by_cores
    by_ram = int(ram_available_bytes // RAM_PER_JOB_BYTES)
    return max(1, min(by_cores, by_ram))


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
    jobs = max_jobs_for(cpu_count, ram_available_bytes)
    reasons = [
        f"MAX_JOBS={jobs}: {cpu_count or 'unknown'} cores / 2"
        + (
            f", {ram_available_bytes / GB:.0f} GB available / 9 GB per job"
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
