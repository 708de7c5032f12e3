"""Model checks: a tiny transformers model run with each ``attn_implementation``, vs eager.

Models are built from configs (2 layers, hidden 128, 2 query heads over 1 key/value head so
grouped-query attention is exercised, head dim 64), random weights from a fixed seed, no
download. Every implementation gets the same weights and inputs (one row left-padded), and is
compared with ``eager`` on the logits of the real tokens and on the gradient of the loss with
respect to the input embeddings.

Tolerances are transformers' own:
- ``sdpa`` and ``flex_attention``: the per-dtype table of ``_test_eager_matches_sdpa_inference``
  (transformers tests/test_modeling_common.py): atol 1e-6 / rtol 1e-4 for float32, 5e-3 / 5e-3
  for float16, 1e-2 / 1e-2 for bfloat16 (rtol 3e-2 on CUDA), and for bfloat16 the atol is
  raised to 3e-2 times the outputs' magnitude, as that test does.
- flash-attention implementations and xformers: ``flash_attn_inference_equivalence`` (same file)
  uses atol = rtol = 4e-2.
transformers has no gradient-equivalence tolerance ("TODO: test gradients as well" in that
test); gradients are compared with the same atol/rtol after dividing by the eager gradient's
largest magnitude.

``run_model_checks`` runs in the child process (unsloth's check: ``verify/unsloth_check.py``).
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any, Literal

from attn_doctor.adapters import adapter_of_implementation
from attn_doctor.adapters.base import import_reason
from attn_doctor.verify.warned import recorded_warnings, warning_notes

ModelStatus = Literal["passed", "failed", "unsupported", "error", "skipped"]

IMPLEMENTATIONS: tuple[str, ...] = (
    "eager",
    "sdpa",
    "flex_attention",
    "flash_attention_2",
    "flash_attention_3",
    "flash_attention_4",
    "xformers",
)
"""The ``attn_implementation`` values tried, eager first (the baseline)."""

FAMILIES: tuple[str, ...] = ("llama", "qwen2", "gemma")
DEFAULT_FAMILIES: tuple[str, ...] = ("llama", "qwen2")

XFORMERS_MISSING = "xformers attention function not available in this build"
"""What ``_impl_reason`` says when xformers' attention function cannot be registered."""


@dataclass(frozen=True, kw_only=True)
class ImplResult:
    """One model family run with one ``attn_implementation``."""

    family: str
    attn_implementation: str
    status: ModelStatus
    reason: str | None
    logits_max_diff: float | None = None
    logits_atol: float | None = None
    logits_rtol: float | None = None
    grad_max_diff: float | None = None
    """Largest |grad - grad_eager| / max|grad_eager| (relative to the eager gradient)."""
    grad_passed: bool | None = None
    notes: tuple[str, ...] = ()
    """Warnings the run issued (a library's DeprecationWarning...): recorded, never a failure."""


@dataclass(frozen=True, kw_only=True)
class DeclaredSupport:
    """What a model class says it supports (its ``_supports_*`` class attributes)."""

    family: str
    model_class: str
    sdpa: bool | None
    flash_attn: bool | None
    flex_attn: bool | None
    attention_backend: bool | None
    layers: int | None = None
    """Decoder layers in the model that was run (a --model config is shrunk to 2)."""


@dataclass(frozen=True, kw_only=True)
class ModelReport:
    """Every family x implementation on one device."""

    device: str
    dtype: str
    transformers_version: str | None
    results: tuple[ImplResult, ...]
    declared: tuple[DeclaredSupport, ...]
    reason: str | None = None
    """Why nothing ran (transformers missing, the config could not be read...)."""
    seconds: float = 0.0


def tolerance(impl: str, dtype: str, device: str) -> tuple[float, float]:
    """(atol, rtol) for comparing ``impl``'s output with eager; see the module docstring."""
    if impl in ("sdpa", "flex_attention", "eager") or dtype == "float32":
        on_cuda = device.startswith("cuda")
        atol = {"float32": 1e-6, "float16": 5e-3, "bfloat16": 1e-2}[dtype]
        rtol = {"float32": 1e-4, "float16": 5e-3, "bfloat16": 3e-2 if on_cuda else 1e-2}[dtype]
        return atol, rtol
    return 4e-2, 4e-2


