"""flash-attn 3: a source build from hopper/, a community build, or the Hub kernel (pure)."""

from __future__ import annotations

from dataclasses import replace

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from attn_doctor.backends import BackendName
from attn_doctor.index.records import Index
from attn_doctor.planner.plans import BackendPlan, Rejection, SourceKind, WheelCandidate
from attn_doctor.resolve.common import (
    MAX_COMMUNITY_CANDIDATES,
    Machine,
    cuda_torch_problem,
    gpu_problem,
    rejected,
)
from attn_doctor.resolve.flash_attn import community_candidates, source_build_option
from attn_doctor.resolve.listed import listed_candidates, merge


def plan_flash_attn_3(
    m: Machine,
    index: Index,
    allow: frozenset[SourceKind],
    allow_torch_change: bool,
    versions: SpecifierSet | None = None,
) -> BackendPlan:
    backend: BackendName = "flash_attn_3"
    req = index.requirement("flash_attn_3")
    assert req is not None
    rejections: list[Rejection] = []
    ways: list[str] = []
    problem = (
        cuda_torch_problem(m, "flash-attn 3")
        or gpu_problem(m, None, req.forward_sm, "flash-attn 3")
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
        return rejected(backend, "source-build", "flash-attn-3", problem)
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
        community, near = community_candidates(backend, "flash_attn_3", m, index)
        found, near2 = listed_candidates(  # release pages and indexes read by `index update`
            backend,
            "flash_attn_3",
            "flash-attn-3",
            m,
            index,
            trusts=("community", "third-party index"),
            versions=versions,
        )
        community, near = merge(community, found, MAX_COMMUNITY_CANDIDATES, index), near + near2
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
        cand, why = source_build_option(
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


def flash_attn_3_versions(index: Index) -> set[str]:
    """flash-attn 3 releases: the community builds' and the listed ones (upstream publishes
    none)."""
    listed = {w.version.split("+")[0] for w in index.listed if w.package == "flash_attn_3"}
    return listed | {w.version for w in index.community.wheels if w.package == "flash_attn_3"}
