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

The overrides are parsed in ``runtime.settings``, the decision itself is ``runtime.decision``
(pure); this module detects the facts, caches the answer and builds ``load_kwargs``.

A decision is cached for the life of the process, keyed by every argument and the environment
variables it depends on (``DECISION_VARIABLES``);
``clear_caches()`` forgets it (e.g. after installing a backend in a notebook).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

from attn_doctor.backends import BackendName
from attn_doctor.decide import BenchEvidence
from attn_doctor.facts import ImportResult
from attn_doctor.loadtime import importcheck
from attn_doctor.loadtime.decision import (
    Candidate,
    Choice,
    Verdict,
    decide,
    static_rejection,
)
from attn_doctor.loadtime.device import Target, parse_device, resolve_target
from attn_doctor.loadtime.model_config import ModelTraits, dtype_name, resolve_model
from attn_doctor.loadtime.requirements import Requirement, load_requirements
from attn_doctor.loadtime.settings import (
    ENV_BACKEND,
    ENV_DISABLE,
    ENV_TIMEOUT,
    FLASH_VALUES,
    KNOWN_VALUES,
    LEGACY_VARIABLES,
    LegacyVariable,
    Settings,
    installed_constants,
    normalize_value,
    read_settings,
    registered_values,
    valid_values,
)
from attn_doctor.planner.sdpa_rule import Dtype

__all__ = [
    "DECISION_VARIABLES",
    "ENV_BACKEND",
    "ENV_DISABLE",
    "ENV_TIMEOUT",
    "FLASH_VALUES",
    "KNOWN_VALUES",
    "LEGACY_VARIABLES",
    "Candidate",
    "Choice",
    "LegacyVariable",
    "Settings",
    "Verdict",
    "best_attn_implementation",
    "clear_caches",
    "decide",
    "default_dtype",
    "dtype_keyword",
    "explain_choice",
    "load_kwargs",
    "normalize_value",
    "read_settings",
    "static_rejection",
    "valid_values",
]

logger = logging.getLogger("attn_doctor.loadtime")


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

    reqs = _with_installed_floors(load_requirements())

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
        sdpa_dispatch=_sdpa_dispatch_here(target, dtype, torch_version, path, traits),
        requirements=reqs,
    )
    logger.info("attn-doctor: attn_implementation=%r: %s", choice.value, choice.reason)
    return choice


def _with_installed_floors(reqs: tuple[Requirement, ...]) -> tuple[Requirement, ...]:
    """The records' requirements, with the flash-attn floor the installed transformers itself
    applies (``is_flash_attn_2_available``) in place of the recorded copy."""
    constants = installed_constants()
    floor = constants.flash_attn_2_min_version if constants is not None else None
    if floor is None:
        return reqs
    return tuple(
        replace(r, min_version=floor) if r.value == "flash_attention_2" else r for r in reqs
    )


def _evidence_here(
    target: Target, torch_version: str | None, environ: Mapping[str, str]
) -> BenchEvidence | None:
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


CUDNN_WHEELS = ("nvidia-cudnn-cu13", "nvidia-cudnn-cu12", "nvidia-cudnn-cu11")
"""The package-index cuDNN wheels torch's CUDA builds depend on (newest CUDA first)."""


def cudnn_version_text(number: int) -> str:
    """``torch.backends.cudnn.version()`` as ``major.minor.patch``: cuDNN 9 encodes
    ``major*10000 + minor*100 + patch`` (91900 is 9.19.0), cuDNN 8 ``major*1000 + minor*100 +
    patch`` (8902 is 8.9.2)."""
    if number >= 10000:
        return f"{number // 10000}.{number % 10000 // 100}.{number % 100}"
    return f"{number // 1000}.{number % 1000 // 100}.{number % 100}"


def _cudnn_here(torch: Any, path: Sequence[str]) -> tuple[str | None, str]:
    """The cuDNN version torch's dispatch tests, and where it was read: the library torch
    loaded (when torch is imported here), else the nvidia-cudnn wheel's version (torch may
    load another one, e.g. from LD_LIBRARY_PATH), else unknown."""
    if torch is not None:
        try:
            number = torch.backends.cudnn.version()
        except Exception:  # a broken cuDNN load: fall back to the wheel's metadata
            number = None
        if isinstance(number, int) and number > 0:
            return cudnn_version_text(number), "the cuDNN torch loaded in this process"
    for wheel in CUDNN_WHEELS:
        version = importcheck.distribution_version(wheel, path)
        if version is not None:
            return version, f"the {wheel} wheel; torch may load another cuDNN"
    return None, "cuDNN version unknown"


def _sdpa_dispatch_here(
    target: Target,
    dtype: str | None,
    torch_version: str | None,
    path: Sequence[str],
    traits: ModelTraits | None = None,
) -> tuple[BackendName, str]:
    """What SDPA's default dispatch runs on ``target``: torch's own answer when torch is
    already imported in this process (``torch._fused_sdp_choice``, the checks the dispatcher
    makes, lazy cuDNN preference included), else the per-release rule (sdpa_dispatch.toml)
    with the model's dtype and head dim and the cuDNN version torch loaded (or the cuDNN
    wheel's), since torch 2.10+ prefers cuDNN on Hopper and Blackwell only above a cuDNN
    version. Never imports torch."""
    import sys

    from attn_doctor.decide import dispatch_rule

    head_dim = traits.head_dim if traits is not None else None
    from attn_doctor.rules_data import load_rules

    torch = sys.modules.get("torch")
    if torch is not None and target.kind in ("cuda", "cpu"):
        from attn_doctor.verify.ops import sdpa_dispatch_choice

        device = "cpu" if target.kind == "cpu" else f"cuda:{target.gpu.index if target.gpu else 0}"
        low = dtype if dtype in ("float16", "bfloat16") else None
        dim, heads = head_dim or 128, (traits.heads if traits else None) or 16
        mask = bool(traits and traits.sliding_window)
        asked = sdpa_dispatch_choice(device, dtype=low, head_dim=dim, heads=heads, mask=mask)
        if asked is not None:
            used = low or ("bfloat16" if device.startswith("cuda") else "float32")
            return asked, (
                f"torch._fused_sdp_choice in this process, for {used}, head dim {dim}"
                f"{'' if head_dim else ' (assumed)'}, {heads} heads, "
                + ("a boolean mask (sliding window)" if mask else "causal, no mask")
            )
    gpu = target.gpu if target.kind in ("cuda", "rocm") else None
    cudnn, cudnn_source = (None, "") if gpu is None else _cudnn_here(torch, path)
    known = dtype if dtype in ("float16", "bfloat16", "float32") else None
    kernel, why = dispatch_rule(
        load_rules(),
        gpu,
        torch_version=torch_version,
        cudnn=cudnn,
        cudnn_loaded=cudnn_source.startswith("the cuDNN torch loaded"),
        dtype=cast(Dtype | None, known),
        head_dim=head_dim,
    )
    if gpu is None or gpu.vendor != "nvidia":
        return kernel, why
    if cudnn is None:
        return kernel, f"{why}; {cudnn_source}"
    return kernel, f"{why}; cuDNN {cudnn} from {cudnn_source}"


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
    registered = frozenset(registered_values())
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

    The reason is logged (logger ``attn_doctor.loadtime``, INFO) and available from
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
        from attn_doctor.loadtime import sdpa_priority

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
