"""Findings about torch and the GPU: torch missing or of the wrong build, the driver against
torch's CUDA, GPU architectures torch has no kernels for (pure).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from packaging.version import Version

from attn_doctor.diagnosis import (
    Finding,
)
from attn_doctor.facts import Environment, sm_text

if TYPE_CHECKING:
    pass
from attn_doctor.diagnose.context import Ctx, evidence_of
from attn_doctor.planner.machine import (
    PYTORCH_INDEX,
    arch_covers,
    arch_min_cuda,
    choose_cuda_variant,
    compat_minimum,
    cu_tag,
    driver_column,
    driver_runs_compat,
    driver_satisfies,
    gpu_label,
    latest_torch_minor,
    minor_of,
    release_minimum,
    torch_version,
)
from attn_doctor.planner.pip_command import pip_fix
from attn_doctor.rules_data import cuda_key

# --- torch and the GPU ----------------------------------------------------------------------


def _torch_install_command(ctx: Ctx, torch_minor: str, *, pin: str | None) -> tuple[str, str]:
    """A pip command for a torch build that runs on this machine's GPUs, and why that variant."""
    env, rules = ctx.env, ctx.rules
    spec = f"torch=={pin}" if pin else f"torch=={torch_minor}.*"
    if env.amd_gpus and not env.nvidia_gpus:
        row = rules.variants(torch_minor)
        if row is not None and row.rocm:
            rocm = row.rocm[-1]
            return (
                pip_fix(env, "install", spec, "--index-url", f"{PYTORCH_INDEX}/rocm{rocm}"),
                f"torch {torch_minor} ships ROCm {', '.join(row.rocm)} builds",
            )
        return (
            pip_fix(env, "install", spec, "--index-url", f"{PYTORCH_INDEX}/rocm<version>"),
            f"no ROCm variant of torch {torch_minor} is recorded; pick one on pytorch.org",
        )
    choice = choose_cuda_variant(rules, env, torch_minor)
    if choice is not None:
        return (
            pip_fix(env, "install", spec, "--index-url", f"{PYTORCH_INDEX}/{cu_tag(choice.cuda)}"),
            f"{cu_tag(choice.cuda)}: {choice.why}",
        )
    row = rules.variants(torch_minor)
    if row is None:
        return (
            pip_fix(env, "install", spec, "--index-url", f"{PYTORCH_INDEX}/cu<XYZ>"),
            f"torch {torch_minor} is not in the variants table; pick the cuXYZ index "
            "matching your driver's CUDA on pytorch.org",
        )
    need = arch_min_cuda(rules, env.nvidia_gpus)
    arch_ok = [c for c in row.cuda if need is None or cuda_key(c) >= cuda_key(need)]
    if not arch_ok:
        newer = sorted(
            (r.torch for r in rules.torch_variants if Version(r.torch) > Version(torch_minor)),
            key=Version,
        )
        for minor in newer:
            upgrade = choose_cuda_variant(rules, env, minor)
            if upgrade is not None:
                return (
                    pip_fix(
                        env,
                        "install",
                        f"torch=={minor}.*",
                        "--index-url",
                        f"{PYTORCH_INDEX}/{cu_tag(upgrade.cuda)}",
                    ),
                    f"torch {torch_minor} has no build with CUDA >= {need}, which these GPUs need; "
                    f"torch {minor} is the first release with one that fits ({upgrade.why})",
                )
        return (
            pip_fix(env, "install", spec, "--index-url", f"{PYTORCH_INDEX}/cu<XYZ>"),
            f"no recorded torch build has CUDA >= {need} and fits this driver: upgrade the driver",
        )
    compat_ok = [c for c in arch_ok if driver_runs_compat(rules, env, c)]
    if compat_ok:
        cuda = max(compat_ok, key=cuda_key)
        return (
            pip_fix(env, "install", spec, "--index-url", f"{PYTORCH_INDEX}/{cu_tag(cuda)}"),
            f"{cu_tag(cuda)} runs on this driver through CUDA minor version compatibility "
            f"(limited features); a driver >= {release_minimum(rules, cuda, driver_column(env))} "
            "runs it fully",
        )
    lowest = min(arch_ok, key=cuda_key)
    return (
        pip_fix(env, "install", spec, "--index-url", f"{PYTORCH_INDEX}/{cu_tag(lowest)}"),
        f"no CUDA variant of torch {torch_minor} ({', '.join(row.cuda)}) runs on this driver: "
        f"upgrade the NVIDIA driver to >= {release_minimum(rules, lowest, driver_column(env))}",
    )


