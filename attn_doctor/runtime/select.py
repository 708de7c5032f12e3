"""Pick the transformers ``attn_implementation`` that will really work here.

``best_attn_implementation()`` walks ``wheels_index/runtime.toml`` in preference order
(flash_attention_3 on Hopper, flash_attention_4 on Hopper and Blackwell, flash_attention_2 from
Ampere on, xformers once registered, then sdpa, then eager) and returns the first value whose
requirements hold for this model class, device, dtype and mode, and whose module imports in a
child process (``importcheck``: never in this process, cached on disk). ``explain_choice()``
returns the same decision with its reason and every candidate's verdict.

Overrides, read from ``environ`` (default ``os.environ``):

- ``ATTN_DOCTOR_BACKEND=<value>`` forces a value (validated; unknown values raise
  ``UsageError`` listing the valid ones).
- ``ATTN_DOCTOR_DISABLE=<comma list>`` excludes values (``flash`` excludes every
  flash_attention_*).
- Variables other projects already read are honoured as exclusions only (see
  ``LEGACY_VARIABLES`` and docs/runtime.md).

A decision is cached for the life of the process, keyed by every argument and the environment
variables it depends on (``DECISION_VARIABLES``);
``clear_caches()`` forgets it (e.g. after installing a backend in a notebook).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.errors import UsageError
from attn_doctor.facts import GpuFacts, ImportResult
from attn_doctor.integrations.xformers_attention import XFORMERS_KEY
from attn_doctor.plan.decide import Evidence, Option, Request, rank
from attn_doctor.runtime import importcheck
from attn_doctor.runtime.device import Target, parse_device, resolve_target
from attn_doctor.runtime.model import ModelTraits, dtype_name, resolve_model
from attn_doctor.runtime.requirements import Requirement, load_requirements

logger = logging.getLogger("attn_doctor.runtime")

ENV_BACKEND = "ATTN_DOCTOR_BACKEND"
ENV_DISABLE = "ATTN_DOCTOR_DISABLE"
ENV_TIMEOUT = "ATTN_DOCTOR_IMPORT_TIMEOUT"

KNOWN_VALUES: tuple[str, ...] = (
    *(r.value for r in load_requirements() if "/" not in r.value),
    "paged|eager",
)
"""The ``attn_implementation`` values of the backend records (transformers' own, plus those
attn-doctor registers: ``xformers``, ``sageattention``), and transformers' ``paged|eager``."""

FLASH_VALUES = ("flash_attention_2", "flash_attention_3", "flash_attention_4")

_HUB_KERNEL = re.compile(r"^[^/:]+/[^/:]+(?:@[^/:]+)?(?::[^/:]+)?$")
"""transformers' ``integrations/hub_kernels.py: is_kernel`` pattern (``org/repo[@rev][:fn]``)."""

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, kw_only=True)
class LegacyVariable:
    """An environment variable users already set, and which values it excludes."""

    name: str
    excludes: tuple[str, ...]
    when: Literal["true", "false", "set"]
    """``true``: excludes when set to 1/true/yes/on; ``false``: when 0/false/no/off;
    ``set``: when present at all."""
    seen_in: str


