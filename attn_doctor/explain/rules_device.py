"""GPU refusals said in words rather than numbers: a kernel "unsupported on this GPU
generation", an FP8 kernel on a GPU without FP8, and flash-attn's composable_kernel (CK) ROCm
build on a Radeon (RDNA) GPU, which the CK backend of the 2.x releases does not target."""

from __future__ import annotations

import re

from attn_doctor.backends import BACKEND_NAMES
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


def backend_on_other_device(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A CUDA-only backend used with an Intel XPU or Apple torch, or a build that looks for
    nvcc under a ROCm torch."""
    if f.torch_build == "rocm" and "nvcc" in f.tools_missing:
        named = backends_in(f)
        who = named[0] if named else "the package"
        return [
            ClassAnswer(
                class_id="backend-needs-other-device",
                title=f"{who}'s build looked for nvcc under a ROCm torch",
                cause=(
                    f"this torch is a ROCm build ({f.version('torch') or 'rocm'}), and {who}'s "
                    "build looked for the CUDA compiler: the source it builds has only a CUDA "
                    "path (older flash-attn releases; the ROCm path needs ROCm 6.0 or newer). "
                    "nvcc would not help: the GPU is AMD."
                ),
                fix=(
                    "build flash-attn's ROCm path: a current release with ROCm >= 6.0 "
                    "(composable_kernel for gfx90a/gfx942, or FLASH_ATTENTION_TRITON_AMD_ENABLE="
                    "TRUE for other AMD GPUs)",
                    'or attn_implementation="sdpa"   # torch SDPA runs on ROCm',
                ),
                evidence=(("torch build", "rocm"), ("missing tool", "nvcc")),
                source="wheels_index/flash_attn_3_4.toml [rocm_source_build] (unverified)",
                line=line_of(f, r"nvcc"),
            )
        ]
    if (on := f.runtime.tensor_device) is not None and has_error(f):
        for name in backends_in(f):
            b = know.backend(name)
            if b is None or on in b.vendors or (on == "mps" and "apple" in b.vendors):
                continue
            return [_tensors_on(f, name, b.vendors, on)]
        if not backends_in(f) and re.search(
            r"must be (?:on (?:a )?CUDA|a CUDA tensor)", body_of(f), re.I
        ):
            # an attention kernel's own device check, its package not named
            return [_tensors_on(f, "the attention kernel", ("NVIDIA",), on)]
    device = "intel" if f.torch_build == "xpu" else "apple" if "macos" in f.platforms else None
    if device is None or not has_error(f):
        return []
    for name in backends_in(f):
        b = know.backend(name)
        if b is None or device in b.vendors:
            continue
        what = "an Intel XPU torch" if device == "intel" else "Apple (MPS) torch"
        return [
            ClassAnswer(
                class_id="backend-needs-other-device",
                title=f"{name} has no build for {what}",
                cause=(
                    f"{name} runs on {', '.join(b.vendors)} GPUs only (its record); the message "
                    f"shows {what}"
                    + (f" ({f.version('torch')})" if f.version("torch") else "")
                    + "."
                ),
                fix=('attn_implementation="sdpa"   # torch SDPA runs on this device',),
                evidence=(("torch build", f.torch_build or device), ("backend", name)),
                source=f"wheels_index/backends.toml {name}: vendors",
                line=line_of(f, r"xpu|mps|" + name.split("_")[0]),
            )
        ]
    return []


def _tensors_on(f: TextFacts, name: str, vendors: tuple[str, ...], on: str) -> ClassAnswer:
    """The kernel's own device check says its tensors were on ``on`` (the CPU): the model or
    the inputs were not moved to the GPU, or torch sees no GPU at all."""
    cpu_torch = f.torch_build == "cpu"
    return ClassAnswer(
        class_id="backend-needs-other-device",
        title=f"{name} got tensors on the {on.upper()}: its kernels run on GPUs only",
        cause=(
            (
                f"{name}'s kernels run on {', '.join(vendors)} GPUs (its record), and the call "
                if name in BACKEND_NAMES
                else f"{name} runs on {', '.join(vendors)} GPUs only (its own check), and it "
            )
            + f"received tensors on the {on.upper()}"
            + (
                ": this torch is a CPU-only build, so nothing can be on a GPU."
                if cpu_torch
                else ": either torch sees no GPU here (a CPU-only torch, no driver) or the "
                "model and its inputs were not moved to the GPU."
            )
        ),
        fix=(
            'python -c "import torch; print(torch.__version__, torch.cuda.is_available())"',
            "# +cpu or False: install torch's CUDA build; True: model.to('cuda') (and the "
            "inputs), or choose attention that runs on the CPU (sdpa)",
        ),
        checks=("torch_cpu_only|no_nvidia_gpu",),
        evidence=(("tensors on", on), ("backend", name)),
        source=f"wheels_index/backends.toml {name}: vendors; the kernel's device check",
        line=line_of(f, r"device=|must be (?:on (?:a )?CUDA|a CUDA tensor)"),
    )


def kernel_compiled_out_for_arch(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """A kernel with no device code for the architecture it runs as (ggml's NO_DEVICE_CODE
    trap). When that architecture is older than the GPU the message shows, or missing from the
    build's list, or nvcc's default 52 with no GPU named, the build lacks the GPU (the driver
    runs the nearest older code): the arch list. When the build has the GPU's own arch, the
    kernel is compiled out there on purpose (it uses instructions the GPU lacks: tensor-core MMA
    for ggml's flash-attention kernels), so the GPU is outside its range."""
    ndc = f.runtime.no_device_code
    if ndc is None:
        return []
    kernel, sm, built = ndc
    gpu = max(f.sms) if f.sms else None
    default_only = built in ((), (52,)) and sm <= 52  # nvcc's default target, nothing chosen
    if (
        (gpu is not None and sm < gpu)
        or (built and sm not in built)
        or (gpu is None and default_only)
    ):
        return [_build_lacks_gpu(f, kernel, sm, built, gpu)]
    flash = "flash_attn" in kernel or "fattn" in body_of(f)
    return [
        ClassAnswer(
            class_id="gpu-outside-backend-range",
            title=f"{kernel} has no code for sm_{sm}",
            cause=(
                f"the kernel {kernel} is compiled out for sm_{sm} even in a build for that arch: "
                "its code needs instructions this GPU lacks, so this GPU is outside the "
                "kernel's range"
                + (
                    " (ggml's CUDA flash-attention kernels need tensor cores: Volta or newer, "
                    "the MMA ones Turing or Ampere)"
                    if flash
                    else ""
                )
                + "."
            ),
            fix=(
                (
                    "turn flash attention off for this GPU (llama.cpp: --flash-attn off / -fa "
                    "off; ollama: OLLAMA_FLASH_ATTENTION=0; koboldcpp: no --flashattention)"
                )
                if flash
                else "run this kernel on a newer GPU, or disable the feature that uses it",
                "or update llama.cpp: later releases route older GPUs to the tile/vector kernels "
                "(which release does so for each GPU is unverified)",
            ),
            checks=(f"gpu_sm_below:{sm + 1}",),
            evidence=(("kernel", kernel), ("gpu", f"sm_{sm}")),
            source=(
                "ggml-org/llama.cpp ggml/src/ggml-cuda/common.cuh (no_device_code: 'CUDA kernel "
                "%s has no device code compatible with CUDA arch %d. ggml-cuda.cu was compiled "
                "for: %s', then __trap()) — the arch gates of the fattn kernels not re-read"
            ),
            line=line_of(f, r"no device code"),
        )
    ]


def _build_lacks_gpu(
    f: TextFacts, kernel: str, sm: int, built: tuple[int, ...], gpu: int | None
) -> ClassAnswer:
    target = f"sm_{gpu}" if gpu else "this GPU's architecture"
    return ClassAnswer(
        class_id="cuda-no-kernel-image",
        title=f"this build has no code for {target}",
        cause=(
            f"{kernel} ran as CUDA arch {sm * 10} because the build carries no native code for "
            f"{target}"
            + (f" (it was compiled for {', '.join(str(b * 10) for b in built)})" if built else "")
            + ": CMAKE_CUDA_ARCHITECTURES was left at nvcc's default (52) or a list without this "
            "GPU, so the driver runs the nearest older code, where the kernel is empty."
        ),
        fix=(
            "rebuild with this GPU's architecture: cmake -B build -DGGML_CUDA=ON "
            f"-DCMAKE_CUDA_ARCHITECTURES={gpu or 'native'}   # llama-cpp-python: "
            'CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=native" pip install '
            "--force-reinstall --no-cache-dir llama-cpp-python",
        ),
        evidence=(
            ("kernel", kernel),
            ("runs as", f"arch {sm * 10}"),
            *((("gpu", f"sm_{gpu}"),) if gpu else ()),
        ),
        source=(
            "ggml-org/llama.cpp ggml/src/ggml-cuda/common.cuh (no_device_code: 'CUDA kernel %s "
            "has no device code compatible with CUDA arch %d. ggml-cuda.cu was compiled for: "
            "%s', then __trap())"
        ),
        line=line_of(f, r"has no device code"),
    )