def tiny_config(family: str) -> Any:
    transformers: Any = importlib.import_module("transformers")
    common: dict[str, Any] = {
        "vocab_size": 128,
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 128,
        "head_dim": 64,
    }
    match family:
        case "llama":
            return transformers.LlamaConfig(**common)
        case "qwen2":
            return transformers.Qwen2Config(**common, use_sliding_window=False)
        case "gemma":
            return transformers.GemmaConfig(**common)
        case _:
            raise ValueError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")


def _shrunk_config(model: str, *, trust_remote_code: bool) -> Any:
    transformers: Any = importlib.import_module("transformers")
    config = transformers.AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
    text = getattr(config, "text_config", None) or config
    for name in ("num_hidden_layers", "n_layer", "num_layers"):
        if hasattr(text, name):
            setattr(text, name, 2)
    # Layer-type lists (sliding/full) must match the layer count.
    layer_types = getattr(text, "layer_types", None)
    if isinstance(layer_types, list) and len(layer_types) > 2:
        text.layer_types = layer_types[:2]
    return config


def _declared(family: str, cls: Any, config: Any) -> DeclaredSupport:
    def flag(name: str) -> bool | None:
        value = getattr(cls, name, None)
        return value if isinstance(value, bool) else None

    return DeclaredSupport(
        family=family,
        model_class=cls.__name__,
        sdpa=flag("_supports_sdpa"),
        flash_attn=flag("_supports_flash_attn"),
        flex_attn=flag("_supports_flex_attn"),
        attention_backend=flag("_supports_attention_backend"),
        layers=getattr(getattr(config, "text_config", None) or config, "num_hidden_layers", None),
    )


def _impl_reason(impl: str, device: str) -> str | None:
    """Why ``impl`` cannot run here, or None to try it: the backend's adapter decides (its
    record rules the device out, its module does not import, its integration -- the attention
    function transformers does not ship -- does not register)."""
    adapter = adapter_of_implementation(impl)
    if adapter is None:
        return None
    record = adapter.record
    here = adapter.unavailable_here(device, None)
    if here is not None:
        return here
    if adapter.integration is None:
        return import_reason(record.module) if record.module else None
    try:
        adapter.integration()
    except ImportError:
        return f"{record.name} attention function not available in this build"
    except Exception as exc:
        return f"registering the {record.name} attention failed: {type(exc).__name__}: {exc}"[:300]
    return None


def tiny_inputs(vocab: int, device: str, *, seed: int) -> tuple[Any, Any, Any]:
    torch: Any = importlib.import_module("torch")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    batch, seqlen, pad = 2, 16, 5
    low = min(3, vocab - 1)  # keep clear of the usual special ids
    ids = torch.randint(low, vocab, (batch, seqlen), generator=gen)
    mask = torch.ones(batch, seqlen, dtype=torch.long)
    mask[1, :pad] = 0  # left padding, as batched generation does
    labels = ids.clone()
    labels[mask == 0] = -100
    # The model shifts labels: the logits at position t predict token t+1. A padded position's
    # logits are implementation-defined garbage, so the first real token (whose predecessor is
    # padding) is not a target either.
    labels[:, 1:][mask[:, :-1] == 0] = -100
    return ids.to(device), mask.to(device), labels.to(device)


def _run_one(
    model: Any, ids: Any, mask: Any, labels: Any, *, backward: bool = True
) -> tuple[Any, Any | None]:
    """Logits and d(loss)/d(inputs_embeds) of one forward+backward (None: forward only)."""
    torch: Any = importlib.import_module("torch")
    embeds = model.get_input_embeddings()(ids).detach()
    if not backward:
        with torch.no_grad():
            out = model(inputs_embeds=embeds, attention_mask=mask, labels=labels)
        return out.logits.detach().float(), None
    embeds.requires_grad_(True)
    out = model(inputs_embeds=embeds, attention_mask=mask, labels=labels)
    out.loss.backward()
    return out.logits.detach().float(), embeds.grad.detach().float()


def forward_backward(model: Any, ids: Any, mask: Any, labels: Any) -> tuple[Any, Any | None]:
    """Logits from a forward without autograd, the gradient from a second, training-style pass.

    The forward runs first and alone so that a kernel compiled on first use (FlexAttention)
    is compiled for the inference path, as users call it.
    """
    logits, _ = _run_one(model, ids, mask, labels, backward=False)
    _, grad = _run_one(model, ids, mask, labels)
    return logits, grad


def _build(cls: Any, config: Any, impl: str, *, state: Any, dtype: Any, device: str) -> Any:
    model = cls._from_config(copy.deepcopy(config), attn_implementation=impl)
    model.load_state_dict(state)
    model = model.to(device=device, dtype=dtype)
    model.train(False)  # no dropout: eval mode, but gradients still flow
    return model


