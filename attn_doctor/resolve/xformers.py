"""xformers: the package index's wheel and PyTorch's per-CUDA indexes, only for the variants
xformers' CI really built at each release, with each release's torch pin (pure).
"""

from __future__ import annotations

from dataclasses import replace

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from attn_doctor.backends import BackendName
from attn_doctor.facts import sm_text
from attn_doctor.index.records import (
    Index,
    XformersBuild,
    XformersWheel,
)
from attn_doctor.planner.plans import BackendPlan, Rejection, SourceKind, WheelCandidate
from attn_doctor.resolve.common import (
    PYTORCH_INDEX,
    Machine,
    nightly_torch,
    platform_mismatch,
    python_mismatch,
    rejected,
    torch_variant,
    variant_text,
    vendor_torch,
)
from attn_doctor.resolve.xformers_new import newer_than_builds


def _xformers_gpu_ops(version: str, m: Machine, index: Index) -> tuple[str, str | None]:
    """(``; forward ops for this GPU: …``, or a reason no forward op runs on a GPU here)."""
    table = index.xformers_ops_for(version)
    if table is None or not m.sms:
        return "", None
    names: list[str] = []
    for gpu, sm in zip(m.gpu_names, m.sms, strict=False):
        usable = [o.name for o in table.ops if o.forward and o.supports(sm)]
        if not usable:
            return "", (
                f"no xformers {version} attention operator supports {gpu} "
                f"({sm_text(sm, form='both')}); "
                + ", ".join(
                    f"{o.name}: sm{o.min_sm}" + (f"-sm{o.max_sm}" if o.max_sm else "+")
                    for o in table.ops
                    if o.forward
                )
            )
        names += [n for n in usable if n not in names]
    return f"; forward operators for this GPU: {', '.join(names)}", None


def _xformers_python_problem(build: XformersBuild, m: Machine) -> str | None:
    here = Version(m.python)
    if build.python_tag == "cpXY-cpXY":
        if m.free_threaded:
            return "no free-threaded (cp3XYt) wheel"
        if m.python not in build.python:
            return f"built for Python {', '.join(build.python)}; this is Python {m.python}"
        return None
    py, abi = build.python_tag.split("-")
    return python_mismatch(py, abi, m) if here.major == 3 else "needs Python 3"


def verified_first(candidates: list[WheelCandidate]) -> tuple[WheelCandidate, ...]:
    """Verified index entries before unverified ones, each group in its own order (newest
    first): a confirmed build beats a newer one nobody confirmed (torch 2.2.2: 0.0.25.post1 on
    the package index, verified, over 0.0.26 on PyTorch's index, unverified)."""
    return tuple(sorted(candidates, key=lambda c: not c.verified))


def _other_minor(have: str | None, built: str) -> str:
    if have is None or have == built or not same_cuda_major(have, built):
        return ""
    return (
        f"; built for {built}, torch is {have}: same CUDA major, so it is offered and verified "
        "after install (rolled back if the check fails)"
    )


def same_cuda_major(a: str, b: str) -> bool:
    """Two torch CUDA variants (``cu124``, ``cu121``) of the same CUDA major (12)."""
    if not (a.startswith("cu") and b.startswith("cu")):
        return False
    da, db = a[2:], b[2:]
    return da.isdigit() and db.isdigit() and da[:-1] == db[:-1] and da != db


