"""The runtime's decision, given every fact as an argument (pure: no detection here).

``static_rejection`` says why one ``attn_implementation`` cannot work here; ``decide`` orders
the rest by the one decision (``attn_doctor.decide.rank``) and takes the first whose
modules import; ``Choice`` is the answer with every candidate's verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.decide import BenchEvidence, Request, rank
from attn_doctor.errors import UsageError
from attn_doctor.facts import GpuFacts, ImportResult, sm_text
from attn_doctor.integrations.xformers_attention import XFORMERS_KEY
from attn_doctor.loadtime.device import Target
from attn_doctor.loadtime.model_config import ModelTraits
from attn_doctor.loadtime.requirements import Requirement, load_requirements
from attn_doctor.loadtime.settings import (
    ENV_BACKEND,
    FLASH_VALUES,
    Settings,
    is_registered,
)
from attn_doctor.planner.plans import Option

Verdict = Literal["chosen", "forced", "rejected", "fallback"]


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One ``attn_implementation`` the selector considered, and its verdict."""

    value: str
    verdict: Verdict
    """``chosen``/``forced``: the answer; ``rejected``: cannot work here (``reason`` says
    why); ``fallback``: passes the static checks, its import was not tried (not needed)."""
    reason: str


@dataclass(frozen=True, kw_only=True)
class Choice:
    """The selector's answer with its evidence."""

    value: str
    """The ``attn_implementation`` value to pass to ``from_pretrained``."""
    reason: str
    """One sentence: why this value."""
    forced: bool = False
    device: str
    dtype: str | None
    """The dtype the decision assumed (given, or read from the model/config)."""
    model: str
    training: bool
    candidates: tuple[Candidate, ...] = field(default_factory=tuple)
    """Every value considered, in the one decision's order."""
    sdpa_kernel: BackendName | None = None
    """The kernel ``sdpa`` runs here (what its default dispatch picks), when sdpa was weighed."""
    sdpa_kernel_source: str | None = None
    activate: BackendName | None = None
    """A verified SDPA kernel measured faster here than the default dispatch: ``load_kwargs``
    puts it first (unless ATTN_DOCTOR_SDPA_PRIORITY=0)."""

    @property
    def fallbacks(self) -> tuple[str, ...]:
        """Values after the chosen one that pass the static checks, in preference order."""
        return tuple(c.value for c in self.candidates if c.verdict == "fallback")

    def __str__(self) -> str:
        """``print(explain_choice())`` shows the readable lines, not the dataclass."""
        return self.explain()

    def explain(self) -> str:
        """Human-readable multi-line account of the decision."""
        lines = [f"attn_implementation={self.value!r}: {self.reason}"]
        if self.sdpa_kernel is not None:
            lines.append(
                f"  sdpa runs the {self.sdpa_kernel} kernel here ({self.sdpa_kernel_source})"
            )
        if self.activate is not None:
            lines.append(
                f"  {self.activate} passed verify and was measured faster here: load_kwargs() "
                "sets it first in torch's SDPA priority (ATTN_DOCTOR_SDPA_PRIORITY=0: off)"
            )
        for cand in self.candidates:
            lines.append(f"  {cand.verdict:<9} {cand.value:<18} {cand.reason}")
        return "\n".join(lines)


def _at_least(version: str, minimum: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) >= Version(minimum)
    except InvalidVersion:
        return False


