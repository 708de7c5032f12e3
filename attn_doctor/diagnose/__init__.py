"""The diagnosis: a pure function of (Environment, Rules).

``diagnose(env, rules)`` returns findings (each with a stable id, severity, cause, evidence,
the fix for this machine and the sources of the rule), a status row for every backend, a
ranked recommendation per GPU model (or for the CPU), and the places where common folklore
("Windows -> xformers, Linux -> flash-attn, unsloth first") is wrong for this machine.

Deterministic: the same facts and rules give the same answer, in the same order. Nothing here
reads the machine, starts a process or imports torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from attn_doctor.backends import BACKEND_NAMES
from attn_doctor.decide import BenchEvidence, Request
from attn_doctor.diagnose.context import SEVERITY_ORDER, Ctx
from attn_doctor.diagnose.folklore import folklore_notes
from attn_doctor.diagnose.frameworks import (
    framework_advice,
    framework_findings,
    frameworks_for,
)
from attn_doctor.diagnose.gpu_backends import gpu_backend_findings
from attn_doctor.diagnose.packages import (
    build_label_findings,
    conflict_findings,
    flash_attn_4_extra_findings,
    import_findings,
    package_of_module,
    pin_findings,
    triton_findings,
    xformers_findings,
)
from attn_doctor.diagnose.table import backend_table, recommend, torch_blocked
from attn_doctor.diagnose.toolchain import (
    platform_findings,
    rocm_release,
    toolchain_findings,
)
from attn_doctor.diagnose.torch_gpu import arch_findings, driver_findings, torch_findings
from attn_doctor.diagnose.transformers import (
    hub_fallback_findings,
    transformers_findings,
    unknown_findings,
)
from attn_doctor.diagnosis import Diagnosis, Finding
from attn_doctor.facts import Environment
from attn_doctor.framework_names import FrameworkName
from attn_doctor.rules_data import Rules

if TYPE_CHECKING:
    from attn_doctor.index import Index

__all__ = ["diagnose", "package_of_module", "rocm_release"]


def diagnose(
    env: Environment,
    rules: Rules,
    *,
    evidence: BenchEvidence | None = None,
    request: Request | None = None,
    index: Index | None = None,
    frameworks: Iterable[FrameworkName] = (),
) -> Diagnosis:
    """Everything attn-doctor concludes about ``env``: findings, backend table, recommendations.

    ``evidence`` is what a bench run measured on this machine (same GPU, same torch); the
    recommendations are the one decision (``attn_doctor.decide``) for each device.
    ``frameworks``: frameworks to speak the decision in besides those installed here
    (``check --for``).
    """
    ctx = Ctx(env=env, rules=rules, evidence=evidence, request=request or Request(), index=index)
    findings: list[Finding] = []
    findings += torch_findings(ctx)
    findings += driver_findings(ctx)
    findings += arch_findings(ctx)
    findings += import_findings(ctx)
    findings += build_label_findings(ctx)
    findings += xformers_findings(ctx)
    findings += pin_findings(ctx)
    findings += conflict_findings(ctx)
    findings += triton_findings(ctx)
    findings += flash_attn_4_extra_findings(ctx)
    findings += gpu_backend_findings(ctx)
    findings += toolchain_findings(ctx)
    findings += platform_findings(ctx)
    findings += unknown_findings(ctx)
    findings += framework_findings(ctx)
    table = backend_table(ctx, findings)
    findings += transformers_findings(ctx, table)
    findings += hub_fallback_findings(ctx, table)
    ordered = sorted(
        enumerate(findings), key=lambda item: (SEVERITY_ORDER[item[1].severity], item[0])
    )
    return Diagnosis(
        findings=tuple(f for _, f in ordered),
        backends=tuple(table[name] for name in BACKEND_NAMES),
        recommendations=tuple(recommend(ctx, table, findings)),
        folklore=tuple(folklore_notes(ctx, table)),
        frameworks=tuple(
            framework_advice(
                ctx, table, _framework_blocker(ctx, findings), frameworks_for(ctx, frameworks)
            )
        ),
    )


def _framework_blocker(ctx: Ctx, findings: list[Finding]) -> Finding | None:
    """As for the recommendations: a GPU-side problem does not stop a CPU-only machine."""
    blocker = torch_blocked(findings)
    if blocker is not None and not ctx.env.gpus and blocker.id != "no-torch":
        return None
    return blocker
