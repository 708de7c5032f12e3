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
from attn_doctor.diagnosis import Diagnosis, Finding
from attn_doctor.facts import Environment
from attn_doctor.framework_names import FrameworkName
from attn_doctor.plan.decide import BenchEvidence, Request
from attn_doctor.plan.diagnose.context import _SEVERITY_ORDER, _Ctx
from attn_doctor.plan.diagnose.folklore import _folklore
from attn_doctor.plan.diagnose.frameworks import (
    framework_advice,
    framework_findings,
    frameworks_for,
)
from attn_doctor.plan.diagnose.gpu_backends import _gpu_backend_findings
from attn_doctor.plan.diagnose.packages import (
    _build_label_findings,
    _conflict_findings,
    _flash_attn_4_extra_findings,
    _import_findings,
    _pin_findings,
    _triton_findings,
    _xformers_findings,
    package_of_module,
)
from attn_doctor.plan.diagnose.table import _backend_table, _recommend, _torch_blocked
from attn_doctor.plan.diagnose.toolchain import (
    _platform_findings,
    _toolchain_findings,
    rocm_release,
)
from attn_doctor.plan.diagnose.torch_gpu import _arch_findings, _driver_findings, _torch_findings
from attn_doctor.plan.diagnose.transformers import (
    _hub_fallback_findings,
    _transformers_findings,
    _unknown_findings,
)
from attn_doctor.rules import Rules

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
    recommendations are the one decision (``attn_doctor.plan.decide``) for each device.
    ``frameworks``: frameworks to speak the decision in besides those installed here
    (``check --for``).
    """
    ctx = _Ctx(env=env, rules=rules, evidence=evidence, request=request or Request(), index=index)
    findings: list[Finding] = []
    findings += _torch_findings(ctx)
    findings += _driver_findings(ctx)
    findings += _arch_findings(ctx)
    findings += _import_findings(ctx)
    findings += _build_label_findings(ctx)
    findings += _xformers_findings(ctx)
    findings += _pin_findings(ctx)
    findings += _conflict_findings(ctx)
    findings += _triton_findings(ctx)
    findings += _flash_attn_4_extra_findings(ctx)
    findings += _gpu_backend_findings(ctx)
    findings += _toolchain_findings(ctx)
    findings += _platform_findings(ctx)
    findings += _unknown_findings(ctx)
    findings += framework_findings(ctx)
    table = _backend_table(ctx, findings)
    findings += _transformers_findings(ctx, table)
    findings += _hub_fallback_findings(ctx, table)
    ordered = sorted(
        enumerate(findings), key=lambda item: (_SEVERITY_ORDER[item[1].severity], item[0])
    )
    return Diagnosis(
        findings=tuple(f for _, f in ordered),
        backends=tuple(table[name] for name in BACKEND_NAMES),
        recommendations=tuple(_recommend(ctx, table, findings)),
        folklore=tuple(_folklore(ctx, table)),
        frameworks=tuple(
            framework_advice(
                ctx, table, _framework_blocker(ctx, findings), frameworks_for(ctx, frameworks)
            )
        ),
    )


def _framework_blocker(ctx: _Ctx, findings: list[Finding]) -> Finding | None:
    """As for the recommendations: a GPU-side problem does not stop a CPU-only machine."""
    blocker = _torch_blocked(findings)
    if blocker is not None and not ctx.env.gpus and blocker.id != "no-torch":
        return None
    return blocker