def static_rejection(
    req: Requirement,
    *,
    traits: ModelTraits,
    target: Target,
    dtype: str,
    training: bool,
    settings: Settings,
    registered: bool | frozenset[str],
    installed: Callable[[Requirement], str | None],
) -> str | None:
    """Why ``req`` cannot work here without importing anything, or None if nothing says so.

    ``installed(req)`` returns the installed version of one of its distributions, or None.
    """
    variable = settings.disabled_by(req.value)
    if variable is not None:
        return f"disabled by {variable}"
    if not req.auto:
        return f"never chosen automatically; force it with {ENV_BACKEND}={req.value}"
    if req.needs_registration and not is_registered(req.value, registered):
        return f"not registered: call {req.registration} first"
    missing = [flag for flag in req.model_flags if not traits.flag(flag)]
    if missing:
        if not traits.known:
            return f"model class unknown ({traits.source})"
        return f"{traits.name} does not declare _{missing[0]} ({traits.source})"
    if (
        req.value in FLASH_VALUES
        and traits.compatible_flash is not None
        and req.value not in traits.compatible_flash
    ):
        return (
            f"{traits.name} only accepts {', '.join(traits.compatible_flash)} "
            "(_compatible_flash_implementations)"
        )
    device_type = "cuda" if target.kind == "rocm" else target.kind
    if device_type not in req.devices:
        return f"runs on {'/'.join(req.devices)}; the model runs on {target.describe()}"
    sm = target.sm
    if req.min_sm is not None or req.max_sm is not None:
        if target.gpu is None or target.gpu.vendor != "nvidia" or sm is None:
            return "needs an NVIDIA GPU with a known compute capability"
        if req.min_sm is not None and sm < req.min_sm:
            return (
                f"needs compute capability >= {sm_text(req.min_sm, form='capability')}; "
                f"{target.gpu.name} has {sm_text(sm, form='capability')}"
            )
        if req.max_sm is not None and sm > req.max_sm:
            return (
                f"built for compute capability <= {sm_text(req.max_sm, form='capability')}; "
                f"{target.gpu.name} has {sm_text(sm, form='capability')}"
            )
        if training and req.train_min_sm is not None and sm < req.train_min_sm:
            need = sm_text(req.train_min_sm, form="capability")
            return f"no backward pass below compute capability {need}"
    if dtype not in req.dtypes:
        return f"needs {' or '.join(req.dtypes)}; the model runs in {dtype}"
    if dtype == "bfloat16" and req.bf16_min_sm is not None and (sm or 0) < req.bf16_min_sm:
        return f"bfloat16 needs compute capability >= {sm_text(req.bf16_min_sm, form='capability')}"
    if req.max_head_dim is not None and (traits.head_dim or 0) > req.max_head_dim:
        return f"head dim {traits.head_dim} > {req.max_head_dim}"
    if traits.softcap and not req.softcap:
        return "no attention logit soft-capping (the config sets attn_logit_softcapping)"
    if training and not req.training_dropout and (traits.attention_dropout or 0.0) > 0:
        return f"no attention dropout in training (config has {traits.attention_dropout})"
    if req.distributions:
        version = installed(req)
        if version is None:
            return f"not installed (no {' or '.join(req.distributions)} distribution)"
        if req.min_version is not None and not _at_least(version, req.min_version):
            return f"{req.distributions[0]} {version} is older than {req.min_version}"
    return None


