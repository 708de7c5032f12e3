"""Findings about the toolchain (nvcc, ROCm), the platform, Python and RAM for builds (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from packaging.version import Version

from attn_doctor.diagnosis import (
    Finding,
)
from attn_doctor.versions import parse_version

if TYPE_CHECKING:
    pass
from attn_doctor.diagnose.context import Ctx, evidence_of
from attn_doctor.planner.compat import verdict
from attn_doctor.planner.machine import (
    SOURCE_BUILD_NVCC_THREADS,
    rules_os,
    source_build_jobs,
    torch_version,
)
from attn_doctor.planner.pip_command import env_prefix, pip_fix, shell_of
from attn_doctor.rules_data import cuda_key

# --- toolchain, platform, Python, RAM -----------------------------------------------------------


def _source_build_relevant(ctx: Ctx) -> bool:
    """A flash-attn source build could be what comes next on this machine."""
    env = ctx.env
    if rules_os(env) != "linux" or env.package("flash-attn") is not None:
        return False
    rule = ctx.rules.backend("flash_attn_2")
    return any(verdict(rule, g, env).compatible == "yes" for g in env.nvidia_gpus)


def rocm_release(text: str | None) -> tuple[int, int] | None:
    """``6.4.1`` or torch's HIP ``6.4.43482`` -> ``(6, 4)``; None when unreadable."""
    parts = (text or "").split(".")
    if len(parts) < 2 or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    return int(parts[0]), int(parts[1])


def _rocm_findings(ctx: Ctx) -> list[Finding]:
    """The system ROCm toolkit against torch's HIP, as nvcc is compared with torch's CUDA."""
    env = ctx.env
    torch = env.torch
    if torch is None or torch.build != "rocm":
        return []
    tk = env.cuda_toolkit
    system, built = rocm_release(tk.rocm_version), rocm_release(torch.hip)
    if system is None or built is None or system == built:
        return []
    return [
        ctx.finding(
            "rocm-toolkit-torch-hip-mismatch",
            "warning" if env.amd_gpus else "info",
            f"the ROCm toolkit is {tk.rocm_version}, torch is built for ROCm/HIP {torch.hip}",
            "Source builds of ROCm extensions (flash-attn's ROCm backend, xformers) compile "
            "with this toolkit's hipcc and headers but load into torch's own HIP runtime: a "
            "different ROCm release builds against other headers and libraries than torch "
            "uses. Prebuilt wheels are not affected.",
            [
                evidence_of("cuda_toolkit.rocm_version", tk.rocm_version),
                evidence_of("torch.hip", torch.hip),
            ],
            fix=(
                f"Point ROCM_HOME at a ROCm {built[0]}.{built[1]} toolkit before a source build, "
                f"or install torch for ROCm {system[0]}.{system[1]}"
            ),
        )
    ]


def toolchain_findings(ctx: Ctx) -> list[Finding]:
    env = ctx.env
    torch = env.torch
    out: list[Finding] = _rocm_findings(ctx)
    if not env.nvidia_gpus or torch is None or torch.build != "cuda" or not torch.cuda:
        return out
    tk = env.cuda_toolkit
    nvcc = tk.release or tk.nvcc_version
    relevant = _source_build_relevant(ctx)
    if nvcc is not None:
        try:
            mismatch = cuda_key(nvcc)[0] != cuda_key(torch.cuda)[0]
        except ValueError:
            mismatch = False
        if mismatch:
            out.append(
                ctx.finding(
                    "nvcc-torch-cuda-major-mismatch",
                    "warning" if relevant else "info",
                    f"nvcc is CUDA {nvcc}, torch is built with CUDA {torch.cuda}",
                    "Source builds of CUDA extensions (flash-attn, xformers) refuse a CUDA major "
                    "different from torch's (torch.utils.cpp_extension). Prebuilt wheels are not "
                    "affected.",
                    [
                        evidence_of("cuda_toolkit.release", nvcc),
                        evidence_of("cuda_toolkit.nvcc_path", tk.nvcc_path),
                        evidence_of("torch.cuda", torch.cuda),
                    ],
                    fix=(
                        f"Point CUDA_HOME at a CUDA {cuda_key(torch.cuda)[0]}.x toolkit before a "
                        "source build"
                    ),
                )
            )
    elif relevant:
        out.append(
            ctx.finding(
                "no-nvcc",
                "info",
                "No CUDA toolkit (nvcc) found",
                "Prebuilt wheels need no toolkit; a flash-attn source build would fail without "
                "nvcc.",
                [
                    evidence_of("cuda_toolkit.nvcc_path", None),
                    evidence_of("cuda_toolkit.cuda_home", tk.cuda_home),
                ],
                fix_note=(
                    f"Only for a source build: install a CUDA {cuda_key(torch.cuda)[0]}.x "
                    "toolkit and set CUDA_HOME."
                ),
            )
        )
    return out


