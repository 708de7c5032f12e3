"""Pure readings of an ``Environment`` that several rules share.

Nothing here looks at the running machine: every answer comes from the facts passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.version import Version

from attn_doctor.facts import Environment, GpuFacts, sm_text
from attn_doctor.rules_data import Rules, cuda_key, driver_key
from attn_doctor.versions import parse_version

PYTORCH_INDEX = "https://download.pytorch.org/whl"

# Marketing names of NVIDIA generations by compute capability (for messages only).
_FAMILIES: tuple[tuple[int, int, str], ...] = (
    (50, 53, "Maxwell"),
    (60, 62, "Pascal"),
    (70, 72, "Volta"),
    (75, 75, "Turing"),
    (80, 87, "Ampere"),
    (89, 89, "Ada"),
    (90, 90, "Hopper"),
    (100, 121, "Blackwell"),
)


def family(sm: int | None) -> str:
    """``Ampere`` for 86, ``unknown generation`` when not known."""
    if sm is None:
        return "unknown generation"
    for low, high, name in _FAMILIES:
        if low <= sm <= high:
            return name
    return f"sm{sm}"


def gpu_label(gpu: GpuFacts) -> str:
    """``NVIDIA H100 80GB HBM3 (sm90, Hopper)``."""
    if gpu.vendor == "nvidia":
        return f"{gpu.name} ({sm_text(gpu.sm)}, {family(gpu.sm)})" if gpu.sm else gpu.name
    if gpu.vendor == "amd" and gpu.gfx_arch:
        return f"{gpu.name} ({gpu.gfx_arch})"
    return gpu.name


def torch_version(env: Environment) -> Version | None:
    return parse_version(env.torch.version) if env.torch else None


def minor_of(version: Version) -> str:
    return f"{version.major}.{version.minor}"


def rules_os(env: Environment) -> str:
    """The OS whose rules apply: WSL runs Linux wheels."""
    return env.host.os


def driver_column(env: Environment) -> str:
    """Which driver column applies: under WSL 2 the driver is the Windows host's."""
    if env.host.os == "windows" or env.host.wsl == 2:
        return "windows"
    return "linux"


def cu_tag(cuda: str) -> str:
    """``12.8`` -> ``cu128``."""
    major, minor = cuda_key(cuda)
    return f"cu{major}{minor}"


def normalise_cuda(text: str) -> str | None:
    """``12.8`` from ``12.8``, ``12.8.1``, ``cu128`` or ``1208`` (xformers' build metadata)."""
    value = text.strip().lower()
    match = re.fullmatch(r"(?:cu)?(\d+)\.(\d+)(?:\.\d+)?", value)
    if match:
        return f"{int(match.group(1))}.{int(match.group(2))}"
    match = re.fullmatch(r"cu(\d{2,3})", value)
    if match:
        digits = match.group(1)
        return f"{int(digits[:-1])}.{int(digits[-1])}"
    match = re.fullmatch(r"(\d{2})(\d{2})", value)
    if match:
        return f"{int(match.group(1))}.{int(match.group(2))}"
    return None


def driver_satisfies(version: str, minimum: str) -> bool | None:
    """True/False, or None when the driver string is not a dotted number."""
    try:
        return driver_key(version) >= driver_key(minimum)
    except ValueError:
        return None


@dataclass(frozen=True, kw_only=True)
class VariantChoice:
    """A torch CUDA variant picked for this machine, and why."""

    cuda: str
    why: str


def release_minimum(rules: Rules, cuda: str, column: str) -> str | None:
    """The driver minimum for exactly this CUDA minor, in the applicable column."""
    row = rules.release(cuda)
    if row is None:
        return None
    return row.windows if column == "windows" else row.linux


def compat_minimum(rules: Rules, cuda_major: int, column: str) -> str | None:
    row = rules.compat(cuda_major)
    if row is None:
        return None
    return row.windows if column == "windows" else row.linux


def driver_runs_fully(rules: Rules, env: Environment, cuda: str) -> bool | None:
    """Whether the driver meets this CUDA release's own minimum (None: cannot tell)."""
    column = driver_column(env)
    version = env.driver.version
    if version is not None:
        minimum = release_minimum(rules, cuda, column) or compat_minimum(
            rules, cuda_key(cuda)[0], column
        )
        return None if minimum is None else driver_satisfies(version, minimum)
    if env.driver.cuda_version is not None:
        try:
            return cuda_key(env.driver.cuda_version) >= cuda_key(cuda)
        except ValueError:
            return None
    return None


def driver_runs_compat(rules: Rules, env: Environment, cuda: str) -> bool | None:
    """Whether the driver runs this CUDA at least through minor version compatibility."""
    version = env.driver.version
    if version is None:
        if env.driver.cuda_version is None:
            return None
        try:
            return cuda_key(env.driver.cuda_version)[0] >= cuda_key(cuda)[0]
        except ValueError:
            return None
    minimum = compat_minimum(rules, cuda_key(cuda)[0], driver_column(env))
    return None if minimum is None else driver_satisfies(version, minimum)


