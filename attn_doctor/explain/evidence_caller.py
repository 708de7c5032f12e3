"""Evidence about what a caller or the runtime says of the installed stack, kept apart from
``evidence.py`` for size: a package a caller calls too old ("sageattention is not new enough
version", "requires xformers>=0.0.28", "please upgrade flash-attn"), autograd ops without a
derivative, a C compiler Triton could not find, and identifiers a compiler found undefined.
Pure functions of the normalised text; ``extract_facts`` calls ``read_caller``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PKG = r"(sageattention|sageattn|xformers|flash[-_]?attn|flashinfer|triton)"
_TOO_OLD = re.compile(
    rf"\b{_PKG}(?: version)? (?:is not new enough|is too old|version is too old|is outdated)"
    rf"|\b(?:requires?|needs?) {_PKG}\s*(?:>=|\s(?:version\s*)?>=?)\s*v?(\d+(?:\.\d+)*)\b"
    rf"|\bplease (?:upgrade|update) {_PKG}\b",
    re.I,
)
_NO_DERIVATIVE = re.compile(r"derivative for (?:aten::)?(\w+) is not implemented")
_NO_CC = re.compile(
    r"Failed to find C compiler\b|Failed to find C\+\+ compiler\b"
    # the compiler it chose (CC, or MSVC's cl) did not run: triton-windows' build.py
    r"|Failed to compile\. cc_cmd\b"
    # triton-windows' own search for MSVC and the Windows SDK (windows_utils.py)
    r"|Failed to find MSVC\b|Failed to find Windows SDK\b",
    re.I,
)
_UNDEFINED = re.compile(r"error: identifier \"(\w+)\" is undefined")


@dataclass(frozen=True, kw_only=True)
class CallerFacts:
    too_old: tuple[tuple[str, str], ...] = ()
    """(package, the version the caller asks for or ``""``) a caller calls too old."""
    no_derivative: tuple[str, ...] = ()
    """aten ops autograd has no derivative for (``_scaled_dot_product_attention_math_for_mps``)."""
    no_c_compiler: bool = False
    """Triton's launcher build found no C compiler (its ``loadtime/build.py``)."""
    undefined_identifiers: tuple[str, ...] = ()
    """Identifiers nvcc/the host compiler found undefined (``M_LOG2E``)."""


def _norm(name: str) -> str:
    low = name.lower().replace("_", "-")
    return {"sageattn": "sageattention", "flashattn": "flash-attn"}.get(low, low)


def read_caller(body: str) -> CallerFacts:
    """The facts above, from the normalised text."""
    old: dict[tuple[str, str], None] = {}
    for m in _TOO_OLD.finditer(body):
        name = m.group(1) or m.group(2) or m.group(4)
        old[(_norm(name), m.group(3) or "")] = None
    return CallerFacts(
        too_old=tuple(old),
        no_derivative=tuple(dict.fromkeys(_NO_DERIVATIVE.findall(body))),
        no_c_compiler=bool(_NO_CC.search(body)),
        undefined_identifiers=tuple(dict.fromkeys(_UNDEFINED.findall(body))),
    )
