"""The runtime's overrides: ``ATTN_DOCTOR_*`` and the variables other projects already read.

- ``ATTN_DOCTOR_BACKEND=<value>`` forces a value (validated; an unknown value raises
  ``UsageError`` with "did you mean …").
- ``ATTN_DOCTOR_DISABLE=<comma list>`` excludes values (``flash`` excludes every
  flash_attention_*).
- Variables other projects already read are honoured as exclusions only
  (``LEGACY_VARIABLES``, docs/runtime.md).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from attn_doctor.backends import BACKENDS
from attn_doctor.errors import UsageError
from attn_doctor.facts import TransformersConstants
from attn_doctor.integrations.xformers_attention import XFORMERS_KEY
from attn_doctor.loadtime import importcheck
from attn_doctor.loadtime.requirements import load_requirements

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


def is_registered(value: str, registered: bool | frozenset[str]) -> bool:
    if isinstance(registered, bool):
        return registered
    return value in registered


def registered_values() -> tuple[str, ...]:
    import sys

    modeling_utils = sys.modules.get("transformers.modeling_utils")
    interface = getattr(modeling_utils, "AttentionInterface", None)
    mapping = getattr(interface, "_global_mapping", None)
    return tuple(sorted(mapping)) if isinstance(mapping, dict) else ()


def installed_constants() -> TransformersConstants | None:
    """The constants of the installed transformers, read from its files without importing it
    (``probe.transformers_src``); None when it is not installed."""
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution("transformers")
    except importlib.metadata.PackageNotFoundError:
        return None
    return _constants_read(dist.version, str(dist.locate_file("")))


@functools.cache
def _constants_read(version: str, location: str) -> TransformersConstants | None:
    """Cached per installed copy (version and location): reading takes a few milliseconds."""
    import importlib.metadata

    from attn_doctor.probe.transformers_src import probe_transformers_constants

    constants, _ = probe_transformers_constants(
        {"transformers": importlib.metadata.distribution("transformers")}
    )
    return constants


def _installed_values() -> tuple[str, ...]:
    """The values the installed transformers accepts by name (a release newer than the
    records may accept more)."""
    constants = installed_constants()
    return constants.attn_implementations if constants is not None else ()


def valid_values() -> tuple[str, ...]:
    """Every value ``ATTN_DOCTOR_BACKEND`` accepts by name (plus Hub kernel ids): the records'
    values, those registered in the imported transformers, and those the installed
    transformers' files list."""
    extra = dict.fromkeys(
        v for v in (*registered_values(), *_installed_values()) if v not in KNOWN_VALUES
    )
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
    from attn_doctor.backends import parse_backend

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
    if backend is not None:
        raise UsageError(
            f"{variable}={text!r}: {BACKENDS[backend].title} is not a transformers "
            "attn_implementation",
            hint="the framework that serves the model selects it by its own option; "
            "`attn-doctor check` shows the backends transformers can load here",
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
