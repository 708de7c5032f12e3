"""The evidence in a message, before any cause is guessed: ``extract_facts(text) -> TextFacts``.

The text may be one line, a traceback, a pip or uv log or a whole console paste. It is first
normalised (colour codes and progress bars removed, hard-wrapped lines joined, repeated lines
dropped), then read for the facts that decide attention-backend failures: packages and their
versions, torch's build, the Python tag and platform, the GPU and its architecture, dtypes and
head dims, a missing module or library, undefined symbols (demangled and attributed), the
compiler or JIT and its version, the framework knob in use, and the error classes raised.
Pure: no I/O besides the shipped GPU-name table.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import re
from dataclasses import dataclass, field

from attn_doctor.explain.demangle import demangle, symbol_owner, symbols_in
from attn_doctor.explain.evidence_build import FAMILY_ONLY, BuildFacts, read_build
from attn_doctor.explain.evidence_caller import CallerFacts, read_caller
from attn_doctor.explain.evidence_calls import CallFacts, read_calls, read_other_device
from attn_doctor.explain.evidence_more import (
    REQUIREMENTS,
    Advice,
    arch_numbers,
    more_summary,
    named_missing_modules,
    platforms,
    read_more,
)
from attn_doctor.explain.evidence_runtime import RuntimeFacts, read_runtime
from attn_doctor.explain.evidence_upstream import UpstreamFacts, read_upstream
from attn_doctor.explain.match import split_lines


@dataclass(frozen=True, kw_only=True)
class Symbol:
    """An undefined symbol: as written, demangled (None if not understood), and who defines it."""

    mangled: str
    name: str | None
    owner: str | None
    """``torch``, ``libstdc++``… (from the namespace), or None."""
    binary: str | None
    """The shared object that needed it (``flash_attn_2_cuda``), when the line names it."""


@dataclass(frozen=True, kw_only=True)
class TextFacts:
    """What a message says about the machine it came from. Empty/None: not in the message."""

    packages: tuple[tuple[str, str], ...] = ()
    """(distribution, version), first mention wins: torch, triton, flash-attn, xformers…"""
    torch_build: str | None = None
    """``cuda``, ``rocm``, ``xpu``, ``cpu`` (from ``+cuXYZ``/``+rocm``/``+xpu``/``+cpu``)."""
    torch_cuda: str | None = None
    """``12.8`` from ``+cu128``."""
    nightly: bool = False
    python: str | None = None
    """``3.11`` (from ``cp311`` or ``python3.11``)."""
    platforms: tuple[str, ...] = ()
    """``windows``, ``wsl``, ``colab``, ``conda``, ``comfyui-portable``, ``macos``, ``linux``."""
    gpus: tuple[str, ...] = ()
    """GPU names as written (``RTX 5090``, ``Tesla T4``)."""
    sms: tuple[int, ...] = ()
    """Architectures named or implied (``sm_120``, ``compute_89``, capability 8.6, a GPU name)."""
    dtypes: tuple[str, ...] = ()
    head_dims: tuple[int, ...] = ()
    missing_modules: tuple[str, ...] = ()
    missing_libraries: tuple[str, ...] = ()
    """Shared libraries that could not be loaded (``libcuda.so.1``, ``libcudart.so.12``)."""
    symbols: tuple[Symbol, ...] = ()
    tools_missing: tuple[str, ...] = ()
    """Compilers the message says are not there (``nvcc``)."""
    tools: tuple[tuple[str, str], ...] = ()
    """Compilers/JITs and the version the message shows (``nvcc``/``ptxas``/``triton``)."""
    tool_rejects_arch: tuple[tuple[str, int], ...] = ()
    """(tool, sm): a compiler said it does not know the architecture."""
    required_sm: tuple[int, int | None] | None = None
    """The GPU range the message itself states a kernel needs: (lowest, highest or None), from
    "compute capability > 7.5", "sm80-sm90", "SM>=80 and SM<=90", "is_sm80 || is_sm90",
    "Ampere GPUs or newer"."""
    refused_sms: tuple[int, ...] = ()
    """Architectures a backend says it does not support ("Unsupported CUDA architecture: sm120")."""
    required_exact: tuple[int, ...] = ()
    """When the message names the only architectures allowed ("is_sm80 || is_sm90")."""
    build_sms: tuple[int, ...] = ()
    """Architectures a build says it carries ("supports CUDA capabilities sm_50 sm_60 …")."""
    head_dim_rule: str | None = None
    """The head-dim limit the message states ("at most 256", "a multiple of 32")."""
    knobs: tuple[str, ...] = ()
    """Framework settings in the message that force a backend (``--use-sage-attention``)."""
    error_classes: tuple[str, ...] = ()
    missing_attrs: tuple[tuple[str, str], ...] = ()
    """(module, name) a module lacks ("module 'torch.version' has no attribute 'xpu'")."""
    arch_instructions: tuple[tuple[str, int], ...] = ()
    """(instruction family, target sm) ptxas refused (``wgmma`` on sm_120)."""
    torch_missing_kernels: tuple[str, ...] = ()
    """SDPA kernels torch says it was built without (``mem_efficient``, ``flash``, ``cudnn``)."""
    pip_name_mismatch: tuple[str, str, str] | None = None
    """(name asked for, name in the metadata, VCS URL): pip's "inconsistent name"."""
    advice: tuple[Advice, ...] = ()
    """A framework advising another backend ("Gemma-2 should use flash attention 2")."""
    pin_conflicts: tuple[tuple[str, str, str, str], ...] = ()
    """(dist, version, torch it pins, torch installed) from pip's resolver conflict lines."""
    uninstalled: tuple[str, ...] = ()  # distributions the log shows pip uninstalling
    features_refused: tuple[tuple[str, str], ...] = ()
    wheel_torch: tuple[tuple[str, str], ...] = ()
    """(distribution, torch X.Y) a backend wheel's name says it was built for."""
    extension_owners: tuple[str, ...] = ()
    """The packages whose compiled extensions the message names (``pytorch3d``,
    ``flash_attn_2_cuda``)."""
    notices: tuple[str, ...] = ()
    """Log lines at INFO or WARNING level saying the program goes on another way (a fallback,
    a default, an optional package not installed)."""
    availability_asserts: tuple[str, ...] = ()
    """An application's availability flag for an attention package asserted in the message
    (``assert FLASH_ATTN_2_AVAILABLE`` with an AssertionError): its import error was swallowed."""
    """(feature, backend as written): "`attn_mask` is not supported for flash-attn 2"."""
    none_called_in: tuple[tuple[str, str], ...] = ()
    """(framework, backend module) where a None left by a guarded import was called."""
    upstream: UpstreamFacts = field(default_factory=UpstreamFacts)
    """What upstream projects' own wordings in the message state (``evidence_upstream``)."""
    build: BuildFacts = field(default_factory=BuildFacts)
    """Builds, compilers and kernel resources (``evidence_build.BuildFacts``)."""
    caller: CallerFacts = field(default_factory=CallerFacts)
    """What a caller or the runtime says of the stack (``evidence_caller.CallerFacts``)."""
    runtime: RuntimeFacts = field(default_factory=RuntimeFacts)
    """What a runtime library says of one attention call (``evidence_runtime``)."""
    calls: CallFacts = field(default_factory=CallFacts)
    """Calls that do not fit the installed code (``evidence_calls``)."""
    other_device: str | None = None
    """A non-CUDA accelerator the message names (``npu``, ``xpu``, ``mps``)."""
    lines: tuple[str, ...] = ()
    """The normalised lines (unwrapped, without repeats)."""

    def version(self, dist: str) -> str | None:
        for name, ver in self.packages:
            if name == dist:
                return ver
        return None

    def tool(self, name: str) -> str | None:
        for tool, ver in self.tools:
            if tool == name:
                return ver
        return None

    def summary(self) -> list[tuple[str, str]]:
        """(fact, value) pairs for display, in a fixed order, only what the message showed."""
        out: list[tuple[str, str]] = []
        for name, ver in self.packages:
            out.append((f"package {name}", ver))
        if self.torch_build:
            cuda = f" (CUDA {self.torch_cuda})" if self.torch_cuda else ""
            out.append(
                ("torch build", f"{self.torch_build}{cuda}{' nightly' if self.nightly else ''}")
            )
        if self.python:
            out.append(("python", self.python))
        if self.platforms:
            out.append(("platform", ", ".join(self.platforms)))
        if self.gpus:
            out.append(("gpu", ", ".join(self.gpus)))
        if self.sms:
            out.append(("architecture", ", ".join(f"sm_{s}" for s in self.sms)))
        if self.dtypes:
            out.append(("dtype", ", ".join(self.dtypes)))
        if self.head_dims:
            out.append(("head dim", ", ".join(str(h) for h in self.head_dims)))
        for mod in self.missing_modules:
            out.append(("missing module", mod))
        for lib in self.missing_libraries:
            out.append(("missing library", lib))
        for sym in self.symbols:
            who = f" (defined by {sym.owner})" if sym.owner else ""
            where = f" needed by {sym.binary}" if sym.binary else ""
            out.append(("undefined symbol", f"{sym.name or sym.mangled}{who}{where}"))
        for tool, ver in self.tools:
            out.append((tool, ver))
        for tool in self.tools_missing:
            out.append(("missing tool", tool))
        for tool, sm in self.tool_rejects_arch:
            out.append((f"{tool} rejects", f"sm_{sm}"))
        if self.required_sm:
            lo, hi = self.required_sm
            out.append(("kernel needs", f"sm_{lo}" + (f"..sm_{hi}" if hi else " or newer")))
        if self.head_dim_rule:
            out.append(("head-dim rule", self.head_dim_rule))
        if self.upstream.dtypes_allowed:
            out.append(("kernel takes", ", ".join(self.upstream.dtypes_allowed)))
        if self.upstream.projects:
            out.append(("worded by", ", ".join(self.upstream.projects)))
        for knob in self.knobs:
            out.append(("framework setting", knob))
        if self.error_classes:
            out.append(("errors", ", ".join(self.error_classes)))
        return out + more_summary(self)


