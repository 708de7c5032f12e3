"""The selector's data: ``wheels_index/runtime.toml``, loaded and validated once.

Each entry says what one transformers ``attn_implementation`` needs (device, compute
capability, dtype, head dim, the model's declared support) and which module proves it loads.
The file order is the preference order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from attn_doctor.datafiles import read_toml
from attn_doctor.errors import IndexDataError

DeviceType = Literal["cuda", "cpu", "mps"]
ModelFlag = Literal[
    "supports_sdpa", "supports_flash_attn", "supports_flex_attn", "supports_attention_backend"
]

FILE_NAME = "runtime.toml"
_DEVICES: tuple[DeviceType, ...] = ("cuda", "cpu", "mps")
_FLAGS: tuple[ModelFlag, ...] = (
    "supports_sdpa",
    "supports_flash_attn",
    "supports_flex_attn",
    "supports_attention_backend",
)
_DTYPES = ("float16", "bfloat16", "float32", "float64")


@dataclass(frozen=True, kw_only=True)
class Requirement:
    """What one ``attn_implementation`` needs before the selector will return it."""

    value: str
    modules: tuple[str, ...] = ()
    """Modules a child process must import (each in its own child) for the value to count."""
    distributions: tuple[str, ...] = ()
    min_version: str | None = None
    """Lowest installed version that counts (PEP 440)."""
    devices: tuple[DeviceType, ...] = ()
    min_sm: int | None = None
    max_sm: int | None = None
    train_min_sm: int | None = None
    dtypes: tuple[str, ...] = ()
    bf16_min_sm: int | None = None
    max_head_dim: int | None = None
    training_dropout: bool = True
    softcap: bool = True
    """False when attention logit soft-capping (Gemma 2's ``attn_logit_softcapping``) is
    unsupported."""
    model_flags: tuple[ModelFlag, ...] = ()
    """``PreTrainedModel`` class attributes (without the underscore) that must all be True."""
    needs_registration: bool = False
    auto: bool = True
    source: str
    verified: bool


def _fail(index: int, value: object, message: str) -> IndexDataError:
    return IndexDataError(f"{FILE_NAME}: implementation[{index}] ({value!r}): {message}")


def _opt_int(entry: dict[str, Any], key: str, index: int) -> int | None:
    raw = entry.get(key)
    if raw is None:
        return None
    if not isinstance(raw, int) or isinstance(raw, bool) or raw <= 0:
        raise _fail(index, entry.get("value"), f"{key} must be a positive integer")
    return raw


def _str_tuple(entry: dict[str, Any], key: str, index: int) -> tuple[str, ...]:
    raw = entry.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise _fail(index, entry.get("value"), f"{key} must be a list of strings")
    return tuple(raw)


def _bool(entry: dict[str, Any], key: str, index: int, default: bool) -> bool:
    raw = entry.get(key, default)
    if not isinstance(raw, bool):
        raise _fail(index, entry.get("value"), f"{key} must be true or false")
    return raw


_KNOWN_KEYS = frozenset(
    {
        "value",
        "modules",
        "distributions",
        "min_version",
        "devices",
        "min_sm",
        "max_sm",
        "train_min_sm",
        "dtypes",
        "bf16_min_sm",
        "max_head_dim",
        "training_dropout",
        "softcap",
        "model_flags",
        "needs_registration",
        "auto",
        "source",
        "verified",
    }
)


def parse_requirements(data: dict[str, Any]) -> tuple[Requirement, ...]:
    """Validate the decoded TOML; raises ``IndexDataError`` naming the bad entry."""
    if data.get("schema") != 1:
        raise IndexDataError(f"{FILE_NAME}: schema must be 1, got {data.get('schema')!r}")
    entries = data.get("implementation")
    if not isinstance(entries, list) or not entries:
        raise IndexDataError(f"{FILE_NAME}: no [[implementation]] entries")
    result: list[Requirement] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _fail(index, None, "must be a table")
        value = entry.get("value")
        if not isinstance(value, str) or not value:
            raise _fail(index, value, "value must be a non-empty string")
        if value in seen:
            raise _fail(index, value, "duplicate value")
        seen.add(value)
        unknown = sorted(set(entry) - _KNOWN_KEYS)
        if unknown:
            raise _fail(index, value, f"unknown key {unknown[0]!r}")
        source = entry.get("source")
        if not isinstance(source, str) or not source.strip():
            raise _fail(index, value, "source is required (where the fact comes from)")
        verified = entry.get("verified")
        if not isinstance(verified, bool):
            raise _fail(index, value, "verified must be true or false")
        modules = _str_tuple(entry, "modules", index)
        if not all(modules):
            raise _fail(index, value, "modules must be non-empty strings")
        min_version = entry.get("min_version")
        if min_version is not None:
            from packaging.version import InvalidVersion, Version

            try:
                Version(str(min_version))
            except InvalidVersion:
                raise _fail(index, value, f"min_version {min_version!r} is not a version") from None
        devices = _str_tuple(entry, "devices", index)
        bad_devices = [d for d in devices if d not in _DEVICES]
        if bad_devices or not devices:
            raise _fail(index, value, f"devices must be a non-empty subset of {_DEVICES}")
        dtypes = _str_tuple(entry, "dtypes", index)
        bad_dtypes = [d for d in dtypes if d not in _DTYPES]
        if bad_dtypes or not dtypes:
            raise _fail(index, value, f"dtypes must be a non-empty subset of {_DTYPES}")
        flags = _str_tuple(entry, "model_flags", index)
        if any(f not in _FLAGS for f in flags):
            raise _fail(index, value, f"model_flags must be among {_FLAGS}")
        result.append(
            Requirement(
                value=value,
                modules=modules,
                distributions=_str_tuple(entry, "distributions", index),
                min_version=None if min_version is None else str(min_version),
                devices=tuple(d for d in _DEVICES if d in devices),
                min_sm=_opt_int(entry, "min_sm", index),
                max_sm=_opt_int(entry, "max_sm", index),
                train_min_sm=_opt_int(entry, "train_min_sm", index),
                dtypes=dtypes,
                bf16_min_sm=_opt_int(entry, "bf16_min_sm", index),
                max_head_dim=_opt_int(entry, "max_head_dim", index),
                training_dropout=_bool(entry, "training_dropout", index, True),
                softcap=_bool(entry, "softcap", index, True),
                model_flags=tuple(f for f in _FLAGS if f in flags),
                needs_registration=_bool(entry, "needs_registration", index, False),
                auto=_bool(entry, "auto", index, True),
                source=source,
                verified=verified,
            )
        )
    if result[-1].value != "eager":
        raise IndexDataError(f"{FILE_NAME}: the last entry must be 'eager' (the fallback)")
    return tuple(result)


@functools.cache
def load_requirements(directory: Path | None = None) -> tuple[Requirement, ...]:
    """The validated requirements, in preference order (cached: data cannot change in a run)."""
    return parse_requirements(read_toml(FILE_NAME, directory))
