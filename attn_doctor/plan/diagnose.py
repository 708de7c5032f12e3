"""The diagnosis: a pure function of (Environment, Rules).

``diagnose(env, rules)`` returns findings (each with a stable id, severity, cause, evidence,
the fix for this machine and the sources of the rule), a status row for every backend, a
ranked recommendation per GPU model (or for the CPU), and the places where common folklore
("Windows -> xformers, Linux -> flash-attn, unsloth first") is wrong for this machine.

Deterministic: the same facts and rules give the same answer, in the same order. Nothing here
reads the machine, starts a process or imports torch.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.version import Version

from attn_doctor.backends import BACKEND_NAMES, BACKENDS, BackendName
from attn_doctor.diagnosis import (
    BackendStatus,
    Diagnosis,
    Evidence,
    Finding,
    Recommendation,
    Severity,
    Tri,
)
from attn_doctor.facts import Environment, GpuFacts, ImportResult, PackageFacts

if TYPE_CHECKING:
    from attn_doctor.index import Index
    from attn_doctor.plan.types import BackendPlan
from attn_doctor.plan.compat import TORCH_INTERNAL, Verdict, device_verdict, devices, verdict
from attn_doctor.plan.decide import Evidence as Evidence_
from attn_doctor.plan.decide import Request
from attn_doctor.plan.machine import (
    PYTORCH_INDEX,
    SOURCE_BUILD_NVCC_THREADS,
    arch_covers,
    arch_min_cuda,
    choose_cuda_variant,
    compat_minimum,
    cu_tag,
    driver_column,
    driver_runs_compat,
    driver_satisfies,
    family,
    gpu_label,
    latest_torch_minor,
    marker_environment,
    minor_of,
    normalise_cuda,
    parse_version,
    release_minimum,
    rules_os,
    sm_text,
    source_build_jobs,
    torch_version,
)
from attn_doctor.rules import Rules, cuda_key

_SEVERITY_ORDER: dict[Severity, int] = {"error": 0, "warning": 1, "info": 2}

# Findings after which torch cannot use the GPU at all: nothing GPU-side is usable now.
_TORCH_BLOCKERS = frozenset(
    {
        "no-torch",
        "cpu-torch-on-nvidia-gpu",
        "cpu-torch-on-amd-gpu",
        "rocm-torch-on-nvidia-gpu",
        "cuda-torch-on-amd-gpu",
        "driver-too-old-for-torch",
        "torch-lacks-gpu-arch",
        "torch-cuda-unavailable",
        "torch-import-failed",
    }
)

_PACKAGE_BACKENDS: tuple[BackendName, ...] = tuple(
    n for n in BACKEND_NAMES if BACKENDS[n].distributions
)

_TRITON_DISTRIBUTIONS = ("triton", "pytorch-triton-rocm", "triton-windows", "pytorch-triton")


@dataclass(frozen=True, kw_only=True)
class _Ctx:
    env: Environment
    rules: Rules
    evidence: Evidence_ | None = None
    """What a cached ``attn-doctor bench`` run measured on this machine."""
    request: Request = dataclasses.field(default_factory=Request)
    index: Index | None = None
    """The wheel index: when given, "needs install" says exactly which way fits here."""
    _routes: dict[BackendName, BackendPlan] = dataclasses.field(
        default_factory=dict, init=False, repr=False
    )

    def route(self, name: BackendName) -> BackendPlan | None:
        """The resolver's plan for installing ``name`` here (None without an index)."""
        if self.index is None:
            return None
        if name not in self._routes:
            from attn_doctor.plan.resolve import plan_backend

            self._routes[name] = plan_backend(self.env, self.index, name)
        return self._routes[name]

    def finding(
        self,
        rule_id: str,
        severity: Severity,
        title: str,
        cause: str,
        evidence: list[Evidence],
        *,
        fix: str | None = None,
        fix_note: str | None = None,
        backends: tuple[BackendName, ...] = (),
        sources: tuple[str, ...] = (),
    ) -> Finding:
        return Finding(
            id=rule_id,
            severity=severity,
            title=title,
            cause=cause,
            evidence=tuple(evidence),
            fix=fix,
            fix_note=fix_note,
            backends=backends,
            sources=tuple(dict.fromkeys(self.rules.sources_for(rule_id) + sources)),
        )


def _ev(fact: str, value: object) -> Evidence:
    return Evidence(fact=fact, value="null" if value is None else str(value))


def _version_of(env: Environment, name: str) -> str | None:
    pkg = env.package(name)
    return pkg.version if pkg is not None else None


def _pkg(env: Environment, *names: str) -> PackageFacts | None:
    for name in names:
        pkg = env.package(name)
        if pkg is not None:
            return pkg
    return None


# --- torch and the GPU ----------------------------------------------------------------------


