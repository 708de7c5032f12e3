"""Failure classes of the toolchain and the platform: a compiler or JIT older than the GPU,
a torch older than the GPU, the driver library not found, a Hub kernel without a build."""

from __future__ import annotations

import re

from packaging.version import Version

from attn_doctor.explain.answer import (
    ClassAnswer,
    backends_in,
    body_of,
    line_of,
    mm,
    sm_name,
    version_of,
)
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.knowledge import ArchRecord, Knowledge

_TOOL_NAMES = {
    "triton": "Triton",
    "llvm": "Triton's bundled LLVM (NVPTX backend)",
    "nvcc": "nvcc (CUDA toolkit)",
    "ptxas": "ptxas (CUDA toolkit)",
}


def _tool_fix(tool: str, arch: ArchRecord, first: str | None) -> tuple[str, ...]:
    nvcc = arch.first_release("nvcc")
    if tool == "triton":
        out = []
        torch_first = arch.first_release("torch")
        if torch_first:
            out.append(
                f"pip install --upgrade 'torch>={torch_first}'   # a {arch.torch_cuda or ''} "
                f"build; torch pins its Triton, and torch {torch_first} brings one that "
                f"knows sm_{arch.sm}"
            )
        if first:
            out.append(f"pip install --upgrade 'triton>={first}'")
        if nvcc:
            out.append(
                f"export TRITON_PTXAS_PATH=<CUDA {nvcc} or newer>/bin/ptxas   # Triton then "
                "assembles with that toolkit's ptxas"
            )
        return tuple(out)
    need = first or nvcc  # a floor the message states is above the table's first release
    return (
        f"install CUDA toolkit {need} or newer and point CUDA_HOME at it "
        f"(nvcc --version must say release {need} or later)",
    )


def _older(have: str | None, first: str | None) -> bool | None:
    """Whether ``have`` is older than ``first`` (None: unknown)."""
    h, f = version_of(have), version_of(first)
    return None if h is None or f is None else h < f


