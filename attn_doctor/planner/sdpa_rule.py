"""Which kernel torch SDPA's default dispatch runs, per torch release, from complete inputs.

:func:`sdpa_dispatch` is a pure function of (the per-release table, :class:`SdpaInputs`). Every
input left ``None`` is replaced by a stated default, and the answer lists each assumption, so a
caller that knows the model's dtype and head dim (the runtime) gets an exact answer and a caller
that does not (``check`` without a model) gets one that says what it assumed. A caller that can
ask torch itself (``torch._fused_sdp_choice`` with the real shapes) should: that answer wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from attn_doctor.sdpa_data import SdpaKernel, SdpaRelease
from attn_doctor.versions import parse_version

Dtype = Literal["float16", "bfloat16", "float32"]
Mask = Literal["causal", "none", "mask"]
"""``causal``: ``is_causal=True``; ``none``: neither; ``mask``: an explicit ``attn_mask``."""

KERNEL_NAMES: dict[SdpaKernel, str] = {
    "flash": "sdpa_flash",
    "efficient": "sdpa_mem_efficient",
    "cudnn": "sdpa_cudnn",
    "math": "sdpa_math",
}
_TRUE = frozenset({"1", "true", "yes", "on", "y"})


@dataclass(frozen=True, kw_only=True)
class SdpaInputs:
    """What torch's dispatch looks at on an NVIDIA GPU (None: not known, a default is assumed)."""

    torch_version: str | None
    torch_cuda: str | None = None
    """CUDA torch was built with (``12.8``)."""
    sm: int | None
    """The GPU's compute capability as one integer (``9.0`` -> 90)."""
    dtype: Dtype | None = None
    head_dim: int | None = None
    mask: Mask | None = None
    decode: bool | None = None
    """Lq == 1 against a longer key (generation with a KV cache)."""
    training: bool | None = None
    """Gradients or dropout (torch's backward and dropout gates)."""
    cudnn_loaded: str | None = None
    """The cuDNN torch LOADED (``torch.backends.cudnn.version()``); the pip package's version is
    a stand-in that a library earlier on LD_LIBRARY_PATH can contradict."""
    cudnn_from: str = "the cuDNN torch loaded"
    env: Mapping[str, str] = field(default_factory=dict)
    """The opt-in/opt-out variables as set (absent: unset)."""
    absent: tuple[SdpaKernel, ...] = ()
    """Kernels this build of torch lacks (torch's Windows wheels had no flash before 2.5)."""


@dataclass(frozen=True, kw_only=True)
class SdpaAnswer:
    """The kernel, why, what was assumed, and the table row it comes from."""

    kernel: str
    """``sdpa_flash``, ``sdpa_mem_efficient``, ``sdpa_cudnn`` or ``sdpa_math``."""
    reason: str
    assumed: tuple[str, ...]
    source: str
    verified: bool

    def describe(self) -> str:
        """One line: the reason, then the assumptions."""
        text = self.reason
        if self.assumed:
            text += "; assumed " + ", ".join(self.assumed)
        if not self.verified:
            text += " (unverified)"
        return text


def _holds(spec: str | None, version: Version | None) -> bool:
    return spec is not None and version is not None and SpecifierSet(spec).contains(version, True)


def _env_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() in _TRUE


def release_row(
    table: tuple[SdpaRelease, ...], torch_version: str | None, torch_cuda: str | None
) -> tuple[SdpaRelease, list[str]]:
    """The table row for this torch (and CUDA build), and what choosing it assumed."""
    assumed: list[str] = []
    tv = parse_version(torch_version, public=True)
    if tv is not None:
        tv = Version(tv.base_version)  # a nightly 2.15.0.dev… dispatches as its release line
    rows = [r for r in table if tv is not None and SpecifierSet(r.torch).contains(tv, True)]
    if not rows:
        if tv is None:
            assumed.append(f"torch as the newest release read ({table[-1].torch})")
            rows = [r for r in table if r.torch == table[-1].torch]
        elif tv < Version("2.2"):
            assumed.append(f"torch {tv} as {table[0].torch} (older releases not read)")
            rows = [table[0]]
        else:
            assumed.append(f"torch {tv} as {table[-1].torch} (newer than the reading)")
            rows = [r for r in table if r.torch == table[-1].torch]
    cv = parse_version(torch_cuda, public=True)
    for row in rows:
        if row.cuda is None or (cv is not None and SpecifierSet(row.cuda).contains(cv, True)):
            return row, assumed
    if cv is None:
        assumed.append(f"the package index's default build (CUDA {rows[0].cuda})")
    else:
        assumed.append(f"this CUDA {torch_cuda} build as the one read (CUDA {rows[0].cuda})")
    return rows[0], assumed