def _torch_install_command(ctx: _Ctx, torch_minor: str, *, pin: str | None) -> tuple[str, str]:
    """A pip command for a torch build that runs on this machine's GPUs, and why that variant."""
    env, rules = ctx.env, ctx.rules
    spec = f"torch=={pin}" if pin else f'"torch=={torch_minor}.*"'
    if env.amd_gpus and not env.nvidia_gpus:
        row = rules.variants(torch_minor)
        if row is not None and row.rocm:
            rocm = row.rocm[-1]
            return (
                f"pip install {spec} --index-url {PYTORCH_INDEX}/rocm{rocm}",
                f"torch {torch_minor} ships ROCm {', '.join(row.rocm)} builds",
            )
        return (
            f"pip install {spec} --index-url {PYTORCH_INDEX}/rocm<version>",
            f"no ROCm variant of torch {torch_minor} is recorded; pick one on pytorch.org",
        )
    choice = choose_cuda_variant(rules, env, torch_minor)
    if choice is not None:
        return (
            f"pip install {spec} --index-url {PYTORCH_INDEX}/{cu_tag(choice.cuda)}",
            f"{cu_tag(choice.cuda)}: {choice.why}",
        )
    row = rules.variants(torch_minor)
    if row is None:
        return (
            f"pip install {spec} --index-url {PYTORCH_INDEX}/cu<XYZ>",
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
                    f'pip install "torch=={minor}.*" --index-url '
                    f"{PYTORCH_INDEX}/{cu_tag(upgrade.cuda)}",
                    f"torch {torch_minor} has no build with CUDA >= {need}, which these GPUs need; "
                    f"torch {minor} is the first release with one that fits ({upgrade.why})",
                )
        return (
            f"pip install {spec} --index-url {PYTORCH_INDEX}/cu<XYZ>",
            f"no recorded torch build has CUDA >= {need} and fits this driver: upgrade the driver",
        )
    compat_ok = [c for c in arch_ok if driver_runs_compat(rules, env, c)]
    if compat_ok:
        cuda = max(compat_ok, key=cuda_key)
        return (
            f"pip install {spec} --index-url {PYTORCH_INDEX}/{cu_tag(cuda)}",
            f"{cu_tag(cuda)} runs on this driver through CUDA minor version compatibility "
            f"(limited features); a driver >= {release_minimum(rules, cuda, driver_column(env))} "
            "runs it fully",
        )
    lowest = min(arch_ok, key=cuda_key)
    return (
        f"pip install {spec} --index-url {PYTORCH_INDEX}/{cu_tag(lowest)}",
        f"no CUDA variant of torch {torch_minor} ({', '.join(row.cuda)}) runs on this driver: "
        f"upgrade the NVIDIA driver to >= {release_minimum(rules, lowest, driver_column(env))}",
    )


def _pin(env: Environment) -> str | None:
    version = torch_version(env)
    return version.public if version is not None else None


def _torch_findings(ctx: _Ctx) -> list[Finding]:
    env, rules = ctx.env, ctx.rules
    out: list[Finding] = []
    torch = env.torch
    nvidia, amd = env.nvidia_gpus, env.amd_gpus
    gpus_ev = [_ev(f"gpus[{g.index}]", gpu_label(g)) for g in env.gpus]
    if torch is None:
        if nvidia or amd:
            cmd, why = _torch_install_command(ctx, latest_torch_minor(rules), pin=None)
        elif env.host.os == "darwin":
            cmd, why = "pip install torch", "macOS wheels on the package index include MPS"
        else:
            cmd, why = (
                f"pip install torch --index-url {PYTORCH_INDEX}/cpu",
                "no GPU: the CPU build is smaller",
            )
        out.append(
            ctx.finding(
                "no-torch",
                "error",
                "torch is not installed",
                "Every attention backend here runs on torch; none can be used without it.",
                [_ev("torch", None), *gpus_ev],
                fix=cmd,
                fix_note=why,
            )
        )
        return out
    version = torch_version(env)
    pin = version.public if version else torch.version
    minor = minor_of(version) if version else None
    torch_ev = [_ev("torch.version", torch.version), _ev("torch.build", torch.build)]
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
                [*torch_ev, *gpus_ev, _ev("driver.cuda_version", env.driver.cuda_version)],
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
                    _ev("cuda_toolkit.rocm_version", env.cuda_toolkit.rocm_version),
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
                [*torch_ev, _ev("import:torch", f"{res.status}: {res.detail}")],
                fix=f"pip install --force-reinstall --no-deps torch=={pin}",
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
                    _ev("torch_runtime.cuda_available", rt.cuda_available),
                    *gpus_ev,
                    _ev("env.CUDA_VISIBLE_DEVICES", env.env("CUDA_VISIBLE_DEVICES")),
                ],
                fix_note=(
                    "Check CUDA_VISIBLE_DEVICES, the driver (nvidia-smi), and container GPU flags."
                ),
            )
        )
    return out


def _driver_findings(ctx: _Ctx) -> list[Finding]:
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
                [_ev("driver.version", None), _ev("driver.cuda_version", None)],
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
        _ev("driver.version", driver.version),
        _ev("driver.cuda_version", driver.cuda_version),
        _ev("torch.version", torch.version),
        _ev("torch.cuda", torch.cuda),
    ]
    if env.host.wsl == 2:
        evidence.append(_ev("host.wsl", 2))
    too_old: bool | None = None
    below_release: bool | None = None
    if driver.version is not None and compat_min is not None:
        ok = driver_satisfies(driver.version, compat_min)
        too_old = None if ok is None else not ok
        evidence.append(
            _ev(f"index:driver_cuda.toml#minor_compat.{needed_major}.{column}", compat_min)
        )
        if release_min is not None:
            ok_rel = driver_satisfies(driver.version, release_min)
            below_release = None if ok_rel is None else not ok_rel
            evidence.append(
                _ev(f"index:driver_cuda.toml#release.{torch.cuda}.{column}", release_min)
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


def _arch_findings(ctx: _Ctx) -> list[Finding]:
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
                        _ev("torch.version", torch.version),
                        _ev("torch_runtime.arch_list", " ".join(rt.arch_list)),
                        _ev(f"gpus[{gpu.index}].compute_capability", gpu.compute_capability),
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
                            _ev("torch.version", torch.version),
                            _ev("torch.cuda", torch.cuda),
                            _ev(f"gpus[{gpu.index}].compute_capability", gpu.compute_capability),
                            _ev(f"index:driver_cuda.toml#arch_min_cuda.{row.family}", row.min_cuda),
                        ],
                        fix=cmd,
                        fix_note=why
                        + ". Run `attn-doctor check --deep` to read torch's arch list.",
                        sources=(row.source,),
                    )
                )
    return out


# --- installed packages -----------------------------------------------------------------------

_LOCAL_LABEL = re.compile(r"cu(\d+)torch(\d+\.\d+)cxx11abi(true|false)", re.IGNORECASE)


# Extension modules and alternative top-level names that belong to a backend.
_MODULE_OWNERS: dict[str, BackendName] = {
    "flash_attn_2_cuda": "flash_attn_2",
    "flash_attn_3": "flash_attn_3",
    "flash_attn_3_cuda": "flash_attn_3",
}


