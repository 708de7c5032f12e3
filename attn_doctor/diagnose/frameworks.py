"""The frameworks' side of the diagnosis: each one's knob for the one decision, and findings
about their settings and pins (pure).

- ``framework_advice``: per framework present (or asked for), ``decide`` with that framework in
  the request, spoken in its knob.
- ``_setting_findings``: a variable the installed framework no longer reads; a variable that
  names a backend whose package is missing or below the framework's minimum.
- ``_pin_conflict_findings``: a framework requirement the installed packages break; two
  frameworks that require what cannot both hold.
- ``_bundled_findings``: a backend package installed for a framework that ships its own kernel.
"""

from __future__ import annotations

from collections.abc import Iterable

from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.decide import Request, candidates, decide
from attn_doctor.diagnose.context import Ctx, evidence_of
from attn_doctor.diagnosis import BackendStatus, Evidence, Finding, FrameworkAdvice
from attn_doctor.framework_names import FRAMEWORK_NAMES, FrameworkName
from attn_doctor.index.frameworks import load_frameworks
from attn_doctor.planner.compat import devices, verdict
from attn_doctor.planner.frameworks import (
    FrameworkRequirement,
    backend_for_name,
    can_both_hold,
    framework_requirements,
    framework_title,
    framework_version,
    installed_version,
    is_present,
    knob,
    minimums_for,
    present_frameworks,
    requires_itself,
    satisfies,
)


def frameworks_for(ctx: Ctx, asked: Iterable[FrameworkName]) -> tuple[FrameworkName, ...]:
    wanted = set(present_frameworks(ctx.env)) | set(asked)
    return tuple(fw for fw in FRAMEWORK_NAMES if fw in wanted)


def framework_advice(
    ctx: Ctx,
    table: dict[BackendName, BackendStatus],
    blocker: Finding | None,
    frameworks: Iterable[FrameworkName],
) -> list[FrameworkAdvice]:
    """The one decision for each framework and device, as that framework's knob."""
    env = ctx.env
    out: list[FrameworkAdvice] = []
    for fw in frameworks:
        version = framework_version(env, fw)
        request = Request(
            training=ctx.request.training,
            gpu_index=ctx.request.gpu_index,
            framework=fw,
            framework_version=version,
            dtype=ctx.request.dtype,
            head_dim=ctx.request.head_dim,
        )
        for dev in devices(env):
            compatible = {}
            for name in candidates():
                v = verdict(ctx.rules.backend(name), dev, env)
                compatible[name] = (v.compatible == "yes", v.reason)
            routes = (
                {n: ctx.route(n) for n in candidates() if not BACKENDS[n].builtin}
                if ctx.index is not None
                else None
            )
            decision = decide(
                env,
                ctx.rules,
                table=table,
                blocker=blocker,
                compatible=compatible,
                route=routes,
                evidence=ctx.evidence,
                request=request,
                gpu=dev,
            )
            top = next((c for c in decision.choices if c.auto), decision.top)
            if top is None:
                continue
            backend = top.backend
            reason = top.reason
            if top.activate is not None:  # a verified kernel measured faster: name it
                kernel_entry = BACKENDS[top.activate].framework_entry(fw, version)
                if kernel_entry is not None:
                    backend = top.activate
                    reason += f"; {BACKENDS[backend].title} was measured faster here"
            elif top.kernel is not None:
                reason += f"; it runs the {BACKENDS[top.kernel].title} here"
            entry = BACKENDS[backend].framework_entry(fw, version)
            if entry is None:
                continue
            out.append(
                FrameworkAdvice(
                    framework=fw,
                    framework_version=version,
                    backend=backend,
                    name=entry.name,
                    knob=knob(fw, entry),
                    status=top.status,
                    way=top.way,
                    reason=reason,
                    gpu_index=decision.gpu_index,
                    alternatives=tuple(
                        dict.fromkeys(
                            c.framework_name or ""
                            for c in decision.choices
                            if c.framework_name not in (None, entry.name) and c.status != "blocked"
                        )
                    ),
                    source=entry.source,
                    verified=entry.verified,
                )
            )
    return out


# --- findings -------------------------------------------------------------------------------


def _setting_findings(ctx: Ctx) -> list[Finding]:
    env = ctx.env
    out: list[Finding] = []
    for setting in load_frameworks().settings:
        value = env.env(setting.variable)
        fw = setting.framework
        if value is None or not is_present(env, fw):
            continue
        version = framework_version(env, fw)
        title = framework_title(fw)
        evidence = [
            evidence_of(f"env_vars.{setting.variable}", value),
            evidence_of(f"packages.{fw}", version),
        ]
        if satisfies(version, setting.read) is False:
            template = load_frameworks().framework(fw).knob
            fix = template.format(name=value) if setting.names_backend else setting.replacement
            out.append(
                ctx.finding(
                    "framework-setting-not-read",
                    "warning",
                    f"{setting.variable} is not read by {title} {version}",
                    f"{title} reads {setting.variable} only in versions {setting.read}; "
                    f"{version} ignores it silently and picks its own default. "
                    f"Use {setting.replacement}.",
                    evidence,
                    fix=f"unset {setting.variable}; {fix}",
                    sources=(setting.source,),
                )
            )
            continue
        if not setting.names_backend:
            continue
        backend = backend_for_name(fw, value, version)
        if backend is None:
            continue
        out += _named_backend_findings(ctx, fw, (setting.variable, value), backend, evidence)
    return out


