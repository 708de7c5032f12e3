"""The backend table (installed, importable, compatible, usable, why) and the
recommendations, which are the one decision (``attn_doctor.decide``) per device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attn_doctor.backends import BACKEND_NAMES, BACKENDS, BackendName
from attn_doctor.diagnosis import (
    BackendStatus,
    Finding,
    Recommendation,
    Tri,
)
from attn_doctor.facts import Environment

if TYPE_CHECKING:
    pass
from attn_doctor.diagnose.context import (
    TORCH_BLOCKERS,
    TRITON_DISTRIBUTIONS,
    Ctx,
    first_package,
)
from attn_doctor.planner.compat import TORCH_INTERNAL, Verdict, devices, verdict

# --- backend table and recommendations -----------------------------------------------------------


def _installed(env: Environment, name: BackendName) -> tuple[Tri, str | None]:
    info = BACKENDS[name]
    if name in TORCH_INTERNAL:
        return ("yes", env.torch.version) if env.torch else ("no", None)
    pkg = first_package(env, *info.distributions)
    return ("yes", pkg.version) if pkg else ("no", None)


def _importable(env: Environment, name: BackendName, installed: Tri) -> tuple[Tri, str | None]:
    if installed != "yes":
        return "no", None
    module = BACKENDS[name].module or "torch"
    res = env.import_result(module)
    if res is None and "." in module:
        res = env.import_result(module.split(".")[0])
    if res is None:
        return "unknown", None
    if res.status == "ok":
        return "yes", None
    return "no", f"import {res.module} {res.status}: {res.detail or ''}".strip()


def _combined_verdict(ctx: Ctx, name: BackendName) -> Verdict:
    rule = ctx.rules.backend(name)
    verdicts = [verdict(rule, dev, ctx.env) for dev in devices(ctx.env)]
    for v in verdicts:
        if v.compatible == "no":
            return v
    for v in verdicts:
        if v.compatible == "unknown":
            return v
    official = all(v.official for v in verdicts)
    return Verdict(compatible="yes", official=official, reason=verdicts[0].reason)


def torch_blocked(findings: list[Finding]) -> Finding | None:
    return next((f for f in findings if f.id in TORCH_BLOCKERS and f.severity == "error"), None)


def backend_table(ctx: Ctx, findings: list[Finding]) -> dict[BackendName, BackendStatus]:
    env = ctx.env
    blocker = torch_blocked(findings)
    broken = {b for f in findings if f.severity == "error" for b in f.backends}
    table: dict[BackendName, BackendStatus] = {}
    gpu_machine = bool(env.gpus)
    for name in BACKEND_NAMES:
        rule = ctx.rules.backend(name)
        installed, version = _installed(env, name)
        importable, import_problem = _importable(env, name, installed)
        v = _combined_verdict(ctx, name)
        missing_needs = [
            need
            for need in (rule.needs if gpu_machine else ())
            if not (
                first_package(env, *TRITON_DISTRIBUTIONS)
                if need == "triton"
                else first_package(env, need)
            )
        ]
        reason: str
        usable = False
        if installed != "yes":
            how = "torch is not installed" if name in TORCH_INTERNAL else "not installed"
            reason = f"{how}; {v.reason}" if v.compatible != "yes" else how
        elif importable == "no":
            reason = import_problem or "fails to import"
        elif v.compatible != "yes":
            reason = v.reason
        elif gpu_machine and blocker is not None:
            reason = f"torch cannot use the GPU: {blocker.title}"
        elif name in broken:
            reason = next(f.title for f in findings if f.severity == "error" and name in f.backends)
        elif missing_needs:
            reason = f"needs {', '.join(missing_needs)} (not installed)"
        else:
            usable = True
            reason = v.reason if v.official else v.reason + " (not an upstream target)"
            if importable == "unknown" and name not in TORCH_INTERNAL:
                reason += "; import not tried (run check --deep)"
        table[name] = BackendStatus(
            backend=name,
            installed=installed,
            importable=importable if name not in TORCH_INTERNAL or installed == "yes" else "no",
            compatible=v.compatible,
            usable=usable,
            version=version,
            reason=reason,
            attn_implementation=BACKENDS[name].attn_implementation,
        )
    return table


def recommend(
    ctx: Ctx, table: dict[BackendName, BackendStatus], findings: list[Finding]
) -> list[Recommendation]:
    """The one decision (``attn_doctor.decide``) per device, as recommendations."""
    from attn_doctor.decide import candidates, decide

    env = ctx.env
    blocker = torch_blocked(findings)
    if blocker is not None and not env.gpus and blocker.id != "no-torch":
        blocker = None  # a GPU-side problem does not stop a CPU-only machine
    recs: list[Recommendation] = []
    for dev in devices(env):
        compatible: dict[BackendName, tuple[bool, str]] = {}
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
            request=ctx.request,
            gpu=dev,
        )
        for choice in decision.choices:
            note = choice.way
            if choice.kernel is not None:
                kernel = BACKENDS[choice.kernel].title.removeprefix("torch SDPA: ")
                note += f"; its default dispatch runs the {kernel} here ({choice.kernel_source})"
            if choice.activate is not None:
                note += f"; {BACKENDS[choice.activate].title} measured faster here"
            if choice.score is not None and choice.measured:
                note += f"; measured {choice.score:.3g} TFLOP/s here ({choice.evidence})"
            recs.append(
                Recommendation(
                    rank=choice.rank,
                    backend=choice.backend,
                    attn_implementation=choice.attn_implementation,
                    usable_now=choice.status == "ready",
                    reason=f"{choice.reason}; {note}",
                    gpu_index=decision.gpu_index,
                    status=choice.status,
                    way=choice.way,
                    score=choice.score,
                    measured=choice.measured,
                    kernel=choice.kernel,
                    kernel_source=choice.kernel_source,
                    activate=choice.activate,
                    auto=choice.auto,
                )
            )
    return recs
