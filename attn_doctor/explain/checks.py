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

from attn_doctor.explain.checks_base import (
    CheckResult,
    CheckStatus,
    _fmt_mm,
    _gpu_sms,
    _mm,
    _release,
    _res,
    _sm_text,
    _unknown,
)
from attn_doctor.explain.checks_host import (
    NVCC_ARCH_MIN_CUDA,
    _conda_env_active,
    _cuda_home_unset,
    _driver_below_torch_cuda,
    _env_var_set,
    _glibc_below,
    _nvcc_below,
    _nvcc_major_differs_from_torch,
    _nvcc_missing,
    _nvcc_newer_than_driver,
    _nvcc_present,
    _nvcc_too_old_for_arch,
    _os_is,
    _python_at_least,
    _ram_per_job_low,
    suggested_max_jobs,
)
from attn_doctor.explain.checks_packages import (
    _abi_mismatch,
    _built_for_other_cuda_major,
    _built_for_other_torch,
    _import_crashed,
    _import_failed,
    _package_installed,
    _package_missing,
    _package_version_at_least,
    _package_version_below,
    _triton_missing,
    built_for,
)
from attn_doctor.facts import Environment

__all__ = [
    "NVCC_ARCH_MIN_CUDA",
    "CheckResult",
    "built_for",
    "capture_refs",
    "check_problem",
    "evaluate_check",
    "split_check",
    "suggested_max_jobs",
]

_CAPTURE_REF = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, kw_only=True)
class _Spec:
    """How a check is called: its argument count and its function."""

    nargs: int
    func: Callable[[Environment, tuple[str, ...]], CheckResult]
    help: str


# --- GPU -------------------------------------------------------------------------------------


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