def compiler_too_old_for_arch(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """nvcc, ptxas or Triton older than the GPU architecture, or refusing it outright.

    A compiler that says it does not know the architecture is the evidence itself, whatever
    version the table names; a Triton version below the table's first release, in a message
    where Triton failed to compile, is the other way in."""
    pairs: list[tuple[str, int, bool]] = [(t, sm, True) for t, sm in f.tool_rejects_arch]
    triton = f.tool("triton")
    if (
        triton
        and not pairs
        and re.search(r"ptxas|PTXAS|CompilationError|triton[^\n]*(?:error|fail)", body_of(f), re.I)
    ):
        pairs += [("triton", sm, False) for sm in f.sms]
    for tool, sm, rejected in pairs:
        arch = know.arch(sm)
        if arch is None:
            continue
        column = "triton" if tool in {"triton", "llvm"} else "nvcc"
        first = arch.first_release(column)
        stated = column == "nvcc" and f.build.tool_floor is not None and f.build.tool_floor[0] == sm
        if stated and f.build.tool_floor is not None:  # the JIT states its own floor: it decides
            first = f.build.tool_floor[1]
        have = triton if column == "triton" else f.tool("nvcc")
        older = _older(have, first)
        if not rejected and not older:
            continue  # no refusal, and the version is new enough (or unknown): not this class
        name = _TOOL_NAMES.get(tool, tool)
        have_txt = f"{name} {have}" if have else name
        what = "Triton" if column == "triton" else "CUDA toolkit"
        if first and older is not False:
            verified = (
                " (as the message says)"
                if stated
                else ("" if column in arch.verified else " (table entry unverified)")
            )
            known = f"The first {what} release that does is {first}{verified}."
        elif first:
            known = (
                f"The table names {what} {first} as the first that does, yet this one "
                "refuses it: its bundled ptxas is older; use a newer toolkit's ptxas."
            )
        else:
            known = f"No {what} release known to this table knows it yet."
        return [
            ClassAnswer(
                class_id="compiler-too-old-for-arch",
                title=f"{name} does not know {sm_name(know, sm)}",
                cause=(
                    f"{have_txt} does not know sm_{sm} ({arch.name}): it cannot generate code "
                    f"for this GPU. {known}"
                ),
                fix=_tool_fix(column, arch, first),
                checks=(f"nvcc_too_old_for_arch:{sm}",) if column == "nvcc" else (),
                evidence=((f"{tool} version", have or "not shown"), ("architecture", f"sm_{sm}")),
                source=f"wheels_index/arch_support.toml sm_{sm}: {arch.source}",
                line=line_of(f, rf"sm_{sm}|compute_{sm}|ptxas|gpu-name") or line_of(f, "error"),
            )
        ]
    return []


def triton_too_old_for_cuda(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """Triton could not map the CUDA release to a PTX version: its table predates that CUDA,
    so the Triton is older than the toolkit (and, usually, than the GPU that needs it)."""
    cuda = f.build.triton_cuda_unknown
    if cuda is None:
        return []
    newest = [sm for sm in f.sms if (a := know.arch(sm)) is not None and a.first_release("triton")]
    first = None
    if newest:
        arch = know.arch(max(newest))
        first = arch.first_release("triton") if arch is not None else None
    have = f.tool("triton")
    return [
        ClassAnswer(
            class_id="compiler-too-old-for-arch",
            title=f"Triton{' ' + have if have else ''} predates CUDA {cuda}",
            cause=(
                f"Triton maps the CUDA release to a PTX version from a table in its release; "
                f"CUDA {cuda} is not in it, so it reports the CUDA as too old while it is too "
                f"new for this Triton{' ' + have if have else ''}."
                + (f" The first Triton that knows sm_{max(newest)} is {first}." if first else "")
            ),
            fix=(
                f"pip install --upgrade 'triton>={first}'"
                if first
                else "pip install --upgrade triton   # the release your torch pins, or newer",
                "or upgrade torch: each torch release pins the Triton it was built with",
            ),
            evidence=(("CUDA", cuda), ("triton", have or "not shown")),
            source="triton python/triton/backends/nvidia/compiler.py (ptx_get_version: 'Triton "
            "only support CUDA 10.0 or higher, but got CUDA version: …' for a CUDA its table does "
            "not list); wheels_index/arch_support.toml for the first Triton per architecture",
            line=line_of(f, r"Triton only support"),
        )
    ]


def jit_arch_check_misfires(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A JIT's own GPU check refuses a GPU it supports (FlashInfer's "requires GPUs with sm75 or
    higher" on an RTX 5090): with a CUDA older than the JIT needs for that architecture family,
    it found no target to build for, and its message blames the GPU."""
    up = f.upstream
    if up.required is None or up.required[1] is not None:
        return []
    lo = up.required[0]
    for floor in know.jit_cuda_floors:
        if floor.project not in up.projects:
            continue
        sms = [sm for sm in f.sms if sm >= lo and sm // 10 == floor.family]
        have = [c for c in f.build.cuda_mentioned if _older(c, floor.cuda)]
        if not sms or not have:
            continue
        sm = sms[0]
        return [
            ClassAnswer(
                class_id="compiler-too-old-for-arch",
                title=f"{floor.project}'s JIT needs CUDA {floor.cuda} for {sm_name(know, sm)}",
                cause=(
                    f"{floor.project} builds its kernels for the GPU with the CUDA toolkit, and "
                    f"for sm_{floor.family}x it needs CUDA {floor.cuda} or newer; with CUDA "
                    f"{have[0]} it found no architecture to build for, so its check says the GPU "
                    f"is older than sm_{lo}, though this GPU (sm_{sm}) is not."
                ),
                fix=(
                    f"install CUDA toolkit {floor.cuda} or newer and point CUDA_HOME at it",
                    f"or use {floor.project}'s prebuilt kernels for this GPU (its cubin / "
                    "jit-cache packages), or another attention backend",
                ),
                evidence=(("GPU", f"sm_{sm}"), ("CUDA", have[0]), ("needs", floor.cuda)),
                source=floor.source,
                line=line_of(f, rf"sm_?{lo}\b") or line_of(f, r"requires"),
            )
        ]
    return []


def build_needs_newer_cuda(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """A package's build script refuses the CUDA toolkit it found: it states its own floor."""
    floor = f.build.cuda_floor
    if floor is None:  # an architecture's own floor is compiler_too_old_for_arch's
        return []
    have = f.tool("nvcc")
    if have and (version_of(have) or Version("0")) >= Version(floor):
        return []  # the toolkit shown meets the floor: something else refused
    backend = next(iter(backends_in(f)), None)
    who = backend or "the package"
    return [
        ClassAnswer(
            class_id="compiler-too-old-for-arch",
            title=f"{who}'s build needs CUDA {floor} or newer; the toolkit it found is older",
            cause=(
                f"{who}'s build script requires CUDA toolkit {floor} or newer (its kernels use "
                "instructions or headers older toolkits lack) and refused the nvcc it found"
                + (f" (CUDA {have})." if have else ".")
                + " torch's own CUDA does not count: the build compiles with the nvcc that "
                "CUDA_HOME (or PATH) points at."
            ),
            fix=(
                f"install CUDA toolkit {floor} or newer and point CUDA_HOME at it "
                f"(nvcc --version must say release {floor} or later), then build again",
                f"or install a prebuilt wheel instead of building: attn-doctor install "
                f"{backend or '<backend>'}",
            ),
            checks=(f"nvcc_below:{floor}|nvcc_missing",),
            evidence=(("needs CUDA", floor), ("nvcc", have or "not shown")),
            source="the build script's own check (the message states the floor)",
            line=line_of(
                f, rf"{re.escape(floor)}\S* (?:or|and) |CUDA\S* ?\D{{0,12}}{re.escape(floor)}"
            ),
            before_phrases=False,  # a recorded wording of one backend's build says more
        )
    ]


_KERNEL_IMAGE = (
    r"no kernel image|not compatible with the current PyTorch installation"
    r"|CUDA capability sm_\d+ is not compatible|invalid device function"
    r"|not supported by this (?:PyTorch|torch)"
)


def torch_too_old_for_gpu(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A torch (or its CUDA variant) older than the GPU's architecture."""
    if not re.search(_KERNEL_IMAGE, body_of(f), re.I) or f.torch_build in {"rocm", "xpu", "cpu"}:
        return []
    torch = f.version("torch")
    for sm in sorted(f.sms, reverse=True):
        arch = know.arch(sm)
        if arch is None or arch.first_release("torch") is None:
            continue
        first = arch.first_release("torch") or ""
        old_torch = torch is not None and (version_of(torch) or Version("0")) < Version(first)
        need_cuda = arch.torch_cuda
        old_cuda = (
            f.torch_cuda is not None
            and need_cuda is not None
            and float(f.torch_cuda) < float(need_cuda[2:-1] + "." + need_cuda[-1])
        )
        if not (old_torch or old_cuda):
            continue
        what = f"torch {torch}" if torch else "this torch"
        return [
            ClassAnswer(
                class_id="torch-too-old-for-gpu",
                title=f"torch too old for {sm_name(know, sm)}",
                cause=(
                    f"{what} carries no code for sm_{sm} ({arch.name}); the first torch whose "
                    f"wheels do is {first}, built for {need_cuda} or newer"
                    + ("" if "torch" in arch.verified else " (table entry unverified)")
                    + "."
                ),
                fix=(
                    f"pip install --upgrade 'torch>={first}'   # the {need_cuda} (or newer) build",
                ),
                checks=("torch_cuda_too_old_for_gpu",),
                evidence=(
                    ("torch", torch or "not shown"),
                    ("torch CUDA", f.torch_cuda or "not shown"),
                    ("architecture", f"sm_{sm}"),
                ),
                source=f"wheels_index/arch_support.toml sm_{sm}: {arch.source}",
                line=line_of(f, _KERNEL_IMAGE),
            )
        ]
    return []


def libcuda_not_found(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """``libcuda.so`` (the driver's library) not found: WSL, Colab, containers; or Triton's
    search for it failing because the system has no ``/sbin/ldconfig`` (NixOS)."""
    no_ldconfig = re.search(r"No such file or directory:? ['\"]?/sbin/ldconfig", body_of(f))
    if "libcuda.so" not in " ".join(f.missing_libraries) and not no_ldconfig:
        return []
    if no_ldconfig:
        cause = (
            "Triton (under SageAttention, FlexAttention, torch.compile and other Triton "
            "kernels) finds the driver's libcuda.so by running /sbin/ldconfig -p, unless "
            "TRITON_LIBCUDA_PATH names its directory; this system has no /sbin/ldconfig "
            "(NixOS and some minimal images), so the search itself fails"
        )
        fix: tuple[str, ...] = (
            "export TRITON_LIBCUDA_PATH=<the directory holding libcuda.so.1>   # NixOS: "
            "/run/opengl-driver/lib",
        )
    elif "wsl" in f.platforms:
        cause = (
            "on WSL the NVIDIA driver's libcuda.so lives in /usr/lib/wsl/lib, which is not "
            "on the library path of this process (Triton and CUDA JITs link against it)"
        )
        fix = (
            "export LD_LIBRARY_PATH=/usr/lib/wsl/lib:$LD_LIBRARY_PATH",
            "sudo ldconfig   # after adding /usr/lib/wsl/lib to /etc/ld.so.conf.d/",
        )
    elif "colab" in f.platforms:
        cause = (
            "the Colab runtime has no GPU attached, so there is no driver library "
            "(libcuda.so) to load"
        )
        fix = ("Runtime > Change runtime type > a GPU accelerator, then restart the session",)
    else:
        cause = (
            "the NVIDIA driver's libcuda.so cannot be found: no driver in this machine or "
            "container (a container needs --gpus all), or it is not on the linker path "
            "(Triton links against it with `-lcuda`)"
        )
        fix = (
            "nvidia-smi   # must list the GPU; in a container: docker run --gpus all …",
            "sudo ldconfig   # so the driver's library directory is indexed",
        )
    return [
        ClassAnswer(
            class_id="libcuda-not-found",
            title="libcuda.so (the NVIDIA driver library) not found",
            cause=cause,
            fix=fix,
            checks=("driver_missing",) if "wsl" not in f.platforms and not no_ldconfig else (),
            evidence=(
                ("missing", "/sbin/ldconfig" if no_ldconfig else "libcuda.so"),
                ("platform", ", ".join(f.platforms) or "not shown"),
            ),
            source="NVIDIA CUDA on WSL user guide (libcuda in /usr/lib/wsl/lib); "
            "triton-lang/triton "
            "python/triton/backends/nvidia/driver.py (libcuda_dirs)",
            line=line_of(f, r"libcuda|-lcuda|ldconfig"),
        )
    ]


_ACCELERATORS = {
    "cu": "CUDA",
    "rocm": "ROCm",
    "cann": "Ascend NPU (CANN)",
    "xpu": "Intel XPU",
    "cpu": "the CPU",
    "metal": "Apple Metal",
}
"""The accelerator a ``kernels`` build variant names (``cu128``, ``cann81``, ``cpu``)."""


def hub_kernel_no_variant(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """A Hub kernel (the ``kernels`` package) with no build variant for this torch/CUDA."""
    line = line_of(
        f,
        r"Cannot find a build variant for this system|No kernel module found at"
        r"|does not have (?:one of )?build",
    )
    if not line:
        return []
    repo = re.search(r"in ([\w.-]+/[\w.-]+)", line) or re.search(
        r"models--([\w.-]+)--([\w.-]+)", line
    )
    name = "/".join(g for g in repo.groups() if g) if repo else "<repo>"
    wanted = f.runtime.hub_variants
    specific = [v for v in wanted if v[0]]
    cuda = True
    if specific:
        torch_mm, accel, cpu, osname = specific[0]
        family = re.sub(r"\d+$", "", accel)
        need = f"torch {torch_mm} on {_ACCELERATORS.get(family, accel)} ({accel}, {cpu}-{osname})"
        cuda = family in {"cu", "cuda"}
        if not cuda:
            need += (
                "; no build for this accelerator at all is the usual reason (Hub attention "
                "kernels are mostly built for CUDA)"
            )
    else:
        torch = f.version("torch")
        need = (f"torch {mm(torch)}" if torch else "this torch") + (
            f" with CUDA {f.torch_cuda}" if f.torch_cuda else ""
        )
    return [
        ClassAnswer(
            class_id="hub-kernel-no-variant",
            title="Hub kernel has no build for this torch",
            cause=(
                f"the Hub kernel {name} has no build variant for {need}: a variant must match "
                "torch's major.minor and C++ ABI (or be a stable-ABI build no newer than torch), "
                "the CUDA major, the CPU and the OS."
            ),
            fix=(
                f"kernels variants {name}   # the builds it has; "
                "install a torch one of them targets",
                "or use the flash package itself (attn-doctor install flash_attn_2)"
                if cuda
                else 'or attn_implementation="sdpa" (torch\'s own attention runs on this '
                "accelerator; the Hub kernel cannot)",
            ),
            evidence=(
                ("kernel", name),
                *(("variant wanted", "-".join(x for x in v if x)) for v in wanted[:3]),
            ),
            source="wheels_index/hub_kernels.toml (kernels variants.py rules); huggingface/kernels "
            "0.19.1 kernels/_internals/resolver.py",
            line=line,
        )
    ]


_CUDNN_SDPA = (
    r"cuDNN Frontend error|mha_graph|_scaled_dot_product_cudnn_attention|cudnn_attention"
    r"|CUDNN_STATUS_\w+"
)


def cudnn_sdpa_refused(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """torch's cuDNN attention kernel (one of SDPA's) refusing or failing these inputs."""
    line = line_of(f, _CUDNN_SDPA)
    if not line or not re.search(
        r"scaled_dot_product|SDPA|sdpa|mha_graph|cudnn_attention|cuDNN Frontend", body_of(f)
    ):
        return []
    record = know.backend("sdpa_cudnn")
    need = re.search(r"cudnn version below (\d+(?:\.\d+)*)", body_of(f), re.I)
    limit = record.max_head_dim if record is not None else None
    big = [h for h in f.head_dims if limit and h > limit]
    cause = "torch's cuDNN attention kernel (the SDPA backend it tries first on recent GPUs) "
    if need:
        cause += f"refuses these inputs with this cuDNN: it needs cuDNN {need.group(1)} or newer."
    elif big:
        cause += f"refuses head dim {max(big)} (its limit is {limit}, from its record)."
    else:
        cause += "failed on these inputs (shape, mask or head dim it does not handle)."
    fix = [
        "torch.backends.cuda.enable_cudnn_sdp(False)   # SDPA then uses its flash or "
        "memory-efficient kernel"
    ]
    if need:
        fix.insert(
            0,
            "pip install --upgrade 'nvidia-cudnn-cu<cuda_major>'   # or a torch build "
            "that bundles a newer cuDNN",
        )
    return [
        ClassAnswer(
            class_id="cudnn-sdpa-refused",
            title="torch's cuDNN attention kernel refused these inputs",
            cause=cause,
            fix=tuple(fix),
            evidence=(
                ("kernel", "cuDNN SDPA"),
                *((("needs cuDNN", need.group(1)),) if need else ()),
            ),
            source="wheels_index/backends.toml sdpa_cudnn: "
            + (record.source if record is not None else "pytorch sdp_utils.cpp"),
            line=line,
        )
    ]


def flashinfer_jit_needs_nvcc(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """FlashInfer compiles its kernels at first use (JIT) and needs nvcc, which is absent."""
    if "nvcc" not in f.tools_missing or not re.search(r"flashinfer", body_of(f), re.I):
        return []
    return [
        ClassAnswer(
            class_id="flashinfer-jit-needs-nvcc",
            title="FlashInfer JIT-compiles its kernels and cannot find nvcc",
            cause=(
                "FlashInfer builds the kernels it has no prebuilt binary for at first use, with "
                "the CUDA toolkit's nvcc; this machine (or container) has no nvcc on PATH or "
                "under CUDA_HOME."
            ),
            fix=(
                "install the CUDA toolkit matching torch's CUDA (<torch_cuda>) and set "
                "CUDA_HOME (nvcc must be at $CUDA_HOME/bin/nvcc)",
                "or, with vLLM: VLLM_USE_FLASHINFER_SAMPLER=0 and --attention-backend "
                "FLASH_ATTN (no FlashInfer JIT at all)",
            ),
            checks=("nvcc_missing",),
            evidence=(("missing tool", "nvcc"), ("package", "flashinfer")),
            source="flashinfer-ai/flashinfer flashinfer/jit/cpp_ext.py (nvcc from CUDA_HOME or "
            "PATH); vllm-project/vllm vllm/v1/sample/ops/topk_topp_sampler.py",
            line=line_of(f, r"nvcc"),
        )
    ]


_TRITON_TYPE_ATTR = re.compile(
    r"type object '(CompiledKernel|JITFunction|Autotuner|Heuristics|KernelInterface|"
    r"CudaDriver|HIPDriver|Config)' has no attribute '(\w+)'"
)
"""A Triton class a caller reaches into lacking an attribute the caller expects (torch Inductor's
``CompiledKernel.launch_enter_hook``)."""


def _torch_triton_pin(f: TextFacts, know: Knowledge) -> str:
    """The Triton specifier the message's torch release pins (``==3.4.0``), or ``""``."""
    torch = f.version("torch")
    pin = know.triton.pin_for(torch) if know.triton is not None and torch else None
    return pin.triton if pin is not None else ""


def _triton_fix(f: TextFacts, know: Knowledge, inductor: bool) -> tuple[str, ...]:
    if not inductor:
        return (
            "# install the Triton release the calling package pins (its requirements or "
            "changelog name it), or a release of that package written for this Triton",
        )
    if spec := _torch_triton_pin(f, know):
        return (f"pip install --force-reinstall 'triton{spec}'   # the Triton this torch pins",)
    return ("pip show torch   # its Requires-Dist names the Triton it pins; install that release",)


def triton_api_missing(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """The caller (torch's Inductor, a backend's Triton kernels, DeepSpeed's sparse attention)
    uses a name the installed Triton does not have: Triton is another release than the caller
    was made for (``triton.kernel`` went with Triton 1.0; Inductor's hooks move between
    releases)."""
    missing = [f"{mod}.{name}" for mod, name in f.missing_attrs if mod.split(".")[0] == "triton"]
    if m := _TRITON_TYPE_ATTR.search(body_of(f)):
        missing.append(f"{m.group(1)}.{m.group(2)}")
    if not missing:
        return []
    inductor = bool(re.search(r"torch\._inductor|Inductor|torch\.compile|TORCHDYNAMO", body_of(f)))
    caller = "torch's Inductor (torch.compile)" if inductor else "the calling code"
    have = f.version("triton")
    return [
        ClassAnswer(
            class_id="triton-version-mismatch",
            title=f"the installed Triton has no {missing[0]}: another release than "
            + ("torch" if inductor else "the caller")
            + " was made for",
            cause=(
                f"{caller} uses {missing[0]}, which the installed Triton"
                f"{' ' + have if have else ''} does not have: Triton's Python API changes "
                "between releases, and the caller was written for another one."
            ),
            fix=_triton_fix(f, know, inductor),
            evidence=(("missing", missing[0]), ("triton", have or "not shown")),
            source="Python's AttributeError/ImportError on a name of the installed triton"
            + (
                "; the Triton torch pins read from wheels_index/triton.toml"
                if inductor and _torch_triton_pin(f, know)
                else ""
            ),
            line=line_of(f, re.escape(missing[0].split(".")[-1])),
        )
    ]


def driver_api_symbol_missing(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """A compiled extension calls a CUDA driver API function (``cuGreenCtxStreamCreate``) that
    this driver's libcuda does not export: the driver is older than the CUDA the extension was
    built with."""
    sym = next((s for s in f.symbols if s.owner == "libcuda" and s.name), None)
    if sym is None or sym.name is None:
        return []
    name: str = sym.name
    who = sym.binary or "a compiled extension"
    return [
        ClassAnswer(
            class_id="cuda-driver-insufficient",
            title=f"the NVIDIA driver is older than {who} needs ({name} missing)",
            cause=(
                f"{who} calls {name}, a CUDA driver API function that this driver's libcuda "
                "does not export: the extension was built with a newer CUDA than the installed "
                "driver supports (in a container, the host's driver is the one that counts)."
            ),
            fix=(
                "nvidia-smi   # 'CUDA Version' is the newest CUDA this driver runs",
                "update the NVIDIA driver, or install a build of the extension for the CUDA the "
                "driver supports",
            ),
            evidence=(
                ("undefined symbol", name),
                ("defined by", "the NVIDIA driver (libcuda)"),
            ),
            source="the CUDA driver API (libcuda.so exports the cu* functions of the driver's "
            "release; newer ones, such as the green-context API of CUDA 12.4+, are absent from "
            "older drivers) — the release of each function not tabled here",
            line=line_of(f, re.escape(name)),
        )
    ]