def _pin(env: Environment) -> str | None:
    version = torch_version(env)
    return version.public if version is not None else None


def torch_findings(ctx: Ctx) -> list[Finding]:
    env, rules = ctx.env, ctx.rules
    out: list[Finding] = []
    torch = env.torch
    nvidia, amd = env.nvidia_gpus, env.amd_gpus
    gpus_ev = [evidence_of(f"gpus[{g.index}]", gpu_label(g)) for g in env.gpus]
    if torch is None:
        if nvidia or amd:
            cmd, why = _torch_install_command(ctx, latest_torch_minor(rules), pin=None)
        elif env.host.os == "darwin":
            cmd = pip_fix(env, "install", "torch")
            why = "macOS wheels on the package index include MPS"
        else:
            cmd, why = (
                pip_fix(env, "install", "torch", "--index-url", f"{PYTORCH_INDEX}/cpu"),
                "no GPU: the CPU build is smaller",
            )
        out.append(
            ctx.finding(
                "no-torch",
                "error",
                "torch is not installed",
                "Every attention backend here runs on torch; none can be used without it.",
                [evidence_of("torch", None), *gpus_ev],
                fix=cmd,
                fix_note=why,
            )
        )
        return out
    version = torch_version(env)
    pin = version.public if version else torch.version
    minor = minor_of(version) if version else None
    torch_ev = [
        evidence_of("torch.version", torch.version),
        evidence_of("torch.build", torch.build),
    ]
    if nvidia and not amd and torch.build in ("cpu", "rocm"):
        rule_id = "cpu-torch-on-nvidia-gpu" if torch.build == "cpu" else "rocm-torch-on-nvidia-gpu"
        what = "a CPU-only build" if torch.build == "cpu" else "a ROCm (AMD) build"
        cmd, why = (
            _torch_install_command(ctx, minor, pin=pin)
            if minor
            else ("", "torch version unreadable")
        )
        out.append(
            ctx.finding(
                rule_id,
                "error",
                f"torch is {what} on a machine with an NVIDIA GPU",
                f"torch {torch.version} is {what}: torch.cuda.is_available() is False and every "
                "GPU attention backend is out of reach.",
                [*torch_ev, *gpus_ev, evidence_of("driver.cuda_version", env.driver.cuda_version)],
                fix=cmd or None,
                fix_note=f"{why}. Reinstall torchvision/torchaudio from the same index if present.",
            )
        )
    if amd and not nvidia and torch.build in ("cpu", "cuda"):
        rule_id = "cpu-torch-on-amd-gpu" if torch.build == "cpu" else "cuda-torch-on-amd-gpu"
        what = "a CPU-only build" if torch.build == "cpu" else "a CUDA (NVIDIA) build"
        cmd, why = (
            _torch_install_command(ctx, minor, pin=pin)
            if minor
            else ("", "torch version unreadable")
        )
        out.append(
            ctx.finding(
                rule_id,
                "error",
                f"torch is {what} on a machine with an AMD GPU",
                f"torch {torch.version} is {what}: it cannot use the AMD GPU.",
                [
                    *torch_ev,
                    *gpus_ev,
                    evidence_of("cuda_toolkit.rocm_version", env.cuda_toolkit.rocm_version),
                ],
                fix=cmd or None,
                fix_note=why,
            )
        )
    res = env.import_result("torch")
    if res is not None and res.status != "ok":
        out.append(
            ctx.finding(
                "torch-import-failed",
                "error",
                "torch fails to import",
                f"`import torch` {res.status} in a child process: {res.detail or 'no detail'}",
                [*torch_ev, evidence_of("import:torch", f"{res.status}: {res.detail}")],
                fix=pip_fix(env, "install", "--force-reinstall", "--no-deps", f"torch=={pin}"),
                fix_note=(
                    "Reinstall torch from the index it came from (see torch.version local label)."
                ),
            )
        )
    rt = env.torch_runtime
    if (
        rt is not None
        and rt.cuda_available is False
        and torch.build in ("cuda", "rocm")
        and (nvidia or amd)
        and not out
    ):
        out.append(
            ctx.finding(
                "torch-cuda-unavailable",
                "error",
                "torch imports but sees no GPU",
                "torch.cuda.is_available() is False although the machine has a GPU"
                + (f": {rt.error}" if rt.error else "."),
                [
                    *torch_ev,
                    evidence_of("torch_runtime.cuda_available", rt.cuda_available),
                    *gpus_ev,
                    evidence_of("env.CUDA_VISIBLE_DEVICES", env.env("CUDA_VISIBLE_DEVICES")),
                ],
                fix_note=(
                    "Check CUDA_VISIBLE_DEVICES, the driver (nvidia-smi), and container GPU flags."
                ),
            )
        )
    return out


