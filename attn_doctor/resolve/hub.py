"""Hub kernels: transformers' ``kernels`` route, no compile (pure)."""

from __future__ import annotations

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from attn_doctor.backends import BackendName
from attn_doctor.index.hub import expected_variants, kernels_requirement
from attn_doctor.index.records import (
    Index,
)
from attn_doctor.planner.plans import BackendPlan, SourceKind, WheelCandidate
from attn_doctor.resolve.common import Machine, cuda_torch_problem, gpu_problem, rejected


def plan_hub(
    m: Machine,
    index: Index,
    allow: frozenset[SourceKind],
    allow_torch_change: bool,
    versions: SpecifierSet | None = None,
) -> BackendPlan:
    backend: BackendName = "hub_kernels"
    hub = index.hub
    kernel = next(k for k in hub.kernels if k.replaces == "flash_attention_2")
    problem = (
        cuda_torch_problem(m, "a Hub kernel")
        or (None if m.os in ("linux", "windows") else f"no Hub kernel builds for {m.os}")
        or gpu_problem(m, kernel.min_sm, None, kernel.repo)
        or (
            None
            if not m.free_threaded or Version(m.python) >= Version("3.15")
            else "the kernels package rejects arch kernels on free-threaded Python < 3.15"
        )
    )
    if problem is None and "hub" not in allow:
        problem = "the Hugging Face Hub is not an allowed source"
    if problem:
        return rejected(backend, "hub", kernel.repo, problem)
    variants = expected_variants(
        torch=m.torch or "0",
        cxx11_abi=m.cxx11_abi,
        cuda=m.torch_cuda or "0",
        cpu={"AMD64": "x86_64", "arm64": "aarch64"}.get(m.arch or "", m.arch or "x86_64"),
        os=m.os,
    )
    requirement = kernels_requirement(hub, m.transformers, m.transformers_constants)
    cand = WheelCandidate(
        backend=backend,
        source="hub",
        trust="official",
        requirement=requirement,
        attn_implementation=kernel.repo,
        verified=False,
        reason=(
            f"prebuilt flash-attn 2 from the Hugging Face Hub ({kernel.repo}); the `kernels` "
            f"package looks for build/{' or build/'.join(variants)} (or an older CUDA minor, "
            "or a torch stable-ABI build); whether one is published is checked on first use "
            "(needs the Hub)"
        ),
        provenance=(hub.source, kernel.source),
    )
    return BackendPlan(backend=backend, candidates=(cand,))