def platform_findings(ctx: Ctx) -> list[Finding]:
    env, rules = ctx.env, ctx.rules
    out: list[Finding] = []
    tv = torch_version(env)
    if not env.gpus:
        if env.host.os == "darwin" and (env.host.arch or "") in ("arm64", "aarch64"):
            pass
        else:
            out.append(
                ctx.finding(
                    "no-gpu",
                    "info",
                    "No GPU found: CPU attention only",
                    "No NVIDIA, AMD or Apple GPU was found; flash-attn, xformers and unsloth do "
                    "not apply. torch's SDPA runs its CPU kernels.",
                    [evidence_of("gpus", "[]"), evidence_of("driver.version", env.driver.version)],
                    fix_note=(
                        "If this machine has a GPU, check that its driver is loaded (nvidia-smi)."
                    ),
                )
            )
    if env.host.os == "darwin" and (
        (env.host.arch or "") in ("arm64", "aarch64") or any(g.vendor == "apple" for g in env.gpus)
    ):
        mps = env.torch_runtime.mps_available if env.torch_runtime else None
        out.append(
            ctx.finding(
                "apple-mps",
                "info",
                "Apple silicon: attention runs through torch's MPS backend",
                "flash-attn, xformers and unsloth's CUDA kernels do not exist for Apple GPUs; use "
                'attn_implementation="sdpa" with tensors on the "mps" device.',
                [
                    evidence_of("host.os", env.host.os),
                    evidence_of("host.arch", env.host.arch),
                    evidence_of("torch_runtime.mps_available", mps),
                ],
            )
        )
    if env.host.os == "windows" and env.nvidia_gpus:
        flash_floor = rules.backend("sdpa_flash").min_torch_for("windows")
        sdpa_note = (
            f"torch {env.torch.version if env.torch else ''} has SDPA's flash and "
            "memory-efficient kernels"
            if tv is not None and flash_floor and tv >= Version(flash_floor)
            else (
                f"torch >= {flash_floor} has SDPA's flash kernel on Windows; every torch has the "
                "memory-efficient one"
            )
        )
        out.append(
            ctx.finding(
                "windows-no-flash-attn-wheels",
                "info",
                "Windows: flash-attn publishes no official wheels",
                "flash-attn releases ship Linux wheels only; on Windows it is a long source build "
                f"or a community wheel. {sdpa_note}, and xformers ships Windows wheels.",
                [
                    evidence_of("host.os", "windows"),
                    evidence_of("torch.version", env.torch.version if env.torch else None),
                ],
                fix_note=(
                    'Use attn_implementation="sdpa"; or run under WSL 2, where Linux wheels work.'
                ),
                backends=("flash_attn_2",),
            )
        )
    if env.host.wsl == 2:
        out.append(
            ctx.finding(
                "wsl-driver-is-windows-host",
                "info",
                "WSL 2: the NVIDIA driver is the Windows host's",
                "Under WSL 2 the GPU driver is installed on Windows only (its version is what "
                "nvidia-smi shows here); Linux wheels (flash-attn, xformers) apply. Do not "
                "install a Linux display driver inside WSL.",
                [evidence_of("host.wsl", 2), evidence_of("driver.version", env.driver.version)],
            )
        )
    elif env.host.wsl == 1:
        out.append(
            ctx.finding(
                "wsl1-no-cuda",
                "warning",
                "WSL 1 has no GPU access",
                "CUDA under WSL needs WSL 2.",
                [evidence_of("host.wsl", 1)],
                fix="wsl --set-version <distro> 2",
            )
        )
    if _source_build_relevant(ctx):
        out.extend(_python_and_ram_findings(ctx))
    return out


