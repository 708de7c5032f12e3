"""GPU refusals said in words rather than numbers: a kernel "unsupported on this GPU
generation", an FP8 kernel on a GPU without FP8, and flash-attn's composable_kernel (CK) ROCm
build on a Radeon (RDNA) GPU, which the CK backend of the 2.x releases does not target."""

from __future__ import annotations

import re

from attn_doctor.explain.answer import ClassAnswer, backends_in, body_of, has_error, line_of
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.knowledge import Knowledge

_GENERATION = re.compile(
    r"(?:unsupported|not supported|not available) on this (?:GPU|device)"
    r"(?: generation| architecture| type)?"
    r"|(?P<gpu>\bgfx\w+|\bsm_?\d{2,3}\w?|this GPU|your GPU) does not support (?P<what>FP8|FP4|bf16|"
    r"bfloat16|tensor cores?)\b"
    r"|requires (?P<what2>FP8|FP4) support",
    re.I,
)
"""A kernel refusing the GPU it runs on in words: "implementation='triton' is unsupported on
this GPU generation" (AlphaFold 3), "requires FP8 support, but gfx1201 does not support FP8"
(SpargeAttn's ROCm port)."""

_OWN_ADVICE = re.compile(r"\buse (?P<other>[\w.=/'\"-]+) instead\b", re.I)
"""The refusing message's own suggestion ("use spas_sage_attn_meansim_cuda instead")."""

_IMPLEMENTATION = re.compile(r"(?:implementation|backend|kernel)\s*=\s*'?\"?(?P<name>\w+)", re.I)


def gpu_generation_refused(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """The kernel says, without an architecture number, that this GPU is not one it runs on:
    the GPU's generation is outside the kernel's range (no install changes that)."""
    body = body_of(f)
    m = _GENERATION.search(body)
    if m is None or not has_error(f):
        return []
    line = line_of(f, _GENERATION.pattern)
    what = m.group("what") or m.group("what2")
    gpu = (
        m.group("gpu")
        if m.group("gpu") and m.group("gpu").lower().startswith(("gfx", "sm"))
        else ""
    )
    named = backends_in(f)
    impl = _IMPLEMENTATION.search(line)
    who = named[0] if named else f"the {impl.group('name')} kernel" if impl else "the kernel"
    advice = _OWN_ADVICE.search(line)
    fix: list[str] = []
    if advice:
        fix.append(f"use {advice.group('other')} instead, as the message says")
    fix.append(
        "pick the backend or kernel setting made for this GPU (the framework's other attention "
        "implementation, or torch SDPA), or run on a GPU of the generation the kernel needs"
    )
    needs = f" ({what} in hardware)" if what else ""
    return [
        ClassAnswer(
            class_id="gpu-outside-backend-range",
            title=f"{who} does not run on this GPU{' (' + gpu + ')' if gpu else ''}",
            cause=(
                f"{who} needs a GPU generation{needs} this one is not; the message says so "
                "itself. No package install changes the GPU's features: another kernel or "
                "backend is the way on this GPU."
            ),
            fix=tuple(fix),
            evidence=(
                ("refusal", m.group(0)),
                *((("gpu", gpu),) if gpu else ()),
            ),
            source="the message itself (the kernel's own check of the GPU)",
            line=line,
        )
    ]


_CK_BUILD = re.compile(r"flash_attn_ck|csrc/composable_kernel|\bfmha_(?:fwd|bwd)\.hpp", re.I)
_BUILD_FAILED = re.compile(
    r"^\s*FAILED:|fatal error|\berror:|fails? to build|failed to build|installation fails"
    r"|Failed building wheel",
    re.I | re.M,
)
_RDNA = re.compile(r"gfx1[0-2]\d\w*")


def flash_attn_ck_build_on_rdna(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """flash-attn's ROCm composable_kernel (CK) build failing for a Radeon (RDNA, gfx10xx to
    gfx12xx) GPU: the CK backend of the 2.x releases targets the Instinct GPUs (MI200, MI300);
    Radeon GPUs take the Triton backend."""
    body = body_of(f)
    if not _CK_BUILD.search(body) or not _BUILD_FAILED.search(body):
        return []
    targets = list(f.runtime.amd_targets) + re.findall(r"--offload-arch=(gfx\w+)", body)
    rdna = next((t for t in targets if _RDNA.fullmatch(t)), None)
    if rdna is None:
        return []
    return [
        ClassAnswer(
            class_id="gpu-outside-backend-range",
            title=f"flash-attn's composable_kernel backend is not built for {rdna} (RDNA)",
            cause=(
                f"flash-attn's ROCm build uses the composable_kernel (CK) backend by default, and "
                f"that backend targets the Instinct GPUs (MI200/MI300: gfx90a, gfx942) in the 2.x "
                f"releases; {rdna} is a Radeon (RDNA) GPU, so the CK kernels do not build for it. "
                "RDNA 3/4 support was added to CK on flash-attention's main branch in 2026 "
                "(#2400); the release that ships it is unverified."
            ),
            fix=(
                "FLASH_ATTENTION_TRITON_AMD_ENABLE=TRUE pip install flash-attn "
                "--no-build-isolation   # the Triton backend, which runs on RDNA",
                'or attn_implementation="sdpa"   # torch SDPA runs on ROCm',
            ),
            evidence=(("gpu", rdna), ("backend", "flash-attn composable_kernel (CK)")),
            source=(
                "Dao-AILab/flash-attention README.md@v2.8.3 ('FlashAttention-2 ROCm CK backend "
                "currently supports: MI200 or MI300 GPUs'; the Triton backend 'supports AMD's "
                "CDNA (MI200, MI300) and RDNA GPUs'); RDNA 3/4 for CK in #2400 (README on main)"
            ),
            line=line_of(f, r"FAILED:|fatal error|fails? to build|installation fails"),
        )
    ]


_MFMA = ("gfx908", "gfx90a", "gfx940", "gfx941", "gfx942", "gfx950")
"""AMD targets with MFMA (XDL) instructions: CDNA Instinct GPUs (MI100 and newer)."""


def ck_xdl_kernel_on_gpu_without_mfma(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """composable_kernel's XDL device ops (ROCm flash-attention's kernels) run only on GPUs with
    MFMA instructions; on an MI50/MI60 (gfx906) or a Radeon (gfx10xx/11xx) they refuse every
    problem, whatever the build flags."""
    op = f.runtime.ck_xdl_refused
    lacking = [t for t in f.runtime.amd_targets if t not in _MFMA]
    if op is None or not lacking:
        return []
    gfx = lacking[0]
    return [
        ClassAnswer(
            class_id="gpu-outside-backend-range",
            title=f"composable_kernel's XDL attention kernels do not run on {gfx}",
            cause=(
                f"{op.split('<')[0]} is a composable_kernel XDL (MFMA) kernel, the kind ROCm "
                f"flash-attention is built from; {gfx} has no MFMA instructions, so the kernel "
                "refuses every problem there. Only CDNA Instinct GPUs (MI100/gfx908 and newer: "
                "gfx90a, gfx942) run it."
            ),
            fix=(
                "run flash attention on an MI100/MI200/MI300-class GPU, or use torch SDPA "
                "(its math/memory-efficient paths) on this one",
            ),
            evidence=(("kernel", op[:60]), ("gpu", gfx)),
            source=(
                "ROCm/composable_kernel (XDL device ops check ck::is_xdl_supported(): gfx908, "
                "gfx90a, gfx94x, gfx950) — unverified: not re-read"
            ),
            line=line_of(f, r"does not support this problem"),
        )
    ]
