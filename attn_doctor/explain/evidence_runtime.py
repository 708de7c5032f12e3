"""Evidence about what a runtime library says of one attention call, kept apart from
``evidence.py`` for size: SDPA's mask/query dtype check, a cuDNN too old for the attention
graph (torch's cuDNN SDPA, TransformerEngine's fused attention), the cuDNN version a log shows,
and a Hub-kernels variant list offering a stable-ABI build. Pure functions of the normalised
text; ``extract_facts`` calls ``read_runtime``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_DT = r"(?:c10::|torch\.)?(\w+)"
_MASK_DTYPE = re.compile(
    r"Expected attn_mask dtype to be bool or (?:float or )?to match query dtype,? but got "
    rf"attn_mask\.dtype:?\s*{_DT},?\s+and\s+query\.dtype:?\s*{_DT}",
    re.I,
)
"""torch's SDPA input check (aten/src/ATen/native/transformers/attention.cpp,
validate_sdpa_input), in its 2.0 wording and the later one that also allows float."""
_MASK_DTYPE_LOOSE = re.compile(
    r"attn_mask\b[^\n]{0,40}\bdtype\b[^\n]{0,60}\b(?:match|same)\b[^\n]{0,20}\bquery", re.I
)
_CUDNN_TOO_OLD = re.compile(r"cuDNN version (?:is )?too old|cuDNN (?:is )?too old", re.I)
_FUSED_ATTN = re.compile(r"\bnvte_fused_attn_(?:fwd|bwd)\w*|\btex\.fused_attn_(?:fwd|bwd)\b")
_FUSED_REFUSED = re.compile(
    r"Invalid combination of data type and sequence length for fused attention"
    r"|No (?:valid )?execution plans? support(?:s)? the graph"
    r"|CUDNN_STATUS_(?:NOT_SUPPORTED|EXECUTION_FAILED)",
    re.I,
)
_CUDNN_VERSION = re.compile(
    r"\bCuDNN \(v(\d)(\d{2})(\d{2})\b|\bcuDNN (?:version )?v?(9\.\d+(?:\.\d+)?)", re.I
)
_FA_LATEST = re.compile(
    r"\b(\d+\.\d+\.\d+)\.? is the latest supported"
    r"|Supported flash-attn versions are [^\n]{0,40}?<=\s*(\d+\.\d+(?:\.\d+)?)",
    re.I,
)
"""TransformerEngine's flash-attn range warning (its attention backends' version check):
"Supported flash-attn versions are >= 2.1.1, <= 2.6.3", told in prose as "2.6.3 is the
latest supported"."""
_STABLE_ABI = re.compile(r"\btorch-stable-abi\d*\b|\bstable[- ]ABI (?:build|variant)", re.I)


@dataclass(frozen=True, kw_only=True)
class RuntimeFacts:
    mask_dtype: tuple[str, str] | None = None
    """(mask dtype, query dtype) SDPA refused; ``("", "")`` when the check is told in prose."""
    cudnn_too_old: bool = False
    """A library said the cuDNN it loaded is too old ("The cuDNN version is too old")."""
    fused_attn_refused: bool = False
    """TransformerEngine's fused attention (``nvte_fused_attn_fwd``/``tex.fused_attn_bwd``)
    found no cuDNN graph for the call."""
    cudnn: str | None = None
    """The cuDNN version the log shows (``9.1.0`` from ``CuDNN (v90100 …``)."""
    fa_latest_supported: str | None = None
    """The newest flash-attn a dependent package says it supports (TransformerEngine)."""
    stable_abi_variant: bool = False
    """A Hub kernel's variant list shows a stable-ABI build (``torch-stable-abi29-…``)."""


def read_runtime(body: str) -> RuntimeFacts:
    """The facts above, from the normalised text."""
    mask: tuple[str, str] | None = None
    if m := _MASK_DTYPE.search(body):
        mask = (m.group(1), m.group(2))
    elif _MASK_DTYPE_LOOSE.search(body):
        mask = ("", "")
    cudnn = None
    if v := _CUDNN_VERSION.search(body):
        cudnn = v.group(4) or f"{int(v.group(1))}.{int(v.group(2))}.{int(v.group(3))}"
    return RuntimeFacts(
        mask_dtype=mask,
        cudnn_too_old=bool(_CUDNN_TOO_OLD.search(body)),
        fused_attn_refused=bool(_FUSED_ATTN.search(body) and _FUSED_REFUSED.search(body)),
        cudnn=cudnn,
        fa_latest_supported=(
            (m2.group(1) or m2.group(2)) if (m2 := _FA_LATEST.search(body)) else None
        ),
        stable_abi_variant=bool(_STABLE_ABI.search(body)),
    )