def compare_with_eager(
    family: str,
    impl: str,
    got: tuple[Any, Any | None],
    base: tuple[Any, Any | None],
    *,
    mask: Any,
    dtype: str,
    device: str,
    no_backward: str | None = None,
) -> ImplResult:
    logits, grad = got
    logits_e, grad_e = base
    keep = mask.bool()
    a, b = logits[keep], logits_e[keep]
    atol, rtol = tolerance(impl, dtype, device)
    if dtype == "bfloat16":
        # transformers raises atol to 3e-2 x the outputs' magnitude for bfloat16.
        magnitude = float(max(a.abs().max().item(), b.abs().max().item()))
        atol = max(atol, magnitude * 3e-2)
    if not bool(a.isfinite().all().item()) or (
        grad is not None and not bool(grad.isfinite().all().item())
    ):
        return ImplResult(
            family=family,
            attn_implementation=impl,
            status="failed",
            reason="NaN or Inf in the logits or the gradient",
            logits_atol=atol,
            logits_rtol=rtol,
        )
    logits_diff = float((a - b).abs().max().item())
    logits_ok = bool(((a - b).abs() <= atol + rtol * b.abs()).all().item())
    grad_diff: float | None = None
    grad_ok: bool | None = None
    if grad is not None and grad_e is not None:
        scale = float(grad_e.abs().max().item()) or 1.0
        ga, gb = grad / scale, grad_e / scale
        grad_diff = float((ga - gb).abs().max().item())
        grad_ok = bool(((ga - gb).abs() <= atol + rtol * gb.abs()).all().item())
    reason = no_backward
    if not logits_ok:
        reason = f"logits differ from eager by {logits_diff:.3g} (atol {atol:g}, rtol {rtol:g})"
    elif grad_ok is False:
        reason = f"loss gradient differs from eager by {grad_diff:.3g} (relative)"
    return ImplResult(
        family=family,
        attn_implementation=impl,
        status="passed" if logits_ok and grad_ok is not False else "failed",
        reason=reason,
        logits_max_diff=logits_diff,
        logits_atol=atol,
        logits_rtol=rtol,
        grad_max_diff=grad_diff,
        grad_passed=grad_ok,
    )


def _check_family(
    family: str,
    config: Any,
    cls: Any,
    *,
    implementations: tuple[str, ...],
    device: str,
    dtype_name: str,
    seed: int,
) -> list[ImplResult]:
    torch: Any = importlib.import_module("torch")
    dtype = getattr(torch, dtype_name)
    torch.manual_seed(seed)
    base_model = cls._from_config(copy.deepcopy(config), attn_implementation="eager")
    state = base_model.state_dict()
    vocab = int(getattr(getattr(config, "text_config", None) or config, "vocab_size", 128))
    ids, mask, labels = tiny_inputs(vocab, device, seed=seed)
    with recorded_warnings():
        # The baseline's warnings are not a backend's; a warning never fails it either.
        base = forward_backward(
            _build(cls, config, "eager", state=state, dtype=dtype, device=device),
            ids,
            mask,
            labels,
        )
    results: list[ImplResult] = []
    for impl in implementations:
        if impl == "eager":
            continue
        with recorded_warnings() as caught:
            reason = _impl_reason(impl, device)
            if reason is not None:
                results.append(
                    ImplResult(
                        family=family, attn_implementation=impl, status="skipped", reason=reason
                    )
                )
                continue
            result = _run_impl(
                family,
                impl,
                cls,
                config,
                caught,
                state=state,
                inputs=(ids, mask, labels),
                base=base,
                dtype=dtype,
                dtype_name=dtype_name,
                device=device,
            )
        notes = warning_notes(caught)
        results.append(replace(result, notes=result.notes + notes) if notes else result)
    return results