def decide(
    *,
    traits: ModelTraits,
    target: Target,
    dtype: str | None,
    training: bool,
    settings: Settings,
    registered: bool | frozenset[str],
    installed: Callable[[Requirement], str | None],
    imports: Callable[[str], ImportResult],
    requirements: tuple[Requirement, ...] | None = None,
    evidence: BenchEvidence | None = None,
    sdpa_dispatch: tuple[BackendName, str] | None = None,
) -> Choice:
    """The decision, given every fact as an argument (no detection happens here).

    Requirements that cannot hold here are rejected with the reason; the rest are ordered by
    the one decision (``attn_doctor.decide.rank``: measured speed here, else published
    priors) and the first whose modules import in a child process is chosen.
    ``sdpa_dispatch``: the kernel SDPA's default dispatch runs here and where that comes from.
    """
    reqs = requirements if requirements is not None else load_requirements()
    effective = dtype or traits.param_dtype or traits.config_dtype
    dtype_note = "" if effective else " (assumed: no dtype given, torch's default)"
    effective = effective or "float32"
    device = target.describe() + (f" [{target.note}]" if target.note else "")
    common: dict[str, Any] = {
        "device": device,
        "dtype": effective,
        "model": traits.name,
        "training": training,
    }

    if settings.forced is not None:
        value = settings.forced
        if value == XFORMERS_KEY and not is_registered(value, registered):
            raise UsageError(
                f"{ENV_BACKEND}=xformers, but xformers is not registered with transformers: "
                "call attn_doctor.register_xformers_attention() before loading the model"
            )
        req = next((r for r in reqs if r.value == value), None)
        warning = None
        if req is not None:
            warning = static_rejection(
                req,
                traits=traits,
                target=target,
                dtype=effective,
                training=training,
                settings=Settings(),
                registered=registered,
                installed=installed,
            )
        reason = f"forced by {ENV_BACKEND}={value}"
        if warning:
            reason += f" (warning: {warning})"
        return Choice(
            value=value,
            reason=reason,
            forced=True,
            candidates=(Candidate(value=value, verdict="forced", reason=reason),),
            **common,
        )

    rejected: dict[str, Candidate] = {}
    passing: list[Requirement] = []
    for req in reqs:
        why = static_rejection(
            req,
            traits=traits,
            target=target,
            dtype=effective,
            training=training,
            settings=settings,
            registered=registered,
            installed=installed,
        )
        if why is not None:
            rejected[req.value] = Candidate(value=req.value, verdict="rejected", reason=why)
        else:
            passing.append(req)
    kernel, kernel_source = sdpa_dispatch or ("sdpa_math", "not known")
    gpu = target.gpu if target.kind in ("cuda", "rocm") else None
    ranked = rank(
        [
            Option(
                backend=req.backend,
                status="ready",
                way="built into torch" if BACKENDS[req.backend].builtin else "installed",
                reason="",
                source="torch" if BACKENDS[req.backend].builtin else "installed",
                auto=req.auto,
            )
            for req in passing
        ],
        gpu=gpu,
        sdpa_kernel=kernel,
        sdpa_kernel_source=kernel_source,
        evidence=evidence,
        request=Request(training=training),
    )
    by_backend = {req.backend: req for req in passing}
    ordered: list[Candidate] = []
    chosen: Requirement | None = None
    chosen_note = ""
    activate: BackendName | None = None
    for choice in ranked:
        req = by_backend[choice.backend]
        speed = (
            f" ({choice.score:.3g} TFLOP/s measured here)"
            if choice.measured and choice.score
            else ""
        )
        if chosen is not None:
            note = "would also work (import not tried)" if req.modules else "would also work"
            ordered.append(Candidate(value=req.value, verdict="fallback", reason=note + speed))
            continue
        note = ""
        if req.modules:
            failed = next((r for r in map(imports, req.modules) if r.status != "ok"), None)
            if failed is not None:
                detail = f": {failed.detail}" if failed.detail else ""
                ordered.append(
                    Candidate(
                        value=req.value,
                        verdict="rejected",
                        reason=f"installed, but `import {failed.module}` {failed.status}{detail}",
                    )
                )
                continue
            version = installed(req)
            names = " and ".join(req.modules)
            note = f"{names} import in a child process ({req.distributions[0]} {version})"
        chosen = req
        chosen_note = note + speed
        activate = choice.activate
        ordered.append(
            Candidate(
                value=req.value,
                verdict="chosen",
                reason=chosen_note or "built into torch/transformers; every requirement holds",
            )
        )
    # Rejected values keep the record order after the ranked ones.
    candidates = ordered + [rejected[r.value] for r in reqs if r.value in rejected]
    if chosen is None:  # pragma: no cover - eager has no requirement that can fail
        raise AssertionError("eager was rejected")
    faster = _at_least_as_fast(chosen, reqs, gpu)
    better = [c for c in candidates if c.verdict == "rejected" and c.value in faster]
    reason = f"{traits.name} on {target.describe()} in {effective}{dtype_note}"
    if chosen_note:
        reason += f"; {chosen_note}"
    if better:
        grouped: dict[str, list[str]] = {}
        for cand in better:
            grouped.setdefault(cand.reason, []).append(cand.value)
        reason += "; passed over: " + "; ".join(
            f"{', '.join(values)} ({why})" for why, values in grouped.items()
        )
    uses_sdpa = any(r.backend == "sdpa" for r in passing)
    return Choice(
        value=chosen.value,
        reason=reason,
        candidates=tuple(candidates),
        sdpa_kernel=kernel if uses_sdpa else None,
        sdpa_kernel_source=kernel_source if uses_sdpa else None,
        activate=activate if chosen.backend == "sdpa" else None,
        **common,
    )


def _at_least_as_fast(
    chosen: Requirement, reqs: tuple[Requirement, ...], gpu: GpuFacts | None
) -> set[str]:
    """Automatic values whose record's prior is at least the chosen one's on this device:
    what "passed over" reports when they were rejected."""

    def prior(req: Requirement) -> float:
        record = BACKENDS[req.backend]
        sm = gpu.sm if gpu is not None else None
        speed = record.prior.for_device(sm, cpu=gpu is None) if record.prior else None
        return speed if speed is not None else 1.0

    base = prior(chosen)
    return {r.value for r in reqs if r.auto and r.value != chosen.value and prior(r) >= base}


# --- detection and caching ------------------------------------------------------------------