def _fill(inputs: SdpaInputs, row: SdpaRelease, assumed: list[str]) -> SdpaInputs:
    """Replace each unknown input by its default, noting it."""
    out = inputs
    if inputs.dtype is None and (inputs.sm or 0) < 80:
        out = replace(out, dtype="float16")
        assumed.append("fp16 (bf16 needs sm80)")
    elif inputs.dtype is None:
        out = replace(out, dtype="bfloat16")
        assumed.append("bf16")
    if inputs.head_dim is None:
        out = replace(out, head_dim=128)
        assumed.append("head dim 128")
    if inputs.mask is None:
        out = replace(out, mask="causal")
        assumed.append("a causal mask without attn_mask")
    if inputs.decode is None:
        out = replace(out, decode=False)
        assumed.append("prefill (Lq == Lk)")
    if inputs.training is None:
        out = replace(out, training=False)
        assumed.append("inference without dropout")
    if inputs.cudnn_loaded is not None and inputs.cudnn_from != "the cuDNN torch loaded":
        assumed.append(f"{inputs.cudnn_from} ({inputs.cudnn_loaded}) is the cuDNN torch loads")
    if inputs.cudnn_loaded is None and row.cudnn_gate != "none":
        if row.bundled_cudnn is not None:
            out = replace(out, cudnn_loaded=row.bundled_cudnn, cudnn_from="the bundled cuDNN")
            assumed.append(f"the bundled cuDNN {row.bundled_cudnn} is the one loaded")
        else:
            assumed.append("cuDNN version not known")
    return out


def _cudnn_fits(row: SdpaRelease, i: SdpaInputs) -> str | None:
    """Why cuDNN attention refuses these inputs (None: it accepts them)."""
    sm = i.sm or 0
    major = sm // 10
    cv = parse_version(i.cudnn_loaded, public=True)
    if row.cudnn_sm is None:
        return "no cuDNN attention in this release"
    if not row.cudnn_sm[0] <= sm <= row.cudnn_sm[1]:
        return f"cuDNN attention needs sm{row.cudnn_sm[0]}-sm{row.cudnn_sm[1]}"
    if i.dtype == "float32":
        return "cuDNN attention needs fp16/bf16"
    head_dim = i.head_dim or 0
    cap = row.cudnn_max_head_dim
    if major in row.cudnn_hd256_majors and _holds(row.cudnn_hd256, cv):
        cap = 256
    if head_dim % 8 or head_dim > cap:
        return f"cuDNN attention needs a head dim that is a multiple of 8 and <= {cap}"
    if i.mask == "mask" and not row.cudnn_masks:
        return "cuDNN attention takes no attn_mask in this release"
    if i.decode and major in row.cudnn_decode_off_majors and _holds(row.cudnn_decode_off, cv):
        return f"cuDNN {i.cudnn_loaded} turns decode (Lq == 1) off on {major}.x GPUs"
    if i.training and row.cudnn_training is not None and not _holds(row.cudnn_training, cv):
        return f"cuDNN attention's backward needs cuDNN {row.cudnn_training}"
    return None


def _flash_fits(row: SdpaRelease, i: SdpaInputs) -> str | None:
    sm = i.sm or 0
    head_dim = i.head_dim or 0
    if not row.flash_sm[0] <= sm <= row.flash_sm[1]:
        return f"flash needs sm{row.flash_sm[0]}-sm{row.flash_sm[1]}"
    if i.dtype == "float32":
        return "flash needs fp16/bf16"
    if head_dim > row.flash_max_head_dim:
        return f"flash needs head dim <= {row.flash_max_head_dim}"
    if i.mask == "mask":
        return "flash takes no attn_mask"
    if i.training and sm in (86, 89) and head_dim > 192:
        return "flash refuses training with head dim > 192 on sm86/sm89"
    if row.flash_causal_equal_lengths and i.mask == "causal" and i.decode:
        return "flash needs Lq == Lk when causal in this release"
    return None