def _run_impl(
    family: str,
    impl: str,
    cls: Any,
    config: Any,
    caught: list[warnings.WarningMessage],
    *,
    state: Any,
    inputs: tuple[Any, Any, Any],
    base: tuple[Any, Any | None],
    dtype: Any,
    dtype_name: str,
    device: str,
) -> ImplResult:
    """One implementation: build, forward, backward, compare. ``caught`` receives the
    warnings (``recorded_warnings``); an exception is the backend's own failure."""
    ids, mask, labels = inputs
    try:
        model = _build(cls, config, impl, state=state, dtype=dtype, device=device)
    except (ValueError, ImportError) as exc:
        # transformers refuses an implementation the class does not support.
        return ImplResult(
            family=family,
            attn_implementation=impl,
            status="unsupported",
            reason=f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
        )
    no_backward: str | None = None
    try:
        seen = len(caught)
        logits, _ = _run_one(model, ids, mask, labels, backward=False)
        if any("without torch.compile" in str(w.message) for w in caught[seen:]):
            # transformers' compiled flex_attention fell back to the unfused reference.
            return ImplResult(
                family=family,
                attn_implementation=impl,
                status="unsupported",
                reason="torch.compile fell back to the unfused flex_attention",
            )
        try:
            _, grad = _run_one(model, ids, mask, labels)
        except NotImplementedError as exc:
            # No backward here (FlexAttention on CPU): the forward is still compared.
            no_backward = f"forward only; backward: {exc}".splitlines()[0][:300]
            grad = None
    except Exception as exc:
        return ImplResult(
            family=family,
            attn_implementation=impl,
            status="error",
            reason=f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
        )
    return compare_with_eager(
        family,
        impl,
        (logits, grad),
        base,
        mask=mask,
        dtype=dtype_name,
        device=device,
        no_backward=no_backward,
    )


def run_model_checks(
    *,
    device: str = "cpu",
    families: tuple[str, ...] | None = None,
    implementations: tuple[str, ...] | None = None,
    model: str | None = None,
    trust_remote_code: bool = False,
    seed: int = 0,
) -> ModelReport:
    """Child side: build each model and run it with each implementation, vs eager.

    With ``model`` (a local path or a Hub id already in the local cache), that model's config
    shrunk to 2 layers replaces the built-in families; nothing is downloaded.
    """
    start = time.monotonic()
    dtype_name = "float32" if device == "cpu" else "bfloat16"
    if model is not None:
        # Read before huggingface_hub is imported (it reads the variable once, at import).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        transformers: Any = importlib.import_module("transformers")
    except Exception as exc:
        return ModelReport(
            device=device,
            dtype=dtype_name,
            transformers_version=None,
            results=(),
            declared=(),
            reason=f"import transformers failed: {type(exc).__name__}: {exc}"[:300],
        )
    impls = implementations or IMPLEMENTATIONS
    results: list[ImplResult] = []
    declared: list[DeclaredSupport] = []
    targets: list[tuple[str, Any, Any]] = []
    try:
        if model is not None:
            config = _shrunk_config(model, trust_remote_code=trust_remote_code)
            auto = transformers.AutoModelForCausalLM
            cls = (
                auto._model_mapping.get(type(config), None)
                if hasattr(auto, "_model_mapping")
                else None
            )
            if cls is None or trust_remote_code:
                probe = auto.from_config(config, trust_remote_code=trust_remote_code)
                cls = type(probe)
                del probe
            targets.append((model, config, cls))
        else:
            for family in families or DEFAULT_FAMILIES:
                config = tiny_config(family)
                cls = transformers.AutoModelForCausalLM._model_mapping[type(config)]
                targets.append((family, config, cls))
    except Exception as exc:
        return ModelReport(
            device=device,
            dtype=dtype_name,
            transformers_version=str(transformers.__version__),
            results=(),
            declared=(),
            reason=f"could not build the model: {type(exc).__name__}: {exc}".splitlines()[0][:300],
            seconds=time.monotonic() - start,
        )
    for name, config, cls in targets:
        declared.append(_declared(name, cls, config))
        try:
            results.extend(
                _check_family(
                    name,
                    config,
                    cls,
                    implementations=impls,
                    device=device,
                    dtype_name=dtype_name,
                    seed=seed,
                )
            )
        except Exception as exc:
            results.append(
                ImplResult(
                    family=name,
                    attn_implementation="eager",
                    status="error",
                    reason=f"eager baseline failed: {type(exc).__name__}: {exc}".splitlines()[0][
                        :300
                    ],
                )
            )
    return ModelReport(
        device=device,
        dtype=dtype_name,
        transformers_version=str(transformers.__version__),
        results=tuple(results),
        declared=tuple(declared),
        seconds=time.monotonic() - start,
    )


def model_report_json(report: ModelReport) -> str:
    """One line of JSON (the child's answer)."""
    from attn_doctor.facts import encode

    return json.dumps(encode(report), allow_nan=False, sort_keys=True)