def _xformers_build_fit(
    build: XformersBuild, m: Machine, index: Index
) -> tuple[XformersWheel | None, str | None, str | None]:
    """(package-index wheel, PyTorch index variant, reason none fits) for one release."""
    variant = torch_variant(m)
    if m.os not in ("linux", "windows"):
        return None, None, f"xformers {build.version}: no wheel for {m.os} (Linux and Windows only)"
    if nightly_torch(m):
        return (
            None,
            None,
            (
                f"xformers {build.version}: torch {m.torch} is a nightly (.dev) build, a "
                "pre-release: xformers' wheels are built against torch releases"
            ),
        )
    plat = build.linux_platform if m.os == "linux" else "win_amd64"
    why = platform_mismatch(plat, m) or _xformers_python_problem(build, m)
    if why:
        return None, None, f"xformers {build.version}: {plat} wheels only; {why}"
    spec = Requirement(build.requires_torch).specifier
    torch_public = Version(m.torch or "0").public
    if not spec.contains(torch_public, prereleases=True):
        return (
            None,
            None,
            (
                f"xformers {build.version} requires {build.requires_torch} (built against torch "
                f"{build.build_torch}); installed torch is {m.torch} (pip would replace torch)"
            ),
        )
    if build.stable_abi_torch and Version(torch_public) < Version(build.stable_abi_torch):
        return None, None, f"xformers {build.version} needs torch >= {build.stable_abi_torch}"
    built_here = build.pytorch_variants(m.os)
    on_pypi = [
        w
        for w in index.xformers
        if w.version == build.version
        and platform_mismatch(w.platform_tag, m) is None
        and python_mismatch(w.python_tag, w.abi_tag, m) is None
    ]
    pypi_variant = (
        build.package_index_cuda if m.os in build.package_index_platforms and on_pypi else None
    )
    if variant is not None and variant == pypi_variant:
        return on_pypi[0], None, None
    if variant is not None and variant in built_here:
        return None, variant, None
    if variant is not None and pypi_variant and same_cuda_major(variant, pypi_variant):
        # xformers' package-index wheel is one CUDA build per release; CUDA's minor-version
        # compatibility runs it under a torch of the same CUDA major (CUDA compatibility guide,
        # "minor version compatibility"). Offered with the install's own check and rollback.
        return on_pypi[0], None, None
    offered = [f"{v} (PyTorch index)" for v in built_here]
    if pypi_variant:
        offered.append(f"{pypi_variant} (package index)")
    have = f"torch {m.torch}" + (f" ({variant_text(variant)})" if variant else "")
    if variant is None and vendor_torch(m):
        have = f"torch {m.torch} is a vendor build (not a PyTorch release)"
    if not offered:
        return (
            None,
            None,
            (
                f"xformers {build.version} published no {m.os} wheel (built against torch "
                f"{build.build_torch})"
            ),
        )
    return (
        None,
        None,
        (
            f"xformers {build.version} was built against torch {build.build_torch} for "
            f"{', '.join(offered)} on {m.os}; {have}: no wheel for it"
        ),
    )


