"""Evidence about builds, compilers and kernel resources, kept apart from ``evidence.py`` for
size: shared memory a kernel asked for against the GPU's limit, header files a compiler could not
open (and which compiler said so), an architecture floor a build script states, the
``TORCH_CUDA_ARCH_LIST`` in use, the CUDA toolkit version a JIT or build reports, architectures
stated as a family ("SM 12.x", "arch // 10 == 10"), and head dims stated as a kernel's
configuration or an assertion. Pure functions of the normalised text; ``extract_facts`` calls
``read_build`` and merges what belongs to its own facts."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class BuildFacts:
    shared_memory: tuple[int, int] | None = None
    """(bytes a kernel asked for, the GPU's limit): Triton's "out of resource: shared memory"."""
    missing_headers: tuple[tuple[str, str], ...] = ()
    """(header, compiler) a compile could not open: ``cute/tensor.hpp``/``msvc``; the compiler
    from the wording (MSVC C1083, TinyCC's "include file … not found", gcc's, clang's)."""
    build_script: bool = False
    """The failure is raised by a package's build script (``setup.py`` run by pip)."""
    arch_list: tuple[int, ...] = ()
    """The architectures ``TORCH_CUDA_ARCH_LIST`` names in the message (``8.9+PTX`` -> 89)."""
    cuda_toolkit: str | None = None
    """The CUDA toolkit a build or JIT reports (``CUDA_VERSION: 12.8``, "detected CUDA version
    (11.5)")."""
    tool_floor: tuple[int, str] | None = None
    """(sm, CUDA release) a JIT states an architecture needs ("SM 12.x requires CUDA >= 12.9")."""
    family_only: int | None = None
    """The one architecture family (major) a kernel runs on ("only supported on SM100",
    "arch // 10 == 10"): 10 -> sm_100..sm_109."""
    head_dims: tuple[int, ...] = ()
    """Head dims a kernel's configuration implies (FlashInfer's ``NUM_MMA_D_QK=2`` is 2 × 16)."""
    head_allowed: tuple[int, ...] = ()
    """Head dims an assertion allows (``head_size == 128 || head_size == 256``)."""
    config_refused: bool = False
    """The kernel said the configuration those head dims imply is invalid."""
    no_kernel_for: tuple[str, str] | None = None
    """(op, device) Inductor found no kernel choice for ("NoValidChoicesError" lowering
    ``target: flex_attention`` on a ``FixedLayout('cpu', …)`` input)."""
    launcher_failed: str | None = None
    """The compiler (``cl``, ``tcc``, ``gcc``, ``clang``) whose run on Triton's launcher failed,
    its own output not shown."""
    tcc_failed: bool = False
    """TinyCC (bundled by triton-windows) failed compiling a launcher ``.c`` file, its own
    output not shown (``Command '[…tcc.exe', '…cuda_utils.c', …]' returned non-zero exit``)."""
    head_refused: tuple[int, ...] = ()
    """Head dims a kernel refuses by value ("head_size (100) is not supported", vLLM's
    "Unsupported head size: 32", "Head size 80 is not supported by PagedAttention")."""
    head_multiple: str | None = None
    """The multiple a head size must be ("Size per head is not a multiple of X", TensorRT-LLM)."""

    triton_cuda_unknown: str | None = None
    """The CUDA release Triton could not map to a PTX version ("Triton only supports CUDA 10.0
    or higher, but got CUDA version: 12.8"): a Triton older than that CUDA."""
    cuda_mentioned: tuple[str, ...] = ()
    """CUDA releases the text names in any role ("cuda 12.8", "CUDA used to build PyTorch :
    12.8", "CUDA Version: 12.8"): which toolkit is meant is not known, only that one is there."""
    cuda_floor: str | None = None
    """The CUDA toolkit release a build script states it needs, with no architecture
    (SageAttention's "CUDA 12.0 or higher is required to build the package", flash-attn's
    "only supported on CUDA 11.7 and above")."""
    fa_check_failed: bool = False
    """vLLM's ``assert is_fa_version_supported(…)`` failed: no FlashAttention version it ships
    runs on this GPU (FA2 needs compute capability 8.0, FA3 9.0)."""

    def family_range(self) -> tuple[int, int | None] | None:
        """The stated family as a range of architectures: 10 -> (100, 109); a failed
        FlashAttention version check: FA2's floor, sm_80 and newer."""
        fam = self.family_only
        if fam is None and self.fa_check_failed:
            return (80, None)
        return (fam * 10, fam * 10 + 9) if fam is not None else None

    def head_rule(self) -> str | None:
        """The head-dim rule an assertion or a refused configuration states."""
        if self.head_allowed:
            return "only " + ", ".join(str(h) for h in self.head_allowed)
        if self.config_refused:
            return f"with a kernel configuration (none for head dim {self.head_dims[0]})"
        if self.head_multiple:
            return f"that are a multiple of {self.head_multiple}"
        if self.head_refused:
            return f"its kernels were compiled for ({self.head_refused[0]} is not one)"
        return None

    def toolkit_refuses(self, have: str | None) -> int | None:
        """The architecture whose stated CUDA floor the toolkit ``have`` is below."""
        if self.tool_floor is None or not have:
            return None
        sm, floor = self.tool_floor
        below = tuple(map(int, have.split("."))) < tuple(map(int, floor.split(".")))
        return sm if below else None


_SHARED = re.compile(
    r"out of resource: (?:shared memory|triton_tem\w*),?\s*Required: (\d+),?\s*"
    r"Hardware limit(?:ation)?: ?(\d+)"
    # ptxas refusing the kernel itself, in hex: "uses too much shared data (0x24000 bytes, 0xc000
    # max)" when the entry function is an attention kernel's (another kernel's is not this)
    r"|Entry function '(?=[^'\n]*(?:attn|attention|flash|fmha|sdpa|triton_tem))[^'\n]+' uses too "
    r"much shared data \((0x[0-9a-fA-F]+|\d+) bytes, (0x[0-9a-fA-F]+|\d+) max\)",
    re.I,
)
_HEADERS: tuple[tuple[re.Pattern[str], str], ...] = (
    # C1083 in any language ("无法打开包括文件: “Python.h”"): the code and the quoted file are fixed
    (
        re.compile(r"fatal error C1083: [^\n:]{0,60}:\s*['\"“‘]([\w./\\-]+\.h(?:pp)?)['\"”’]"),
        "msvc",
    ),
    # TinyCC; the quotes are lost when the line is retyped ("include file Python.h not found")
    (re.compile(r"\binclude file '?([\w./\\-]+\.h)'? not found"), "tcc"),
    # gcc's wording in any language ("没有那个文件或目录"): the file is before the colon
    (re.compile(r"fatal error: ([\w./-]+\.h(?:pp)?): \S"), "gcc"),
    (re.compile(r"fatal error: '([\w./-]+\.h(?:pp)?)' file not found"), "clang"),
    (
        re.compile(
            r"(?:Cannot|can't|could not|unable to) (?:find|open|locate) (?:include file )?"
            r"['\"]?([\w./\\-]+\.h(?:pp)?)\b",
            re.I,
        ),
        "unknown",
    ),
)
_TCC_FAILED = re.compile(
    r"tcc(?:\.exe)?'?,\s*'[^'\n]*\.c'[^\n]*returned non-zero exit status", re.I
)
_LAUNCHER_FAILED = re.compile(
    r"CalledProcessError: Command:?\s*[^\n]*?\[?'[^'\n]*[\\/](cl|tcc|gcc|clang)(?:\.exe)?'"
    r"\s*,\s*'[^'\n]*[\\/](?:cuda_utils|main|__triton_launcher)\.c'",
    re.I,
)
"""A compiler Triton ran on its launcher (``cuda_utils.c``, ``main.c``) that failed, the command
shown without the compiler's own output (``CalledProcessError: Command '['…cl.EXE', '…
cuda_utils.c', …]``)."""
_BUILD_SCRIPT = re.compile(
    r"File \"[^\"]*setup\.py\", line \d+|<pip-setuptools-caller>|Getting requirements to build"
    r"|Preparing metadata \(setup\.py\)|python setup\.py"
)
_ARCH_LIST = re.compile(r"TORCH_CUDA_ARCH_LIST\s*[=:]\s*[\"']?([\d.;+ PTXptx]+)")
_TOOLKIT = re.compile(
    r"\bCUDA_VERSION\s*[:=]\s*(\d+\.\d+)"
    r"|detected CUDA version \((\d+\.\d+)\)",
)
_TOOL_FLOOR = re.compile(r"\bSM ?(\d{1,2})\.x requires CUDA\s*>=?\s*(\d+\.\d+)", re.I)
FAMILY_ONLY = re.compile(
    r"only (?:supported|available) on (?:[\w-]+ GPUs? )?\(?SM ?(\d{1,2})0\b"
    r"|\barch\s*//\s*10\s*==\s*(\d{1,2})\b",
    re.I,
)
_BUILD_CUDA_FLOOR = re.compile(
    r"(?:CUDA|nvcc)(?: toolkit)?(?: version)? (?P<a>\d+\.\d+)(?:\.\d+)?\+? (?:or (?:higher|newer|"
    r"above|later)|and (?:above|higher|newer)) (?:is )?required"
    r"|(?:is )?only supported (?:on|with) CUDA (?P<b>\d+\.\d+)(?:\.\d+)? and "
    r"(?:above|higher|newer)"
    r"|requires? (?:a )?CUDA(?: toolkit)?(?: version)? ?(?:>=|of at least|at least) ?"
    r"(?P<c>\d+\.\d+)",
    re.I,
)
_TRITON_CUDA = re.compile(
    r"Triton only supports? CUDA \d+\.\d+ or higher, but got CUDA version:?\s*(\d+\.\d+)"
)
_CUDA_MENTIONED = re.compile(
    r"\bcuda(?:[ _-]?(?:version|toolkit|used to build pytorch))?\s*[:=]?\s*v?(1\d\.\d)\b"
    r"|\+cu(1\d)(\d)\b",
    re.I,
)
_MMA_HEAD = re.compile(r"\bNUM_MMA_D_QK=(\d{1,2})\b")
_HEAD_ASSERT = re.compile(
    r"head_(?:size|dim)\s*==\s*(\d{2,3})(?:\s*\|\|\s*head_(?:size|dim)\s*==\s*\d{2,3})+"
)


_HEAD_REFUSED = re.compile(
    r"(?:Unsupported|Invalid) head[ _]?(?:size|dim(?:ension)?)s?\s*[:=]?\s*\(?(\d{2,4})\b"
    r"|head[ _]?(?:size|dim(?:ension)?)s?\s*[(:=]?\s*(\d{2,4})\)?,?\s*(?:is |are )?not supported",
    re.I,
)
_HEAD_LIST = re.compile(
    r"(?:Supported head[ _]?(?:sizes|dims|dimensions)(?: are)?\s*:?"
    r"|head[ _]?(?:dim|size)\w*\s+(?:should|must)\s+be\s+(?:in|one of)"
    # an assertion and its message ("assert head_dim in [64, 128]", "only support head_dim [64]")
    r"|assert\s+head[ _]?(?:dim|size)\w*\s+in|only\s+supports?\s+head[ _]?(?:dim|size)\w*)"
    r"\s*\[?((?:\d{2,4}(?:,\s*|\]|\b))+)",
    re.I,
)
_HEAD_MULTIPLE = re.compile(
    r"(?:size|dim(?:ension)?) (?:per |of (?:each|the) )head (?:is not|must be|should be) "
    r"a multiple of (\w+)",
    re.I,
)


_NO_CHOICES = re.compile(r"NoValidChoicesError|No choices to select")
_TARGET = re.compile(r"^\s*target:\s*([\w.]+)", re.M)
_LAYOUT_DEVICE = re.compile(r"Layout\('(cpu|cuda|xpu|mps)'|device\(type='(cpu|cuda|xpu|mps)'")


def _no_kernel_for(body: str) -> tuple[str, str] | None:
    if not _NO_CHOICES.search(body):
        return None
    target, device = _TARGET.search(body), _LAYOUT_DEVICE.search(body)
    if target is None or device is None:
        return None
    return target.group(1).split(".")[-1], device.group(1) or device.group(2)


def read_build(body: str) -> BuildFacts:
    """The facts above, from the normalised text."""
    sm = _SHARED.search(body)
    headers: dict[tuple[str, str], None] = {}
    for rx, compiler in _HEADERS:
        for m in rx.finditer(body):
            headers[(m.group(1).replace("\\", "/"), compiler)] = None
    arch: list[int] = []
    for m in _ARCH_LIST.finditer(body):
        for raw in re.findall(r"(\d+)\.(\d)", m.group(1)):
            value = int(raw[0]) * 10 + int(raw[1])
            if value not in arch:
                arch.append(value)
    tk = _TOOLKIT.search(body)
    floor = _TOOL_FLOOR.search(body)
    fam = FAMILY_ONLY.search(body)
    mma = [int(x) * 16 for x in _MMA_HEAD.findall(body)]
    allowed: list[int] = []
    if (ha := _HEAD_ASSERT.search(body)) is not None:
        allowed = [int(x) for x in re.findall(r"==\s*(\d{2,3})", ha.group(0))]
    for hl in _HEAD_LIST.finditer(body):
        allowed += [int(x) for x in re.findall(r"\d{2,4}", hl.group(1)) if int(x) not in allowed]
    refused = [int(m.group(1) or m.group(2)) for m in _HEAD_REFUSED.finditer(body)]
    mult = _HEAD_MULTIPLE.search(body)
    cf = None if floor else _BUILD_CUDA_FLOOR.search(body)
    mentioned: dict[str, None] = {}
    for m in _CUDA_MENTIONED.finditer(body):
        mentioned[m.group(1) or f"{m.group(2)}.{m.group(3)}"] = None
    tc = _TRITON_CUDA.search(body)
    return BuildFacts(
        triton_cuda_unknown=tc.group(1) if tc else None,
        cuda_mentioned=tuple(mentioned),
        cuda_floor=(cf.group("a") or cf.group("b") or cf.group("c")) if cf else None,
        shared_memory=(
            (int(sm.group(1) or sm.group(3), 0), int(sm.group(2) or sm.group(4), 0)) if sm else None
        ),
        missing_headers=tuple(headers),
        build_script=bool(_BUILD_SCRIPT.search(body)),
        arch_list=tuple(arch),
        cuda_toolkit=(tk.group(1) or tk.group(2)) if tk else None,
        tool_floor=(int(floor.group(1)) * 10, floor.group(2)) if floor else None,
        family_only=int(fam.group(1) or fam.group(2)) if fam else None,
        head_dims=tuple(dict.fromkeys(mma)),
        head_allowed=tuple(allowed),
        config_refused=bool(mma) and "Invalid configuration" in body,
        tcc_failed=bool(_TCC_FAILED.search(body)),
        launcher_failed=(lf.group(1).lower() if (lf := _LAUNCHER_FAILED.search(body)) else None),
        no_kernel_for=_no_kernel_for(body),
        fa_check_failed=bool(re.search(r"assert is_fa_version_supported\(", body)),
        head_refused=tuple(dict.fromkeys(refused)),
        head_multiple=mult.group(1) if mult else None,
    )
