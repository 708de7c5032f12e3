"""What every machine check shares: ``CheckResult`` and the small readers of versions and
facts the checks in ``checks``, ``checks_host`` and ``checks_packages`` use."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from packaging.version import InvalidVersion, Version

from attn_doctor.diagnosis import Evidence
from attn_doctor.facts import Environment, GpuFacts

CheckStatus = Literal["confirmed", "contradicted", "unknown"]


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """The outcome of one check on one machine."""

    check: str
    """The check as written in the knowledge base (after ``{capture}`` substitution)."""
    status: CheckStatus
    reason: str
    """One sentence: what was compared, or why it could not be."""
    evidence: tuple[Evidence, ...] = ()


def _res(
    check: str, status: CheckStatus, reason: str, *evidence: tuple[str, object]
) -> CheckResult:
    return CheckResult(
        check=check,
        status=status,
        reason=reason,
        evidence=tuple(Evidence(fact=f, value=_show(v)) for f, v in evidence),
    )


def _show(value: object) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _unknown(check: str, env: Environment, field: str, what: str) -> CheckResult:
    why = env.unknown_reason(field)
    reason = f"{what} is not known" + (f" ({why})" if why else "")
    return _res(check, "unknown", reason, (field, None))


def _ver(text: str | None) -> Version | None:
    if text is None:
        return None
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _release(text: str | None) -> Version | None:
    """The public release part of a version (``2.8.0+cu128`` -> ``2.8.0``)."""
    v = _ver(text)
    return None if v is None else Version(v.base_version)


def _mm(text: str | None) -> tuple[int, int] | None:
    """``major.minor`` of a dotted version string (``12.8`` or ``12.8.93``)."""
    if text is None:
        return None
    m = re.match(r"^\s*(\d+)(?:\.(\d+))?", text)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2) or 0)


def _fmt_mm(mm: tuple[int, int]) -> str:
    return f"{mm[0]}.{mm[1]}"


def _sm_text(gpu: GpuFacts) -> str:
    return f"{gpu.name} (sm_{gpu.sm})" if gpu.sm is not None else gpu.name


def _gpu_sms(env: Environment) -> list[GpuFacts]:
    return [g for g in env.nvidia_gpus if g.sm is not None]
