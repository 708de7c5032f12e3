"""Ways to get SageAttention onto a machine (pure, over ``wheels_index/sageattention.toml``).

The package index holds 1.0.x only (Triton kernels, a ``py3-none-any`` wheel); 2.x (CUDA
kernels per GPU architecture, faster) is built from the repository with
``--no-build-isolation`` so that it compiles against the installed torch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.datafiles import Entry, check_schema, read_toml, tables
from attn_doctor.planner.plans import BackendPlan, Rejection, SourceKind, WheelCandidate
from attn_doctor.resolve.common import Machine, cuda_torch_problem, record_problem

if TYPE_CHECKING:
    from attn_doctor.index.records import Index

FILE = "sageattention.toml"
_BACKEND: BackendName = "sageattention"


@dataclass(frozen=True, kw_only=True)
class SageRelease:
    version: str
    kind: SourceKind
    wheel: str | None
    requirement: str | None
    min_torch: str
    min_cuda: str | None
    requires: tuple[str, ...]
    source: str
    verified: bool


def _release(e: Entry) -> SageRelease:
    source, verified = e.provenance()
    kind = e.str_("kind")
    if kind not in ("pypi", "source-build"):
        raise e.fail("kind", f"{kind!r} is not pypi or source-build")
    return SageRelease(
        version=e.version("version") or "",
        kind="pypi" if kind == "pypi" else "source-build",
        wheel=e.opt_str("wheel"),
        requirement=e.opt_str("requirement"),
        min_torch=e.version("min_torch") or "",
        min_cuda=e.opt_str("min_cuda"),
        requires=e.strs("requires"),
        source=source,
        verified=verified,
    )


@functools.cache
def load_sage_releases() -> tuple[SageRelease, ...]:
    """The validated releases (cached for the run)."""
    doc = read_toml(FILE)
    check_schema(doc, FILE)
    releases = [_release(e) for e in tables(doc, FILE, "release")]
    # wheels before source builds, newest first (``index update`` appends newer releases)
    return tuple(sorted(releases, key=lambda r: (r.kind != "pypi", -_order(r.version))))


def _order(version: str) -> float:
    """A sort key for the releases' plain ``X.Y.Z`` versions (newest largest)."""
    v = Version(version)
    return v.major * 1e6 + v.minor * 1e3 + v.micro


WINDOWS_URL = "https://github.com/woct0rdho/SageAttention/releases/download/{tag}/{filename}"


@dataclass(frozen=True, kw_only=True)
class SageWindowsWheel:
    tag: str
    filename: str
    cuda: str
    torch: str
    requires_python: str
    source: str
    verified: bool


@functools.cache
def load_sage_windows_wheels() -> tuple[SageWindowsWheel, ...]:
    """The community Windows wheels (``[[windows_wheel]]``; none when the file lists none)."""
    doc = read_toml(FILE)
    if "windows_wheel" not in doc:
        return ()
    out = []
    for e in tables(doc, FILE, "windows_wheel"):
        source, verified = e.provenance()
        out.append(
            SageWindowsWheel(
                tag=e.str_("tag"),
                filename=e.str_("filename"),
                cuda=e.version("cuda"),
                torch=e.specifier("torch"),
                requires_python=e.specifier("requires_python"),
                source=source,
                verified=verified,
            )
        )
    return tuple(out)


