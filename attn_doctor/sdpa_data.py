"""``wheels_index/sdpa_dispatch.toml``: torch SDPA's default dispatch, one row per release.

Loaded and validated once by :func:`attn_doctor.rules_data.load_rules`; the rule that walks the rows
is :func:`attn_doctor.planner.sdpa_rule.sdpa_dispatch` (pure). Every row names its source and says
whether it was verified; a malformed row raises ``IndexDataError`` naming the file and the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from attn_doctor.datafiles import Entry, check_schema, tables

SDPA_FILE = "sdpa_dispatch.toml"

SdpaKernel = Literal["flash", "efficient", "cudnn", "math"]
CudnnGate = Literal["none", "order", "opt_in", "by_gpu_major", "lazy"]
_KERNELS: tuple[str, ...] = ("flash", "efficient", "cudnn", "math")
_GATES: tuple[str, ...] = ("none", "order", "opt_in", "by_gpu_major", "lazy")
_KEYS = frozenset(
    {
        "torch", "cuda", "bundled_cudnn", "order", "preferred_order", "cudnn_gate",
        "opt_in_env", "opt_out_env", "inert_env", "prefer_cudnn_loaded", "prefer_majors",
        "prefer_minors", "flash_sm", "efficient_sm", "cudnn_sm", "cudnn_masks",
        "flash_max_head_dim", "cudnn_max_head_dim", "cudnn_hd256_majors", "cudnn_hd256",
        "cudnn_decode_off_majors", "cudnn_decode_off", "cudnn_training",
        "flash_causal_equal_lengths", "source", "verified",
    }
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class SdpaRelease:
    """What one torch release (and CUDA build) dispatches to; fields as in the data file."""

    torch: str
    """Version specifier of the releases the row covers (``>=2.11,<2.12``)."""
    cuda: str | None
    """Specifier on the CUDA torch was built with (None: any build of the release)."""
    bundled_cudnn: str | None
    """The cuDNN the package-index wheel installs (None: not read)."""
    order: tuple[SdpaKernel, ...]
    preferred_order: tuple[SdpaKernel, ...]
    cudnn_gate: CudnnGate
    opt_in_env: str | None
    opt_out_env: str | None
    inert_env: tuple[str, ...]
    prefer_cudnn_loaded: str | None
    prefer_majors: tuple[int, ...]
    prefer_minors: tuple[int, ...]
    flash_sm: tuple[int, int]
    efficient_sm: tuple[int, int]
    cudnn_sm: tuple[int, int] | None
    cudnn_masks: bool
    flash_max_head_dim: int
    cudnn_max_head_dim: int
    cudnn_hd256_majors: tuple[int, ...]
    cudnn_hd256: str | None
    cudnn_decode_off_majors: tuple[int, ...]
    cudnn_decode_off: str | None
    cudnn_training: str | None
    flash_causal_equal_lengths: bool
    source: str
    verified: bool


def _spec(e: Entry, key: str) -> str | None:
    value = e.opt_str(key)
    if value is None:
        return None
    try:
        SpecifierSet(value)
    except InvalidSpecifier as exc:
        raise e.fail(key, f"{value!r} is not a version specifier") from exc
    return value


def _sm_range(e: Entry, key: str, *, required: bool = True) -> tuple[int, int] | None:
    value = e.ints(key)
    if not value and not required:
        return None
    if len(value) != 2 or value[0] > value[1]:
        raise e.fail(key, "expected [lowest, highest] compute capability")
    return value[0], value[1]


def _kernels(e: Entry, key: str) -> tuple[SdpaKernel, ...]:
    value = e.strs(key, allowed=_KERNELS)
    if value and value[-1] != "math" and "math" not in value:
        raise e.fail(key, "the order must contain math")
    return cast(tuple[SdpaKernel, ...], value)


def parse_sdpa_releases(doc: dict[str, Any]) -> tuple[SdpaRelease, ...]:
    """Validate ``sdpa_dispatch.toml`` (``IndexDataError`` names the bad row)."""
    check_schema(doc, SDPA_FILE)
    rows = []
    for e in tables(doc, SDPA_FILE, "release"):
        e.only(_KEYS)
        e.str_("torch")  # required
        source, verified = e.provenance()
        gate = e.str_("cudnn_gate")
        if gate not in _GATES:
            raise e.fail("cudnn_gate", f"{gate!r} is not one of {', '.join(_GATES)}")
        order = _kernels(e, "order")
        preferred = _kernels(e, "preferred_order")
        if not order:
            raise e.fail("order", "missing")
        if gate in ("opt_in", "by_gpu_major", "lazy") and not preferred:
            raise e.fail("preferred_order", f"needed with cudnn_gate = {gate!r}")
        cudnn_sm = _sm_range(e, "cudnn_sm", required=gate != "none")
        rows.append(
            SdpaRelease(
                torch=_spec(e, "torch") or "",
                cuda=_spec(e, "cuda"),
                bundled_cudnn=e.version("bundled_cudnn", optional=True),
                order=order,
                preferred_order=preferred,
                cudnn_gate=cast(CudnnGate, gate),
                opt_in_env=e.opt_str("opt_in_env"),
                opt_out_env=e.opt_str("opt_out_env"),
                inert_env=e.strs("inert_env"),
                prefer_cudnn_loaded=_spec(e, "prefer_cudnn_loaded"),
                prefer_majors=e.ints("prefer_majors"),
                prefer_minors=e.ints("prefer_minors"),
                flash_sm=cast(tuple[int, int], _sm_range(e, "flash_sm")),
                efficient_sm=cast(tuple[int, int], _sm_range(e, "efficient_sm")),
                cudnn_sm=cudnn_sm,
                cudnn_masks=e.bool_("cudnn_masks", default=False),
                flash_max_head_dim=e.int_("flash_max_head_dim", default=256),
                cudnn_max_head_dim=e.int_("cudnn_max_head_dim", default=128),
                cudnn_hd256_majors=e.ints("cudnn_hd256_majors"),
                cudnn_hd256=_spec(e, "cudnn_hd256"),
                cudnn_decode_off_majors=e.ints("cudnn_decode_off_majors"),
                cudnn_decode_off=_spec(e, "cudnn_decode_off"),
                cudnn_training=_spec(e, "cudnn_training"),
                flash_causal_equal_lengths=e.bool_("flash_causal_equal_lengths", default=False),
                source=source,
                verified=verified,
            )
        )
    return tuple(rows)
