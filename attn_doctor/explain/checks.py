"""Named machine checks that confirm or contradict a symptom's cause against an ``Environment``.

A check is written in the knowledge base as ``name`` or ``name:arg[:arg…]``; ``a|b`` means
"either". Arguments may name a value captured from the error message, ``{needed}``, so that
``glibc_below:{needed}`` compares this machine with the glibc version the message asked for.

Every check is a pure function of the facts: it answers ``confirmed``, ``contradicted`` or
``unknown`` and names the facts (with their values) it looked at. Unknown is never a guess:
it says which fact was missing and why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from packaging.version import InvalidVersion, Version

from attn_doctor.diagnosis import Evidence
from attn_doctor.facts import Environment, GpuFacts, PackageFacts

CheckStatus = Literal["confirmed", "contradicted", "unknown"]

_CAPTURE_REF = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """The outcome of one check on one machine."""

    check: str
    """The check as written in the knowledge base (after ``{capture}`` substitution)."""
    status: CheckStatus
    reason: str
    """One sentence: what was compared, or why it could not be."""
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True, kw_only=True)
class _Spec:
    """How a check is called: its argument count and its function."""

    nargs: int
    func: Callable[[Environment, tuple[str, ...]], CheckResult]
    help: str


def _res(
    check: str, status: CheckStatus, reason: str, *evidence: tuple[str, object]
) -> CheckResult:
    return CheckResult(
        check=check,
        status=status,
        reason=reason,
        evidence=tuple(Evidence(fact=f, value=_show(v)) for f, v in evidence),
    )


def _show(value: object) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _unknown(check: str, env: Environment, field: str, what: str) -> CheckResult:
    why = env.unknown_reason(field)
    reason = f"{what} is not known" + (f" ({why})" if why else "")
    return _res(check, "unknown", reason, (field, None))


def _ver(text: str | None) -> Version | None:
    if text is None:
        return None
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _release(text: str | None) -> Version | None:
    """The public release part of a version (``2.8.0+cu128`` -> ``2.8.0``)."""
    v = _ver(text)
    return None if v is None else Version(v.base_version)


def _mm(text: str | None) -> tuple[int, int] | None:
    """``major.minor`` of a dotted version string (``12.8`` or ``12.8.93``)."""
    if text is None:
        return None
    m = re.match(r"^\s*(\d+)(?:\.(\d+))?", text)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2) or 0)


def _fmt_mm(mm: tuple[int, int]) -> str:
    return f"{mm[0]}.{mm[1]}"


def _sm_text(gpu: GpuFacts) -> str:
    return f"{gpu.name} (sm_{gpu.sm})" if gpu.sm is not None else gpu.name


# --- GPU -------------------------------------------------------------------------------------


def _gpu_sms(env: Environment) -> list[GpuFacts]:
    return [g for g in env.nvidia_gpus if g.sm is not None]


def _gpu_sm_below(env: Environment, args: tuple[str, ...]) -> CheckResult:
    check = f"gpu_sm_below:{args[0]}"
    limit = _int_arg(args[0])
    gpus = _gpu_sms(env)
    if not gpus:
        return _unknown(check, env, "gpus", "the compute capability of an NVIDIA GPU")
    ev = tuple((f"gpus[{g.index}].compute_capability", g.compute_capability) for g in gpus)
    low = [g for g in gpus if g.sm is not None and g.sm < limit]
    if low:
        names = ", ".join(_sm_text(g) for g in low)
        return _res(check, "confirmed", f"{names} is below sm_{limit}", *ev)
    return _res(check, "contradicted", f"every NVIDIA GPU here is sm_{limit} or newer", *ev)


def _gpu_sm_at_least(env: Environment, args: tuple[str, ...]) -> CheckResult:
    check = f"gpu_sm_at_least:{args[0]}"
    limit = _int_arg(args[0])
    gpus = _gpu_sms(env)
    if not gpus:
        return _unknown(check, env, "gpus", "the compute capability of an NVIDIA GPU")
    ev = tuple((f"gpus[{g.index}].compute_capability", g.compute_capability) for g in gpus)
    high = [g for g in gpus if g.sm is not None and g.sm >= limit]
    if high:
        names = ", ".join(_sm_text(g) for g in high)
        return _res(check, "confirmed", f"{names} is sm_{limit} or newer", *ev)
    return _res(check, "contradicted", f"no NVIDIA GPU here is sm_{limit} or newer", *ev)


def _no_nvidia_gpu(env: Environment, _args: tuple[str, ...]) -> CheckResult:
    check = "no_nvidia_gpu"
    if env.nvidia_gpus:
        names = ", ".join(g.name for g in env.nvidia_gpus)
        return _res(check, "contradicted", f"NVIDIA GPU present: {names}", ("gpus", names))
    if env.unknown_reason("gpus") or env.unknown_reason("driver.version"):
        return _unknown(check, env, "gpus", "whether an NVIDIA GPU is present")
    return _res(check, "confirmed", "no NVIDIA GPU was found on this machine", ("gpus", "none"))


def _driver_missing(env: Environment, _args: tuple[str, ...]) -> CheckResult:
    check = "driver_missing"
    if env.driver.version is not None:
        return _res(
            check,
            "contradicted",
            f"NVIDIA driver {env.driver.version} is loaded",
            ("driver.version", env.driver.version),
        )
    if env.nvidia_gpus:
        return _res(
            check,
            "confirmed",
            "an NVIDIA GPU is present but no driver version could be read",
            ("driver.version", None),
            ("gpus", ", ".join(g.name for g in env.nvidia_gpus)),
        )
    reason = env.unknown_reason("driver.version")
    return _res(
        check,
        "confirmed",
        "no NVIDIA driver was found" + (f" ({reason})" if reason else ""),
        ("driver.version", None),
    )


# --- torch -----------------------------------------------------------------------------------


def _torch_missing(env: Environment, _args: tuple[str, ...]) -> CheckResult:
    if env.torch is None:
        return _res("torch_missing", "confirmed", "torch is not installed", ("torch", None))
    return _res(
        "torch_missing",
        "contradicted",
        f"torch {env.torch.version} is installed",
        ("torch.version", env.torch.version),
    )


def _torch_present(env: Environment, _args: tuple[str, ...]) -> CheckResult:
    if env.torch is None:
        return _res("torch_present", "contradicted", "torch is not installed", ("torch", None))
    return _res(
        "torch_present",
        "confirmed",
        f"torch {env.torch.version} is installed",
        ("torch.version", env.torch.version),
    )


def _torch_cpu_only(env: Environment, _args: tuple[str, ...]) -> CheckResult:
    check = "torch_cpu_only"
    if env.torch is None:
        return _res(check, "unknown", "torch is not installed", ("torch", None))
    ev = (("torch.version", env.torch.version), ("torch.build", env.torch.build))
    if env.torch.build == "cpu":
        return _res(check, "confirmed", f"torch {env.torch.version} is a CPU-only build", *ev)
    if env.torch.build == "unknown":
        return _res(check, "unknown", "torch's build flavour could not be read", *ev)
    return _res(check, "contradicted", f"torch is a {env.torch.build} build", *ev)


def _torch_build_is(env: Environment, args: tuple[str, ...]) -> CheckResult:
    check = f"torch_build_is:{args[0]}"
    if env.torch is None:
        return _res(check, "unknown", "torch is not installed", ("torch", None))
    ev = ("torch.build", env.torch.build)
    if env.torch.build == "unknown":
        return _res(check, "unknown", "torch's build flavour could not be read", ev)
    status: CheckStatus = "confirmed" if env.torch.build == args[0] else "contradicted"
    return _res(check, status, f"torch is a {env.torch.build} build", ev)


def _torch_cuda_below(env: Environment, args: tuple[str, ...]) -> CheckResult:
    check = f"torch_cuda_below:{args[0]}"
    limit = _mm(args[0])
    if env.torch is None or env.torch.cuda is None:
        return _unknown(check, env, "torch.cuda", "the CUDA version torch was built with")
    have = _mm(env.torch.cuda)
    if have is None or limit is None:
        return _res(check, "unknown", "unparsable CUDA version", ("torch.cuda", env.torch.cuda))
    status: CheckStatus = "confirmed" if have < limit else "contradicted"
    word = "older than" if have < limit else "not older than"
    return _res(
        check,
        status,
        f"torch is built with CUDA {env.torch.cuda}, {word} {args[0]}",
        ("torch.cuda", env.torch.cuda),
    )


def _torch_below(env: Environment, args: tuple[str, ...]) -> CheckResult:
    check = f"torch_below:{args[0]}"
    if env.torch is None:
        return _res(check, "unknown", "torch is not installed", ("torch", None))
    have, limit = _release(env.torch.version), _release(args[0])
    if have is None or limit is None:
        return _res(check, "unknown", "unparsable torch version", ("torch.version", None))
    status: CheckStatus = "confirmed" if have < limit else "contradicted"
    return _res(
        check,
        status,
        f"torch {env.torch.version} is {'older than' if have < limit else 'at least'} {args[0]}",
        ("torch.version", env.torch.version),
    )


# Minimum CUDA a torch build needs to carry kernels for a GPU generation: sm_90 first appears
# in CUDA 11.8, sm_100/sm_120 (Blackwell) in CUDA 12.8 (NVIDIA CUDA toolkit release notes).
_CUDA_FOR_SM: tuple[tuple[int, tuple[int, int]], ...] = ((100, (12, 8)), (90, (11, 8)))


def _torch_cuda_too_old_for_gpu(env: Environment, _args: tuple[str, ...]) -> CheckResult:
    check = "torch_cuda_too_old_for_gpu"
    gpus = _gpu_sms(env)
    if not gpus:
        return _unknown(check, env, "gpus", "the compute capability of an NVIDIA GPU")
    if env.torch is None or env.torch.cuda is None:
        return _unknown(check, env, "torch.cuda", "the CUDA version torch was built with")
    have = _mm(env.torch.cuda)
    if have is None:
        return _res(check, "unknown", "unparsable CUDA version", ("torch.cuda", env.torch.cuda))
    ev: list[tuple[str, object]] = [("torch.cuda", env.torch.cuda)]
    ev += [(f"gpus[{g.index}].compute_capability", g.compute_capability) for g in gpus]
    for gpu in gpus:
        for sm_floor, need in _CUDA_FOR_SM:
            if gpu.sm is not None and gpu.sm >= sm_floor and have < need:
                return _res(
                    check,
                    "confirmed",
                    f"{_sm_text(gpu)} needs a torch built with CUDA {_fmt_mm(need)} or newer; "
                    f"this torch is built with CUDA {env.torch.cuda}",
                    *ev,
                )
    return _res(check, "contradicted", "torch's CUDA is new enough for every GPU here", *ev)


def _torch_arch_list_lacks_gpu(env: Environment, _args: tuple[str, ...]) -> CheckResult:
    check = "torch_arch_list_lacks_gpu"
    rt = env.torch_runtime
    if rt is None or not rt.arch_list:
        return _res(
            check,
            "unknown",
            "torch's compiled GPU architectures are read only by `--deep` (torch imported "
            "in a child process)",
            ("torch_runtime.arch_list", None),
        )
    gpus = _gpu_sms(env)
    if not gpus:
        return _unknown(check, env, "gpus", "the compute capability of an NVIDIA GPU")
    sass = {int(a[3:]) for a in rt.arch_list if re.fullmatch(r"sm_\d+", a)}
    ptx = {int(a[8:]) for a in rt.arch_list if re.fullmatch(r"compute_\d+", a)}
    ev: list[tuple[str, object]] = [("torch_runtime.arch_list", " ".join(rt.arch_list))]
    ev += [(f"gpus[{g.index}].compute_capability", g.compute_capability) for g in gpus]
    for gpu in gpus:
        sm = gpu.sm
        assert sm is not None
        # A cubin runs on the same major with an equal or higher minor; PTX JIT-compiles upward.
        runs = any(s // 10 == sm // 10 and s <= sm for s in sass) or any(p <= sm for p in ptx)
        if not runs:
            return _res(check, "confirmed", f"torch carries no kernels for {_sm_text(gpu)}", *ev)
    return _res(check, "contradicted", "torch carries kernels for every GPU here", *ev)


# --- driver and toolkit ----------------------------------------------------------------------


def _driver_below_torch_cuda(env: Environment, _args: tuple[str, ...]) -> CheckResult:
    check = "driver_below_torch_cuda"
    if env.torch is None or env.torch.cuda is None:
        return _unknown(check, env, "torch.cuda", "the CUDA version torch was built with")
    if env.driver.cuda_version is None:
        return _unknown(check, env, "driver.cuda_version", "the driver's highest CUDA version")
    drv, tch = _mm(env.driver.cuda_version), _mm(env.torch.cuda)
    ev = (
        ("driver.version", env.driver.version),
        ("driver.cuda_version", env.driver.cuda_version),
        ("torch.cuda", env.torch.cuda),
    )
    if drv is None or tch is None:
        return _res(check, "unknown", "unparsable CUDA version", *ev)
    # Minor-version compatibility lets a driver of the same CUDA major run newer minors for
    # most code, but torch refuses a driver below its major (CUDA compatibility guide).
    if drv[0] < tch[0]:
        return _res(
            check,
            "confirmed",
            f"the driver supports CUDA {env.driver.cuda_version}, torch needs CUDA {tch[0]}.x",
            *ev,
        )
    if drv < tch:
        return _res(
            check,
            "confirmed",
            f"the driver supports CUDA {env.driver.cuda_version}, older than torch's "
            f"CUDA {env.torch.cuda} (same major: most, not all, kernels still load)",
            *ev,
        )
    return _res(
        check,
        "contradicted",
        f"the driver supports CUDA {env.driver.cuda_version}, enough for torch's "
        f"CUDA {env.torch.cuda}",
        *ev,
    )


def _nvcc_missing(env: Environment, _args: tuple[str, ...]) -> CheckResult:
    tk = env.cuda_toolkit
    if tk.nvcc_path is None:
        why = env.unknown_reason("cuda_toolkit.nvcc_path")
        return _res(
            "nvcc_missing",
            "confirmed",
            "nvcc was not found" + (f" ({why})" if why else ""),
            ("cuda_toolkit.nvcc_path", None),
            ("cuda_toolkit.cuda_home", tk.cuda_home),
        )
    return _res(
        "nvcc_missing",
        "contradicted",
        f"nvcc {tk.release or tk.nvcc_version or ''} found at {tk.nvcc_path}".replace("  ", " "),
        ("cuda_toolkit.nvcc_path", tk.nvcc_path),
    )


def _nvcc_present(env: Environment, args: tuple[str, ...]) -> CheckResult:
    res = _nvcc_missing(env, args)
    flipped: CheckStatus = "confirmed" if res.status == "contradicted" else "contradicted"
    return CheckResult(
        check="nvcc_present", status=flipped, reason=res.reason, evidence=res.evidence
    )


def _nvcc_major_differs_from_torch(env: Environment, _args: tuple[str, ...]) -> CheckResult:
    check = "nvcc_major_differs_from_torch"
    tk = env.cuda_toolkit
    if tk.nvcc_path is None or tk.release is None:
        return _unknown(check, env, "cuda_toolkit.release", "the nvcc release")
    if env.torch is None or env.torch.cuda is None:
        return _unknown(check, env, "torch.cuda", "the CUDA version torch was built with")
    nv, tch = _mm(tk.release), _mm(env.torch.cuda)
    ev = (("cuda_toolkit.release", tk.release), ("torch.cuda", env.torch.cuda))
    if nv is None or tch is None:
        return _res(check, "unknown", "unparsable CUDA version", *ev)
    if nv[0] != tch[0]:
        return _res(
            check,
            "confirmed",
            f"nvcc is CUDA {tk.release}, torch was built with CUDA {env.torch.cuda}",
            *ev,
        )
    return _res(check, "contradicted", "nvcc and torch share the CUDA major version", *ev)


def _nvcc_below(env: Environment, args: tuple[str, ...]) -> CheckResult:
    check = f"nvcc_below:{args[0]}"
    tk = env.cuda_toolkit
    if tk.nvcc_path is None or tk.release is None:
        return _unknown(check, env, "cuda_toolkit.release", "the nvcc release")
    have, need = _mm(tk.release), _mm(args[0])
    if have is None or need is None:
        return _unknown(check, env, "cuda_toolkit.release", "the nvcc release")
    ev = ("cuda_toolkit.release", tk.release)
    if have < need:
        return _res(check, "confirmed", f"nvcc {tk.release} is older than CUDA {args[0]}", ev)
    return _res(check, "contradicted", f"nvcc {tk.release} is CUDA {args[0]} or newer", ev)


# The first CUDA toolkit whose nvcc accepts each -gencode architecture (NVIDIA's CUDA toolkit
# release notes: sm_80 in 11.0, sm_86 11.1, sm_87 11.4, sm_89/sm_90 11.8, sm_90a 12.0,
# sm_100/sm_101/sm_120 12.8, sm_103/sm_121 12.9, sm_110 13.0).
NVCC_ARCH_MIN_CUDA = {
    "70": "9.0",
    "72": "10.0",
    "75": "10.0",
    "80": "11.0",
    "86": "11.1",
    "87": "11.4",
    "89": "11.8",
    "90": "11.8",
    "90a": "12.0",
    "100": "12.8",
    "100a": "12.8",
    "101": "12.8",
    "101a": "12.8",
    "103": "12.9",
    "103a": "12.9",
    "110": "13.0",
    "110a": "13.0",
    "120": "12.8",
    "120a": "12.8",
    "121": "12.9",
    "121a": "12.9",
}


def _nvcc_too_old_for_arch(env: Environment, args: tuple[str, ...]) -> CheckResult:
    arch = args[0].lower().removeprefix("compute_").removeprefix("sm_")
    check = f"nvcc_too_old_for_arch:{arch}"
    need = NVCC_ARCH_MIN_CUDA.get(arch)
    if need is None:
        return _res(check, "unknown", f"no known minimum CUDA for architecture {arch}")
    res = _nvcc_below(env, (need,))
    reason = f"{res.reason}; compute_{arch} needs CUDA {need} or newer"
    return CheckResult(check=check, status=res.status, reason=reason, evidence=res.evidence)


def _nvcc_newer_than_driver(env: Environment, _args: tuple[str, ...]) -> CheckResult:
    check = "nvcc_newer_than_driver"
    tk = env.cuda_toolkit
    if tk.nvcc_path is None or tk.release is None:
        return _unknown(check, env, "cuda_toolkit.release", "the nvcc release")
    if env.driver.cuda_version is None:
        return _unknown(check, env, "driver.cuda_version", "the driver's highest CUDA version")
    nv, drv = _mm(tk.release), _mm(env.driver.cuda_version)
    ev = (("cuda_toolkit.release", tk.release), ("driver.cuda_version", env.driver.cuda_version))
    if nv is None or drv is None:
        return _res(check, "unknown", "unparsable CUDA version", *ev)
    if nv > drv:
        return _res(
            check,
            "confirmed",
            f"nvcc {tk.release} emits PTX the driver (CUDA {env.driver.cuda_version}) cannot load",
            *ev,
        )
    return _res(check, "contradicted", "the driver is at least as new as nvcc", *ev)


def _cuda_home_unset(env: Environment, _args: tuple[str, ...]) -> CheckResult:
    tk = env.cuda_toolkit
    home = env.env("CUDA_HOME") or env.env("CUDA_PATH") or tk.cuda_home
    if home is None:
        return _res(
            "cuda_home_unset",
            "confirmed",
            "neither CUDA_HOME nor an nvcc on PATH is set",
            ("cuda_toolkit.cuda_home", None),
        )
    return _res(
        "cuda_home_unset",
        "contradicted",
        f"CUDA home is {home}",
        ("cuda_toolkit.cuda_home", home),
    )


# --- host ------------------------------------------------------------------------------------

GIB = 1024**3


def _build_gib_per_job() -> float:
    """Peak GiB of one flash-attn compile job at the NVCC_THREADS attn-doctor sets (the rules'
    per-thread figure from flash-attn's setup.py, the same one MAX_JOBS is computed from)."""
    from attn_doctor.plan.machine import SOURCE_BUILD_NVCC_THREADS
    from attn_doctor.rules import load_rules

    return float(load_rules().source_build.gb_per_nvcc_thread * SOURCE_BUILD_NVCC_THREADS)


def suggested_max_jobs(env: Environment) -> int | None:
    """MAX_JOBS for a flash-attn source build that fits in free RAM, by flash-attn's own rule
    (``plan.machine.source_build_jobs``) at the NVCC_THREADS every fix command sets."""
    from attn_doctor.plan.machine import SOURCE_BUILD_NVCC_THREADS, source_build_jobs
    from attn_doctor.rules import load_rules

    if env.host.ram_available_bytes is None:
        return None
    build = load_rules().source_build
    return source_build_jobs(
        env.host.cpu_count,
        env.host.ram_available_bytes,
        gib_per_nvcc_thread=build.gb_per_nvcc_thread,
        nvcc_threads=SOURCE_BUILD_NVCC_THREADS,
    )


def _ram_per_job_low(env: Environment, _args: tuple[str, ...]) -> CheckResult:
    check = "ram_per_job_low"
    avail, cpus = env.host.ram_available_bytes, env.host.cpu_count
    if avail is None:
        return _unknown(check, env, "host.ram_available_bytes", "the available RAM")
    if cpus is None:
        return _unknown(check, env, "host.cpu_count", "the CPU count")
    per_cpu = avail / GIB / cpus
    per_job = _build_gib_per_job()
    ev = (
        ("host.ram_available_bytes", f"{avail / GIB:.1f} GiB"),
        ("host.cpu_count", cpus),
        ("env.MAX_JOBS", env.env("MAX_JOBS")),
    )
    if per_cpu < per_job:
        return _res(
            check,
            "confirmed",
            f"{avail / GIB:.1f} GiB free for {cpus} CPUs ({per_cpu:.1f} GiB each): one "
            f"parallel compile job per CPU needs about {per_job:g} GiB each",
            *ev,
        )
    return _res(check, "contradicted", f"{per_cpu:.1f} GiB free per CPU", *ev)


def _glibc_below(env: Environment, args: tuple[str, ...]) -> CheckResult:
    check = f"glibc_below:{args[0]}"
    if env.host.libc != "glibc" or env.host.libc_version is None:
        if env.host.libc == "musl":
            return _res(
                check, "confirmed", "this system uses musl, not glibc", ("host.libc", "musl")
            )
        return _unknown(check, env, "host.libc_version", "the glibc version")
    have, need = _mm(env.host.libc_version), _mm(args[0])
    ev = ("host.libc_version", env.host.libc_version)
    if have is None or need is None:
        return _res(check, "unknown", "unparsable glibc version", ev)
    status: CheckStatus = "confirmed" if have < need else "contradicted"
    word = "older than" if have < need else "at least"
    return _res(check, status, f"glibc {env.host.libc_version} is {word} {args[0]}", ev)


def _os_is(env: Environment, args: tuple[str, ...]) -> CheckResult:
    status: CheckStatus = "confirmed" if env.host.os == args[0] else "contradicted"
    return _res(f"os_is:{args[0]}", status, f"the OS is {env.host.os}", ("host.os", env.host.os))


def _conda_env_active(env: Environment, _args: tuple[str, ...]) -> CheckResult:
    name = env.python.conda_env
    if name:
        return _res(
            "conda_env_active",
            "confirmed",
            f"conda environment {name!r} is active",
            ("python.conda_env", name),
        )
    return _res(
        "conda_env_active",
        "contradicted",
        "no conda environment is active",
        ("python.conda_env", None),
    )


def _python_at_least(env: Environment, args: tuple[str, ...]) -> CheckResult:
    check = f"python_at_least:{args[0]}"
    have, need = _mm(env.python.version), _mm(args[0])
    ev = ("python.version", env.python.version)
    if have is None or need is None:
        return _res(check, "unknown", "unparsable Python version", ev)
    status: CheckStatus = "confirmed" if have >= need else "contradicted"
    return _res(check, status, f"Python is {env.python.version}", ev)


def _env_var_set(env: Environment, args: tuple[str, ...]) -> CheckResult:
    value = env.env(args[0])
    status: CheckStatus = "confirmed" if value is not None else "contradicted"
    return _res(
        f"env_var_set:{args[0]}",
        status,
        f"{args[0]} is {'set' if value is not None else 'not set'}",
        (f"env.{args[0]}", value),
    )


# --- packages --------------------------------------------------------------------------------


def _package_missing(env: Environment, args: tuple[str, ...]) -> CheckResult:
    pkg = env.package(args[0])
    if pkg is None:
        return _res(
            f"package_missing:{args[0]}",
            "confirmed",
            f"{args[0]} is not installed",
            (f"packages.{args[0]}", None),
        )
    return _res(
        f"package_missing:{args[0]}",
        "contradicted",
        f"{args[0]} {pkg.version} is installed",
        (f"packages.{args[0]}", pkg.version),
    )


def _package_installed(env: Environment, args: tuple[str, ...]) -> CheckResult:
    res = _package_missing(env, args)
    flipped: CheckStatus = "confirmed" if res.status == "contradicted" else "contradicted"
    return CheckResult(
        check=f"package_installed:{args[0]}",
        status=flipped,
        reason=res.reason,
        evidence=res.evidence,
    )


def _package_version_cmp(env: Environment, args: tuple[str, ...], *, below: bool) -> CheckResult:
    name, limit_text = args
    check = f"package_version_{'below' if below else 'at_least'}:{name}:{limit_text}"
    pkg = env.package(name)
    if pkg is None:
        return _res(check, "contradicted", f"{name} is not installed", (f"packages.{name}", None))
    have, limit = _release(pkg.version), _release(limit_text)
    ev = (f"packages.{name}", pkg.version)
    if have is None or limit is None:
        return _res(check, "unknown", f"unparsable version {pkg.version!r}", ev)
    hit = have < limit if below else have >= limit
    return _res(
        check,
        "confirmed" if hit else "contradicted",
        f"{name} {pkg.version} is {'older than' if have < limit else 'at least'} {limit_text}",
        ev,
    )


def _package_version_below(env: Environment, args: tuple[str, ...]) -> CheckResult:
    return _package_version_cmp(env, args, below=True)


def _package_version_at_least(env: Environment, args: tuple[str, ...]) -> CheckResult:
    return _package_version_cmp(env, args, below=False)


_LABEL_TORCH = re.compile(r"torch(\d+\.\d+(?:\.\d+)?)")
_LABEL_CUDA = re.compile(r"cu(\d+)")
_LABEL_ABI = re.compile(r"cxx11abi(TRUE|FALSE)", re.IGNORECASE)
_REQ_TORCH = re.compile(r"^torch\s*==\s*([^\s;,]+)")


def built_for(pkg: PackageFacts) -> dict[str, tuple[str, str]]:
    """What a package says it was built for: key -> (value, where it was read).

    Keys: ``torch`` (version), ``cuda`` (e.g. ``12`` or ``121``), ``cxx11_abi`` (``TRUE`` or
    ``FALSE``). Sources, in order: ``build_info`` (xformers' ``cpp_lib.json`` and the like),
    the local version label (``2.7.4.post1+cu12torch2.4cxx11abiTRUE``), a ``torch==`` pin in
    Requires-Dist.
    """
    found: dict[str, tuple[str, str]] = {}
    info = dict(pkg.build_info)
    for key in ("torch", "cuda", "cxx11_abi"):
        if key in info:
            found[key] = (info[key], f"packages.{pkg.name}.build_info.{key}")
    _, _, label = pkg.version.partition("+")
    for value in info.values():
        if "torch" in value and "cu" in value:
            label = label or value
    if label:
        where = f"packages.{pkg.name}.version"
        if (m := _LABEL_TORCH.search(label)) and "torch" not in found:
            found["torch"] = (m.group(1), where)
        if (m := _LABEL_CUDA.search(label)) and "cuda" not in found:
            found["cuda"] = (m.group(1), where)
        if (m := _LABEL_ABI.search(label)) and "cxx11_abi" not in found:
            found["cxx11_abi"] = (m.group(1).upper(), where)
    if "torch" not in found:
        for req in pkg.requires:
            if m := _REQ_TORCH.match(req.strip()):
                found["torch"] = (m.group(1), f"packages.{pkg.name}.requires")
                break
    return found


def _torch_matches(built: str, have: str) -> bool:
    """Does ``have`` (installed torch) satisfy ``built`` (what a package was built for)?

    Compares as many release components as ``built`` gives (``2.4`` matches ``2.4.1``) and,
    when both carry a local label, CUDA-ness (``+cu121`` does not match ``+cpu``).
    """
    b_rel, _, b_lab = built.partition("+")
    h_rel, _, h_lab = have.partition("+")
    b_parts = b_rel.split(".")
    h_parts = h_rel.split(".")
    if h_parts[: len(b_parts)] != b_parts:
        return False
    if b_lab and h_lab:
        return b_lab.startswith("cu") == h_lab.startswith("cu")
    return True


def _built_for_other_torch(env: Environment, args: tuple[str, ...]) -> CheckResult:
    name = args[0]
    check = f"built_for_other_torch:{name}"
    pkg = env.package(name)
    if pkg is None:
        return _res(check, "unknown", f"{name} is not installed here", (f"packages.{name}", None))
    if env.torch is None:
        return _res(check, "confirmed", f"{name} is installed but torch is not", ("torch", None))
    info = built_for(pkg).get("torch")
    if info is None:
        return _res(
            check,
            "unknown",
            f"{name} {pkg.version} does not record which torch it was built for",
            (f"packages.{name}.version", pkg.version),
            ("torch.version", env.torch.version),
        )
    built, where = info
    ev = ((where, built), ("torch.version", env.torch.version))
    if _torch_matches(built, env.torch.version):
        return _res(
            check,
            "contradicted",
            f"{name} was built for torch {built}, torch {env.torch.version} is installed",
            *ev,
        )
    return _res(
        check,
        "confirmed",
        f"{name} was built for torch {built}, but torch {env.torch.version} is installed",
        *ev,
    )


def _abi_mismatch(env: Environment, args: tuple[str, ...]) -> CheckResult:
    name = args[0]
    check = f"abi_mismatch:{name}"
    pkg = env.package(name)
    if pkg is None:
        return _res(check, "unknown", f"{name} is not installed here", (f"packages.{name}", None))
    if env.torch is None or env.torch.cxx11_abi is None:
        return _unknown(check, env, "torch.cxx11_abi", "torch's C++11 ABI flag")
    info = built_for(pkg).get("cxx11_abi")
    torch_abi = "TRUE" if env.torch.cxx11_abi else "FALSE"
    if info is None:
        return _res(
            check,
            "unknown",
            f"{name} {pkg.version} does not record its C++11 ABI flag",
            (f"packages.{name}.version", pkg.version),
            ("torch.cxx11_abi", torch_abi),
        )
    built, where = info
    ev = ((where, built), ("torch.cxx11_abi", torch_abi))
    status: CheckStatus = "confirmed" if built != torch_abi else "contradicted"
    return _res(
        check,
        status,
        f"{name} was built with cxx11abi={built}, torch uses cxx11abi={torch_abi}",
        *ev,
    )


def _built_for_other_cuda_major(env: Environment, args: tuple[str, ...]) -> CheckResult:
    name = args[0]
    check = f"built_for_other_cuda_major:{name}"
    pkg = env.package(name)
    if pkg is None:
        return _res(check, "unknown", f"{name} is not installed here", (f"packages.{name}", None))
    if env.torch is None or env.torch.cuda is None:
        return _unknown(check, env, "torch.cuda", "the CUDA version torch was built with")
    info = built_for(pkg).get("cuda")
    if info is None:
        return _res(
            check,
            "unknown",
            f"{name} {pkg.version} does not record its CUDA version",
            (f"packages.{name}.version", pkg.version),
            ("torch.cuda", env.torch.cuda),
        )
    built, where = info
    built_major = built.split(".")[0]
    # Labels write CUDA as ``12``, ``121`` or ``1201`` (xformers): the major is the leading
    # one or two digits, and CUDA majors are two digits since 10.
    if "." not in built and len(built_major) > 2:
        built_major = built_major[:2]
    torch_major = env.torch.cuda.split(".")[0]
    ev = ((where, built), ("torch.cuda", env.torch.cuda))
    status: CheckStatus = "confirmed" if built_major != torch_major else "contradicted"
    return _res(
        check, status, f"{name} was built for CUDA {built}, torch uses CUDA {env.torch.cuda}", *ev
    )


def _import_status(env: Environment, module: str, check: str, want: set[str]) -> CheckResult:
    res = env.import_result(module)
    if res is None:
        return _res(
            check,
            "unknown",
            f"importing {module} was not tried (run with --deep)",
            (f"import:{module}", None),
        )
    detail = f"{res.status}" + (f": {res.detail}" if res.detail else "")
    status: CheckStatus = "confirmed" if res.status in want else "contradicted"
    return _res(
        check,
        status,
        f"importing {module} in a child process: {detail}",
        (f"import:{module}", detail),
    )


def _import_failed(env: Environment, args: tuple[str, ...]) -> CheckResult:
    return _import_status(env, args[0], f"import_failed:{args[0]}", {"error", "crashed", "timeout"})


def _import_crashed(env: Environment, args: tuple[str, ...]) -> CheckResult:
    return _import_status(env, args[0], f"import_crashed:{args[0]}", {"crashed"})


def _triton_missing(env: Environment, _args: tuple[str, ...]) -> CheckResult:
    for name in ("triton", "triton-windows", "pytorch-triton", "pytorch-triton-rocm"):
        pkg = env.package(name)
        if pkg is not None:
            return _res(
                "triton_missing",
                "contradicted",
                f"{name} {pkg.version} is installed",
                (f"packages.{name}", pkg.version),
            )
    return _res(
        "triton_missing",
        "confirmed",
        "no triton distribution is installed",
        ("packages.triton", None),
    )


def _int_arg(text: str) -> int:
    return int(text)


CHECKS: Mapping[str, _Spec] = {
    "gpu_sm_below": _Spec(
        nargs=1, func=_gpu_sm_below, help="an NVIDIA GPU's compute capability is below smN"
    ),
    "gpu_sm_at_least": _Spec(nargs=1, func=_gpu_sm_at_least, help="an NVIDIA GPU is smN or newer"),
    "no_nvidia_gpu": _Spec(nargs=0, func=_no_nvidia_gpu, help="no NVIDIA GPU is present"),
    "driver_missing": _Spec(nargs=0, func=_driver_missing, help="no NVIDIA driver is loaded"),
    "torch_missing": _Spec(nargs=0, func=_torch_missing, help="torch is not installed"),
    "torch_present": _Spec(nargs=0, func=_torch_present, help="torch is installed"),
    "torch_cpu_only": _Spec(nargs=0, func=_torch_cpu_only, help="torch is a CPU-only build"),
    "torch_build_is": _Spec(
        nargs=1, func=_torch_build_is, help="torch's build flavour (cuda, rocm, cpu, xpu)"
    ),
    "torch_cuda_below": _Spec(
        nargs=1, func=_torch_cuda_below, help="torch is built with a CUDA older than X.Y"
    ),
    "torch_below": _Spec(nargs=1, func=_torch_below, help="torch is older than X.Y"),
    "torch_cuda_too_old_for_gpu": _Spec(
        nargs=0, func=_torch_cuda_too_old_for_gpu, help="torch's CUDA predates this GPU generation"
    ),
    "torch_arch_list_lacks_gpu": _Spec(
        nargs=0, func=_torch_arch_list_lacks_gpu, help="torch has no kernels for this GPU (--deep)"
    ),
    "driver_below_torch_cuda": _Spec(
        nargs=0, func=_driver_below_torch_cuda, help="the driver's CUDA is older than torch's"
    ),
    "nvcc_missing": _Spec(nargs=0, func=_nvcc_missing, help="nvcc is not found"),
    "nvcc_present": _Spec(nargs=0, func=_nvcc_present, help="nvcc is found"),
    "nvcc_major_differs_from_torch": _Spec(
        nargs=0, func=_nvcc_major_differs_from_torch, help="nvcc's CUDA major differs from torch's"
    ),
    "nvcc_below": _Spec(nargs=1, func=_nvcc_below, help="nvcc is older than CUDA X.Y"),
    "nvcc_too_old_for_arch": _Spec(
        nargs=1, func=_nvcc_too_old_for_arch, help="nvcc predates a GPU architecture (compute_XY)"
    ),
    "nvcc_newer_than_driver": _Spec(
        nargs=0, func=_nvcc_newer_than_driver, help="nvcc is newer than the driver's CUDA"
    ),
    "cuda_home_unset": _Spec(
        nargs=0, func=_cuda_home_unset, help="neither CUDA_HOME nor nvcc is set up"
    ),
    "ram_per_job_low": _Spec(
        nargs=0, func=_ram_per_job_low, help="free RAM per CPU is too small for parallel nvcc jobs"
    ),
    "glibc_below": _Spec(nargs=1, func=_glibc_below, help="glibc is older than X.Y"),
    "os_is": _Spec(nargs=1, func=_os_is, help="the OS is linux, windows or darwin"),
    "conda_env_active": _Spec(
        nargs=0, func=_conda_env_active, help="a conda environment is active"
    ),
    "python_at_least": _Spec(nargs=1, func=_python_at_least, help="Python is X.Y or newer"),
    "env_var_set": _Spec(nargs=1, func=_env_var_set, help="an environment variable is set"),
    "package_missing": _Spec(nargs=1, func=_package_missing, help="a distribution is absent"),
    "package_installed": _Spec(
        nargs=1, func=_package_installed, help="a distribution is installed"
    ),
    "package_version_below": _Spec(
        nargs=2, func=_package_version_below, help="a distribution is older than a version"
    ),
    "package_version_at_least": _Spec(
        nargs=2, func=_package_version_at_least, help="a distribution is at least a version"
    ),
    "built_for_other_torch": _Spec(
        nargs=1, func=_built_for_other_torch, help="a package was built for another torch"
    ),
    "abi_mismatch": _Spec(
        nargs=1, func=_abi_mismatch, help="a package's C++11 ABI flag differs from torch's"
    ),
    "built_for_other_cuda_major": _Spec(
        nargs=1, func=_built_for_other_cuda_major, help="a package was built for another CUDA major"
    ),
    "import_failed": _Spec(nargs=1, func=_import_failed, help="a module failed to import (--deep)"),
    "import_crashed": _Spec(
        nargs=1, func=_import_crashed, help="importing a module crashed the process (--deep)"
    ),
    "triton_missing": _Spec(nargs=0, func=_triton_missing, help="no triton is installed"),
}


def split_check(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """``a:1|b`` -> ``[("a", ("1",)), ("b", ())]`` (the alternatives of one check)."""
    out = []
    for alt in text.split("|"):
        name, *args = alt.strip().split(":")
        out.append((name, tuple(args)))
    return out


def check_problem(text: str) -> str | None:
    """Why a check as written in the knowledge base is malformed, or None if it is fine."""
    if not text.strip():
        return "empty check"
    for name, args in split_check(text):
        spec = CHECKS.get(name)
        if spec is None:
            return f"unknown check {name!r} (known: {', '.join(sorted(CHECKS))})"
        if len(args) != spec.nargs:
            return f"check {name!r} takes {spec.nargs} argument(s), got {len(args)}"
        if any(not a for a in args):
            return f"check {name!r} has an empty argument"
        needs_int = spec.func in (_gpu_sm_below, _gpu_sm_at_least)
        if needs_int and not _CAPTURE_REF.search(args[0]) and not args[0].isdigit():
            return f"check {name!r} needs an integer sm, got {args[0]!r}"
    return None


def capture_refs(text: str) -> set[str]:
    """The ``{name}`` capture references in a check."""
    return set(_CAPTURE_REF.findall(text))


_IMPORT_CHECKS = frozenset({"import_failed", "import_crashed"})


def _in_scope(name: str, args: tuple[str, ...], scope: str | None) -> bool:
    """Whether an alternative may speak for the package in ``scope`` (None: any package)."""
    if scope is None or name not in _IMPORT_CHECKS:
        return True
    return args[0].split(".")[0] == scope.split(".")[0]


def evaluate_check(
    text: str,
    env: Environment,
    captures: Mapping[str, str] | None = None,
    *,
    import_scope: str | None = None,
) -> CheckResult:
    """Evaluate one check (with ``|`` alternatives) against the facts.

    ``{name}`` in the arguments is replaced by the value captured from the message; a missing
    capture makes the check unknown. ``import_scope`` (a module, for ``check --deep``'s
    explanation of that module's failed import) keeps only the import alternatives about that
    module's own package: another package's crash is no evidence about this one.
    """
    caps = captures or {}
    missing = sorted(r for r in capture_refs(text) if r not in caps)
    if missing:
        return CheckResult(
            check=text,
            status="unknown",
            reason=f"the message did not give {', '.join(missing)}",
        )
    filled = _CAPTURE_REF.sub(lambda m: caps[m.group(1)], text)
    results = []
    alternatives = [(n, a) for n, a in split_check(filled) if _in_scope(n, a, import_scope)]
    if not alternatives:
        return CheckResult(
            check=filled,
            status="unknown",
            reason=f"the check is about another package than {import_scope}",
        )
    for name, args in alternatives:
        try:
            results.append(CHECKS[name].func(env, args))
        except (ValueError, KeyError) as exc:  # a capture that is not a number, say
            results.append(
                CheckResult(check=filled, status="unknown", reason=f"cannot evaluate: {exc}")
            )
    if len(results) == 1:
        return results[0]
    evidence = tuple(dict.fromkeys(e for r in results for e in r.evidence))
    for r in results:
        if r.status == "confirmed":
            return CheckResult(check=filled, status="confirmed", reason=r.reason, evidence=evidence)
    if all(r.status == "contradicted" for r in results):
        reason = "; ".join(r.reason for r in results)
        return CheckResult(check=filled, status="contradicted", reason=reason, evidence=evidence)
    reason = "; ".join(r.reason for r in results if r.status == "unknown")
    return CheckResult(check=filled, status="unknown", reason=reason, evidence=evidence)
