"""flash-attn 2 on a ROCm torch: a source build with the ROCm toolkit torch was built for (pure).

The rule and its source: ``flash_attn_3_4.toml`` [rocm_source_build].
"""

from __future__ import annotations

from attn_doctor.backends import BackendName
from attn_doctor.index.records import Index
from attn_doctor.planner.machine import SOURCE_BUILD_NVCC_THREADS, source_build_jobs
from attn_doctor.planner.plans import BackendPlan, Rejection, SourceKind, WheelCandidate
from attn_doctor.resolve.common import Machine


def _rocm_minor(text: str | None) -> tuple[int, int] | None:
    parts = (text or "").split(".")
    if len(parts) < 2 or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    return int(parts[0]), int(parts[1])


def plan_flash_attn_rocm(m: Machine, index: Index, allow: frozenset[SourceKind]) -> BackendPlan:
    """flash-attn 2 on a ROCm torch: a source build with the ROCm toolkit torch was built for
    (composable_kernel on its gfx targets, the Triton backend elsewhere)."""
    backend: BackendName = "flash_attn_2"
    rule = index.flash_attn_rocm
    assert rule is not None
    have, built = _rocm_minor(m.rocm), _rocm_minor(m.torch_hip)
    why: str | None = None
    if "source-build" not in allow:
        why = "flash-attn on ROCm is a source build, which the allowed sources exclude"
    elif have is None:
        why = "source build: no ROCm toolkit (hipcc, ROCM_HOME) found on this machine"
    elif (floor := _rocm_minor(rule.min_rocm)) is not None and have < floor:
        why = f"source build: flash-attn needs ROCm >= {rule.min_rocm}; the toolkit is {m.rocm}"
    elif built is not None and have != built:
        why = (
            f"source build: the ROCm toolkit is {m.rocm} but torch is built for ROCm/HIP "
            f"{m.torch_hip}: point ROCM_HOME at a ROCm {built[0]}.{built[1]} toolkit"
        )
    if why is not None:
        return BackendPlan(
            backend=backend,
            rejections=(
                Rejection(backend=backend, source="source-build", what="flash-attn", reason=why),
            ),
        )
    ck = sorted({g for g in m.gfx if g in rule.ck_gfx})
    env: list[tuple[str, str]] = []
    if ck and len(ck) == len(set(m.gfx)):
        env.append((rule.arch_env, ";".join(ck)))
        how = f"composable_kernel backend for {', '.join(ck)}"
    else:
        env.append((rule.triton_env, "TRUE"))
        how = "Triton backend (this GPU is not a composable_kernel target)"
    jobs = source_build_jobs(
        m.cpu_count,
        m.ram_bytes,
        gib_per_nvcc_thread=index.source_build.gib_per_nvcc_thread,
        nvcc_threads=SOURCE_BUILD_NVCC_THREADS,
    )
    env.insert(0, ("MAX_JOBS", str(jobs)))
    cand = WheelCandidate(
        backend=backend,
        source="source-build",
        trust="official",
        requirement="flash-attn",
        pip_args=("--no-build-isolation",),
        build_env=tuple(env),
        verified=rule.verified,
        reason=(
            f"compile from source for ROCm {m.rocm} (torch's HIP {m.torch_hip}): {how}; "
            f"MAX_JOBS={jobs} for this machine's RAM"
        ),
        provenance=(rule.source,),
    )
    return BackendPlan(backend=backend, candidates=(cand,))
