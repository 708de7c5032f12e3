"""Machine checks of the driver, the CUDA toolkit and the host (glibc, OS, conda, Python,
environment variables, RAM per build job)."""

from __future__ import annotations

from attn_doctor.explain.checks_base import (
    CheckResult,
    CheckStatus,
    _mm,
    _res,
    _unknown,
)
from attn_doctor.facts import Environment


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
    from attn_doctor.planner.machine import SOURCE_BUILD_NVCC_THREADS
    from attn_doctor.rules_data import load_rules

    return float(load_rules().source_build.gb_per_nvcc_thread * SOURCE_BUILD_NVCC_THREADS)


def suggested_max_jobs(env: Environment) -> int | None:
    """MAX_JOBS for a flash-attn source build that fits in free RAM, by flash-attn's own rule
    (``plan.machine.source_build_jobs``) at the NVCC_THREADS every fix command sets."""
    from attn_doctor.planner.machine import SOURCE_BUILD_NVCC_THREADS, source_build_jobs
    from attn_doctor.rules_data import load_rules

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