def _owner_of(module: str) -> BackendName | None:
    """The package backend a module belongs to (exact module first, then its top level)."""
    for name in _PACKAGE_BACKENDS:
        if BACKENDS[name].module == module:
            return name
    top = module.split(".", maxsplit=1)[0]
    if top in _MODULE_OWNERS:
        return _MODULE_OWNERS[top]
    for name in _PACKAGE_BACKENDS:
        if (BACKENDS[name].module or "").split(".")[0] == top:
            return name
    return None


def package_of_module(module: str) -> str:
    """The backend a ``--deep`` module belongs to, else its top-level name: the unit that
    gets one finding (and one explanation) however many of its modules failed."""
    return _owner_of(module) or module.split(".", maxsplit=1)[0]


def _import_findings(ctx: _Ctx) -> list[Finding]:
    """One finding per package whose ``--deep`` import failed.

    A package's modules are imported one per child (``flash_attn`` then its extension;
    ``xformers``, ``xformers.ops``, ``xformers._cpp_lib``): when the first one fails, the
    others fail with it, so the first failure in import order is the cause and the others are
    evidence of the same package, never a finding of their own. Evidence names only the
    package's own modules.
    """
    env = ctx.env
    failed: dict[BackendName, list[ImportResult]] = {}
    for res in env.imports:
        if res.status == "ok" or res.module == "torch":
            continue
        owner = _owner_of(res.module)
        if owner is not None:
            failed.setdefault(owner, []).append(res)
    out: list[Finding] = []
    for owner, results in failed.items():
        undefined = next((r for r in results if "undefined symbol" in (r.detail or "")), None)
        first = undefined or results[0]
        detail = first.detail or ""
        ev = [_ev(f"import:{r.module}", f"{r.status}: {r.detail or ''}") for r in results]
        if env.torch:
            ev.append(_ev("torch.version", env.torch.version))
        if owner in ("flash_attn_2", "flash_attn_3", "flash_attn_4") and undefined is not None:
            pkg = _pkg(env, BACKENDS[owner].distribution or "flash-attn")
            if pkg:
                ev.append(_ev(f"packages.{pkg.name}.version", pkg.version))
            fix, note = _reinstall_fix(ctx, owner, pkg.name if pkg else "flash-attn")
            out.append(
                ctx.finding(
                    "flash-attn-abi-mismatch",
                    "error",
                    "flash-attn was built for another torch",
                    f"`import {first.module}` fails with an undefined C++ symbol: its compiled "
                    "extension was built against a different torch (or C++ ABI) than torch "
                    f"{env.torch.version if env.torch else '?'} installed here.",
                    ev,
                    fix=fix,
                    fix_note=(
                        "Install the wheel built for this exact torch major.minor, CUDA major and "
                        "C++11 ABI flag; never upgrade torch under an installed flash-attn."
                        + (f" {note}" if note else "")
                    ),
                    backends=(owner,),
                )
            )
            continue
        if owner == "xformers" and any(
            "undefined symbol" in d or "built for" in d or "can't load" in d
            for d in (r.detail or "" for r in results)
        ):
            continue  # reported by _xformers_findings with the build metadata
        dist = BACKENDS[owner].distribution or owner.replace("_", "-")
        fix, note = _reinstall_fix(ctx, owner, dist)
        others = (
            f"; {', '.join(f'`{r.module}`' for r in results if r is not first)} "
            f"failed with it"
            if len(results) > 1
            else ""
        )
        out.append(
            ctx.finding(
                "backend-import-failed",
                "error",
                f"{BACKENDS[owner].title} fails to import",
                f"`import {first.module}` {_status_words(first)} in a child process: "
                f"{detail or 'no detail'}{others}.",
                ev,
                fix=fix,
                fix_note=note,
                backends=(owner,),
            )
        )
    return out


def _status_words(res: ImportResult) -> str:
    return {"error": "raised", "crashed": "crashed", "timeout": "timed out"}.get(
        res.status, res.status
    )


def _reinstall_fix(ctx: _Ctx, owner: BackendName, dist: str) -> tuple[str, str | None]:
    """The fix for a broken install of ``owner``: reinstall through attn-doctor only when the
    resolver has a way to install it on this machine; else remove the broken package (which
    always works, and lets transformers fall back to SDPA) and say why not reinstall."""
    route = ctx.route(owner)
    reinstall = f"pip uninstall -y {dist} && attn-doctor install {owner.replace('_', '-')}"
    if route is not None and route.candidates:
        return reinstall, None
    if route is None and ctx.env.gpus:  # no index given (a library caller): cannot tell
        return reinstall, None
    if route is not None and route.rejections:
        why = route.rejections[0].reason
    elif not ctx.env.gpus:
        why = f"no GPU was found here, and {BACKENDS[owner].title} needs one"
    else:
        why = "no installable build for this machine is known"
    return (
        f"pip uninstall -y {dist}",
        f"attn-doctor cannot reinstall {BACKENDS[owner].title} here ({why}); removing the "
        "broken package keeps it from failing every import of it.",
    )


def _build_label_findings(ctx: _Ctx) -> list[Finding]:
    """flash-attn wheels say what they were built for in the local version label."""
    env = ctx.env
    torch = env.torch
    out: list[Finding] = []
    tv = torch_version(env)
    if torch is None or tv is None:
        return out
    for name in ("flash-attn", "flash-attn-3"):
        pkg = env.package(name)
        if pkg is None:
            continue
        texts = [pkg.version, *(v for _, v in pkg.build_info)]
        match = next((m for t in texts if (m := _LOCAL_LABEL.search(t))), None)
        if match is None:
            continue
        built_torch, abi = match.group(2), match.group(3).upper() == "TRUE"
        problems = []
        if built_torch != minor_of(tv):
            problems.append(f"torch {built_torch} (installed: {minor_of(tv)})")
        if torch.cxx11_abi is not None and abi != torch.cxx11_abi:
            problems.append(f"cxx11abi {abi} (installed torch: {torch.cxx11_abi})")
        digits = match.group(1)
        built_major = int(digits if len(digits) <= 2 else digits[:-1])
        if torch.cuda and built_major != cuda_key(torch.cuda)[0]:
            problems.append(f"CUDA {built_major}.x (installed torch: CUDA {torch.cuda})")
        if not problems:
            continue
        out.append(
            ctx.finding(
                "flash-attn-built-for-other-torch",
                "error",
                f"{name} {pkg.version} was built for another torch",
                f"Its wheel label says it was built for {', '.join(problems)}; the compiled "
                "extension will fail to load (undefined symbol) or crash.",
                [
                    _ev(f"packages.{name}.version", pkg.version),
                    _ev("torch.version", torch.version),
                    _ev("torch.cxx11_abi", torch.cxx11_abi),
                ],
                fix=f"pip uninstall -y {name} && attn-doctor install flash-attn",
                backends=("flash_attn_2" if name == "flash-attn" else "flash_attn_3",),
            )
        )
    return out


