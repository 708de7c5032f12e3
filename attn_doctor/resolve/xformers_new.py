"""xformers releases newer than the recorded CI table (``xformers_builds.toml``), known only
from the package index through ``attn-doctor index update``: each wheel's METADATA says which
torch it takes; which CUDA it was built with is not recorded, so it is taken as the previous
release's package-index build, offered only to a torch of the same CUDA major, unverified, and
checked after install (rolled back if the check fails) (pure)."""

from __future__ import annotations

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from attn_doctor.index.records import Index, XformersWheel
from attn_doctor.planner.plans import Rejection, WheelCandidate
from attn_doctor.resolve.common import (
    Machine,
    nightly_torch,
    platform_mismatch,
    python_mismatch,
    torch_variant,
)


def newer_than_builds(
    m: Machine, index: Index, versions: SpecifierSet | None
) -> tuple[list[WheelCandidate], list[Rejection]]:
    """Candidates (newest first) and refusals for the package-index releases without a CI row."""
    if not index.xformers_builds:
        return [], []
    recorded = {b.version for b in index.xformers_builds}
    previous = index.xformers_builds[-1]
    releases: dict[str, list[XformersWheel]] = {}
    for w in index.xformers:
        if w.version in recorded or Version(w.version) <= Version(previous.version):
            continue
        if versions is None or versions.contains(w.version, prereleases=True):
            releases.setdefault(w.version, []).append(w)
    candidates: list[WheelCandidate] = []
    rejections: list[Rejection] = []
    variant = torch_variant(m)
    for version in sorted(releases, key=Version, reverse=True):
        what = f"xformers=={version}"
        fits = [
            w
            for w in releases[version]
            if platform_mismatch(w.platform_tag, m) is None
            and python_mismatch(w.python_tag, w.abi_tag, m) is None
        ]
        why = _why_not(fits, version, m, variant, previous.package_index_cuda)
        if why is not None:
            rejections.append(Rejection(backend="xformers", source="pypi", what=what, reason=why))
            continue
        wheel = fits[0]
        candidates.append(
            WheelCandidate(
                backend="xformers",
                source="pypi",
                trust="official",
                requirement=what,
                version=version,
                filename=wheel.filename,
                sha256=wheel.sha256,
                verified=False,
                reason=(
                    f"package-index wheel of xformers {version} (newer than the recorded CI "
                    f"table; read by attn-doctor index update): its METADATA requires "
                    f"{wheel.requires_torch}, which torch {m.torch} meets; its CUDA build is not "
                    f"recorded: taken as {previous.package_index_cuda} like {previous.tag}'s, the "
                    f"same CUDA major as this torch's {variant}, so it is verified after install "
                    "(rolled back if the check fails)"
                ),
                provenance=(wheel.source, f"CUDA build assumed from {previous.source}"),
            )
        )
    return candidates, rejections


def _why_not(
    fits: list[XformersWheel], version: str, m: Machine, variant: str | None, previous: str
) -> str | None:
    if not fits:
        return f"xformers {version}: no package-index wheel for Python {m.python} on {m.os}"
    if nightly_torch(m):
        return f"xformers {version}: torch {m.torch} is a nightly (.dev) build"
    req = fits[0].requires_torch
    if not req:
        return f"xformers {version}: its METADATA declares no torch requirement"
    if not Requirement(req).specifier.contains(Version(m.torch or "0").public, prereleases=True):
        return f"xformers {version} requires {req}; installed torch is {m.torch}"
    if variant is None or not variant.startswith("cu") or variant[2:-1] != previous[2:-1]:
        return (
            f"xformers {version}: its CUDA build is not recorded (the previous release's "
            f"package-index build was {previous}); torch is {variant or m.torch}"
        )
    return None
