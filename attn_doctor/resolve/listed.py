"""Wheels listed by the sources ``attn-doctor index update`` read (``Index.listed``): GitHub
release pages (flash-attn's own assets, the community builds) and PEP 503 / ``--find-links``
pages (third-party indexes), matched against this machine (pure).

A listed wheel fits the torch it declares (``requires_torch``: its METADATA's ``Requires-Dist:
torch``, or for release assets the project's naming rule), the CUDA of its local label or of
the index path that serves it (same major, minor not newer than torch's), the C++11 ABI of the
torch it was built against, and its Python and platform tags. Each candidate names the source
that listed it and that source's trust.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from attn_doctor.backends import BackendName
from attn_doctor.facts import sm_text
from attn_doctor.index.naming import parse_wheel_filename
from attn_doctor.index.records import Index, ListedWheel
from attn_doctor.planner.plans import WheelCandidate
from attn_doctor.resolve.common import (
    Machine,
    platform_mismatch,
    python_mismatch,
    runs_on,
)

_LABEL_CUDA = re.compile(r"^cu(\d{2,3})")
_PATH_CUDA = re.compile(r"/cu(\d{3})(?:/|$)")
_LABEL_ABI = re.compile(r"cxx11abi(TRUE|FALSE)")


def wheel_cuda(w: ListedWheel) -> str | None:
    """``12.8`` (or ``12`` for a major-only label) from the wheel's local label, else from the
    index path that serves it (``…/cu128/…``); None when neither states it."""
    local = w.version.partition("+")[2]
    found = _LABEL_CUDA.match(local) or _PATH_CUDA.search(w.listed_by)
    if found is None:
        return None
    digits = found.group(1)
    return digits if len(digits) <= 2 else f"{digits[:-1]}.{digits[-1]}"


def listed_fit(w: ListedWheel, m: Machine, index: Index) -> str | None:
    """Why a listed wheel does not install and load here, or None when it does."""
    if m.torch is None or m.torch_cuda is None:
        return "torch has no CUDA"
    if not w.requires_torch:
        return "declares no torch requirement (cannot tell which torch it fits)"
    here = Version(m.torch).public
    if not SpecifierSet(w.requires_torch).contains(here, prereleases=True):
        said = "its METADATA declares" if w.torch_from == "metadata" else "named for"
        return f"{said} torch{w.requires_torch}; this torch is {m.torch}"
    cuda = wheel_cuda(w)
    if cuda is None:
        return "states no CUDA version (not in its name nor in the index path)"
    have, built = Version(m.torch_cuda), Version(cuda)
    if built.major != have.major or ("." in cuda and built.minor > have.minor):
        return f"built with CUDA {cuda}, torch has CUDA {m.torch_cuda}"
    _, _, py, abi, plat = parse_wheel_filename(w.filename)
    if m.os == "linux" and any(t.startswith(("linux", "manylinux")) for t in plat.split(".")):
        pytorch_abi = index.pytorch_wheel_abi(m.torch_minor or "0.0")
        named = _LABEL_ABI.search(w.version)
        abi_flag = named.group(1) == "TRUE" if named else pytorch_abi
        if m.cxx11_abi is None:
            return "torch's C++11 ABI flag is unknown here (the build needs it to match)"
        if named and not abi_flag and pytorch_abi:
            return (
                "named cxx11abiFALSE but built against PyTorch's torch, whose Linux wheels use "
                f"the C++11 ABI from torch {index.torch_cxx11_abi_since} on"
            )
        if abi_flag != m.cxx11_abi:
            return (
                f"C++11 ABI {str(abi_flag).upper()}; this torch has C++11 ABI "
                f"{str(m.cxx11_abi).upper()}"
            )
    why = python_mismatch(py, abi, m)
    if why:
        return why
    plats = [platform_mismatch(t, m) for t in plat.split(".")]
    if all(plats):
        return next(p for p in plats if p)
    return None


def _known_archs(w: ListedWheel, index: Index) -> tuple[tuple[int, ...], str]:
    """The GPU archs of an upstream flash-attn asset: its release's (or, for a release newer
    than the bundled data, the newest known release's, said so), else ()."""
    if w.trust != "official" or w.package != "flash_attn" or not index.flash_attn:
        return (), ""
    release = next((r for r in index.flash_attn if r.version == w.version), None)
    said = ""
    if release is None:
        release, said = index.flash_attn[-1], f" (as {index.flash_attn[-1].tag}: not recorded)"
    return tuple(a.sm for a in release.gpu_archs), said