def _xformers_findings(ctx: _Ctx) -> list[Finding]:
    env = ctx.env
    pkg = env.package("xformers")
    torch = env.torch
    if pkg is None or torch is None:
        return []
    info = dict(pkg.build_info)
    built_torch = next((v for k, v in info.items() if "torch" in k.lower()), None)
    built_cuda_raw = next((v for k, v in info.items() if "cuda" in k.lower()), None)
    built_cuda = normalise_cuda(built_cuda_raw) if built_cuda_raw else None
    problems = []
    tv, bv = torch_version(env), parse_version(built_torch)
    if bv is not None and tv is not None and bv.release != tv.release:
        problems.append(f"torch {built_torch} (installed: {torch.version})")
    if (
        built_cuda
        and torch.build == "cuda"
        and torch.cuda
        and cuda_key(built_cuda)[0] != cuda_key(torch.cuda)[0]
    ):
        problems.append(f"CUDA {built_cuda} (installed torch: CUDA {torch.cuda})")
    res = env.import_result("xformers") or env.import_result("xformers.ops")
    failed = res is not None and res.status != "ok"
    if not problems and not (
        failed
        and res
        and res.detail
        and (
            "undefined symbol" in res.detail
            or "built for" in res.detail
            or "can't load" in res.detail
        )
    ):
        return []
    ev = [_ev("packages.xformers.version", pkg.version), _ev("torch.version", torch.version)]
    if built_torch:
        ev.append(_ev("packages.xformers.build_info.torch", built_torch))
    if built_cuda_raw:
        ev.append(_ev("packages.xformers.build_info.cuda", built_cuda_raw))
    if res is not None and res.status != "ok":
        ev.append(_ev(f"import:{res.module}", f"{res.status}: {res.detail}"))
    what = ", ".join(problems) if problems else "another torch (its C++ extension does not load)"
    return [
        ctx.finding(
            "xformers-built-for-other-torch",
            "error",
            f"xformers {pkg.version} was built for another torch",
            f"xformers was built for {what}; its C++/CUDA extensions do not load "
            "('xFormers can't load C++/CUDA extensions') and memory_efficient_attention falls back "
            "or fails.",
            ev,
            fix="attn-doctor install xformers",
            fix_note="Install the xformers release made for this torch (from the PyTorch index for "
            "its CUDA), with torch pinned so pip cannot replace it.",
            backends=("xformers",),
        )
    ]


_TORCH_REQUIREMENT = re.compile(r"\s*torch\s*(?:[<>=!~(;\[]|$)", re.IGNORECASE)
"""A Requires-Dist line about torch itself (not torchvision, not torch-something). Lines
under an ``extra`` marker are left out: they apply only if that extra was asked for."""


def _pin_findings(ctx: _Ctx) -> list[Finding]:
    env = ctx.env
    torch = env.torch
    if torch is None:
        return []
    tv = parse_version(torch.version)
    if tv is None:
        return []
    candidates = [
        (pkg, line)
        for pkg in env.packages
        for line in pkg.requires
        if _TORCH_REQUIREMENT.match(line) and "extra" not in line
    ]
    if not candidates:  # the common case: skip importing the requirement parser at all
        return []
    from packaging.requirements import InvalidRequirement, Requirement

    markers = marker_environment(env)
    out: list[Finding] = []
    for pkg, line in candidates:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if not str(req.specifier):
            continue
        if req.marker is not None and not req.marker.evaluate(markers):
            continue
        if req.specifier.contains(tv, prereleases=True):
            continue
        out.append(
            ctx.finding(
                "package-pins-other-torch",
                "error",
                f"{pkg.name} {pkg.version} requires torch{req.specifier}",
                f"{pkg.name} declares `{line}`, which torch {torch.version} does not satisfy: "
                "pip will try to replace torch the next time it resolves, or the package runs "
                "against a torch it was not built for.",
                [
                    _ev(f"packages.{pkg.name}.requires", line),
                    _ev("torch.version", torch.version),
                ],
                fix=f"attn-doctor install {pkg.name}",
                fix_note=(
                    f"Pick the {pkg.name} release made for torch {tv.public}, or remove "
                    f"it (pip uninstall -y {pkg.name})."
                ),
                backends=tuple(
                    n for n in _PACKAGE_BACKENDS if BACKENDS[n].distribution == pkg.name
                ),
            )
        )
    return out


def _conflict_findings(ctx: _Ctx) -> list[Finding]:
    env = ctx.env
    out: list[Finding] = []
    for conflict in ctx.rules.conflicts:
        present = [pkg for name in conflict.packages if (pkg := env.package(name)) is not None]
        if len(present) < 2:
            continue
        names = " and ".join(f"{p.name} {p.version}" for p in present)
        out.append(
            ctx.finding(
                "conflicting-packages",
                "warning",
                f"{names} are installed together",
                f"{names}: {conflict.reason}.",
                [_ev(f"packages.{p.name}.version", p.version) for p in present],
                fix_note="Keep the one the installed torch depends on (see torch.requires) and "
                "uninstall the other.",
                sources=(conflict.source,),
            )
        )
    return out


