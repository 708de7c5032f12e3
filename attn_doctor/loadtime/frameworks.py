"""The one decision in other frameworks' words, beside ``load_kwargs``.

- ``diffusers_backend(pipe_or_model)``: the name for ``set_attention_backend``, from the
  runtime's decision (``explain_choice``): its first candidate that diffusers can use here
  (a name in the backend's record, the package at the version diffusers checks).
- ``vllm_args()`` / ``sglang_args()``: the ``--attention-backend`` arguments, from ``check``'s
  decision for that framework (``diagnose(..., frameworks=(...))``), which knows the kernels
  those frameworks ship themselves.

    pipe.transformer.set_attention_backend(diffusers_backend(pipe))
    subprocess.run(["vllm", "serve", model, *vllm_args()])
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping

from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.framework_names import FrameworkName

DIFFUSERS_DEFAULT = "native"
"""diffusers' own default (``DIFFUSERS_ATTN_BACKEND``): torch SDPA."""


def _installed(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _backend_of(value: str) -> BackendName | None:
    for name, record in BACKENDS.items():
        if record.attn_implementation == value:
            return name
    return None


def _model_dtype(model: object) -> object:
    for holder in (model, getattr(model, "transformer", None), getattr(model, "unet", None)):
        dtype = getattr(holder, "dtype", None)
        if dtype is not None:
            return dtype
    return None


def _usable_in_diffusers(backend: BackendName, version: str | None) -> str | None:
    """The backend's diffusers name when diffusers accepts it here (package and minimum)."""
    from attn_doctor.index.frameworks import load_frameworks
    from attn_doctor.planner.frameworks import satisfies

    record = BACKENDS[backend]
    entry = record.framework_entry("diffusers", version)
    if entry is None:
        return None
    if record.builtin:
        return entry.name
    have = next((v for d in record.distributions if (v := _installed(d)) is not None), None)
    if have is None:
        return None
    for minimum in load_frameworks().minimums:
        mine = minimum.framework == "diffusers" and minimum.backend == backend
        if mine and satisfies(have, minimum.specifier) is False:
            return None
    return entry.name


def diffusers_backend(
    model: object = None,
    *,
    device: object = None,
    dtype: object = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The ``set_attention_backend`` name for a diffusers pipeline or model, here, now.

    ``model``: a pipeline or a diffusers model (read for its dtype only), or None.
    ``device``/``dtype``/``environ``: as for ``best_attn_implementation``. Falls back to
    diffusers' own default, ``native`` (torch SDPA), when nothing better is usable.
    """
    from attn_doctor.loadtime.select import explain_choice

    choice = explain_choice(
        None,
        device=device,
        dtype=dtype if dtype is not None else _model_dtype(model),
        training=False,
        environ=environ,
    )
    version = _installed("diffusers")
    for cand in choice.candidates:
        if cand.verdict == "rejected":
            continue
        backend = _backend_of(cand.value)
        if backend is None:
            continue
        if backend == "sdpa" and choice.activate is not None:
            faster = _usable_in_diffusers(choice.activate, version)
            if faster is not None:  # verified and measured faster here than the default
                return faster
        name = _usable_in_diffusers(backend, version)
        if name is not None:
            return name
    return DIFFUSERS_DEFAULT


def _framework_args(framework: FrameworkName, environ: Mapping[str, str] | None) -> list[str]:
    from attn_doctor.diagnose import diagnose
    from attn_doctor.probe import probe_environment
    from attn_doctor.rules_data import load_rules

    env = probe_environment(environ=environ)
    index = None
    if env.gpus:
        from attn_doctor.index import load_index

        index = load_index()
    diagnosis = diagnose(env, load_rules(), index=index, frameworks=(framework,))
    advice = next(
        (a for a in diagnosis.frameworks if a.framework == framework and a.status == "ready"),
        None,
    )
    if advice is None:
        return []  # nothing better than the framework's own default is ready here
    entry = BACKENDS[advice.backend].framework_entry(framework, advice.framework_version)
    args = ["--attention-backend", advice.name]
    if entry is not None and framework == "vllm":
        for key, value in entry.extra:
            args += [f"--attention-config.{key}", value]
    return args


def vllm_args(*, environ: Mapping[str, str] | None = None) -> list[str]:
    """``["--attention-backend", NAME, ...]`` for ``vllm serve`` here (empty: keep vLLM's
    default). Probes this machine (no imports of torch or vLLM in this process)."""
    return _framework_args("vllm", environ)


def sglang_args(*, environ: Mapping[str, str] | None = None) -> list[str]:
    """``["--attention-backend", NAME]`` for ``sglang.launch_server`` here (empty: keep
    SGLang's default)."""
    return _framework_args("sglang", environ)
