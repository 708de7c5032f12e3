"""What a model declares about attention, from a class, an instance, a config or a model id.

transformers records support on the ``PreTrainedModel`` class: ``_supports_sdpa``,
``_supports_flash_attn`` (``_supports_flash_attn_2`` in older and custom code),
``_supports_flex_attn`` and ``_supports_attention_backend`` (the model passes every argument
through to ``AttentionInterface`` functions, which a registered function such as xformers
needs). A config is mapped to its class with transformers' auto mappings; a model id is read
with ``AutoConfig.from_pretrained(..., local_files_only=True)`` (a local directory, or the
local Hugging Face cache: never the network).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attn_doctor.errors import UsageError


@dataclass(frozen=True, kw_only=True)
class ModelTraits:
    """The attention-relevant facts of one model class (and config, when known)."""

    name: str
    """Class name, or a description when there is none."""
    known: bool
    """False when the class could not be found: only ``eager`` is certain to work."""
    supports_sdpa: bool
    supports_flash_attn: bool
    supports_flex_attn: bool
    supports_attention_backend: bool
    head_dim: int | None = None
    heads: int | None = None
    """``num_attention_heads`` of the (text) config."""
    sliding_window: bool = False
    """The config uses a sliding window: transformers then passes SDPA a mask."""
    attention_dropout: float | None = None
    compatible_flash: tuple[str, ...] | None = None
    """``_compatible_flash_implementations``: the only flash values the class accepts
    (transformers switches any other flash value to the first of these)."""
    softcap: bool = False
    """The config sets ``attn_logit_softcapping`` (Gemma 2)."""
    config_dtype: str | None = None
    """The dtype recorded in the config (``bfloat16``…), what ``dtype="auto"`` loads."""
    param_dtype: str | None = None
    """The dtype of an instance's parameters, when an instance was given."""
    source: str
    """Where these facts come from, for the reason text."""

    def flag(self, name: str) -> bool:
        return bool(getattr(self, name))


ANY_MODEL = ModelTraits(
    name="any model",
    known=True,
    supports_sdpa=True,
    supports_flash_attn=True,
    supports_flex_attn=True,
    supports_attention_backend=True,
    source="no model given: assumed to support every implementation",
)


def dtype_name(dtype: object) -> str | None:
    """``torch.bfloat16``, ``"bf16"``, ``"bfloat16"`` -> ``"bfloat16"``; None or "auto" -> None."""
    if dtype is None:
        return None
    text = str(dtype).strip().lower().removeprefix("torch.")
    if text in ("", "auto"):
        return None
    aliases = {
        "bf16": "bfloat16",
        "fp16": "float16",
        "half": "float16",
        "f16": "float16",
        "fp32": "float32",
        "float": "float32",
        "f32": "float32",
        "fp64": "float64",
        "double": "float64",
    }
    text = aliases.get(text, text)
    if text not in ("float16", "bfloat16", "float32", "float64"):
        raise UsageError(
            f"dtype={dtype!r} is not a floating-point dtype attention runs in",
            hint="use torch.bfloat16, torch.float16 or torch.float32 (or 'bf16', 'fp16', 'fp32')",
        )
    return text


def _compatible(cls: type) -> tuple[str, ...] | None:
    raw = getattr(cls, "_compatible_flash_implementations", None)
    if isinstance(raw, list | tuple) and all(isinstance(x, str) for x in raw):
        return tuple(raw)
    return None


def _class_traits(cls: type, source: str) -> dict[str, Any]:
    return {
        "name": cls.__name__,
        "known": True,
        "supports_sdpa": bool(getattr(cls, "_supports_sdpa", False)),
        "supports_flash_attn": bool(
            getattr(cls, "_supports_flash_attn", False)
            or getattr(cls, "_supports_flash_attn_2", False)
        ),
        "supports_flex_attn": bool(getattr(cls, "_supports_flex_attn", False)),
        "supports_attention_backend": bool(getattr(cls, "_supports_attention_backend", False)),
        "compatible_flash": _compatible(cls),
        "source": source,
    }