def plan_xformers(
    m: Machine,
    index: Index,
    allow: frozenset[SourceKind],
    allow_torch_change: bool,
    versions: SpecifierSet | None = None,
) -> BackendPlan:
    backend: BackendName = "xformers"
    problem = None
    if m.torch is None:
        problem = "torch is not installed: xformers needs a CUDA or ROCm build of torch first"
    elif m.torch_build not in ("cuda", "rocm"):
        problem = (
            f"the installed torch {m.torch} is a {m.torch_build} build: xformers' wheels need "
            "a CUDA or ROCm build"
        )
    if problem:
        return rejected(backend, "pypi", "xformers", problem)
    assert m.torch is not None
    rejections: list[Rejection] = []
    candidates: list[WheelCandidate] = []
    ways: list[str] = []
    builds = [
        b
        for b in reversed(index.xformers_builds)
        if versions is None or versions.contains(b.version, prereleases=True)
    ]
    for build in builds:
        wheel, variant, why = _xformers_build_fit(build, m, index)
        what = f"xformers=={build.version}"
        if why is not None:
            if not candidates:
                rejections.append(Rejection(backend=backend, source="pypi", what=what, reason=why))
            continue
        gpu_ops, gpu_problem = _xformers_gpu_ops(build.version, m, index)
        if gpu_problem:
            if not candidates:
                rejections.append(
                    Rejection(backend=backend, source="pypi", what=what, reason=gpu_problem)
                )
            continue
        built = (
            f"built by xformers' CI ({build.tag}) against torch {build.build_torch}"
            f"+{build.package_index_cuda if wheel is not None else variant}"
        )
        if wheel is not None and "pypi" in allow:
            candidates.append(
                WheelCandidate(
                    backend=backend,
                    source="pypi",
                    trust="official",
                    requirement=what,
                    version=build.version,
                    filename=wheel.filename,
                    sha256=wheel.sha256,
                    verified=wheel.verified and build.verified,
                    reason=(
                        f"package-index wheel {built} (its upload_pip filter), like the "
                        f"installed torch {m.torch}; METADATA requires "
                        f"{wheel.requires_torch or 'torch (unpinned)'}{gpu_ops}"
                        + _other_minor(torch_variant(m), build.package_index_cuda)
                    ),
                    provenance=(wheel.source, build.source),
                )
            )
        elif variant is not None and "pytorch-index" in allow:
            candidates.append(
                WheelCandidate(
                    backend=backend,
                    source="pytorch-index",
                    trust="official",
                    requirement=what,
                    version=build.version,
                    index_url=PYTORCH_INDEX.format(tag=variant),
                    verified=False,
                    reason=(
                        f"PyTorch's {variant} index holds the {m.os} wheel {built} (its "
                        f"upload_pt job), matching the installed torch {m.torch}; pins "
                        f"{build.requires_torch} (the upload itself is not confirmed offline)"
                        f"{gpu_ops}"
                    ),
                    provenance=(build.source,),
                )
            )
        else:
            source: SourceKind = "pypi" if wheel is not None else "pytorch-index"
            rejections.append(
                Rejection(
                    backend=backend,
                    source=source,
                    what=what,
                    reason=f"fits here ({built}) but the {source} source is not allowed",
                )
            )
            continue
        if len(candidates) >= 2:
            break
    newer, refused = newer_than_builds(m, index, versions)  # from `attn-doctor index update`
    if "pypi" in allow:
        candidates, rejections = newer + candidates, refused + rejections
    if not candidates:
        variant = torch_variant(m)
        for build in builds:
            if variant is None:
                break
            here = variant in build.pytorch_variants(m.os) or (
                variant == build.package_index_cuda and m.os in build.package_index_platforms
            )
            if not here:
                continue
            pin = f"torch=={build.build_torch}"
            if allow_torch_change and "pytorch-index" in allow:
                candidates.append(
                    WheelCandidate(
                        backend=backend,
                        source="pytorch-index",
                        trust="official",
                        requirement=f"xformers=={build.version}",
                        version=build.version,
                        index_url=PYTORCH_INDEX.format(tag=variant),
                        verified=False,
                        torch_requirement=pin,
                        reason=f"REPLACES torch {m.torch}: xformers {build.version} was built "
                        f"against torch {build.build_torch}+{variant} ({build.tag} CI)",
                        provenance=(build.source,),
                    )
                )
            else:
                ways.append(
                    f"xformers {build.version} has a {variant} wheel built against torch "
                    f"{build.build_torch}: that means replacing torch {m.torch} with "
                    f"{pin} from PyTorch's {variant} index (re-run with torch changes allowed)."
                )
            break
        ways.append(
            "torch's own SDPA memory-efficient kernel (attn_implementation='sdpa') is the "
            "same algorithm family and needs no install."
        )
    return BackendPlan(
        backend=backend,
        candidates=verified_first(candidates),
        rejections=_group_xformers(rejections),
        ways_out=tuple(ways),
    )


def _group_xformers(rejections: list[Rejection]) -> tuple[Rejection, ...]:
    """Merge consecutive releases refused for the same reason (their version left out)."""
    groups: list[tuple[list[Rejection], str]] = []
    for r in rejections:
        version = r.what.removeprefix("xformers==")
        key = r.source + "|" + r.reason.replace(f"xformers {version}", "xformers {v}")
        if groups and groups[-1][1] == key:
            groups[-1][0].append(r)
        else:
            groups.append(([r], key))
    out = []
    for members, key in groups:
        newest = members[0].what.removeprefix("xformers==")
        oldest = members[-1].what.removeprefix("xformers==")
        if newest == oldest:
            out.append(members[0])
            continue
        span = f"{oldest} … {newest}"
        out.append(
            replace(
                members[0],
                what=f"xformers {span}",
                reason=key.split("|", 1)[1].replace("xformers {v}", f"xformers {span}"),
            )
        )
    # Releases whose torch pin accepts this torch carry the real reason: they come first.
    return tuple(sorted(out, key=lambda r: "pip would replace torch" in r.reason))


def xformers_versions(index: Index) -> set[str]:
    """xformers releases: the PyTorch index's builds and the package index's wheels."""
    return {b.version for b in index.xformers_builds} | {w.version for w in index.xformers}
