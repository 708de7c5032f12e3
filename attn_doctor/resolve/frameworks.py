"""Installs that respect the frameworks here: their minimums, their pins, their defaults (pure).

- ``limit_for_frameworks``: a candidate below the version a framework here checks for that
  backend (diffusers and sageattention >= 2.1.1) is refused with the framework's reason; when
  none is left, the ways out name how to get a version that qualifies.
- ``framework_constraints``: the pins of the frameworks installed here (vLLM, SGLang…), read
  from their metadata, as constraint lines, so pip fails instead of breaking them. A pin the
  machine already breaks is left out (it would refuse every install; check reports it).
- ``framework_notes``: what the plan must say: a framework whose default changes (ComfyUI uses
  xformers whenever it imports), a framework that will not use the install (vLLM ships its own
  flash-attn), a candidate a framework's pin refuses.
"""

from __future__ import annotations

from dataclasses import replace

from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.facts import Environment
from attn_doctor.index.frameworks import load_frameworks
from attn_doctor.planner.comfyui_embedded import install_for_comfyui, other_python
from attn_doctor.planner.frameworks import (
    can_both_hold,
    framework_requirements,
    framework_title,
    framework_version,
    installed_version,
    minimums_for,
    present_frameworks,
    requires_itself,
    satisfies,
)
from attn_doctor.planner.plans import BackendPlan, Rejection, WheelCandidate
from attn_doctor.probe.distributions import canonicalize_name
from attn_doctor.resolve.common import PROTECTED


def limit_for_frameworks(env: Environment, backend: BackendName, plan: BackendPlan) -> BackendPlan:
    """``plan`` without the candidates a framework here would refuse (each with its reason)."""
    minimums = minimums_for(env, backend, present_frameworks(env))
    if not minimums:
        return plan
    kept: list[WheelCandidate] = []
    rejected: list[Rejection] = []
    for cand in plan.candidates:
        refusal = next((m for m in minimums if satisfies(cand.version, m.specifier) is False), None)
        if refusal is None:
            kept.append(cand)
            continue
        title = framework_title(refusal.framework)
        rejected.append(
            Rejection(
                backend=backend,
                source=cand.source,
                what=cand.requirement,
                reason=f"{title} {framework_version(env, refusal.framework)} refuses "
                f"{cand.version}: it needs {refusal.requirement} for this backend "
                f"({refusal.source})",
            )
        )
    if not rejected:
        return plan
    ways = list(plan.ways_out)
    if not kept:
        for m in minimums:
            title = framework_title(m.framework)
            if m.ways:
                ways.append(f"{title} needs {m.requirement}: " + "; or ".join(m.ways) + ".")
    return replace(
        plan,
        candidates=tuple(kept),
        rejections=(*plan.rejections, *rejected),
        ways_out=tuple(dict.fromkeys(ways)),
    )


def framework_constraints(env: Environment) -> tuple[str, ...]:
    """Constraint lines from the pins of the frameworks installed here (torch's family left to
    the protected pins: they pin it exactly already)."""
    lines: list[str] = []
    data = load_frameworks()
    for fw in present_frameworks(env):
        if not data.framework(fw).constrain:
            continue
        for req in framework_requirements(env, fw):
            if req.optional or req.name in PROTECTED:
                continue
            have = installed_version(env, req.name)
            if have is not None and satisfies(have, req.specifier) is False:
                continue  # already broken: a constraint would refuse every install
            lines.append(req.requirement)
    return tuple(dict.fromkeys(lines))


def framework_notes(
    env: Environment, backend: BackendName, candidate: WheelCandidate
) -> tuple[str, ...]:
    """What the plan must say about the frameworks here."""
    record = BACKENDS[backend]
    notes: list[str] = []
    for fw in present_frameworks(env):
        version = framework_version(env, fw)
        title = framework_title(fw)
        entry = record.framework_entry(fw, version)
        if entry is not None and entry.default:
            notes.append(
                f"{title} uses {record.title} by itself whenever it imports: after this "
                f"install {title}'s default attention changes to it (start {title} with "
                "--disable-xformers to keep the current one)"
            )
        if (
            entry is not None
            and entry.bundled
            and (record.distribution is None or not requires_itself(env, fw, record.distribution))
        ):
            notes.append(
                f"{title} ships its own build of this kernel ({entry.name}) and does not use "
                f"this install: it serves transformers and other libraries only"
            )
        for req in framework_requirements(env, fw):
            brings = _brings(candidate, req.name)
            if brings is None:
                continue
            kind = "may need (Hub kernels)" if req.optional else "requires"
            if not can_both_hold(brings, req.specifier):
                notes.append(
                    f"{title} {version} {kind} {req.requirement}: this installs "
                    f"{req.name}{brings}"
                    + ("" if req.optional else " (pip refuses it: that pin is a constraint)")
                )
    comfy = other_python(env)
    if comfy is not None and comfy.python is not None:
        notes.append(
            f"ComfyUI runs under its own {comfy.python}: this installs into "
            f"{env.python.executable}, not into ComfyUI's; for ComfyUI: "
            f"{install_for_comfyui(env, comfy, backend)}"
        )
    for m in minimums_for(env, backend, present_frameworks(env)):
        notes.append(
            f"{framework_title(m.framework)} checks {m.requirement} for this backend: "
            f"{candidate.version or candidate.requirement} "
            f"{'qualifies' if satisfies(candidate.version, m.specifier) else 'does not'}"
        )
    return tuple(dict.fromkeys(notes))


def _brings(candidate: WheelCandidate, name: str) -> str | None:
    """The versions of ``name`` the candidate installs, as a specifier (None: not that one)."""
    from packaging.requirements import InvalidRequirement, Requirement
    try:
        req = Requirement(candidate.requirement)
    except InvalidRequirement:
        return None
    if canonicalize_name(req.name) != name:
        return None
    if candidate.version is not None:
        return f"=={candidate.version}"
    return str(req.specifier) or None