def _config_traits(config: Any) -> dict[str, Any]:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    head_dim = getattr(text, "head_dim", None)
    heads = getattr(text, "num_attention_heads", None)
    if not isinstance(head_dim, int):
        hidden = getattr(text, "hidden_size", None)
        head_dim = hidden // heads if isinstance(hidden, int) and isinstance(heads, int) else None
    dropout = getattr(text, "attention_dropout", None)
    softcap = getattr(text, "attn_logit_softcapping", None)
    # transformers >= 4.56 names it ``dtype``; ``torch_dtype`` is then a deprecated property
    # whose read logs a warning, so only an older config's own attribute is read.
    raw_dtype = getattr(config, "dtype", None) or vars(config).get("torch_dtype")
    try:
        config_dtype = dtype_name(raw_dtype)
    except UsageError:
        config_dtype = None
    window = getattr(text, "sliding_window", None)
    uses_window = isinstance(window, int) and not isinstance(window, bool) and window > 0
    return {
        "heads": heads if isinstance(heads, int) and heads > 0 else None,
        "sliding_window": uses_window and getattr(text, "use_sliding_window", True) is not False,
        "head_dim": head_dim if head_dim and head_dim > 0 else None,
        "attention_dropout": float(dropout) if isinstance(dropout, int | float) else None,
        "softcap": isinstance(softcap, int | float) and not isinstance(softcap, bool),
        "config_dtype": config_dtype,
    }


def _class_for_config(config: Any) -> type | None:
    try:
        from transformers.models.auto import modeling_auto
    except ImportError:
        return None
    for mapping_name in (
        "MODEL_FOR_CAUSAL_LM_MAPPING",
        "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING",
        "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING",
        "MODEL_MAPPING",
    ):
        mapping = getattr(modeling_auto, mapping_name, None)
        if mapping is None:
            continue
        try:
            cls = mapping[type(config)]
        except (KeyError, ValueError, ImportError):
            continue
        if isinstance(cls, tuple | list):  # some mappings hold several classes
            cls = cls[0]
        if isinstance(cls, type):
            return cls
    return None


def _is_config(obj: object) -> bool:
    return any(c.__name__ in ("PretrainedConfig", "PreTrainedConfig") for c in type(obj).__mro__)


def _is_model_class(obj: object) -> bool:
    return isinstance(obj, type) and hasattr(obj, "_supports_sdpa")


def _from_config(config: Any, label: str) -> ModelTraits:
    cls = _class_for_config(config)
    facts = _config_traits(config)
    if cls is None:
        model_type = getattr(config, "model_type", None) or type(config).__name__
        return ModelTraits(
            name=str(model_type),
            known=False,
            supports_sdpa=False,
            supports_flash_attn=False,
            supports_flex_attn=False,
            supports_attention_backend=False,
            source=(
                f"{label}: no transformers model class is registered for model type "
                f"{model_type!r} (custom code?); pass the model class or instance instead"
            ),
            **facts,
        )
    return ModelTraits(**_class_traits(cls, f"{label} -> {cls.__name__} class attributes"), **facts)


def resolve_model(model: object) -> ModelTraits:
    """The ``ModelTraits`` of a class, instance, config, local path or cached model id."""
    if model is None:
        return ANY_MODEL
    if _is_model_class(model):
        assert isinstance(model, type)
        return ModelTraits(**_class_traits(model, f"{model.__name__} class attributes"))
    if _is_model_class(type(model)):
        config = getattr(model, "config", None)
        facts = _config_traits(config) if config is not None else {}
        param_dtype = None
        try:
            param_dtype = dtype_name(getattr(model, "dtype", None))
        except UsageError:
            param_dtype = None
        cls = type(model)
        return ModelTraits(
            **_class_traits(cls, f"{cls.__name__} instance"), param_dtype=param_dtype, **facts
        )
    if _is_config(model):
        return _from_config(model, type(model).__name__)
    if isinstance(model, str):
        try:
            from transformers import AutoConfig
        except ImportError as exc:
            raise UsageError(f"reading the config of {model!r} needs transformers") from exc
        try:
            config = AutoConfig.from_pretrained(model, local_files_only=True)
        except Exception as exc:
            raise UsageError(
                f"cannot read the config of {model!r} offline: {exc}",
                hint="pass a local directory with config.json, a model id already in the "
                "Hugging Face cache, a config, or the model class",
            ) from exc
        return _from_config(config, model)
    raise UsageError(
        f"model={model!r} is not a transformers model class, instance, config or model id"
    )