# --- GPU generation vs backends ----------------------------------------------------------------


def _works_instead(ctx: _Ctx, gpu: GpuFacts) -> list[str]:
    names = []
    for name in ctx.rules.ranking.gpu:
        if verdict(ctx.rules.backend(name), gpu, ctx.env).compatible == "yes" and name != "eager":
            names.append(BACKENDS[name].title)
    return names


def _gpu_backend_findings(ctx: _Ctx) -> list[Finding]:
    env, rules = ctx.env, ctx.rules
    out: list[Finding] = []
    for name in _PACKAGE_BACKENDS:
        info = BACKENDS[name]
        if info.distribution is None or _pkg(env, info.distribution) is None:
            continue
        rule = rules.backend(name)
        for gpu in devices(env):
            if gpu is None:
                continue
            v = verdict(rule, gpu, env)
            if v.compatible != "no" or device_verdict(rule, gpu).compatible != "no":
                continue
            instead = _works_instead(ctx, gpu)
            out.append(
                ctx.finding(
                    "gpu-unsupported-by-backend",
                    "warning",
                    f"{info.title} is installed but cannot run on {gpu_label(gpu)}",
                    v.reason + ".",
                    [
                        _ev(
                            f"gpus[{gpu.index}].compute_capability",
                            gpu.compute_capability or gpu.gfx_arch,
                        ),
                        _ev(
                            f"packages.{info.distribution}.version",
                            (
                                _pkg(env, info.distribution) or PackageFacts(name="", version="")
                            ).version,
                        ),
                        _ev(f"index:backends.toml#{name}.min_sm", rule.min_sm),
                    ],
                    fix=f"pip uninstall -y {info.distribution}",
                    fix_note="Works on this GPU instead: " + ", ".join(instead)
                    if instead
                    else None,
                    backends=(name,),
                    sources=(rule.source,),
                )
            )
    for gpu in devices(env):
        if gpu is None or gpu.vendor != "nvidia" or gpu.sm is None or gpu.sm >= 80:
            continue
        instead = _works_instead(ctx, gpu)
        out.append(
            ctx.finding(
                "gpu-pre-ampere",
                "info",
                f"{gpu_label(gpu)} predates Ampere",
                f"flash-attn 2/3/4, SDPA's flash and cuDNN kernels and FlexAttention need sm80+; "
                f"{gpu.name} is {sm_text(gpu.sm)} ({family(gpu.sm)}).",
                [_ev(f"gpus[{gpu.index}].compute_capability", gpu.compute_capability)],
                fix_note=("What runs here: " + ", ".join(instead)) if instead else None,
                backends=("flash_attn_2", "flash_attn_3", "flash_attn_4", "sdpa_flash"),
            )
        )
    return out


# --- toolchain, platform, Python, RAM -----------------------------------------------------------


def _source_build_relevant(ctx: _Ctx) -> bool:
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


def _rocm_findings(ctx: _Ctx) -> list[Finding]:
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
            [_ev("cuda_toolkit.rocm_version", tk.rocm_version), _ev("torch.hip", torch.hip)],
            fix=(
                f"Point ROCM_HOME at a ROCm {built[0]}.{built[1]} toolkit before a source build, "
                f"or install torch for ROCm {system[0]}.{system[1]}"
            ),
        )
    ]


def _toolchain_findings(ctx: _Ctx) -> list[Finding]:
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
                        _ev("cuda_toolkit.release", nvcc),
                        _ev("cuda_toolkit.nvcc_path", tk.nvcc_path),
                        _ev("torch.cuda", torch.cuda),
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
                [_ev("cuda_toolkit.nvcc_path", None), _ev("cuda_toolkit.cuda_home", tk.cuda_home)],
                fix_note=(
                    f"Only for a source build: install a CUDA {cuda_key(torch.cuda)[0]}.x "
                    "toolkit and set CUDA_HOME."
                ),
            )
        )
    return out


def _platform_findings(ctx: _Ctx) -> list[Finding]:
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
                    [_ev("gpus", "[]"), _ev("driver.version", env.driver.version)],
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
                    _ev("host.os", env.host.os),
                    _ev("host.arch", env.host.arch),
                    _ev("torch_runtime.mps_available", mps),
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
                    _ev("host.os", "windows"),
                    _ev("torch.version", env.torch.version if env.torch else None),
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
                [_ev("host.wsl", 2), _ev("driver.version", env.driver.version)],
            )
        )
    elif env.host.wsl == 1:
        out.append(
            ctx.finding(
                "wsl1-no-cuda",
                "warning",
                "WSL 1 has no GPU access",
                "CUDA under WSL needs WSL 2.",
                [_ev("host.wsl", 1)],
                fix="wsl --set-version <distro> 2",
            )
        )
    if _source_build_relevant(ctx):
        out.extend(_python_and_ram_findings(ctx))
    return out


def _python_and_ram_findings(ctx: _Ctx) -> list[Finding]:
    from packaging.specifiers import SpecifierSet

    env, rules = ctx.env, ctx.rules
    out: list[Finding] = []
    pre = rules.prebuilt_flash_attn
    py = parse_version(env.python.version)
    no_wheels = (
        py is not None and not SpecifierSet(pre.python).contains(py, prereleases=True)
    ) or (env.python.free_threaded and not pre.free_threaded)
    if no_wheels:
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
                    _ev("python.version", env.python.version),
                    _ev("python.free_threaded", env.python.free_threaded),
                    _ev("index:backends.toml#prebuilt.flash_attn_2.python", pre.python),
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
                    _ev("host.ram_available_bytes", env.host.ram_available_bytes),
                    _ev("host.ram_total_bytes", env.host.ram_total_bytes),
                    _ev("host.cpu_count", cpus),
                    _ev("env.MAX_JOBS", env.env("MAX_JOBS")),
                ],
                fix=(
                    f"MAX_JOBS={low_jobs} NVCC_THREADS={SOURCE_BUILD_NVCC_THREADS} "
                    "pip install flash-attn --no-build-isolation"
                ),
                fix_note="Prefer a prebuilt wheel (attn-doctor install flash-attn) or SDPA.",
                backends=("flash_attn_2",),
                sources=(build.source,),
            )
        )
    return out