def _named_backend_findings(
    ctx: Ctx,
    fw: FrameworkName,
    setting: tuple[str, str],
    backend: BackendName,
    evidence: list[Evidence],
) -> list[Finding]:
    variable, value = setting
    env = ctx.env
    record = BACKENDS[backend]
    version = framework_version(env, fw)
    entry = record.framework_entry(fw, version)
    title = framework_title(fw)
    if record.builtin or (entry is not None and entry.bundled):
        return []
    installed = next(
        (v for d in record.distributions if (v := installed_version(env, d)) is not None), None
    )
    ev = [*evidence, evidence_of(f"packages.{record.distribution}", installed)]
    if installed is None:
        return [
            ctx.finding(
                "framework-setting-backend-missing",
                "error",
                f"{variable}={value} names {record.title}, which is not installed",
                f"{title} will fail when it sets the {value!r} backend: "
                f"{record.distribution} is not installed.",
                ev,
                fix=f"attn-doctor install {record.distribution}",
                backends=(backend,),
            )
        ]
    out = []
    for minimum in minimums_for(env, backend, (fw,)):
        if satisfies(installed, minimum.specifier) is False:
            out.append(
                ctx.finding(
                    "framework-setting-backend-too-old",
                    "error",
                    f"{variable}={value}: {title} needs {minimum.requirement}, "
                    f"{installed} is installed",
                    f"{title} {version} refuses {record.distribution} {installed} for the "
                    f"{value!r} backend (a RuntimeError when the backend is set).",
                    ev,
                    fix=f"attn-doctor install '{record.distribution}{minimum.specifier}'",
                    fix_note=" ".join(minimum.ways) or None,
                    backends=(backend,),
                    sources=(minimum.source,),
                )
            )
    return out


def _pin_conflict_findings(ctx: Ctx) -> list[Finding]:
    env = ctx.env
    out: list[Finding] = []
    reqs: list[FrameworkRequirement] = []
    for fw in present_frameworks(env):
        reqs += framework_requirements(env, fw)
    for req in reqs:
        if req.optional:
            continue
        have = installed_version(env, req.name)
        if req.name == "torch" or have is None or satisfies(have, req.specifier) is not False:
            continue  # torch: package-pins-other-torch says it for every package
        title = framework_title(req.framework)
        out.append(
            ctx.finding(
                "framework-pin-conflict",
                "warning",
                f"{title} {req.framework_version} requires {req.requirement}; "
                f"{req.name} {have} is installed",
                f"{title} was installed against another {req.name}: it may fail to start or "
                "misbehave, and pip will try to move it back on the next install that "
                "touches it.",
                [
                    evidence_of(f"packages.{req.framework}", req.framework_version),
                    evidence_of(req.name, have),
                ],
                fix=_pin_fix(ctx, req, title, have),
                sources=(req.source,),
            )
        )
    seen: set[tuple[str, str]] = set()
    for a in reqs:
        for b in reqs:
            if a.framework >= b.framework or a.name != b.name:
                continue
            if (a.requirement, b.requirement) in seen or can_both_hold(a.specifier, b.specifier):
                continue
            seen.add((a.requirement, b.requirement))
            ta, tb = framework_title(a.framework), framework_title(b.framework)
            out.append(
                ctx.finding(
                    "framework-pins-disjoint",
                    "warning",
                    f"{ta} {a.framework_version} and {tb} {b.framework_version} need "
                    f"{a.name} versions that cannot both hold",
                    f"{ta} requires {a.requirement}{' (optional)' if a.optional else ''}; "
                    f"{tb} requires {b.requirement}{' (optional)' if b.optional else ''}. "
                    "One environment cannot satisfy both: give each its own virtual "
                    "environment.",
                    [
                        evidence_of(f"packages.{a.framework}", a.framework_version),
                        evidence_of(f"packages.{b.framework}", b.framework_version),
                    ],
                    sources=(a.source, b.source),
                )
            )
    return out


def _pin_fix(ctx: Ctx, req: FrameworkRequirement, title: str, have: str) -> str:
    """Never a command that moves torch: the framework moves (or gets its own environment)."""
    from attn_doctor.resolve.common import PROTECTED  # the resolver: not on check's path

    if req.name in PROTECTED:
        return (
            f"install the {title} release built for {req.name} {have}, or give "
            f"{title} {req.framework_version} its own virtual environment"
        )
    python = ctx.env.python.executable or "python"
    return f"{python} -m pip install '{req.requirement}'"