def arch_min_cuda(rules: Rules, gpus: tuple[GpuFacts, ...]) -> str | None:
    """The lowest torch CUDA that has kernels for every one of these NVIDIA GPUs."""
    need: str | None = None
    for gpu in gpus:
        sm = gpu.sm
        if sm is None:
            continue
        for row in rules.arch_min_cuda:
            if row.sm_min <= sm <= row.sm_max and (
                need is None or cuda_key(row.min_cuda) > cuda_key(need)
            ):
                need = row.min_cuda
    return need


def choose_cuda_variant(rules: Rules, env: Environment, torch_minor: str) -> VariantChoice | None:
    """The newest CUDA variant of this torch release that this driver and these GPUs run.

    None when the torch release is not in the table or no variant fits (the caller then says
    what to upgrade).
    """
    row = rules.variants(torch_minor)
    if row is None:
        return None
    need = arch_min_cuda(rules, env.nvidia_gpus)
    fitting: list[tuple[tuple[int, int], str, str]] = []
    for cuda in row.cuda:
        if need is not None and cuda_key(cuda) < cuda_key(need):
            continue
        runs = driver_runs_fully(rules, env, cuda)
        if runs is False:
            continue
        why = (
            f"driver {env.driver.version or env.driver.cuda_version} meets CUDA {cuda}'s minimum"
            if runs
            else "driver version unknown: newest variant assumed"
        )
        fitting.append((cuda_key(cuda), cuda, why))
    if not fitting:
        return None
    _, cuda, why = max(fitting)
    if need is not None:
        why += f"; these GPUs need CUDA >= {need}"
    return VariantChoice(cuda=cuda, why=why)


def latest_torch_minor(rules: Rules) -> str:
    return max((row.torch for row in rules.torch_variants), key=Version)


def arch_covers(arch_list: tuple[str, ...], sm: int) -> bool:
    """Whether a torch built for ``arch_list`` has a kernel image for compute capability ``sm``.

    ``sm_XY`` cubins run on the same major at an equal or higher minor; ``sm_XYa`` only on that
    exact GPU; ``sm_XYf`` on the same family; ``compute_XY`` (PTX) JIT-compiles for any newer GPU.
    """
    for arch in arch_list:
        match = re.fullmatch(r"(sm|compute)_(\d+)([af]?)", arch.strip())
        if not match:
            continue
        kind, number, suffix = match.group(1), int(match.group(2)), match.group(3)
        if kind == "compute" and not suffix and number <= sm:
            return True
        if kind == "sm":
            if suffix == "a" and number == sm:
                return True
            if suffix != "a" and number // 10 == sm // 10 and number <= sm:
                return True
    return False


def marker_environment(env: Environment) -> dict[str, str]:
    """PEP 508 marker values for this machine, all keys set (nothing read from the host)."""
    os_name = env.host.os
    platform_system = {"linux": "Linux", "windows": "Windows", "darwin": "Darwin"}.get(
        os_name, "Other"
    )
    sys_platform = {"linux": "linux", "windows": "win32", "darwin": "darwin"}.get(os_name, "other")
    machine = env.host.arch or ""
    if os_name == "windows" and machine == "x86_64":
        machine = "AMD64"
    version = env.python.version
    parts = version.split(".")
    impl = env.python.implementation.lower()
    return {
        "implementation_name": impl,
        "implementation_version": version,
        "os_name": "nt" if os_name == "windows" else "posix",
        "platform_machine": machine,
        "platform_python_implementation": {"cpython": "CPython", "pypy": "PyPy"}.get(impl, impl),
        "platform_release": env.host.os_release or "",
        "platform_system": platform_system,
        "platform_version": env.host.os_version or "",
        "python_full_version": version,
        "python_version": ".".join(parts[:2]),
        "sys_platform": sys_platform,
        "extra": "",
    }


SOURCE_BUILD_NVCC_THREADS = 2
"""NVCC_THREADS in every source build attn-doctor plans, runs or suggests: half the peak memory
per job of flash-attn's default 4, so more jobs fit; MAX_JOBS is always computed for it."""


def source_build_jobs(
    cpu_count: int | None,
    ram_available_bytes: int | None,
    *,
    gib_per_nvcc_thread: float,
    nvcc_threads: int,
) -> int:
    """MAX_JOBS for a flash-attn source build, by flash-attn's own setup.py rule.

    setup.py (NinjaBuildExtension, main and fa4-v4.0.0.beta27): ``min(cpu_count // 2,
    free GiB / (5 GiB x NVCC_THREADS))``, at least 1 (2.8.x used ``free GiB / 9`` at 4
    threads). The constants are data (``backends.toml`` ``[source_build.flash_attn_2]``);
    every place that suggests a MAX_JOBS uses this one function.
    """
    by_cores = max(1, (cpu_count or 2) // 2)
    if ram_available_bytes is None:
        return by_cores
    by_ram = max(1, int(ram_available_bytes / 2**30 / (gib_per_nvcc_thread * nvcc_threads)))
    return min(by_cores, by_ram)