# --- transformers -------------------------------------------------------------------------------


def _transformers_findings(ctx: _Ctx, statuses: dict[BackendName, BackendStatus]) -> list[Finding]:
    env, rules = ctx.env, ctx.rules
    out: list[Finding] = []
    tf = env.package("transformers")
    tfv = parse_version(tf.version) if tf else None
    if tf is not None and tfv is not None:
        for name in BACKEND_NAMES:
            status = statuses[name]
            if (
                status.installed != "yes"
                or status.compatible != "yes"
                or name in TORCH_INTERNAL - {"flex_attention"}
            ):
                continue
            entry = rules.attn_implementation(name)
            if entry is None or tfv >= Version(entry.first):
                continue
            out.append(
                ctx.finding(
                    "transformers-too-old-for-backend",
                    "warning",
                    f"transformers {tf.version} does not accept "
                    f'attn_implementation="{entry.value}"',
                    f'{BACKENDS[name].title} is installed, but attn_implementation="{entry.value}" '
                    f"exists from transformers {entry.first}: loading a model with it raises "
                    "ValueError.",
                    [
                        _ev("packages.transformers.version", tf.version),
                        _ev(f"index:transformers.toml#{entry.value}.first", entry.first),
                    ],
                    fix=f'pip install -U "transformers>={entry.first}"',
                    backends=(name,),
                    sources=(entry.source,),
                )
            )
    if env.package("xformers") is not None:
        invalid = next(
            (i for i in rules.invalid_attn_implementations if i.value == "xformers"), None
        )
        if invalid is not None:
            out.append(
                ctx.finding(
                    "xformers-not-an-attn-implementation",
                    "info",
                    'attn_implementation="xformers" is not a transformers value',
                    "Guides suggest it, but transformers rejects it at model load: "
                    f"{invalid.error} (transformers {invalid.recorded_with}).",
                    [
                        _ev(
                            "packages.xformers.version",
                            _version_of(env, "xformers"),
                        ),
                        _ev("packages.transformers.version", tf.version if tf else None),
                    ],
                    fix_note=invalid.instead,
                    backends=("xformers",),
                    sources=(invalid.source,),
                )
            )
    if env.package("kernels") is not None:
        out.append(
            ctx.finding(
                "hub-kernels-need-network",
                "info",
                "Hub kernels download on first use",
                'attn_implementation="kernels-community/..." fetches the kernel from the Hugging '
                "Face Hub the first time; offline machines need it cached (or a kernels lockfile) "
                "first.",
                [
                    _ev(
                        "packages.kernels.version",
                        _version_of(env, "kernels"),
                    )
                ],
                backends=("hub_kernels",),
            )
        )
    return out


_FLASH_FOR_IMPL: dict[str, BackendName] = {
    info.attn_implementation: name
    for name, info in BACKENDS.items()
    if name.startswith("flash_attn_") and info.attn_implementation
}


def _hub_fallback_findings(ctx: _Ctx, table: dict[BackendName, BackendStatus]) -> list[Finding]:
    """What transformers really does here when asked for flash_attention_2/3/4 without the
    flash package: since 5.0 it loads the Hub kernel by itself if `kernels` is installed in
    its supported range (modeling_flash_attention_utils.py, FLASH_ATTN_KERNEL_FALLBACK)."""
    env, index = ctx.env, ctx.index
    tf = env.package("transformers")
    if index is None or tf is None or not env.nvidia_gpus:
        return []
    hub = index.hub
    tf_version = parse_version(tf.version)
    if tf_version is None or tf_version < Version(hub.transformers_fallback_since):
        return []
    kernels = env.package("kernels")
    kv = parse_version(kernels.version) if kernels is not None else None
    in_range = kv is not None and (
        Version(hub.kernels_min_version) <= kv < Version(hub.kernels_max_version)
    )
    out: list[Finding] = []
    for kernel in hub.kernels:
        backend = _FLASH_FOR_IMPL.get(kernel.replaces)
        if backend is None or table[backend].usable:
            continue  # the flash package itself serves this value
        sms = [g.sm for g in env.nvidia_gpus if g.sm is not None]
        if kernel.min_sm is not None and sms and max(sms) < kernel.min_sm:
            continue  # neither route runs on this GPU; the GPU findings say so
        evidence = [
            _ev("packages.transformers.version", tf.version),
            _ev("packages.kernels.version", kernels.version if kernels else None),
            _ev(f"index:hub_kernels.toml#{kernel.repo}", kernel.replaces),
        ]
        if in_range and kernels is not None:
            out.append(
                ctx.finding(
                    "transformers-hub-fallback",
                    "info",
                    f'attn_implementation="{kernel.replaces}" loads {kernel.repo} from the Hub',
                    f"{BACKENDS[backend].title} is not usable here, and transformers "
                    f"{tf.version} (>= {hub.transformers_fallback_since}) then falls back by "
                    f"itself to the Hub kernel {kernel.repo} because `kernels` {kernels.version} "
                    "is installed: it downloads on first use (network needed once).",
                    evidence,
                    fix_note="To pin what runs, install the flash package "
                    f"(attn-doctor install {BACKENDS[backend].distribution}) or load with "
                    f'attn_implementation="{kernel.repo}" explicitly.',
                    backends=(backend, "hub_kernels"),
                    sources=(hub.source,),
                )
            )
        elif kernels is not None:
            out.append(
                ctx.finding(
                    "transformers-hub-fallback-off",
                    "info",
                    f'no Hub fallback for attn_implementation="{kernel.replaces}"',
                    f"transformers {tf.version} falls back to {kernel.repo} only with `kernels` "
                    f">= {hub.kernels_min_version}, < {hub.kernels_max_version}; "
                    f"{kernels.version} is installed, so asking for {kernel.replaces} fails "
                    "at model load.",
                    evidence,
                    fix=f"pip install 'kernels>={hub.kernels_min_version},"
                    f"<{hub.kernels_max_version}'",
                    backends=(backend, "hub_kernels"),
                    sources=(hub.source,),
                )
            )
    return out


