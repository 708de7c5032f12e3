"""Classes over package facts the message states itself: in upstream projects' own wordings
(``evidence_upstream``: a compiled package built for another torch, CUDA or Python; a package a
framework was set to use and did not find) or in a wheel's name (the torch it was built for).
A package's floor joins the caller's facts (``<package>-too-old-for-caller``), so it has no
rule here."""

from __future__ import annotations

import re

from attn_doctor.explain.answer import ClassAnswer, has_error, line_of, mm
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.knowledge import Knowledge

_OWN_CLASS = {
    "xformers": "xformers-built-for-other-torch",
    "flash-attn": "flash-attn-built-for-other-torch",
    "kernels": "hub-kernel-no-variant",
}
"""Packages whose mismatch has a class of its own; any other is an extension built for another
torch."""


def _backend_of(know: Knowledge, dist: str) -> str | None:
    """The backend record's name for a distribution (``flash-attn`` -> flash_attn_2)."""
    b = know.backend_of_distribution(dist) or know.backend(dist.replace("-", "_"))
    return b.name if b is not None else None


def package_built_for_other_torch(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A compiled package says, in its project's words, that it was built for another torch
    (or CUDA, or Python) than the one here."""
    for dist, built, here in f.upstream.built_for:
        class_id = _OWN_CLASS.get(dist, "extension-built-for-other-torch")
        what = f" (built for {built}; this is {here})" if built and here else ""
        backend = _backend_of(know, dist)
        return [
            ClassAnswer(
                class_id=class_id,
                title=f"{dist} was built for another torch, CUDA or Python",
                cause=(
                    f"{dist}'s compiled part does not fit this environment{what}: it was built "
                    "against another torch release, CUDA or Python, or without kernels for this "
                    "GPU's architecture, so it does not load (or loads without those kernels). "
                    "The message says so in its project's words."
                ),
                fix=(
                    f"attn-doctor install {backend}   # the build for this torch"
                    if backend
                    else f"pip install --force-reinstall --no-deps {dist}   # a build for this "
                    "torch (or the torch it was built for)",
                    "attn-doctor check   # names the torch, CUDA and Python here",
                ),
                checks=(f"built_for_other_torch:{dist}",) if dist in {"xformers"} else (),
                evidence=(("package", dist), *((("built for", built),) if built else ())),
                source="; ".join(f.upstream.sources),
                line=line_of(f, r"built for|does not match|compiled with|was built|Failed to"),
            )
        ]
    return []


def wheel_built_for_other_torch(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A backend wheel whose name says which torch it was built for (``+cu128torch2.9.0``),
    beside another torch in the same message, in a failing text."""
    torch = f.version("torch")
    if not torch or not f.wheel_torch or not has_error(f):
        return []
    here = mm(torch)
    for dist, built in f.wheel_torch:
        if built == here:
            continue
        backend = _backend_of(know, dist)
        return [
            ClassAnswer(
                class_id=_OWN_CLASS.get(dist, "extension-built-for-other-torch"),
                title=f"the {dist} wheel was built for torch {built}; this torch is {here}",
                cause=(
                    f"the installed {dist} wheel's name says it was built for torch {built} "
                    f"(+…torch{built}), and the torch here is {torch}: a compiled extension only "
                    "loads with the torch release it was built against (on Windows the failure "
                    "reads 'DLL load failed')."
                ),
                fix=(
                    f"attn-doctor install {backend}   # the wheel built for torch {here}"
                    if backend
                    else f"install the {dist} wheel built for torch {here}",
                    f"or install torch {built}, the release the wheel was built for",
                ),
                checks=(f"built_for_other_torch:{dist}",),
                evidence=(("wheel built for", f"torch {built}"), ("torch", torch)),
                source="the wheel's own local version tag (+cuXXXtorchX.Y) and the torch the "
                "message shows",
                line=line_of(f, rf"torch{re.escape(built)}"),
            )
        ]
    return []


def framework_package_missing(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A framework set to use an attention package (an attention backend setting, a launch
    flag) says, in its own words, that the package is not installed or not usable."""
    for dist, project in f.upstream.missing:
        backend = _backend_of(know, dist)
        return [
            ClassAnswer(
                class_id="backend-forced-package-missing",
                title=f"{project} is set to use {dist}, which is not installed",
                cause=(
                    f"{project} was told to use {dist} (an attention backend setting or flag) "
                    f"and found it missing or not importable; it does not fall back on its own "
                    "for an explicit choice."
                ),
                fix=(
                    f"attn-doctor install {backend}" if backend else f"pip install {dist}",
                    f"or drop the setting that asks {project} for {dist} (SDPA needs no package)",
                ),
                checks=(f"package_missing:{dist}",),
                evidence=(("package", dist), ("framework", project)),
                source="; ".join(f.upstream.sources),
                line=line_of(f, re.escape(dist.split("-")[0])) or line_of(f, r"install"),
            )
        ]
    return []
