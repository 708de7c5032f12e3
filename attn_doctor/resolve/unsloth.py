"""unsloth: the package index's wheel, its torch/CUDA extras, without moving torch (pure)."""

from __future__ import annotations

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from attn_doctor.backends import BackendName
from attn_doctor.index.records import (
    Index,
)
from attn_doctor.planner.plans import BackendPlan, Rejection, SourceKind, WheelCandidate
from attn_doctor.resolve.common import Machine, cuda_torch_problem, rejected
from attn_doctor.resolve.xformers import plan_xformers


def plan_unsloth(
    m: Machine,
    index: Index,
    allow: frozenset[SourceKind],
    allow_torch_change: bool,
    versions: SpecifierSet | None = None,
) -> BackendPlan:
    backend: BackendName = "unsloth"
    u = index.unsloth
    problem = cuda_torch_problem(m, "unsloth")
    rejections: list[Rejection] = []
    if problem is None:
        assert m.torch is not None
        torch_req = next((r for r in u.requires_dist if Requirement(r).name == "torch"), None)
        if torch_req and not Requirement(torch_req).specifier.contains(
            Version(m.torch).public, prereleases=True
        ):
            problem = f"unsloth {u.version} requires {torch_req}; installed torch is {m.torch}"
    if problem is None and not SpecifierSet(u.requires_python).contains(m.python + ".0"):
        problem = f"unsloth {u.version} needs Python {u.requires_python}"
    if problem:
        return rejected(backend, "pypi", f"unsloth=={u.version}", problem)
    notes: list[str] = []
    pip_args: tuple[str, ...] = ()
    xf_req = next((r for r in u.requires_dist if Requirement(r).name == "xformers"), None)
    xf_plan = plan_xformers(m, index, allow, False) if xf_req else None
    marker_applies = m.arch == "x86_64" and m.os in ("linux", "windows")
    if xf_req and marker_applies and xf_plan is not None and not xf_plan.candidates:
        rejections.append(
            Rejection(
                backend=backend,
                source="pypi",
                what=xf_req,
                reason=(
                    f"unsloth requires {xf_req.split(';')[0].strip()} on this platform, and no "
                    "xformers "
                    f"release accepts torch {m.torch}: pip would replace torch. Installing unsloth "
                    "with --no-deps and its other requirements avoids that (xformers unused)"
                ),
            )
        )
        pip_args = ("--no-deps",)
        notes.append(
            "installed with --no-deps: install its other requirements (unsloth_zoo, "
            "bitsandbytes, peft, trl, …) under the torch constraint"
        )
    extra = None
    if m.torch_cuda and m.torch:
        tv = Version(m.torch)
        code = f"{tv.major}{tv.minor}{tv.micro}"
        name = f"cu{m.torch_cuda.replace('.', '')}-torch{code}"
        extra = next((e for e in u.extras if e.name == name), None)
    if extra is not None:
        notes.append(
            f"uses unsloth's own extra for this torch/CUDA, [{extra.name}] "
            f"(pins {', '.join(extra.pins) or 'nothing'})"
        )
    recipes = u.recipes
    if m.torch and m.torch_cuda and not recipes.cuda_supported(m.torch, m.torch_cuda):
        notes.append(
            f"unsloth's _auto_install.py would refuse CUDA {m.torch_cuda} for torch {m.torch}"
        )
    notes.append(f"unsloth's documented fresh-install route is `{recipes.uv_command}`")
    cand = WheelCandidate(
        backend=backend,
        source="pypi",
        trust="official",
        requirement=(
            f"unsloth[{extra.name}]=={u.version}"
            if extra is not None and not pip_args
            else f"unsloth=={u.version}"
        ),
        version=u.version,
        pip_args=pip_args,
        verified=u.verified,
        reason="; ".join([f"Requires-Dist accepts torch {m.torch}", *notes]),
        provenance=(u.source,),
    )
    if "pypi" not in allow:
        return rejected(
            backend, "pypi", cand.requirement, "the package index is not an allowed source"
        )
    return BackendPlan(backend=backend, candidates=(cand,), rejections=tuple(rejections))


def unsloth_versions(index: Index) -> set[str]:
    """The unsloth release the index records."""
    return {index.unsloth.version}
