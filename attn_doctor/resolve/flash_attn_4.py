"""flash-attn 4 (CuTe DSL): the package index's pure-Python wheel, never moving torch (pure)."""

from __future__ import annotations

from collections.abc import Iterable

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from attn_doctor.backends import BackendName
from attn_doctor.index.records import Index
from attn_doctor.planner.plans import BackendPlan, SourceKind, WheelCandidate
from attn_doctor.resolve.common import Machine, cuda_torch_problem, gpu_problem, rejected


def flash_attn_4_runtime(
    requires_dist: Iterable[str], index: Index, cuda_major: int | None
) -> tuple[str, ...]:
    """The nvidia-cutlass-dsl distributions a working flash-attn-4 needs (flash_attn_3_4.toml
    [[cutlass_dsl]]), for the lowest nvidia-cutlass-dsl its ``Requires-Dist`` admits."""
    for line in requires_dist:
        req = Requirement(line)
        if req.name != "nvidia-cutlass-dsl" or req.marker is not None:
            continue
        floor = next(
            (sp.version for sp in req.specifier if sp.operator in (">=", "==", "~=")), None
        )
        if floor is not None:
            return index.cutlass_dsl_distributions(floor, cuda_major)
    return ()


def plan_flash_attn_4(
    m: Machine,
    index: Index,
    allow: frozenset[SourceKind],
    allow_torch_change: bool,
    versions: SpecifierSet | None = None,
) -> BackendPlan:
    backend: BackendName = "flash_attn_4"
    req = index.requirement("flash_attn_4")
    assert req is not None
    problem = (
        cuda_torch_problem(m, "flash-attn 4")
        or (None if m.os == "linux" else f"flash-attn 4 supports Linux only; this is {m.os}")
        or gpu_problem(m, None, req.forward_sm, "flash-attn 4")
    )
    releases = index.flash_attn_4
    if problem is None and not releases:
        problem = "the index lists no flash-attn-4 release"
    if problem is None:
        newest = releases[-1]
        if not SpecifierSet(newest.requires_python).contains(m.python + ".0"):
            problem = f"flash-attn-4 {newest.version} needs Python {newest.requires_python}"
    if problem is not None:
        return rejected(backend, "pypi", "flash-attn-4", problem)
    newest = releases[-1]
    extra = "[cu13]" if m.cuda_major == 13 else ""
    dsl = flash_attn_4_runtime(newest.requires_dist, index, m.cuda_major)
    torch_req = next((r for r in newest.requires_dist if Requirement(r).name == "torch"), "torch")
    cand = WheelCandidate(
        backend=backend,
        source="pypi",
        trust="official",
        requirement=f"flash-attn-4{extra}=={newest.version}",
        version=newest.version,
        filename=newest.filename,
        sha256=newest.sha256,
        verified=newest.verified,
        reason=(
            f"pure-Python wheel on the package index (Requires-Dist {torch_req!r}: keeps the "
            f"installed torch); kernels JIT-compiled for this GPU by nvidia-cutlass-dsl"
            + ("; the cu13 extra matches torch's CUDA 13" if extra else "")
            + (f"; a working install also has {', '.join(dsl)}" if dsl else "")
        ),
        provenance=(newest.source, req.source),
    )
    if "pypi" not in allow:
        return rejected(
            backend, "pypi", cand.requirement, "the package index is not an allowed source"
        )
    return BackendPlan(backend=backend, candidates=(cand,))


def flash_attn_4_versions(index: Index) -> set[str]:
    """flash-attn-4 releases on the package index."""
    return {r.version for r in index.flash_attn_4}