def _efficient_fits(row: SdpaRelease, i: SdpaInputs) -> str | None:
    sm = i.sm or 0
    if not row.efficient_sm[0] <= sm <= row.efficient_sm[1]:
        return f"mem-efficient needs sm{row.efficient_sm[0]}-sm{row.efficient_sm[1]}"
    if i.dtype == "bfloat16" and sm < 80:
        return "mem-efficient takes bf16 only from sm80"
    return None


def _prefers_cudnn(row: SdpaRelease, i: SdpaInputs) -> tuple[bool, str]:
    """Whether ``preferred_order`` applies, and why (in words)."""
    sm = i.sm or 0
    major, minor = divmod(sm, 10)
    match row.cudnn_gate:
        case "none" | "order":
            return False, "the release's fixed order"
        case "opt_in":
            name = row.opt_in_env or ""
            if i.env.get(name, "").strip() == "1":
                return True, f"{name}=1 puts cuDNN first"
            return False, f"cuDNN only with {name}=1 (not set)"
        case "by_gpu_major":
            if row.prefer_majors and major >= row.prefer_majors[0]:
                return True, f"cuDNN first on compute capability >= {row.prefer_majors[0]}.0"
            return False, f"cuDNN after flash below compute capability {row.prefer_majors[0]}.0"
        case "lazy":
            name = row.opt_out_env or ""
            if _env_true(i.env.get(name)):
                return False, f"{name} is set: cuDNN is not preferred"
            cv = parse_version(i.cudnn_loaded, public=True)
            if cv is None:
                return False, "the loaded cuDNN is not known: assumed not preferred"
            if not _holds(row.prefer_cudnn_loaded, cv):
                return False, (
                    f"{i.cudnn_from} {i.cudnn_loaded} fails torch's test "
                    f"(cuDNN {row.prefer_cudnn_loaded}): flash keeps first place"
                )
            if major not in row.prefer_majors or (
                row.prefer_minors and minor not in row.prefer_minors
            ):
                return False, f"cuDNN is preferred only on {_gpus(row)}"
            return True, (
                f"on the first SDPA call torch puts cuDNN first ({i.cudnn_from} "
                f"{i.cudnn_loaded} {row.prefer_cudnn_loaded}, {major}.{minor} GPU)"
            )


def _gpus(row: SdpaRelease) -> str:
    majors = "/".join(str(m) for m in row.prefer_majors)
    if row.prefer_minors:
        return f"compute capability {majors}.x with minor " + " or ".join(
            str(m) for m in row.prefer_minors
        )
    return f"compute capability {majors}.x"


def sdpa_dispatch(table: tuple[SdpaRelease, ...], inputs: SdpaInputs) -> SdpaAnswer:
    """The kernel torch's default SDPA dispatch runs on an NVIDIA GPU for these inputs (pure).

    ``table``: ``Rules.sdpa_releases``. Walks the release row's order (its preferred order when
    the row's cuDNN preference fires) and returns the first kernel whose constraints hold.
    """
    row, assumed = release_row(table, inputs.torch_version, inputs.torch_cuda)
    if inputs.sm is None:
        return SdpaAnswer(
            kernel="sdpa_math",
            reason="the GPU's compute capability is not known",
            assumed=tuple(assumed),
            source=row.source,
            verified=False,
        )
    i = _fill(inputs, row, assumed)
    preferred, why = _prefers_cudnn(row, i)
    order = row.preferred_order if preferred else row.order
    refused: list[str] = []
    for kernel in order:
        if kernel in i.absent:
            refused.append(f"this torch build has no {kernel} kernel")
            continue
        match kernel:
            case "flash":
                no = _flash_fits(row, i)
            case "efficient":
                no = _efficient_fits(row, i)
            case "cudnn":
                no = _cudnn_fits(row, i)
            case "math":
                no = None
        if no is None:
            reason = f"torch's dispatch rules for torch {row.torch}: {why}"
            if refused:
                reason += "; " + "; ".join(refused)
            for name in row.inert_env:
                if name in i.env:
                    reason += f"; {name} has no effect in this build"
            return SdpaAnswer(
                kernel=KERNEL_NAMES[kernel],
                reason=reason,
                assumed=tuple(assumed),
                source=row.source,
                verified=row.verified,
            )
        refused.append(no)
    raise AssertionError("math always fits")  # pragma: no cover - every order holds math
