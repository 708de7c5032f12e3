"""flash-attn 3 (a source build from hopper/, or a community build) and flash-attn 4 (the
package index's pure-Python wheel and its nvidia-cutlass-dsl runtime) (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from attn_doctor.backends import BackendName
from attn_doctor.index.model import Index
from attn_doctor.plan.resolve.common import Machine, _gpu_problem, _torch_problem
from attn_doctor.plan.resolve.flash_attn import _community_candidates, _source_build
from attn_doctor.plan.types import BackendPlan, Rejection, SourceKind, WheelCandidate


def _plan_flash_attn_3(
    m: Machine, index: Index, allow: frozenset[SourceKind], allow_torch_change: bool
) -> BackendPlan:
    backend: BackendName = "flash_attn_3"
    req = index.requirement("flash_attn_3")
    assert req is not None
    rejections: list[Rejection] = []
    ways: list[str] = []
    problem = (
        _torch_problem(m, "flash-attn 3")
        or _gpu_problem(m, None, req.forward_sm, "flash-attn 3")
        or (None if m.os == "linux" else f"flash-attn 3 builds on Linux only; this is {m.os}")
    )
    if (
        problem is None
        and req.min_cuda
        and m.torch_cuda
        and Version(m.torch_cuda) < Version(req.min_cuda)
    ):
        problem = f"flash-attn 3 needs CUDA >= {req.min_cuda}; torch has CUDA {m.torch_cuda}"
    if problem:
        rejections.append(
            Rejection(backend=backend, source="source-build", what="flash-attn-3", reason=problem)
        )
        return BackendPlan(backend=backend, rejections=tuple(rejections))
    rejections.append(
        Rejection(
            backend=backend,
            source="upstream-release",
            what="flash-attn-3",
            reason="upstream publishes no flash-attn 3 wheel (source only: hopper/ directory)",
        )
    )
    candidates: list[WheelCandidate] = []
    if "community" in allow:
        community, near = _community_candidates(backend, "flash_attn_3", m, index)
        candidates += community
        if not community:
            rejections.append(
                Rejection(
                    backend=backend,
                    source="community",
                    what=index.community.project,
                    reason=f"no community flash_attn_3 build for torch {m.torch_minor}, CUDA "
                    f"{m.torch_cuda}, {m.platform_label}"
                    + (f" (nearest: {near[0]})" if near else ""),
                )
            )
    if "source-build" in allow:
        cand, why = _source_build(
            backend,
            "flash-attn-3 @ git+https://github.com/Dao-AILab/flash-attention.git#subdirectory=hopper",
            m,
            index,
            min_nvcc=req.min_cuda or "12.3",
            arch_env="FLASH_ATTN_CUDA_ARCHS",
            archs=(90,),
        )
        if cand is not None:
            candidates.append(replace(cand, reason=cand.reason + "; " + req.notes[1]))
        else:
            rejections.append(
                Rejection(backend=backend, source="source-build", what="hopper/", reason=why)
            )
    if "hub" in allow:
        kernel = next((k for k in index.hub.kernels if k.replaces == "flash_attention_3"), None)
        if kernel is not None:
            ways.append(
                f"Hub kernel: install `kernels` and use attn_implementation='{kernel.repo}'."
            )
    return BackendPlan(
        backend=backend,
        candidates=tuple(candidates),
        rejections=tuple(rejections),
        ways_out=tuple(ways),
    )


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


def _plan_flash_attn_4(
    m: Machine, index: Index, allow: frozenset[SourceKind], allow_torch_change: bool
) -> BackendPlan:
    backend: BackendName = "flash_attn_4"
    req = index.requirement("flash_attn_4")
    assert req is not None
    problem = (
        _torch_problem(m, "flash-attn 4")
        or (None if m.os == "linux" else f"flash-attn 4 supports Linux only; this is {m.os}")
        or _gpu_problem(m, None, req.forward_sm, "flash-attn 4")
    )
    releases = index.flash_attn_4
    if problem is None and not releases:
        problem = "the index lists no flash-attn-4 release"
    if problem is None:
        newest = releases[-1]
        if not SpecifierSet(newest.requires_python).contains(m.python + ".0"):
            problem = f"flash-attn-4 {newest.version} needs Python {newest.requires_python}"
    if problem is not None:
        return BackendPlan(
            backend=backend,
            rejections=(
                Rejection(backend=backend, source="pypi", what="flash-attn-4", reason=problem),
            ),
        )
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
        return BackendPlan(
            backend=backend,
            rejections=(
                Rejection(
                    backend=backend,
                    source="pypi",
                    what=cand.requirement,
                    reason="the package index is not an allowed source",
                ),
            ),
        )
    return BackendPlan(backend=backend, candidates=(cand,))