def _with_needs(caller: CallerFacts, needs: tuple[tuple[str, str], ...]) -> CallerFacts:
    """The caller's facts with the floors an upstream wording states (transformers' "you need
    flash_attn package version to be greater or equal than 2.1.0") added to its own."""
    if not needs:
        return caller
    known = {pkg for pkg, _ in caller.too_old}
    extra = tuple((pkg, floor) for pkg, floor in needs if pkg not in known)
    return dataclasses.replace(caller, too_old=caller.too_old + extra)


# --- normalising ------------------------------------------------------------------------

MAX_JOINED = 2000
"""A joined line stops growing here (a log of equal-width lines must not become one line)."""
MAX_FACT_CHARS = 1024 * 1024
"""Facts are read from the last 1 MiB of a longer text (its failure is at its end)."""

_SENTENCE_END = re.compile(r"[.:;!?)\]}>,]$|^\s*$")
_CONTINUES = re.compile(r"^\s*[a-z0-9_(`'\"]")
_CLAUSE = re.compile(r"^\s*(?:but|and|or|which|so|because|while|got|found|expected)\s")
_FRAME_HEADER = re.compile(r'^\s*File "[^"]*"')
"""A traceback frame's header: complete on its line (its source line follows, indented)."""
_TRACE_LINE = re.compile(
    r"^\s*(File \"|Traceback|at |\[|#|\d+:|[A-Z][A-Za-z]*(Error|Exception|Warning)\b"
    r"|(?:[Ee]rror|[Ww]arning|[Ff]atal|[Nn]ote)\s*:)"
)