def driver_findings(ctx: Ctx) -> list[Finding]:
    env, rules = ctx.env, ctx.rules
    torch = env.torch
    if not env.nvidia_gpus:
        return []
    driver = env.driver
    if driver.version is None and driver.cuda_version is None:
        reason = env.unknown_reason("driver.version") or "not reported by NVML or nvidia-smi"
        return [
            ctx.finding(
                "driver-unknown",
                "info",
                "NVIDIA driver version unknown",
                f"The driver version could not be read ({reason}); driver checks were skipped.",
                [evidence_of("driver.version", None), evidence_of("driver.cuda_version", None)],
                fix="nvidia-smi",
                fix_note="If nvidia-smi fails too, the driver is not loaded: install or repair it.",
            )
        ]
    if torch is None or torch.build != "cuda" or not torch.cuda:
        return []
    column = driver_column(env)
    needed_major = cuda_key(torch.cuda)[0]
    compat_min = compat_minimum(rules, needed_major, column)
    release_min = release_minimum(rules, torch.cuda, column)
    evidence = [
        evidence_of("driver.version", driver.version),
        evidence_of("driver.cuda_version", driver.cuda_version),
        evidence_of("torch.version", torch.version),
        evidence_of("torch.cuda", torch.cuda),
    ]
    if env.host.wsl == 2:
        evidence.append(evidence_of("host.wsl", 2))
    too_old: bool | None = None
    below_release: bool | None = None
    if driver.version is not None and compat_min is not None:
        ok = driver_satisfies(driver.version, compat_min)
        too_old = None if ok is None else not ok
        evidence.append(
            evidence_of(f"index:driver_cuda.toml#minor_compat.{needed_major}.{column}", compat_min)
        )
        if release_min is not None:
            ok_rel = driver_satisfies(driver.version, release_min)
            below_release = None if ok_rel is None else not ok_rel
            evidence.append(
                evidence_of(f"index:driver_cuda.toml#release.{torch.cuda}.{column}", release_min)
            )
    elif driver.cuda_version is not None:
        # Only the driver's own "max CUDA" is known: compare majors, then minors.
        max_cuda = cuda_key(driver.cuda_version)
        too_old = max_cuda[0] < needed_major
        below_release = not too_old and max_cuda < cuda_key(torch.cuda)
    if too_old:
        minor = minor_of(torch_version(env) or Version("0.0"))
        cmd, why = _torch_install_command(ctx, minor, pin=_pin(env))
        return [
            ctx.finding(
                "driver-too-old-for-torch",
                "error",
                "NVIDIA driver too old for torch's CUDA",
                f"torch is built with CUDA {torch.cuda}; CUDA {needed_major}.x needs driver >= "
                f"{compat_min or f'a CUDA {needed_major} driver'} ({column}). With driver "
                f"{driver.version or driver.cuda_version} torch.cuda.is_available() is False "
                "('The NVIDIA driver on your system is too old').",
                evidence,
                fix=f"Upgrade the NVIDIA driver to >= {release_min or compat_min}, or: {cmd}",
                fix_note=why,
            )
        ]
    if below_release:
        return [
            ctx.finding(
                "driver-below-cuda-release-minimum",
                "warning",
                "Driver older than torch's CUDA release, running in compatibility mode",
                f"torch's CUDA {torch.cuda} lists driver >= {release_min or torch.cuda} "
                f"({column}); driver {driver.version or driver.cuda_version} runs it through "
                "CUDA minor version compatibility: kernels run, but PTX JIT of newer PTX and "
                "some APIs fail (cudaErrorCallRequiresNewerDriver).",
                evidence,
                fix=f"Upgrade the NVIDIA driver to >= {release_min}" if release_min else None,
            )
        ]
    return []