def _windows_candidates(
    m: Machine, wheels: tuple[SageWindowsWheel, ...]
) -> tuple[list[WheelCandidate], list[Rejection]]:
    """The newest community Windows wheel for this torch, CUDA major and Python."""
    from packaging.specifiers import SpecifierSet

    out: list[WheelCandidate] = []
    refused: list[Rejection] = []
    torch = Version(Version(m.torch or "0").public)
    have = Version(m.torch_cuda) if m.torch_cuda else None
    for w in wheels:
        built = Version(w.cuda)
        why = None
        if not SpecifierSet(w.torch).contains(torch, prereleases=True):
            why = f"built for torch {w.torch}; installed {m.torch}"
        elif have is None or have.major != built.major or have < built:
            why = f"built for CUDA {w.cuda}; torch has CUDA {m.torch_cuda}"
        elif not SpecifierSet(w.requires_python).contains(m.python + ".0"):
            why = f"for Python {w.requires_python}; this is Python {m.python}"
        if why is not None:
            refused.append(
                Rejection(backend=_BACKEND, source="community", what=w.filename, reason=why)
            )
            continue
        url = WINDOWS_URL.format(tag=w.tag, filename=w.filename.replace("+", "%2B"))
        out.append(
            WheelCandidate(
                backend=_BACKEND,
                source="community",
                trust="community",
                requirement=f"sageattention @ {url}",
                version=w.filename.split("-")[1],
                filename=w.filename,
                url=url,
                verified=w.verified,
                reason=(
                    f"community Windows build ({w.tag}) for torch {w.torch}, CUDA {w.cuda}: "
                    "not built by SageAttention's authors; needs triton-windows matching torch"
                ),
                provenance=(w.source,),
            )
        )
        break
    return out, refused


def plan_sageattention(
    m: Machine,
    torch_problem: Callable[[Machine, str], str | None],
    releases: tuple[SageRelease, ...] | None = None,
) -> BackendPlan:
    """Every way to get SageAttention here, best first: the index's Triton wheel, then the
    CUDA source build; each refusal with its reason."""
    rel = releases if releases is not None else load_sage_releases()
    record = BACKENDS[_BACKEND]
    windows = m.os == "windows" and bool(load_sage_windows_wheels())
    # the community Windows wheels stand in for the OS the record names (Linux)
    checked = replace(m, os=record.os[0]) if windows else m
    problem = torch_problem(m, record.title) or record_problem(checked, record)
    candidates: list[WheelCandidate] = []
    rejections: list[Rejection] = []
    if windows and problem is None:
        candidates, rejections = _windows_candidates(m, load_sage_windows_wheels())
        rel = ()
    for r in rel:
        what = r.wheel or r.requirement or f"sageattention=={r.version}"
        why = problem
        if why is None and m.torch and Version(m.torch.split("+")[0]) < Version(r.min_torch):
            why = f"sageattention {r.version} needs torch >= {r.min_torch}; installed {m.torch}"
        if (
            why is None
            and r.min_cuda
            and m.torch_cuda
            and Version(m.torch_cuda) < Version(r.min_cuda)
        ):
            why = f"sageattention {r.version} needs CUDA >= {r.min_cuda}; torch has {m.torch_cuda}"
        if why is None and r.kind == "source-build" and not m.nvcc:
            why = f"sageattention {r.version} compiles CUDA kernels: no nvcc on this machine"
        if why is not None:
            rejections.append(Rejection(backend=_BACKEND, source=r.kind, what=what, reason=why))
            continue
        is_wheel = r.kind == "pypi"
        candidates.append(
            WheelCandidate(
                backend=_BACKEND,
                source=r.kind,
                trust="official",
                requirement=f"sageattention=={r.version}" if is_wheel else (r.requirement or ""),
                version=r.version,
                filename=r.wheel,
                pip_args=() if is_wheel else ("--no-build-isolation",),
                verified=r.verified,
                reason=(
                    f"sageattention {r.version} from the package index: Triton kernels, no "
                    "compile (inference only)"
                    if is_wheel
                    else f"sageattention {r.version} built here against the installed torch "
                    "(CUDA kernels for this GPU; needs the repository and nvcc)"
                ),
                provenance=(r.source,),
            )
        )
    return BackendPlan(
        backend=_BACKEND,
        candidates=tuple(candidates),
        rejections=tuple(rejections),
        ways_out=() if candidates else (f"{record.title}: {problem or 'no release fits'}",),
    )


def plan_sage(
    m: Machine,
    index: Index,
    allow: frozenset[SourceKind],
    allow_torch_change: bool,
    versions: SpecifierSet | None = None,
) -> BackendPlan:
    """The planner ``plan_backend`` calls: ``plan_sageattention`` over the allowed sources."""
    plan = plan_sageattention(m, cuda_torch_problem)
    return replace(plan, candidates=tuple(c for c in plan.candidates if c.source in allow))