LEGACY_VARIABLES: tuple[LegacyVariable, ...] = (
    LegacyVariable(
        name="DISABLE_FLASH_ATTN",
        excludes=FLASH_VALUES,
        when="true",
        seen_in="training and evaluation scripts that read DISABLE_FLASH_ATTN=1",
    ),
    LegacyVariable(
        name="USE_FLASH_ATTENTION",
        excludes=FLASH_VALUES,
        when="false",
        seen_in='model servers reading os.getenv("USE_FLASH_ATTENTION", "true")',
    ),
    LegacyVariable(
        name="XFORMERS_DISABLED",
        excludes=(XFORMERS_KEY,),
        when="set",
        seen_in="facebookresearch/dinov2 dinov2/layers/attention.py (any value disables)",
    ),
    LegacyVariable(
        name="USE_XFORMERS",
        excludes=(XFORMERS_KEY,),
        when="false",
        seen_in='projects reading os.environ.get("USE_XFORMERS", "1") == "1"',
    ),
)


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


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The overrides read from the environment."""

    forced: str | None = None
    disabled: tuple[tuple[str, str], ...] = ()
    """(value, the variable that disabled it)."""
    timeout: float = importcheck.DEFAULT_TIMEOUT

    def disabled_by(self, value: str) -> str | None:
        for name, variable in self.disabled:
            if name == value:
                return variable
        return None


def _is_registered(value: str, registered: bool | frozenset[str]) -> bool:
    if isinstance(registered, bool):
        return registered
    return value in registered


def _registered_values() -> tuple[str, ...]:
    import sys

    modeling_utils = sys.modules.get("transformers.modeling_utils")
    interface = getattr(modeling_utils, "AttentionInterface", None)
    mapping = getattr(interface, "_global_mapping", None)
    return tuple(sorted(mapping)) if isinstance(mapping, dict) else ()


def valid_values() -> tuple[str, ...]:
    """Every value ``ATTN_DOCTOR_BACKEND`` accepts by name (plus Hub kernel ids)."""
    extra = [v for v in _registered_values() if v not in KNOWN_VALUES]
    return KNOWN_VALUES + tuple(extra)


def normalize_value(text: str, *, variable: str) -> tuple[str, ...]:
    """Map a user's name to ``attn_implementation`` values; raise ``UsageError`` if unknown.

    Accepts transformers' values, values registered in ``AttentionInterface``, Hub kernel ids
    (``kernels-community/flash-attn2``), attn-doctor backend names and aliases (``fa2``,
    ``flash-attn``, ``sdpa_math``…) and ``flash`` (every flash_attention_* value).
    """
    raw = text.strip()
    if raw in valid_values():
        return (raw,)
    if _HUB_KERNEL.match(raw):
        return (raw,)
    key = raw.lower().replace("-", "_")
    if key in valid_values():
        return (key,)
    if key in ("flash", "flash_attention"):
        return FLASH_VALUES
    from attn_doctor.backends import BACKENDS, parse_backend

    try:
        backend = parse_backend(key)
    except UsageError:
        backend = None
    if backend == "xformers":
        return (XFORMERS_KEY,)
    if backend is not None and BACKENDS[backend].attn_implementation is not None:
        value = BACKENDS[backend].attn_implementation
        assert value is not None
        return (value,)
    if backend == "unsloth":
        raise UsageError(
            f"{variable}={text!r}: unsloth is not an attn_implementation",
            hint="load the model with unsloth's FastLanguageModel.from_pretrained instead",
        )
    from attn_doctor.backends import backend_aliases
    from attn_doctor.errors import did_you_mean

    guess = did_you_mean(raw, (*valid_values(), *backend_aliases()))
    raise UsageError(
        f"{variable}={text!r} is not a known attention implementation",
        hint=guess
        or "valid values: "
        + ", ".join(valid_values())
        + ", or a Hub kernel id such as kernels-community/flash-attn2",
    )


def read_settings(environ: Mapping[str, str]) -> Settings:
    """Parse ``ATTN_DOCTOR_*`` and the legacy variables; raise ``UsageError`` on bad values."""
    forced = None
    raw_forced = environ.get(ENV_BACKEND, "").strip()
    if raw_forced:
        values = normalize_value(raw_forced, variable=ENV_BACKEND)
        if len(values) != 1:
            raise UsageError(
                f"{ENV_BACKEND}={raw_forced!r} names several implementations",
                hint="name one of: " + ", ".join(values),
            )
        forced = values[0]
    disabled: list[tuple[str, str]] = []
    for item in environ.get(ENV_DISABLE, "").split(","):
        if not item.strip():
            continue
        for value in normalize_value(item, variable=ENV_DISABLE):
            if value == "eager":
                raise UsageError(
                    f"{ENV_DISABLE}: eager cannot be disabled", hint="it is the last fallback"
                )
            disabled.append((value, f"{ENV_DISABLE}={environ[ENV_DISABLE]}"))
    for legacy in LEGACY_VARIABLES:
        raw = environ.get(legacy.name)
        if raw is None:
            continue
        word = raw.strip().lower()
        hit = (
            legacy.when == "set"
            or (legacy.when == "true" and word in _TRUE)
            or (legacy.when == "false" and word in _FALSE)
        )
        if hit:
            disabled.extend((value, f"{legacy.name}={raw}") for value in legacy.excludes)
    timeout = importcheck.DEFAULT_TIMEOUT
    raw_timeout = environ.get(ENV_TIMEOUT)
    if raw_timeout:
        try:
            timeout = float(raw_timeout)
        except ValueError:
            raise UsageError(f"{ENV_TIMEOUT}={raw_timeout!r} is not a number of seconds") from None
        if timeout <= 0:
            raise UsageError(f"{ENV_TIMEOUT} must be positive")
    return Settings(forced=forced, disabled=tuple(disabled), timeout=timeout)


def _at_least(version: str, minimum: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) >= Version(minimum)
    except InvalidVersion:
        return False


def _sm_text(sm: int) -> str:
    return f"{sm // 10}.{sm % 10}"


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
    if req.needs_registration and not _is_registered(req.value, registered):
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
                f"needs compute capability >= {_sm_text(req.min_sm)}; "
                f"{target.gpu.name} has {_sm_text(sm)}"
            )
        if req.max_sm is not None and sm > req.max_sm:
            return (
                f"built for compute capability <= {_sm_text(req.max_sm)}; "
                f"{target.gpu.name} has {_sm_text(sm)}"
            )
        if training and req.train_min_sm is not None and sm < req.train_min_sm:
            return f"no backward pass below compute capability {_sm_text(req.train_min_sm)}"
    if dtype not in req.dtypes:
        return f"needs {' or '.join(req.dtypes)}; the model runs in {dtype}"
    if dtype == "bfloat16" and req.bf16_min_sm is not None and (sm or 0) < req.bf16_min_sm:
        return f"bfloat16 needs compute capability >= {_sm_text(req.bf16_min_sm)}"
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
    evidence: Evidence | None = None,
    sdpa_dispatch: tuple[BackendName, str] | None = None,
) -> Choice:
    """The decision, given every fact as an argument (no detection happens here).

    Requirements that cannot hold here are rejected with the reason; the rest are ordered by
    the one decision (``attn_doctor.plan.decide.rank``: measured speed here, else published
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
        if value == XFORMERS_KEY and not _is_registered(value, registered):
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


@functools.cache
def _target_cached(parsed: object, visible: str | None, order: str | None) -> Target:
    env = {}
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    if order is not None:
        env["CUDA_DEVICE_ORDER"] = order
    return resolve_target(parsed, env)


def _target(device: object, environ: Mapping[str, str]) -> Target:
    # Parsed first so that the cache key is hashable (a str, a tuple or a frozen GpuFacts).
    return _target_cached(
        parse_device(device),
        environ.get("CUDA_VISIBLE_DEVICES"),
        environ.get("CUDA_DEVICE_ORDER"),
    )


@functools.cache
def _model_from_id(model_id: str) -> ModelTraits:
    return resolve_model(model_id)


def _traits(model: object) -> ModelTraits:
    if isinstance(model, str):
        return _model_from_id(model)
    return resolve_model(model)


DECISION_VARIABLES: tuple[str, ...] = (
    ENV_BACKEND,
    ENV_DISABLE,
    ENV_TIMEOUT,
    *(legacy.name for legacy in LEGACY_VARIABLES),
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONNOUSERSITE",
    "LD_LIBRARY_PATH",
    "XDG_CACHE_HOME",
    "HOME",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
)
"""The environment variables a decision depends on (its per-process cache key)."""

_decisions: dict[tuple[object, ...], Choice] = {}
_decisions_lock = threading.Lock()


def _decide_uncached(
    *,
    traits: ModelTraits,
    target: Target,
    dtype: str | None,
    training: bool,
    registered: bool | frozenset[str],
    environ: Mapping[str, str],
) -> Choice:
    settings = read_settings(environ)
    path = importcheck.search_path(environ)

    def installed(req: Requirement) -> str | None:
        for name in req.distributions:
            version = importcheck.distribution_version(name, path)
            if version is not None:
                return version
        return None

    reqs = load_requirements()

    def imports(module: str) -> ImportResult:
        dists = next((r.distributions for r in reqs if module in r.modules), ())
        checked = importcheck.check_import(
            module, distributions=dists, environ=environ, timeout=settings.timeout
        )
        return checked.result

    torch_version = importcheck.distribution_version("torch", path)
    choice = decide(
        traits=traits,
        target=target,
        dtype=dtype,
        training=training,
        settings=settings,
        registered=registered,
        installed=installed,
        imports=imports,
        evidence=_evidence_here(target, torch_version, environ),
        sdpa_dispatch=_sdpa_dispatch_here(target, dtype, torch_version),
    )
    logger.info("attn-doctor: attn_implementation=%r: %s", choice.value, choice.reason)
    return choice


def _evidence_here(
    target: Target, torch_version: str | None, environ: Mapping[str, str]
) -> Evidence | None:
    """What a cached bench run measured for this device and torch; a missing, corrupt or
    foreign cache is no evidence (it never stops model loading)."""
    if torch_version is None:
        return None
    try:
        from attn_doctor.bench.cache import cache_key, cache_path, load_cached_result
        from attn_doctor.bench.recommend import evidence_from_runs

        gpu = target.gpu
        if target.kind == "cuda" and gpu is not None:
            key = cache_key(device="cuda", device_name=gpu.name, torch_version=torch_version)
        elif target.kind == "cpu":
            key = cache_key(device="cpu", device_name="", torch_version=torch_version)
        else:
            return None
        path = cache_path(environ)
        runs = [load_cached_result(k, path) for k in (key, f"{key}|fwd_bwd")]
        return evidence_from_runs([r for r in runs if r is not None])
    except Exception:
        logger.debug("attn-doctor: bench cache unreadable; deciding without it", exc_info=True)
        return None


def _sdpa_dispatch_here(
    target: Target, dtype: str | None, torch_version: str | None
) -> tuple[BackendName, str]:
    """What SDPA's default dispatch runs on ``target``: torch's own answer when torch is
    already imported in this process, else the dispatch rules of backends.toml."""
    import sys

    from attn_doctor.plan.decide import dispatch_rule
    from attn_doctor.rules import load_rules

    if "torch" in sys.modules and target.kind in ("cuda", "cpu"):
        from attn_doctor.verify.ops import sdpa_dispatch_choice

        device = "cpu" if target.kind == "cpu" else f"cuda:{target.gpu.index if target.gpu else 0}"
        low = dtype if dtype in ("float16", "bfloat16") else None
        asked = sdpa_dispatch_choice(device, dtype=low)
        if asked is not None:
            return asked, "torch._fused_sdp_choice in this process"
    gpu = target.gpu if target.kind in ("cuda", "rocm") else None
    return dispatch_rule(load_rules(), gpu, torch_version=torch_version, cudnn=None)


def explain_choice(
    model: object = None,
    *,
    device: object = None,
    dtype: object = None,
    training: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Choice:
    """The decision of ``best_attn_implementation`` with its reason and every candidate.

    Arguments as for ``best_attn_implementation``.
    """
    env = os.environ if environ is None else environ
    read_settings(env)  # validate overrides before any detection
    traits = _traits(model)
    target = _target(device, env)
    name = dtype_name(dtype)
    registered = frozenset(_registered_values())
    key = (
        traits,
        target,
        name,
        bool(training),
        registered,
        tuple(env.get(variable) for variable in DECISION_VARIABLES),
    )
    with _decisions_lock:
        cached = _decisions.get(key)
    if cached is not None:
        return cached
    choice = _decide_uncached(
        traits=traits,
        target=target,
        dtype=name,
        training=bool(training),
        registered=registered,
        environ=env,
    )
    with _decisions_lock:
        return _decisions.setdefault(key, choice)


def best_attn_implementation(
    model: object = None,
    *,
    device: object = None,
    dtype: object = None,
    training: bool = False,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The ``attn_implementation`` value that will really work here.

    ``model``: a ``PreTrainedModel`` class or instance, a config, a local directory or a model
    id already in the Hugging Face cache (never downloaded), or None (any model).
    ``device``: ``"cuda"``, ``"cuda:N"``, an int, ``"cpu"``, ``"mps"``, a ``torch.device``,
    a ``GpuFacts``, or None (the first visible GPU, else the CPU).
    ``dtype``: the dtype the model will run in (``torch.bfloat16``, ``"bf16"``…); None uses the
    instance's or config's dtype, else float32 (torch's default), which rules out flash kernels.
    ``training``: whether a backward pass is needed.
    ``environ``: the environment to read overrides from and to give child processes.

    The reason is logged (logger ``attn_doctor.runtime``, INFO) and available from
    ``explain_choice()``. Cached per process; raises ``UsageError`` for bad overrides.
    """
    return explain_choice(
        model, device=device, dtype=dtype, training=training, environ=environ
    ).value


def dtype_keyword() -> str:
    """``dtype`` for transformers >= 4.56 (huggingface/transformers#39782), else ``torch_dtype``."""
    import importlib.metadata

    from packaging.version import InvalidVersion, Version

    try:
        version = Version(importlib.metadata.version("transformers"))
    except (importlib.metadata.PackageNotFoundError, InvalidVersion):
        return "dtype"
    return "dtype" if version >= Version("4.56") else "torch_dtype"


def default_dtype(target: Target, *, training: bool) -> str | None:
    """The dtype ``load_kwargs`` picks when none is given.

    bfloat16 on NVIDIA GPUs from compute capability 8.0 (Ampere: bf16 and the flash kernels);
    float16 for inference on older NVIDIA GPUs (no bfloat16 there); otherwise None (keep
    transformers' default: float16 weights without a loss scaler diverge in training, and CPUs
    run attention in float32).
    """
    gpu = target.gpu
    if target.kind != "cuda" or gpu is None or gpu.sm is None:
        return None
    if gpu.sm >= 80:
        return "bfloat16"
    return None if training else "float16"


def load_kwargs(
    model: object = None,
    *,
    device: object = None,
    dtype: object = None,
    training: bool = False,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``from_pretrained``/``from_config``: the implementation and dtype.

    ``{"attn_implementation": ..., "dtype": torch.bfloat16}`` (``torch_dtype`` before
    transformers 4.56). With ``dtype=None`` the dtype is ``default_dtype()``'s; when that is
    None too, no dtype key is returned and transformers' default applies.
    """
    env = os.environ if environ is None else environ
    name = dtype_name(dtype)
    if name is None:
        name = default_dtype(_target(device, env), training=training)
    choice = explain_choice(model, device=device, dtype=name, training=training, environ=env)
    kwargs: dict[str, Any] = {"attn_implementation": choice.value}
    if choice.activate is not None:
        from attn_doctor.runtime import sdpa_priority

        if not sdpa_priority.disabled(env):
            change = sdpa_priority.apply_for_process(
                choice.activate,
                reason=f"{choice.activate} passed verify and was measured faster than the "
                f"default dispatch ({choice.sdpa_kernel}) here",
            )
            logger.info("attn-doctor: SDPA priority: %s", change)
    if name is not None:
        import torch

        kwargs[dtype_keyword()] = getattr(torch, name)
    return kwargs


def clear_caches() -> None:
    """Forget every per-process decision (the on-disk import cache is kept)."""
    with _decisions_lock:
        _decisions.clear()
    _target_cached.cache_clear()
    _model_from_id.cache_clear()