def arch_findings(ctx: Ctx) -> list[Finding]:
    env, rules = ctx.env, ctx.rules
    torch = env.torch
    if torch is None or torch.build != "cuda" or not env.nvidia_gpus:
        return []
    rt = env.torch_runtime
    out: list[Finding] = []
    seen: set[int] = set()
    for gpu in env.nvidia_gpus:
        sm = gpu.sm
        if sm is None or sm in seen:
            continue
        seen.add(sm)
        if rt is not None and rt.arch_list:
            if arch_covers(rt.arch_list, sm):
                continue
            minor = minor_of(torch_version(env) or Version("0.0"))
            cmd, why = _torch_install_command(ctx, minor, pin=_pin(env))
            out.append(
                ctx.finding(
                    "torch-lacks-gpu-arch",
                    "error",
                    f"torch has no kernels for {gpu_label(gpu)}",
                    f"torch {torch.version} was compiled for {', '.join(rt.arch_list)}; none runs "
                    f"on {sm_text(sm)}: CUDA calls fail with 'no kernel image is available for "
                    "execution on the device'.",
                    [
                        evidence_of("torch.version", torch.version),
                        evidence_of("torch_runtime.arch_list", " ".join(rt.arch_list)),
                        evidence_of(
                            f"gpus[{gpu.index}].compute_capability", gpu.compute_capability
                        ),
                    ],
                    fix=cmd,
                    fix_note=why,
                )
            )
            continue
        for row in rules.arch_min_cuda:
            built = torch.cuda or "0.0"
            if row.sm_min <= sm <= row.sm_max and cuda_key(built) < cuda_key(row.min_cuda):
                minor = minor_of(torch_version(env) or Version("0.0"))
                cmd, why = _torch_install_command(ctx, minor, pin=_pin(env))
                out.append(
                    ctx.finding(
                        "torch-lacks-gpu-arch",
                        "error",
                        f"torch's CUDA {torch.cuda} has no kernels for {gpu_label(gpu)}",
                        f"{row.family} GPUs need a torch built with CUDA >= {row.min_cuda}; torch "
                        f"{torch.version} is built with CUDA {torch.cuda}: expect 'no kernel "
                        "image is available for execution on the device'.",
                        [
                            evidence_of("torch.version", torch.version),
                            evidence_of("torch.cuda", torch.cuda),
                            evidence_of(
                                f"gpus[{gpu.index}].compute_capability", gpu.compute_capability
                            ),
                            evidence_of(
                                f"index:driver_cuda.toml#arch_min_cuda.{row.family}", row.min_cuda
                            ),
                        ],
                        fix=cmd,
                        fix_note=why
                        + ". Run `attn-doctor check --deep` to read torch's arch list.",
                        sources=(row.source,),
                    )
                )
    return out