def unwrap(lines: list[str]) -> list[str]:
    """Join hard-wrapped lines: a line that does not end a sentence, followed by one that
    continues it (lower case, a digit, a quote) or a terminal wrap (a line exactly as long as
    most lines, broken mid-word). Lines that start a new traceback frame or error are never
    joined, and a joined line stops growing at ``MAX_JOINED`` characters."""
    widths = collections.Counter(len(x) for x in lines if x)
    common = widths.most_common(1)[0][0] if len(lines) > 3 and widths else 0
    out: list[str] = []
    last_raw = ""
    for line in lines:
        if out and len(out[-1]) < MAX_JOINED and not _FRAME_HEADER.match(out[-1]):
            prev = out[-1]
            if (
                common >= 60
                and len(last_raw) == common
                and widths[common] >= 3  # two lines of one width can be chance
                and line
                and not line[0].isspace()
                and not _TRACE_LINE.match(line)
                and not _SENTENCE_END.search(last_raw)  # repeated log lines end their sentence
            ):
                out[-1] = prev + line  # a terminal wrap at a fixed width: rejoin without space
                last_raw = line
                continue
            if (
                len(prev.strip()) >= 30
                and (
                    not _SENTENCE_END.search(prev.rstrip())
                    # a comma, then a clause in words ("..., but got ..."): one sentence
                    or (prev.rstrip().endswith(",") and _CLAUSE.match(line) is not None)
                )
                and _CONTINUES.match(line)
                and not _TRACE_LINE.match(line)
            ):
                out[-1] = prev.rstrip() + " " + line.strip()
                last_raw = line
                continue
        out.append(line)
        last_raw = line
    return out


