"""Ways to get FlashInfer onto a machine (pure, over ``wheels_index/flashinfer.toml``).

flashinfer-python is a ``py3-none-any`` wheel on the package index whose Requires-Dist names
torch without a version: pip keeps the installed torch (the install runs under the torch
constraint). Its kernels compile on first use unless the companions supply them:
flashinfer-cubin (prebuilt binaries) and flashinfer-jit-cache (prebuilt modules for one CUDA),
which FlashInfer's own CLI installs at the matching version.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.datafiles import Entry, check_schema, read_toml, tables
from attn_doctor.index.records import Index
from attn_doctor.planner.plans import BackendPlan, SourceKind, WheelCandidate
from attn_doctor.resolve.common import Machine, record_problem, rejected

FILE = "flashinfer.toml"
_BACKEND: BackendName = "flashinfer"


@dataclass(frozen=True, kw_only=True)
class FlashInferRelease:
    """One flashinfer-python release on the package index."""

    version: str
    requires_python: str
    requires_torch: str
    """Requires-Dist's torch specifier ("": any torch)."""
    cuda13_extra: str | None
    """The extra for CUDA 13 builds of torch (None: none)."""
    companions: tuple[str, ...]
    source: str
    verified: bool


def _release(e: Entry) -> FlashInferRelease:
    source, verified = e.provenance()
    return FlashInferRelease(
        version=e.version("version"),
        requires_python=e.str_("requires_python"),
        requires_torch=e.str_("requires_torch", default=""),
        cuda13_extra=e.opt_str("cuda13_extra"),
        companions=e.strs("companions"),
        source=source,
        verified=verified,
    )


@functools.cache
def load_flashinfer_releases() -> tuple[FlashInferRelease, ...]:
    """The validated releases, newest first (cached for the run)."""
    doc = read_toml(FILE)
    check_schema(doc, FILE)
    releases = (_release(e) for e in tables(doc, FILE, "release"))
    return tuple(sorted(releases, key=lambda r: Version(r.version), reverse=True))


def flashinfer_versions(index: Index) -> tuple[str, ...]:
    """Every release ``flashinfer.toml`` records (for ``install flashinfer==VERSION``)."""
    return tuple(r.version for r in load_flashinfer_releases())


def plan_flashinfer(
    m: Machine,
    index: Index,
    allow: frozenset[SourceKind],
    allow_torch_change: bool,
    versions: SpecifierSet | None = None,
) -> BackendPlan:
    """flashinfer-python from the package index: the newest release that fits, never moving
    torch; the companions named in the reason."""
    record = BACKENDS[_BACKEND]
    dist = record.distribution or "flashinfer-python"
    problem = record_problem(m, record)
    if (
        problem is None
        and record.min_cuda
        and m.torch_cuda
        and Version(m.torch_cuda) < Version(record.min_cuda)
    ):
        problem = f"{record.title} needs CUDA >= {record.min_cuda}; torch has CUDA {m.torch_cuda}"
    if problem is None and "pypi" not in allow:
        problem = "the package index is not an allowed source"
    if problem is not None:
        return rejected(_BACKEND, "pypi", dist, problem)
    assert m.torch is not None  # record_problem: a CUDA build of torch is installed
    reasons: list[str] = []
    for rel in load_flashinfer_releases():
        if versions is not None and not versions.contains(rel.version, prereleases=True):
            continue
        if not SpecifierSet(rel.requires_python).contains(m.python + ".0"):
            reasons.append(f"{dist} {rel.version} needs Python {rel.requires_python}")
            continue
        if rel.requires_torch and not SpecifierSet(rel.requires_torch).contains(
            Version(m.torch).public, prereleases=True
        ):
            reasons.append(f"{dist} {rel.version} requires torch{rel.requires_torch}")
            continue
        extra = rel.cuda13_extra if (m.cuda_major or 0) >= 13 else None
        companions = " and ".join(rel.companions)
        cand = WheelCandidate(
            backend=_BACKEND,
            source="pypi",
            trust="official",
            requirement=f"{dist}[{extra}]=={rel.version}" if extra else f"{dist}=={rel.version}",
            version=rel.version,
            verified=rel.verified and record.verified,
            reason=(
                f"py3-none-any wheel; its Requires-Dist accepts torch {m.torch} (kept); kernels "
                f"compile on first use unless {companions} supply them (`flashinfer "
                "install-cubin-wheel`, `flashinfer install-jit-cache-wheel`, same version)"
                + (f"; [{extra}] for CUDA {m.torch_cuda}" if extra else "")
            ),
            provenance=(rel.source, record.source),
        )
        return BackendPlan(backend=_BACKEND, candidates=(cand,))
    return rejected(_BACKEND, "pypi", dist, "; ".join(reasons) or "no release fits")