def _python_and_ram_findings(ctx: Ctx) -> list[Finding]:
    from packaging.specifiers import SpecifierSet

    env, rules = ctx.env, ctx.rules
    out: list[Finding] = []
    pre = rules.prebuilt_flash_attn
    py = parse_version(env.python.version)
    no_wheels = (
        py is not None and not SpecifierSet(pre.python).contains(py, prereleases=True)
    ) or (env.python.free_threaded and not pre.free_threaded)
    route = ctx.route("flash_attn_2") if no_wheels else None
    prebuilt = [c for c in route.candidates if c.source != "source-build"] if route else []
    if prebuilt:
        # The resolver found a wheel for this interpreter (a community cp313t build, a newer
        # listed release): say that, not "none expected" followed by a plan that uses one.
        best = prebuilt[0]
        out.append(
            ctx.finding(
                "python-no-upstream-flash-attn",
                "info",
                f"flash-attn wheels for Python {env.python.version}"
                + (" (free-threaded)" if env.python.free_threaded else "")
                + (" come from a community build" if best.trust != "official" else ""),
                f"flash-attn's own release wheels are expected only for Python {pre.python}"
                + ("" if pre.free_threaded else ", not free-threaded builds")
                + f"; the install plan uses {best.filename} ({best.trust}), so nothing "
                "compiles.",
                [
                    evidence_of("python.version", env.python.version),
                    evidence_of("python.free_threaded", env.python.free_threaded),
                    evidence_of("index:backends.toml#prebuilt.flash_attn_2.python", pre.python),
                ],
                backends=("flash_attn_2",),
                sources=(pre.source, *best.provenance),
            )
        )
    elif no_wheels:
        out.append(
            ctx.finding(
                "python-no-prebuilt-flash-attn",
                "warning",
                f"No prebuilt flash-attn wheels expected for Python {env.python.version}"
                + (" (free-threaded)" if env.python.free_threaded else ""),
                f"flash-attn release wheels are expected only for Python {pre.python}"
                + ("" if pre.free_threaded else ", not free-threaded builds")
                + "; `pip install flash-attn` would compile from source.",
                [
                    evidence_of("python.version", env.python.version),
                    evidence_of("python.free_threaded", env.python.free_threaded),
                    evidence_of("index:backends.toml#prebuilt.flash_attn_2.python", pre.python),
                ],
                fix_note=(
                    'Use a supported Python in a new environment, or attn_implementation="sdpa".'
                )
                + (
                    ""
                    if pre.verified
                    else " (Conservative rule, not verified against every release.)"
                ),
                backends=("flash_attn_2",),
                sources=(pre.source,),
            )
        )
    build = rules.source_build
    avail = env.host.ram_available_bytes or env.host.ram_total_bytes
    cpus = env.host.cpu_count
    if avail is None or cpus is None:
        return out
    gib = avail / 2**30
    per_job = build.gb_per_nvcc_thread * build.nvcc_threads_default
    mem_jobs = max(1, int(gib // per_job))
    cpu_jobs = max(1, cpus // 2)
    # The fix runs with attn-doctor's NVCC_THREADS, and MAX_JOBS by the one shared rule.
    low_jobs = source_build_jobs(
        cpus,
        avail,
        gib_per_nvcc_thread=build.gb_per_nvcc_thread,
        nvcc_threads=SOURCE_BUILD_NVCC_THREADS,
    )
    if mem_jobs < cpu_jobs and mem_jobs <= 1:
        out.append(
            ctx.finding(
                "low-ram-for-source-build",
                "warning",
                f"{gib:.0f} GiB RAM is too little for a parallel flash-attn build",
                f"flash-attn's build assumes ~{build.gb_per_nvcc_thread} GB per nvcc thread "
                f"({build.nvcc_threads_default} threads per job): with {gib:.0f} GiB it runs one "
                f"job at a time on {cpus} CPUs (hours), and more jobs run out of memory.",
                [
                    evidence_of("host.ram_available_bytes", env.host.ram_available_bytes),
                    evidence_of("host.ram_total_bytes", env.host.ram_total_bytes),
                    evidence_of("host.cpu_count", cpus),
                    evidence_of("env.MAX_JOBS", env.env("MAX_JOBS")),
                ],
                fix=env_prefix(
                    (("MAX_JOBS", str(low_jobs)), ("NVCC_THREADS", str(SOURCE_BUILD_NVCC_THREADS))),
                    shell_of(env),
                )
                + pip_fix(env, "install", "flash-attn", "--no-build-isolation"),
                fix_note="Prefer a prebuilt wheel (attn-doctor install flash-attn) or SDPA.",
                backends=("flash_attn_2",),
                sources=(build.source,),
            )
        )
    return out
