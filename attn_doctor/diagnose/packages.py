"""Findings about installed attention packages: failed imports, wheel labels and xformers
build metadata for another torch, pins, conflicts (pure).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.diagnosis import (
    Finding,
)
from attn_doctor.facts import ImportResult
from attn_doctor.triton_data import triton_problem
from attn_doctor.versions import parse_version

if TYPE_CHECKING:
    pass
from attn_doctor.diagnose.context import PACKAGE_BACKENDS, Ctx, evidence_of, first_package
from attn_doctor.planner.machine import (
    marker_environment,
    minor_of,
    normalise_cuda,
    torch_version,
)
from attn_doctor.planner.pip_command import doctor_fix, pip_fix
from attn_doctor.rules_data import cuda_key

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
    for name in PACKAGE_BACKENDS:
        if BACKENDS[name].module == module:
            return name
    top = module.split(".", maxsplit=1)[0]
    if top in _MODULE_OWNERS:
        return _MODULE_OWNERS[top]
    for name in PACKAGE_BACKENDS:
        if (BACKENDS[name].module or "").split(".")[0] == top:
            return name
    return None


def package_of_module(module: str) -> str:
    """The backend a ``--deep`` module belongs to, else its top-level name: the unit that
    gets one finding (and one explanation) however many of its modules failed."""
    return _owner_of(module) or module.split(".", maxsplit=1)[0]


def import_findings(ctx: Ctx) -> list[Finding]:
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
        ev = [evidence_of(f"import:{r.module}", f"{r.status}: {r.detail or ''}") for r in results]
        if env.torch:
            ev.append(evidence_of("torch.version", env.torch.version))
        if owner in ("flash_attn_2", "flash_attn_3", "flash_attn_4") and undefined is not None:
            pkg = first_package(env, BACKENDS[owner].distribution or "flash-attn")
            if pkg:
                ev.append(evidence_of(f"packages.{pkg.name}.version", pkg.version))
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
            continue  # reported by xformers_findings with the build metadata
        dist = BACKENDS[owner].distribution or owner.replace("_", "-")
        fix, note = _reinstall_fix(ctx, owner, dist)
        others = (
            f"; {', '.join(f'`{r.module}`' for r in results if r is not first)} failed with it"
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


def _reinstall_fix(ctx: Ctx, owner: BackendName, dist: str) -> tuple[str, str | None]:
    """The fix for a broken install of ``owner``: reinstall through attn-doctor only when the
    resolver has a way to install it on this machine; else remove the broken package (which
    always works, and lets transformers fall back to SDPA) and say why not reinstall."""
    route = ctx.route(owner)
    env = ctx.env
    reinstall = (
        pip_fix(env, "uninstall", "-y", dist)
        + " && "
        + doctor_fix(env, "install", owner.replace("_", "-"))
    )
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
        pip_fix(env, "uninstall", "-y", dist),
        f"attn-doctor cannot reinstall {BACKENDS[owner].title} here ({why}); removing the "
        "broken package keeps it from failing every import of it.",
    )


def build_label_findings(ctx: Ctx) -> list[Finding]:
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
                    evidence_of(f"packages.{name}.version", pkg.version),
                    evidence_of("torch.version", torch.version),
                    evidence_of("torch.cxx11_abi", torch.cxx11_abi),
                ],
                fix=pip_fix(env, "uninstall", "-y", name)
                + " && "
                + doctor_fix(env, "install", "flash-attn"),
                backends=("flash_attn_2" if name == "flash-attn" else "flash_attn_3",),
            )
        )
    return out


def xformers_findings(ctx: Ctx) -> list[Finding]:
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
    ev = [
        evidence_of("packages.xformers.version", pkg.version),
        evidence_of("torch.version", torch.version),
    ]
    if built_torch:
        ev.append(evidence_of("packages.xformers.build_info.torch", built_torch))
    if built_cuda_raw:
        ev.append(evidence_of("packages.xformers.build_info.cuda", built_cuda_raw))
    if res is not None and res.status != "ok":
        ev.append(evidence_of(f"import:{res.module}", f"{res.status}: {res.detail}"))
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
            fix=doctor_fix(ctx.env, "install", "xformers"),
            fix_note="Install the xformers release made for this torch (from the PyTorch index for "
            "its CUDA), with torch pinned so pip cannot replace it.",
            backends=("xformers",),
        )
    ]


_TORCH_REQUIREMENT = re.compile(r"\s*torch\s*(?:[<>=!~(;\[]|$)", re.IGNORECASE)
"""A Requires-Dist line about torch itself (not torchvision, not torch-something). Lines
under an ``extra`` marker are left out: they apply only if that extra was asked for."""


def pin_findings(ctx: Ctx) -> list[Finding]:
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
                    evidence_of(f"packages.{pkg.name}.requires", line),
                    evidence_of("torch.version", torch.version),
                ],
                fix=doctor_fix(env, "install", pkg.name),
                fix_note=(
                    f"Pick the {pkg.name} release made for torch {tv.public}, or remove "
                    f"it ({pip_fix(env, 'uninstall', '-y', pkg.name)})."
                ),
                backends=tuple(n for n in PACKAGE_BACKENDS if BACKENDS[n].distribution == pkg.name),
            )
        )
    return out


def triton_findings(ctx: Ctx) -> list[Finding]:
    """The installed triton (triton-windows on Windows) against the one torch pins."""
    env = ctx.env
    pairing = ctx.rules.triton
    if env.torch is None or pairing is None:
        return []
    out: list[Finding] = []
    for dist in ("triton", "triton-windows"):
        pkg = env.package(dist)
        if pkg is None:
            continue
        problem = triton_problem(
            pairing,
            torch_version=env.torch.version,
            distribution=dist,
            installed=pkg.version,
            os_name=env.host.os,
        )
        if problem is None:
            continue
        why, fit, source = problem
        py = env.python.executable or "python"
        out.append(
            ctx.finding(
                "triton-torch-mismatch",
                "warning",
                f"{dist} {pkg.version} is not the Triton torch {env.torch.version} was built with",
                f"{why}: torch.compile, FlexAttention and Triton-based backends (SageAttention "
                "1.x, flash-attn-4's helpers) can fail to compile or load.",
                [
                    evidence_of(f"packages.{dist}.version", pkg.version),
                    evidence_of("torch.version", env.torch.version),
                ],
                fix=f'{py} -m pip install "{fit}"',
                sources=(source,),
            )
        )
    return out


def flash_attn_4_extra_findings(ctx: Ctx) -> list[Finding]:
    """flash-attn-4 installed without the nvidia-cutlass-dsl pieces its torch's CUDA major
    needs: name the extra (``flash-attn-4[cu13]`` on CUDA 13) instead of repeating the error."""
    env, index = ctx.env, ctx.index
    fa4 = env.package("flash-attn-4")
    dsl = env.package("nvidia-cutlass-dsl")
    if fa4 is None or index is None or env.torch is None or not env.torch.cuda:
        return []
    try:
        cuda_major = int(env.torch.cuda.split(".")[0])
    except ValueError:
        return []
    if dsl is None:
        missing: list[str] = ["nvidia-cutlass-dsl"]
    else:
        needed = index.cutlass_dsl_distributions(dsl.version, cuda_major)
        missing = [name for name in needed if env.package(name) is None]
    if not missing:
        return []
    extra = "[cu13]" if cuda_major == 13 else ""
    py = env.python.executable or "python"
    layout = next(iter(index.cutlass_dsl), None)
    return [
        ctx.finding(
            "flash-attn-4-missing-cuda-extra",
            "warning",
            f"flash-attn-4 {fa4.version} lacks {', '.join(missing)} for CUDA {cuda_major}",
            f"torch is built with CUDA {env.torch.cuda}; flash-attn-4's CuTe DSL runtime on CUDA "
            f"{cuda_major} needs {', '.join(missing)}"
            + (
                " (flash-attn-4's `cu13` extra: nvidia-cutlass-dsl[cu13])"
                if cuda_major == 13
                else ""
            )
            + ": without it importing flash_attn.cute fails.",
            [
                evidence_of("packages.flash-attn-4.version", fa4.version),
                evidence_of("torch.cuda", env.torch.cuda),
            ],
            fix=f'{py} -m pip install "flash-attn-4{extra}=={fa4.version}"',
            backends=("flash_attn_4",),
            sources=(layout.source,) if layout is not None else (),
        )
    ]


def conflict_findings(ctx: Ctx) -> list[Finding]:
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
                [evidence_of(f"packages.{p.name}.version", p.version) for p in present],
                fix_note="Keep the one the installed torch depends on (see torch.requires) and "
                "uninstall the other.",
                sources=(conflict.source,),
            )
        )
    return out