def normalise(text: str) -> list[str]:
    """Lines without colour codes or progress bars, unwrapped, each distinct line once."""
    seen: set[str] = set()
    out = []
    for line in unwrap(split_lines(text)):
        key = line.strip()
        if key and key in seen:
            continue
        seen.add(key)
        out.append(line)
    return out


# --- reading ----------------------------------------------------------------------------

_DISTS = {
    "torch": "torch",
    "pytorch": "torch",
    "triton": "triton",
    "pytorch-triton": "triton",
    "pytorch_triton": "triton",
    "flash-attn": "flash-attn",
    "flash_attn": "flash-attn",
    "flash-attn-3": "flash-attn-3",
    "flash_attn_3": "flash-attn-3",
    "flash-attn-4": "flash-attn-4",
    "xformers": "xformers",
    "transformers": "transformers",
    "diffusers": "diffusers",
    "vllm": "vllm",
    "sglang": "sglang",
    "sageattention": "sageattention",
    "flashinfer-python": "flashinfer-python",
    "flashinfer_python": "flashinfer-python",
    "flashinfer": "flashinfer-python",
    "kernels": "kernels",
    "unsloth": "unsloth",
    "nvidia-cutlass-dsl": "nvidia-cutlass-dsl",
    "nvidia_cutlass_dsl": "nvidia-cutlass-dsl",
    "accelerate": "accelerate",
    "peft": "peft",
    "bitsandbytes": "bitsandbytes",
}
_VER = r"(?P<ver>\d+\.\d+(?:\.\d+)?(?:(?:\.?post|\.?dev|rc|a|b)\d*)*(?:\+[\w.]+)?)"
_NAMES = "|".join(sorted((re.escape(n) for n in _DISTS), key=len, reverse=True))
_PKG_PATTERNS = [
    # wheel and sdist names, pip lines: flash_attn-2.7.4.post1+cu12torch2.6…whl, torch-2.7.1
    re.compile(rf"(?<![\w.-])(?P<name>{_NAMES})-{_VER}(?=[-.\s)'\",]|\.whl|\.tar|$)", re.I),
    # torch==2.6.0, 'triton>=3.3' is a requirement, not a version: only '==' and ' version '
    re.compile(rf"(?<![\w.-])(?P<name>{_NAMES})\s*==\s*{_VER}", re.I),
    re.compile(
        rf"(?<![\w.-])(?P<name>{_NAMES})(?:\.__version__)?\s*(?:version)?\s*[:=]\s*['\"]?{_VER}",
        re.I,
    ),
    re.compile(rf"(?<![\w.-])(?P<name>{_NAMES}) (?:version )?v?{_VER}(?=[\s,)]|$)", re.I),
    # prose: "The flash_attn version is 2.6.3."
    re.compile(rf"(?<![\w.-])(?P<name>{_NAMES}) version is v?{_VER}(?=[\s,).]|$)", re.I),
    re.compile(
        rf"(?:Requirement already satisfied|Successfully installed)[^\n]*?"
        rf"(?<![\w.-])(?P<name>{_NAMES})[- ]\(?{_VER}",
        re.I,
    ),
]
_FA_PROSE = re.compile(r"(?<![\w.-])Flash[- ]?Attention\s+v?(\d+\.\d+\.\d+(?:\.post\d+)?)\b", re.I)
"""flash-attn's release told in prose ("I have Flash Attention 2.7.3"); a full X.Y.Z, so the
generation ("FlashAttention 2") is not read as a version."""
_TORCH_LOCAL = re.compile(
    r"(?<![\w.])torch(?:==|-|\s+|:\s*|\s*version\s*[:=]?\s*|\.__version__\s*=\s*)['\"]?"
    r"(?P<ver>\d+\.\d+(?:\.\d+)?(?:\.dev\d+)?)\+(?P<local>cu\d+|rocm[\d.]+|xpu|cpu)",
    re.I,
)
_YOU_HAVE = re.compile(
    r"you have (?:torch |PyTorch )?(?P<ver>\d+\.\d+(?:\.\d+)?(?:\.dev\d+)?)"
    r"\+(?P<local>cu\d+|rocm[\d.]+|xpu|cpu)"
)
_ANY_LOCAL = re.compile(
    r"\b\d+\.\d+\.\d+(?:\.dev\d+)?\+(?P<local>rocm[\d.]+|xpu|cu12\d|cu11\d|cu13\d)\b"
)
_PYTAG = re.compile(r"\bcp3(\d{1,2})\b|python3\.(\d{1,2})\b|Python 3\.(\d{1,2})\b", re.I)
_SM = re.compile(
    r"\b(?:sm_|compute_)(\d{2,3})[af]?\b"
    r"|(?:compute|CUDA) capability (?:of )?(?:is )?\(?(\d{1,2})[.,]\s*(\d)\)?"
    r"|\bcapability\s*[=:]?\s*\(?(\d{1,2}),\s*(\d)\)"
    r"|\bsm(\d{2,3})\b"
    r"|\bCUDA capability sm_(\d{2,3})",
    re.I,
)
_DTYPE = re.compile(
    r"\b(?:torch\.)?(float16|bfloat16|float32|fp16|bf16|fp32|float8\w*|fp8)\b", re.I
)
_DTYPE_NORM = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32"}
_HEAD_DIM = re.compile(
    r"head[ _]?(?:dim(?:ension)?|size)s?\s*(?:=|:|of|is|>|must be|should be)?\s*"
    r"(?:\w+\s+)?(\d{2,4})\b"
    r"|headdim\s*[=:]?\s*(\d{2,4})|head_size=(\d{2,4})|hdim\s*[=:]?\s*(\d{2,4})",
    re.I,
)
_MISSING_MODULE = re.compile(
    r"No (?:module named|such module) ['\"`\u2018\u2019\u201c]?([\w.]+)|\bno (\w+) module found",
    re.I,
)
_REFUSED_ARCH = re.compile(
    r"Unsupported (?:CUDA |GPU )?architecture:? ['\"]?sm_?(\d{2,3})|not supported on sm_?(\d{2,3})"
    # a backend's table with no entry for the GPU (FlashInfer's "KeyError: 'sm_75'")
    r"|\bkey ?error:? ['\"]?sm_?(\d{2,3})\b",
    re.I,
)
_QUERY_SHAPE = re.compile(r"query\s*:\s*shape=\((?:\d+,\s*){3}(\d{2,4})\)")
_TOOL_MISSING = re.compile(
    r"Could not find nvcc|nvcc: (?:command )?not found|nvcc (?:was )?not found|Failed to find nvcc"
    r"|/nvcc: not found|Cannot find CUDA_HOME\b"
    r"|No such file or directory: '(?:[\w/]*/)?nvcc'",
    re.I,
)
_BUILD_SMS = re.compile(r"supports CUDA capabilities((?:\s+sm_\d{2,3})+)", re.I)
_HEAD_RULE = re.compile(
    r"(?:head[ _]?dim(?:ension)?|head[ _]size|headdim|hidden_dim)s?\b[^\n]{0,40}?"
    r"((?:at most|up to|less than|<=?|not being a multiple of"
    r"|(?:should|must) be (?:a )?multiple of)\s*\d+|(?:64|32), 128,? (?:and )?256)"
    r"|Only supports? head ?(?:size|dim(?:ension)?)s? ([\d, and]+)"
    r"|query\.shape\[-1\][^\n]*?>\s*(\d{2,4})",
    re.I,
)
_PTXAS_FAILED = re.compile(
    r"ptxas[^\n]*--gpu-name=sm_(\d{2,3})a?[^\n]*(?:returned non-zero exit status|failed)", re.I
)
_MISSING_LIB = re.compile(
    r"(?:(lib[\w+-]+\.so(?:\.[\d.]+)?): cannot open shared object file"
    r"|(?:Could not load library:?|Unable to load any of \{) ?['\"]?(lib[\w+-]+\.so(?:\.[\d.]+)?)"
    r"|libcuda\.so (?:cannot|not) (?:be )?found|(cannot find -l:?libcuda(?:\.so(?:\.1)?)?\b)"
    r"|(Failed to open libcuda\.so(?:\.1)?))",
    re.I,
)
_SYMBOL_LINE = re.compile(
    r"(?:([\w./\\-]+\.(?:so|pyd|dll)):\s*)?[Uu]ndefined symbol:?\s*"
    r"(_Z\w+|nccl\w+|cuda\w+|cudnn\w+|cu[A-Z]\w+"
    r"|(?:c10|at|torch)::[\w:]+(?:\([^)\n]*\))?)"  # also as demangled by the reporter
)
_NVCC = re.compile(
    r"Cuda compilation tools, release (\d+\.\d+)|\bnvcc:?\s*(?:version\s*)?V?(\d+\.\d+)", re.I
)
_TRITON_VER = re.compile(r"triton(?:==|-|\s+version\s*|\s+)(\d+\.\d+\.\d+)", re.I)
_PTXAS_REJECT = re.compile(
    r"ptxas[^\n]*?Value '(?:sm_)?(\d{2,3})a?' is not defined for option 'gpu-name'"
    r"|ptxas[^\n]*?does not support \.target sm_(\d{2,3})a?",
    re.I,
)
_LLVM_REJECT = re.compile(r"'sm_(\d{2,3})a?' is not a recognized processor for this target")
_NVCC_REJECT = re.compile(
    r"Unsupported gpu architecture 'compute_(\d{2,3})a?'",
    re.I,
)
_ERROR = re.compile(
    r"\b((?:[A-Z][a-z]+)+(?:Error|Exception)|(?:[A-Z][a-z]+)*Warning"
    r"|(?:[A-Z][A-Za-z]+)?TooOld(?:For[A-Z]\w+)?)\b(?=:|\s*$)"
)
_KNOB = re.compile(
    r"--use-(?:sage|flash|pytorch|split|quad)-attention|--use-sage-attention3?"
    r"|--attention-backend[ =]\S+|VLLM_ATTENTION_BACKEND=\S+"
    r"|attn_implementation\s*=\s*[\"']?[\w|/:@-]+|set_attention_backend\([^)]*\)"
    r"|DIFFUSERS_ATTN_BACKEND=\S+|use_flash_attention_2\s*=\s*True"
)


