"""Machine checks of installed packages: present, missing, versions, what a binary was built
for (torch, C++ ABI, CUDA), child-process imports, Triton."""

from __future__ import annotations

import re

from attn_doctor.explain.checks_base import (
    CheckResult,
    CheckStatus,
    _release,
    _res,
    _unknown,
)
from attn_doctor.facts import Environment, PackageFacts


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