def _unknown_findings(ctx: _Ctx) -> list[Finding]:
    out = []
    for unk in ctx.env.unknowns:
        if unk.field in ("driver.version", "driver.cuda_version") and not ctx.env.nvidia_gpus:
            continue
        out.append(
            ctx.finding(
                "unknown-fact",
                "info",
                f"Unknown: {unk.field}",
                f"{unk.field} could not be read: {unk.reason}. Rules that need it were skipped.",
                [_ev(unk.field, None)],
            )
        )
    return out


# --- backend table and recommendations -----------------------------------------------------------


def _installed(env: Environment, name: BackendName) -> tuple[Tri, str | None]:
    info = BACKENDS[name]
    if name in TORCH_INTERNAL:
        return ("yes", env.torch.version) if env.torch else ("no", None)
    pkg = _pkg(env, *info.distributions)
    return ("yes", pkg.version) if pkg else ("no", None)


def _importable(env: Environment, name: BackendName, installed: Tri) -> tuple[Tri, str | None]:
    if installed != "yes":
        return "no", None
    module = BACKENDS[name].module or "torch"
    res = env.import_result(module)
    if res is None and "." in module:
        res = env.import_result(module.split(".")[0])
    if res is None:
        return "unknown", None
    if res.status == "ok":
        return "yes", None
    return "no", f"import {res.module} {res.status}: {res.detail or ''}".strip()


def _combined_verdict(ctx: _Ctx, name: BackendName) -> Verdict:
    rule = ctx.rules.backend(name)
    verdicts = [verdict(rule, dev, ctx.env) for dev in devices(ctx.env)]
    for v in verdicts:
        if v.compatible == "no":
            return v
    for v in verdicts:
        if v.compatible == "unknown":
            return v
    official = all(v.official for v in verdicts)
    return Verdict(compatible="yes", official=official, reason=verdicts[0].reason)


def _torch_blocked(findings: list[Finding]) -> Finding | None:
    return next((f for f in findings if f.id in _TORCH_BLOCKERS and f.severity == "error"), None)


def _backend_table(ctx: _Ctx, findings: list[Finding]) -> dict[BackendName, BackendStatus]:
    env = ctx.env
    blocker = _torch_blocked(findings)
    broken = {b for f in findings if f.severity == "error" for b in f.backends}
    table: dict[BackendName, BackendStatus] = {}
    gpu_machine = bool(env.gpus)
    for name in BACKEND_NAMES:
        rule = ctx.rules.backend(name)
        installed, version = _installed(env, name)
        importable, import_problem = _importable(env, name, installed)
        v = _combined_verdict(ctx, name)
        missing_needs = [
            need
            for need in (rule.needs if gpu_machine else ())
            if not (_pkg(env, *_TRITON_DISTRIBUTIONS) if need == "triton" else _pkg(env, need))
        ]
        reason: str
        usable = False
        if installed != "yes":
            how = "torch is not installed" if name in TORCH_INTERNAL else "not installed"
            reason = f"{how}; {v.reason}" if v.compatible != "yes" else how
        elif importable == "no":
            reason = import_problem or "fails to import"
        elif v.compatible != "yes":
            reason = v.reason
        elif gpu_machine and blocker is not None:
            reason = f"torch cannot use the GPU: {blocker.title}"
        elif name in broken:
            reason = next(f.title for f in findings if f.severity == "error" and name in f.backends)
        elif missing_needs:
            reason = f"needs {', '.join(missing_needs)} (not installed)"
        else:
            usable = True
            reason = v.reason if v.official else v.reason + " (not an upstream target)"
            if importable == "unknown" and name not in TORCH_INTERNAL:
                reason += "; import not tried (run check --deep)"
        table[name] = BackendStatus(
            backend=name,
            installed=installed,
            importable=importable if name not in TORCH_INTERNAL or installed == "yes" else "no",
            compatible=v.compatible,
            usable=usable,
            version=version,
            reason=reason,
            attn_implementation=BACKENDS[name].attn_implementation,
        )
    return table


def _recommend(
    ctx: _Ctx, table: dict[BackendName, BackendStatus], findings: list[Finding]
) -> list[Recommendation]:
    """The one decision (``attn_doctor.plan.decide``) per device, as recommendations."""
    from attn_doctor.plan.decide import candidates, decide

    env = ctx.env
    blocker = _torch_blocked(findings)
    if blocker is not None and not env.gpus and blocker.id != "no-torch":
        blocker = None  # a GPU-side problem does not stop a CPU-only machine
    recs: list[Recommendation] = []
    for dev in devices(env):
        compatible: dict[BackendName, tuple[bool, str]] = {}
        for name in candidates():
            v = verdict(ctx.rules.backend(name), dev, env)
            compatible[name] = (v.compatible == "yes", v.reason)
        routes = (
            {n: ctx.route(n) for n in candidates() if not BACKENDS[n].builtin}
            if ctx.index is not None
            else None
        )
        decision = decide(
            env,
            ctx.rules,
            table=table,
            blocker=blocker,
            compatible=compatible,
            route=routes,
            evidence=ctx.evidence,
            request=ctx.request,
            gpu=dev,
        )
        for choice in decision.choices:
            note = choice.way
            if choice.kernel is not None:
                kernel = BACKENDS[choice.kernel].title.removeprefix("torch SDPA: ")
                note += f"; its default dispatch runs the {kernel} here ({choice.kernel_source})"
            if choice.activate is not None:
                note += f"; {BACKENDS[choice.activate].title} measured faster here"
            if choice.score is not None and choice.measured:
                note += f"; measured {choice.score:.3g} TFLOP/s here (attn-doctor bench)"
            recs.append(
                Recommendation(
                    rank=choice.rank,
                    backend=choice.backend,
                    attn_implementation=choice.attn_implementation,
                    usable_now=choice.status == "ready",
                    reason=f"{choice.reason}; {note}",
                    gpu_index=decision.gpu_index,
                    status=choice.status,
                    way=choice.way,
                    score=choice.score,
                    measured=choice.measured,
                    kernel=choice.kernel,
                    kernel_source=choice.kernel_source,
                    activate=choice.activate,
                    auto=choice.auto,
                )
            )
    return recs