def _bundled_findings(ctx: Ctx) -> list[Finding]:
    env = ctx.env
    out = []
    for fw in present_frameworks(env):
        version = framework_version(env, fw)
        title = framework_title(fw)
        for backend, record in BACKENDS.items():
            entry = record.framework_entry(fw, version)
            if entry is None or not entry.bundled or record.distribution is None:
                continue
            if requires_itself(env, fw, record.distribution):
                continue  # the framework needs the package anyway
            pkg = env.package(record.distribution)
            if pkg is None:
                continue
            out.append(
                ctx.finding(
                    "framework-ships-kernel",
                    "info",
                    f"{title} does not use the installed {record.distribution}",
                    f"{title} ships its own build of this kernel ({entry.name}); installing or "
                    f"upgrading {record.distribution} changes nothing for {title} (it still "
                    "serves transformers and other libraries).",
                    [
                        evidence_of(f"packages.{fw}", version),
                        evidence_of(f"packages.{pkg.name}", pkg.version),
                    ],
                    backends=(backend,),
                    sources=(entry.source,),
                )
            )
    return out


def _comfyui_python_findings(ctx: Ctx) -> list[Finding]:
    """The portable build runs its own interpreter: this diagnosis is of another one. Its
    packages, read from its dist-info, say which of ComfyUI's flags would work there."""
    from attn_doctor.planner.comfyui_embedded import (
        and_join,
        check_for_comfyui,
        embedded_state,
        install_for_comfyui,
        other_python,
    )

    env = ctx.env
    comfy = other_python(env)
    if comfy is None or comfy.python is None:
        return []
    here = env.python.executable
    sources: tuple[str, ...] = (
        "comfyanonymous/ComfyUI README.md (Windows portable: python_embeded)",
    )
    state = embedded_state(comfy)
    evidence = [evidence_of("comfyui.python", comfy.python), evidence_of("python.executable", here)]
    if state is None:
        return [
            ctx.finding(
                "comfyui-other-python",
                "info",
                "ComfyUI runs under its own python_embeded: these packages are not ComfyUI's",
                f"The portable build at {comfy.path} starts {comfy.python}; attn-doctor ran "
                f"under {here}, so the packages, knobs and installs above are for that "
                "interpreter, not ComfyUI's (its site-packages could not be read).",
                evidence,
                fix=check_for_comfyui(env, comfy),
                sources=sources,
            )
        ]
    pkgs = {p.name: p.version for p in comfy.packages or ()}
    evidence.append(evidence_of("comfyui.packages.torch", pkgs.get("torch")))
    for _flag, backend in state.failing:
        dist = BACKENDS[backend].distribution
        evidence.append(evidence_of(f"comfyui.packages.{dist}", None))
    for backend in state.defaults:
        dist = BACKENDS[backend].distribution
        evidence.append(evidence_of(f"comfyui.packages.{dist}", pkgs.get(dist or "")))
    py = f" (Python {comfy.python_version})" if comfy.python_version else ""
    cause = [
        f"The portable build at {comfy.path} starts {comfy.python}{py}, which has "
        f"{and_join(state.have)}."
    ]
    if state.failing:
        flags = and_join([f"`{flag}`" for flag, _ in state.failing])
        cause.append(
            f"{flags} would fail there: "
            + ("its package is" if len(state.failing) == 1 else "their packages are")
            + " not installed in python_embeded."
        )
    for backend in state.defaults:
        cause.append(f"ComfyUI uses {BACKENDS[backend].title} there by itself (no flag).")
    cause.append(
        f"attn-doctor ran under {here}: the packages, knobs and installs above are for that "
        "interpreter, not ComfyUI's."
    )
    if state.failing:
        installs = and_join(
            [install_for_comfyui(env, comfy, backend) for _flag, backend in state.failing]
        )
        cause.append(f"To install into ComfyUI's own interpreter: {installs}.")
    return [
        ctx.finding(
            "comfyui-other-python",
            "info",
            f"ComfyUI's python_embeded has {and_join(state.have)}",
            " ".join(cause),
            evidence,
            fix=check_for_comfyui(env, comfy),
            backends=tuple(b for _f, b in state.failing),
            sources=(
                *sources,
                "comfy/ldm/modules/attention.py (--use-sage-attention, --use-flash-attention: "
                "ComfyUI exits at start-up when the package does not import; read in copies of "
                "the file, not at an upstream commit)",
            ),
        )
    ]


def framework_findings(ctx: Ctx) -> list[Finding]:
    from attn_doctor.diagnose.hub_ready import hub_readiness_findings

    return (
        _setting_findings(ctx)
        + _pin_conflict_findings(ctx)
        + _bundled_findings(ctx)
        + _comfyui_python_findings(ctx)
        + hub_readiness_findings(ctx)
    )