def listed_candidates(
    backend: BackendName,
    package: str,
    dist: str,
    m: Machine,
    index: Index,
    *,
    trusts: Sequence[str],
    versions: SpecifierSet | None = None,
) -> tuple[list[WheelCandidate], list[str]]:
    """Candidates from the listed wheels of ``package`` whose source has one of ``trusts``,
    newest first (one per version), and the reasons the nearest others do not fit."""
    fits: list[ListedWheel] = []
    near: list[str] = []
    for w in index.listed:
        if w.package != package or w.trust not in trusts:
            continue
        if versions is not None and not versions.contains(w.version, prereleases=True):
            continue
        why = listed_fit(w, m, index)
        archs, _ = _known_archs(w, index)
        if why is None and archs and (bad := [sm for sm in m.sms if not runs_on(archs, sm)]):
            have = sm_text(bad[0], form="both")
            why = f"carries {', '.join(f'sm_{a}' for a in archs)} only; GPU is {have}"
        if why is None:
            fits.append(w)
        elif len(near) < 3:
            near.append(f"{w.filename} (listed by {w.listed_by}): {why}")
    fits.sort(key=lambda w: (_version(w.version), w.sha256 is not None), reverse=True)
    out: list[WheelCandidate] = []
    seen: set[str] = set()
    for w in fits:
        public = _version(w.version).public
        if public in seen:
            continue
        seen.add(public)
        out.append(_candidate(w, backend, dist, index))
    return out, near


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


def _candidate(w: ListedWheel, backend: BackendName, dist: str, index: Index) -> WheelCandidate:
    archs, said = _known_archs(w, index)
    torch_said = (
        f"its METADATA declares torch{w.requires_torch}"
        if w.torch_from == "metadata"
        else f"named for torch{w.requires_torch} by the project's naming rule"
    )
    gpu = (
        f"GPU code for {', '.join(f'sm_{a}' for a in archs)}{said}"
        if archs
        else "GPU archs not stated"
    )
    return WheelCandidate(
        backend=backend,
        source="upstream-release" if w.trust == "official" else "community",
        trust=w.trust,
        requirement=f"{dist} @ {w.url}",
        version=_version(w.version).public,
        filename=w.filename,
        url=w.url,
        verified=w.verified,
        sha256=w.sha256,
        reason=(
            f"listed by {w.listed_by} (trust: {w.trust}; read by attn-doctor index update): "
            f"{w.filename}, {torch_said}, CUDA {wheel_cuda(w)}; {gpu}"
            + ("" if w.trust == "official" else "; not built or tested by the project's authors")
        ),
        provenance=(w.source,),
    )


def listed_flash_attn_2(
    m: Machine, index: Index, trusts: Sequence[str], versions: SpecifierSet | None
) -> tuple[list[WheelCandidate], list[str]]:
    """flash-attn 2 wheels listed by sources of these trust levels."""
    return listed_candidates(
        "flash_attn_2", "flash_attn", "flash-attn", m, index, trusts=trusts, versions=versions
    )


def merge(
    ours: Sequence[WheelCandidate],
    listed: Sequence[WheelCandidate],
    limit: int,
    index: Index | None = None,
) -> list[WheelCandidate]:
    """The bundled data's candidates and the listed ones, newest first. A file of ours that a
    release page lists (any entry of ``index.listed``) takes that page's sha256 and counts as
    confirmed, instead of being repeated."""
    pages = {w.filename: w for w in index.listed} if index is not None else {}
    out = []
    for cand in ours:
        page = pages.get(cand.filename or "")
        c = cand
        if page is not None and page.trust == c.trust:
            c = replace(
                c,
                sha256=c.sha256 or page.sha256,
                verified=True,
                reason=c.reason.replace(" (upload not confirmed offline)", "")
                + f"; listed by {page.listed_by} ({page.source})",
                provenance=(*c.provenance, page.source),
            )
        out.append(c)
    names = {c.filename for c in out}
    out += [c for c in listed if c.filename not in names]
    out.sort(key=lambda c: _version(c.version or "0"), reverse=True)
    return out[:limit]