def _add(seq: list[object], value: object) -> None:
    if value not in seq:
        seq.append(value)


@functools.lru_cache(maxsize=8)
def _gpu_regex(gpu_names: tuple[tuple[str, int], ...]) -> re.Pattern[str]:
    """One pattern for all GPU names (group ``gN`` is entry N), so the text is scanned once."""
    # "GTX1070", "RTX_4090": a name's space is often left out or written otherwise
    alts = "|".join(f"(?P<g{i}>{p.replace(' ', '[ _-]?')})" for i, (p, _) in enumerate(gpu_names))
    # the name may follow a CJK character ("8卡V100"), which \w counts as a letter
    return re.compile(rf"(?<![A-Za-z0-9_])(?:NVIDIA |GeForce |Tesla |Quadro )*(?:{alts})", re.I)


def extract_facts(text: str, gpu_names: tuple[tuple[str, int], ...] = ()) -> TextFacts:
    """Read the facts out of ``text``. ``gpu_names``: (regex, sm) pairs naming GPUs (from
    ``wheels_index/arch_support.toml``; the engine passes them)."""
    if len(text) > MAX_FACT_CHARS:
        text = text[-MAX_FACT_CHARS:]
    lines = normalise(text)
    body = "\n".join(lines)
    pkgs: dict[str, str] = {}
    for pat in _PKG_PATTERNS:
        for m in pat.finditer(body):
            pkgs.setdefault(_DISTS[m.group("name").lower()], m.group("ver"))
    if fa := _FA_PROSE.search(body):
        pkgs.setdefault("flash-attn", fa.group(1))
    build = cuda = None
    nightly = False
    have = _YOU_HAVE.search(body)
    tl = have or _TORCH_LOCAL.search(body)
    local = tl.group("local").lower() if tl else None
    if tl:
        pkgs["torch"] = f"{tl.group('ver')}+{tl.group('local')}"
    else:
        for al in _ANY_LOCAL.finditer(body):
            start = body.rfind("\n", 0, al.start()) + 1
            context = body[start : al.start()]
            if not re.search(r"built for|requires|wheel|\.whl|flash|xformers|cxx11", context, re.I):
                local = al.group("local").lower()
                # A bare X.Y.Z+cuXYZ is torch's own version string unless another
                # torch-family package is named beside it.
                if not re.search(r"torchvision|torchaudio|vision|audio", context, re.I):
                    pkgs.setdefault("torch", al.group(0))
                break
    if local:
        if local.startswith("cu"):
            build, digits = "cuda", local[2:]
            cuda = f"{digits[:-1]}.{digits[-1]}"
        elif local.startswith("rocm"):
            build = "rocm"
        else:
            build = local
    torch_ver = pkgs.get("torch", "")
    if ".dev" in torch_ver or "nightly" in body.lower():
        nightly = True
    if build is None and re.search(r"Torch not compiled with CUDA enabled", body):
        build = "cpu"
    if build is None and re.search(r"\btorch\.xpu\b|intel_extension_for_pytorch|\bXPU\b", body):
        build = "xpu"
    if build is None and re.search(
        r"\bHIP error\b|\bROCm\b|\bhipErr|gfx\d{3,4}|transformers[\\/]hip[\\/]", body
    ):
        build = "rocm"

    py = None
    if (pm := _PYTAG.search(body)) is not None:
        py = "3." + next(g for g in pm.groups() if g)

    required: tuple[int, int | None] | None = None
    exact: tuple[int, ...] = ()
    scan = body
    for rx, kind in REQUIREMENTS:
        rm = rx.search(scan)
        if rm is None:
            continue
        if required is None:
            if kind == "cc":
                minor = int(rm.group(3) or 0)
                lo = int(rm.group(2)) * 10 + minor + (1 if rm.group(1) == ">" else 0)
                required = (lo, None)
            elif kind == "min":
                required = (int(rm.group(1)), None)
            elif kind == "cc_or_higher":
                required = (int(rm.group(1)) * 10 + int(rm.group(2)), None)
            elif kind == "hopper":
                required, exact = (90, 90), (90,)
            elif kind in {"range", "exact"}:
                found = arch_numbers(rm.group(0))
                required = (min(found), max(found))
                if kind == "exact":
                    exact = tuple(found)
            else:
                required = (80, None)
        scan = rx.sub(" ", scan)
    bf = read_build(body)
    if required is None and (required := bf.family_range()) is not None:
        scan = FAMILY_ONLY.sub(" ", scan)
    up = read_upstream(body)
    for span in up.spans:
        scan = scan.replace(span, " ")
    if required is None and up.required is not None:
        required, exact = up.required, up.exact
    build_sms: list[object] = []
    for bm in _BUILD_SMS.finditer(scan):
        for raw in re.findall(r"\d{2,3}", bm.group(1)):
            _add(build_sms, int(raw))
    scan = _BUILD_SMS.sub(" ", scan)
    sms: list[object] = []
    for m in _SM.finditer(scan):
        if m.group(2):
            _add(sms, int(m.group(2)) * 10 + int(m.group(3)))
        elif m.group(4):
            _add(sms, int(m.group(4)) * 10 + int(m.group(5)))
        else:
            raw = m.group(1) or m.group(6) or m.group(7)
            if raw:
                _add(sms, int(raw))
    for sm in up.gpu_sms:
        _add(sms, sm)
    gpus: list[object] = []
    if gpu_names:
        combined = _gpu_regex(gpu_names)
        named_in = body  # GPUs a refusal names as examples ("e.g., A100/H100") are not this one
        for span in up.spans:
            named_in = named_in.replace(span, " ")
        for gm in combined.finditer(named_in):
            _add(gpus, gm.group(0).strip())
            _add(sms, gpu_names[int(str(gm.lastgroup)[1:])][1])

    dtypes: list[object] = []
    for m in _DTYPE.finditer(body):
        _add(dtypes, _DTYPE_NORM.get(m.group(1).lower(), m.group(1).lower()))
    heads: list[object] = []
    for m in _HEAD_DIM.finditer(body):
        _add(heads, int(next(g for g in m.groups() if g)))
    for m in _QUERY_SHAPE.finditer(body):
        _add(heads, int(m.group(1)))
    heads += [h for h in (*bf.head_dims, *bf.head_refused, *up.head_dims) if h not in heads]

    missing = [m.group(1) or m.group(2) for m in _MISSING_MODULE.finditer(body)]
    missing += named_missing_modules(body)
    refused = [int(next(g for g in m.groups() if g)) for m in _REFUSED_ARCH.finditer(body)]
    libs: list[object] = []
    for m in _MISSING_LIB.finditer(body):
        name = m.group(1) or m.group(2) or ("libcuda.so" if m.group(0) else None)
        if name:
            _add(libs, "libcuda.so" if m.group(3) or m.group(4) else name)
    if re.search(
        r"libcuda\.so[^\n]*(?:not found|cannot)|cannot find -lcuda|CUDA is not linked properly"
        r"|Running `?ldconfig /usr/lib64-nvidia`? to link CUDA",
        body,
        re.I,
    ):
        _add(libs, "libcuda.so")

    symbols: list[Symbol] = []
    for m in _SYMBOL_LINE.finditer(body):
        binary = m.group(1)
        short = None
        if binary:
            short = re.split(r"[\\/]", binary)[-1].split(".")[0]
        for mangled in symbols_in(m.group(2)) or [m.group(2)]:
            name = demangle(mangled) if mangled.startswith("_Z") else mangled
            symbols.append(
                Symbol(
                    mangled=mangled,
                    name=name,
                    owner=symbol_owner(name) if name else None,
                    binary=short,
                )
            )

    tools: dict[str, str] = {}
    if (nm := _NVCC.search(body)) is not None:
        tools["nvcc"] = nm.group(1) or nm.group(2)
    if (tm := _TRITON_VER.search(body)) is not None:
        tools["triton"] = tm.group(1)
    elif "triton" in pkgs:
        tools["triton"] = pkgs["triton"]
    rejects: list[object] = []
    for m in (*_PTXAS_REJECT.finditer(body), *_PTXAS_FAILED.finditer(body)):
        tool = "triton" if re.search(r"triton", body, re.I) else "ptxas"
        sm_rejected = int(next(g for g in m.groups() if g))
        _add(rejects, (tool, sm_rejected))
        _add(sms, sm_rejected)
    head_rule = None
    if (hm := _HEAD_RULE.search(body)) is not None:
        rule = hm.group(1) or (f"only {hm.group(2)}" if hm.group(2) else f"at most {hm.group(3)}")
        head_rule = " ".join(rule.split())
    head_rule = head_rule or up.head_rule or bf.head_rule()
    if bf.cuda_toolkit:
        tools.setdefault("nvcc", bf.cuda_toolkit)
    if bf.tool_floor is not None:  # "SM 12.x requires CUDA >= 12.9" with an older toolkit
        _add(sms, bf.tool_floor[0])
        if (floor_sm := bf.toolkit_refuses(tools.get("nvcc"))) is not None:
            _add(rejects, ("nvcc", floor_sm))
    for m in _LLVM_REJECT.finditer(body):  # LLVM's NVPTX backend, as Triton bundles it
        _add(rejects, ("llvm", int(m.group(1))))
        _add(sms, int(m.group(1)))
    for m in _NVCC_REJECT.finditer(body):
        _add(rejects, ("nvcc", int(m.group(1))))
        _add(sms, int(m.group(1)))

    knobs: list[object] = []
    for m in _KNOB.finditer(body):
        _add(knobs, m.group(0).rstrip(",;)'\""))
    errors: list[object] = []
    for m in _ERROR.finditer(body):
        _add(errors, m.group(1))
    more = read_more(body)
    refused += [sm for sm in more.refused_families if sm not in refused]
    return TextFacts(
        packages=tuple(sorted(pkgs.items())),
        torch_build=build,
        torch_cuda=cuda,
        nightly=nightly,
        python=py,
        platforms=tuple(platforms(body)),
        gpus=tuple(str(g) for g in gpus),
        sms=tuple(dict.fromkeys([*(int(str(x)) for x in sms), *refused])),
        dtypes=tuple(dict.fromkeys([*(str(d) for d in dtypes), *up.dtypes_seen])),
        head_dims=tuple(int(str(h)) for h in heads),
        missing_modules=tuple(dict.fromkeys(missing)),
        missing_libraries=tuple(str(x) for x in libs),
        symbols=tuple({s.mangled: s for s in symbols}.values()),
        tools=tuple(sorted(tools.items())),
        tool_rejects_arch=tuple((str(t[0]), int(t[1])) for t in rejects if isinstance(t, tuple)),
        tools_missing=("nvcc",) if _TOOL_MISSING.search(body) else (),
        refused_sms=tuple(dict.fromkeys(refused)),
        required_sm=required,
        required_exact=exact,
        build_sms=tuple(int(str(x)) for x in build_sms),
        head_dim_rule=head_rule,
        knobs=tuple(str(k) for k in knobs),
        error_classes=tuple(str(e) for e in errors),
        missing_attrs=more.missing_attrs,
        arch_instructions=more.arch_instructions,
        torch_missing_kernels=more.torch_missing_kernels,
        pip_name_mismatch=more.pip_name_mismatch,
        advice=more.advice,
        none_called_in=more.none_called_in,
        pin_conflicts=more.pin_conflicts,
        uninstalled=more.uninstalled,
        features_refused=more.features_refused,
        availability_asserts=more.availability_asserts,
        notices=more.notices,
        wheel_torch=more.wheel_torch,
        extension_owners=more.extension_owners,
        caller=_with_needs(read_caller(body), up.needs),
        runtime=read_runtime(body),
        calls=read_calls(body),
        other_device=read_other_device(body),
        build=bf,
        upstream=up,
        lines=tuple(lines),
    )
