"""Check one transformers ``attn_implementation`` value against a transformers version (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from attn_doctor.diagnosis import Tri
from attn_doctor.rules_data import AttnImplementation, Rules
from attn_doctor.shell import join_command


@dataclass(frozen=True, kw_only=True)
class AttnImplCheck:
    """Whether transformers accepts ``value``, why, and how to make it accept it."""

    value: str
    accepted: Tri
    reason: str
    fix: str | None = None
    source: str | None = None


def _entry(value: str, rules: Rules) -> AttnImplementation | None:
    exact = [e for e in rules.attn_implementations if e.pattern is None and e.value == value]
    if exact:
        return exact[0]
    return next((e for e in rules.attn_implementations if e.matches(value)), None)


def check_attn_implementation(
    value: str, transformers_version: str | None, rules: Rules, *, python: str = "python"
) -> AttnImplCheck:
    """Would ``from_pretrained(..., attn_implementation=value)`` accept the value?

    ``accepted`` is ``unknown`` when transformers is not installed or the value is not in the
    rules data (it may be a custom function registered with ``AttentionInterface``).
    ``python``: the interpreter whose transformers this is; fixes name it (``X -m pip ...``).
    """

    def pip(*args: str) -> str:
        return join_command([python, "-m", "pip", *args])

    for bad in rules.invalid_attn_implementations:
        if bad.value == value:
            return AttnImplCheck(
                value=value,
                accepted="no",
                reason=f"not a transformers value: {bad.error}",
                fix=bad.instead,
                source=bad.source,
            )
    entry = _entry(value, rules)
    if entry is None:
        return AttnImplCheck(
            value=value,
            accepted="unknown",
            reason=f"{value!r} is not a built-in transformers value; it works only if registered "
            "with transformers.AttentionInterface first",
        )
    if transformers_version is None:
        return AttnImplCheck(
            value=value,
            accepted="unknown",
            reason="transformers is not installed",
            fix=pip("install", f"transformers>={entry.first}"),
            source=entry.source,
        )
    try:
        version = Version(transformers_version)
    except InvalidVersion:
        return AttnImplCheck(
            value=value,
            accepted="unknown",
            reason=f"transformers version {transformers_version!r} is unreadable",
            source=entry.source,
        )
    if version < Version(entry.first):
        return AttnImplCheck(
            value=value,
            accepted="no",
            reason=f"transformers {transformers_version} is too old: {value!r} is accepted from "
            f"{entry.first}",
            fix=pip("install", "-U", f"transformers>={entry.first}"),
            source=entry.source,
        )
    if entry.removed is not None and version >= Version(entry.removed):
        current = rules.attn_implementation(entry.backend)
        instead = f'; use attn_implementation="{current.value}"' if current else ""
        return AttnImplCheck(
            value=value,
            accepted="no",
            reason=f"transformers {transformers_version} is too new: {value!r} was removed in "
            f"{entry.removed}{instead}",
            fix=pip("install", f"transformers<{entry.removed}"),
            source=entry.source,
        )
    return AttnImplCheck(
        value=value,
        accepted="yes",
        reason=f"accepted by transformers {transformers_version} (from {entry.first})",
        source=entry.source,
    )