# --- folklore ----------------------------------------------------------------------------------


def _folklore(ctx: _Ctx, table: dict[BackendName, BackendStatus]) -> list[str]:
    env, rules = ctx.env, ctx.rules
    out: list[str] = []
    os_name = env.host.os
    tv = torch_version(env)
    if not env.gpus:
        if os_name == "darwin" and (env.host.arch or "") in ("arm64", "aarch64"):
            out.append(
                '"Linux -> flash-attn, Windows -> xformers" does not apply on Apple silicon: both '
                "are CUDA-only. torch's SDPA on the MPS device is the fast path here."
            )
        else:
            out.append(
                "No GPU here: flash-attn, xformers and unsloth are GPU projects; "
                "attn_implementation="
                '"sdpa" uses torch\'s CPU kernels.'
            )
        return out
    for gpu in devices(env):
        if gpu is None:
            continue
        label = gpu_label(gpu)
        if gpu.vendor == "amd":
            out.append(
                f'"Linux -> flash-attn" on {label}: flash-attn for ROCm is a source build (CK or '
                "Triton backend); torch's SDPA (AOTriton flash / memory-efficient kernels) "
                "needs no install."
            )
            out.append(
                f'"unsloth first" on {label}: unsloth\'s documented floor is NVIDIA compute '
                "capability 7.0; AMD support is not confirmed here."
            )
            continue
        if gpu.vendor != "nvidia" or gpu.sm is None:
            continue
        sm = gpu.sm
        if sm < 80:
            if os_name in ("linux",):
                out.append(
                    f'"Linux -> flash-attn" is wrong for {label}: flash-attn 2 needs Ampere (sm80) '
                    "or newer and fails with 'FlashAttention only supports Ampere GPUs or "
                    "newer'. Use "
                    'attn_implementation="sdpa" (memory-efficient kernel) or xformers.'
                )
            if sm < rules.backend("unsloth").min_sm:
                out.append(
                    f'"unsloth first" is wrong for {label}: unsloth needs compute capability 7.0 '
                    "or newer."
                )
        if os_name == "windows" and sm >= 80:
            floor = rules.backend("sdpa_flash").min_torch_for("windows")
            if tv is not None and floor and tv >= Version(floor):
                out.append(
                    f'"Windows -> xformers" is not needed on {label}: torch '
                    f"{env.torch.version if env.torch else ''} "
                    "on Windows already has SDPA's flash and memory-efficient kernels; "
                    'attn_implementation="sdpa" needs no extra package.'
                )
            elif tv is not None:
                out.append(
                    f'"Windows -> xformers" on {label}: torch '
                    f"{env.torch.version if env.torch else ''} has no SDPA "
                    f"flash kernel on Windows (added for torch >= {floor}); upgrading torch gives "
                    "it without xformers."
                )
        if os_name == "linux" and 80 <= sm < 90 and table["flash_attn_2"].installed != "yes":
            out.append(
                f'"Linux -> flash-attn" on {label}: correct hardware, but torch\'s SDPA flash '
                "kernel is FlashAttention-2 already; the flash-attn package adds mainly "
                "varlen/padding-free APIs."
            )
        if sm // 10 == 9:
            out.append(
                f"On {label} flash-attn 2 is not the fastest choice: FlashAttention-3 (and FA4) "
                "target Hopper, and torch's cuDNN SDPA kernel is tuned for it."
            )
        if sm >= 100:
            fa4 = verdict(rules.backend("flash_attn_4"), gpu, env)
            note = (
                "flash-attn-4 targets it"
                if fa4.compatible == "yes" and fa4.official
                else (
                    "flash-attn-4's code accepts it, though upstream advertises Hopper and "
                    "datacenter Blackwell"
                )
            )
            out.append(
                f"On {label} flash-attn 3 does not apply (Hopper only); {note}; SDPA "
                "needs a torch built with CUDA >= 12.8."
            )
    return list(dict.fromkeys(out))


# --- entry point ----------------------------------------------------------------------------------


def diagnose(
    env: Environment,
    rules: Rules,
    *,
    evidence: Evidence_ | None = None,
    request: Request | None = None,
    index: Index | None = None,
) -> Diagnosis:
    """Everything attn-doctor concludes about ``env``: findings, backend table, recommendations.

    ``evidence`` is what a bench run measured on this machine (same GPU, same torch); the
    recommendations are the one decision (``attn_doctor.plan.decide``) for each device.
    """
    ctx = _Ctx(env=env, rules=rules, evidence=evidence, request=request or Request(), index=index)
    findings: list[Finding] = []
    findings += _torch_findings(ctx)
    findings += _driver_findings(ctx)
    findings += _arch_findings(ctx)
    findings += _import_findings(ctx)
    findings += _build_label_findings(ctx)
    findings += _xformers_findings(ctx)
    findings += _pin_findings(ctx)
    findings += _conflict_findings(ctx)
    findings += _gpu_backend_findings(ctx)
    findings += _toolchain_findings(ctx)
    findings += _platform_findings(ctx)
    findings += _unknown_findings(ctx)
    table = _backend_table(ctx, findings)
    findings += _transformers_findings(ctx, table)
    findings += _hub_fallback_findings(ctx, table)
    ordered = sorted(
        enumerate(findings), key=lambda item: (_SEVERITY_ORDER[item[1].severity], item[0])
    )
    return Diagnosis(
        findings=tuple(f for _, f in ordered),
        backends=tuple(table[name] for name in BACKEND_NAMES),
        recommendations=tuple(_recommend(ctx, table, findings)),
        folklore=tuple(_folklore(ctx, table)),
    )
