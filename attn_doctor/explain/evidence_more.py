"""More evidence read from a normalised message, kept apart from ``evidence.py`` for size:
attributes a module lacks, arch-specific instructions compiled for the wrong target, SDPA
kernels torch was built without, pip's name mismatch for a VCS requirement, a framework's
advice to use another backend, GPU families named in prose, and a backend's guarded import
left as None. Pure functions of the text; ``extract_facts`` calls ``read_more``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Advice:
    """A framework saying which backend a model should use, and the setting to change."""

    subject: str
    """What the advice is about (``Gemma-2``), or ``""``."""
    backend: str
    """The backend advised, as written (``flash attention 2``)."""
    setting: str = ""
    """The setting to change (``flash_attn``), when the advice names one."""
    value: str = ""
    """The value to set it to (``fa2``)."""
    refusal: bool = False
    """The advice is the error itself: the framework refuses the current backend for this
    model (vLLM 0.5's "Please use Flashinfer backend for models with logits_soft_cap")."""


REQUIREMENTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?:compute|CUDA) capability\s*(>=|>)\s*(\d+)(?:\.(\d))?", re.I), "cc"),
    # "GPU compute capability 8.0 (Ampere) or higher is required"
    (
        re.compile(
            r"(?:(?:compute|CUDA) capability (?:of )?|\bCC )(\d+)\.(\d)(?: \(\w+\))? "
            r"or (?:higher|newer|above)",
            re.I,
        ),
        "cc_or_higher",
    ),
    # "GPUs with compute capability below 8.0 are not supported" (SageAttention's setup.py)
    (
        re.compile(
            r"(?:compute|CUDA) capability (?:below|lower than|less than|<)\s*(\d+)\.(\d)"
            r"\s+(?:is|are) not supported",
            re.I,
        ),
        "cc_or_higher",
    ),
    (re.compile(r"\bSM\s*>=\s*(\d+)\s*and\s*SM\s*<=\s*(\d+)", re.I), "range"),
    (re.compile(r"\bsm_?(\d{2,3})\s*-\s*sm_?(\d{2,3})\b", re.I), "range"),
    (re.compile(r"is_sm(\d{2,3}|\dx)(?:\s*\|\|\s*is_sm(\d{2,3}|\dx))+"), "exact"),
    (
        re.compile(
            r"Ampere (?:GPUs?|gpus?) or newer|requires? (?:an )?Ampere"
            r"|(?:GPUs?|cards?|devices?) (?:lower|older|earlier) than Ampere",
            re.I,
        ),
        "ampere",
    ),
    (re.compile(r"\brequires? sm_?(\d{2,3})\+", re.I), "min"),
    # "only supported on SM90", "requires an SM90 (Hopper) GPU", "only supported on Hopper"
    (
        re.compile(
            r"only supported on (?:SM ?|sm_?)\d{2,3}[af]?"
            r"(?:\s*(?:and|or|/|,)\s*(?:SM ?|sm_?)?\d{2,3}[af]?)*"
            # a family written after it ("SM100 (compute capability 10.x)") is read as a range
            r"(?!\d|\s*\(compute capability \d+\.x\))"
            r"|\brequires? an? (?:SM ?|sm_?)\d{2,3}[af]?\b",
            re.I,
        ),
        "exact",
    ),
    (re.compile(r"only supported on Hopper\b", re.I), "hopper"),
    # ptxas: an instruction type needs a newer target ("'.bf16' requires .target sm_80 or higher")
    (re.compile(r"requires \.target sm_(\d{2,3}) or higher"), "min"),
)
"""What a message states of the GPUs a kernel needs: a capability floor, a range, the exact
architectures (kind names how the match is read in extract_facts)."""


FAMILIES: dict[str, tuple[int, ...]] = {
    "kepler": (35, 37),
    "maxwell": (50, 52),
    "pascal": (60, 61),
    "volta": (70,),
    "turing": (75,),
}
"""GPU family names a message may use in prose for architectures it refuses (oldest first).
Only the pre-Ampere families: a refusal names the GPUs left out, which are the old ones."""

PORTABLE = re.compile(
    r"python_embedd?ed|comfyui_windows_portable|windows-standalone-build|embedded python:\W*true"
)
"""A portable (embedded) Windows Python: ComfyUI's folder names (``python_embeded``, sic, and other
bundles' ``python_embedded``), its launch flag, its report."""
_Q = "['\"\u2018\u2019]"  # a quote, straight or curly (pasted from rich text)
_NO_ATTR = re.compile(
    r"(?:module ['\"]?|(?<![\w.'\"])['\"]?(?=[A-Za-z_]\w*\.[\w.]+['\"]? has no attribute))"
    r"([\w.]+)['\"]? has no attribute ['\"]?(\w+)"
    rf"|(?:cannot import name |(?m:^)\W{{0,3}}){_Q}(\w+){_Q} from {_Q}([\w.]+){_Q}"
)
"""A name a module lacks: Python's AttributeError, or its ImportError ("cannot import name 'x'
from 'pkg'"), also as a title that keeps only the quoted name and module."""
_INSTRUCTION = re.compile(
    r"Instruction '([\w.]+)[^']*' not supported on \.target '?sm_(\d{2,3})[af]?'?", re.I
)
_NOT_COMPILED = re.compile(
    r"(?:Torch|torch) was not compiled with (memory efficient|flash|cuDNN) attention", re.I
)
_PIP_NAME = re.compile(
    r"(?:Requested \S+ from )?(?P<url>git\+\S+?)?\s*has inconsistent name: "
    r"expected '(?P<want>[\w.-]+)', but metadata has '(?P<have>[\w.-]+)'"
)
_ADVICE = re.compile(
    r"(?P<subject>[\w.-]+(?: [\w.-]+)?) should (?:use|be (?:run|trained) with) "
    r"(?P<backend>(?:flash[ _-]?attention|FlashAttention|sdpa|eager|xformers|flex)[\w -]*?)"
    r"(?:,\s*change `?(?P<setting>\w+)`? to `?(?P<value>[\w-]+)`?)?[.\s]*$",
    re.I | re.M,
)
_RECOMMENDED = re.compile(
    r"It is strongly recommended to train (?P<subject>[\w.-]+) models with the `(?P<backend>\w+)` "
    r"attention implementation"
)
"""transformers' Gemma 2/3 notice (logger.warning_once in the model's forward when training
with another attention): the model's authors advise eager attention for training."""
_PLEASE_USE = re.compile(
    r"Error: Please use (?P<backend>[\w-]+) backend for (?P<subject>[^\n]{3,80}?)(?=\.\s|\.?$)"
    r"(?:[^\n]*?\bexport (?P<setting>[A-Z_]+)=(?P<value>[\w-]+))?",
)
"""A framework refusing the backend in use for a model and naming the one to use, with the
variable that selects it (vLLM 0.5.x's check for logits soft-capping models)."""
_FAMILY_REFUSED = re.compile(
    r"(?:cannot use|can't use|not supported (?:on|for)|does not support|doesn't support)"
    r"[^\n]{0,60}?\b(?:for|on) ((?:(?:Kepler|Maxwell|Pascal|Volta|Turing)(?:,? (?:and|or) |, )?)+)"
    r"\s*GPUs?",
    re.I,
)
_BACKEND_FRAME = re.compile(
    r"File \"[^\"]*?[\\/](vllm|sglang)[\\/][\w\\/]*?attention[\\/](?:backends[\\/])?"
    r"(flashinfer|flash_attn|xformers|triton_attn|flashmla)\w*\.py\""
)


def arch_numbers(text: str) -> list[int]:
    """sm numbers in a requirement; ``sm8x`` is every sm_8x (80, 86, 87, 89)."""
    out: list[int] = []
    for raw in re.findall(r"(\d{2,3}|\dx)\b", text):
        out += [int(raw[0]) * 10 + d for d in (0, 6, 7, 9)] if raw.endswith("x") else [int(raw)]
    return out


_PIN_CONFLICT = re.compile(
    r"([\w.-]+) (\d[\w.+]*) requires torch ?==([\w.+]+), but you(?:'ll)? have torch "
    r"(\d[\w.+]*) which is incompatible"
)
_UNINSTALLED = re.compile(r"Successfully uninstalled ([\w.-]+?)-\d|Attempting uninstall: ([\w.-]+)")
_FEATURE_REFUSED = re.compile(
    r"`?(?P<feature>[\w ]{3,60}?)`?(?: attribute| argument| option)? (?:is|are) "
    r"(?:currently |yet )?not (?:yet )?(?:supported|implemented) (?:for|by|with|in|when using) "
    r"(?P<backend>[\w .`=-]{3,40}?)"
    r"(?:[.!\s\"')]*$|\.\s+(?:Please|Use|Set|Try)\b)"
    # "This flash attention implementation does not support `softcap`. Try using …", "`sdpa`
    # attention does not support `softcap`", "FA3 backward does not support attention_chunk"
    r"|`?(?P<backend2>[\w-]{3,30} attention(?= (?:build|kernel|implementation|backend)\b)"
    r"|[\w-]{3,30})`?"
    r"(?: attention)?(?: backend| build| kernel| implementation)?(?: backward| forward)?"
    r"(?: currently| yet)? (?:does not|doesn't) support (?:setting )?"
    r"(?P<feature2>[\w `=-]{3,60}?)(?:[.!\s\"')]*$|: |[.,]\s+(?:Please|please|Use|use|Set|Try)\b"
    r"|[.!]?`(?=\s))"  # quoted in a title: "`ValueError: X does not support Y.` in colab"
    # "Memory efficient attention with `xformers` is currently not supported when …"
    r"|with `?(?P<backend3>[\w-]{3,30})`? (?:is|are) (?:currently )?not supported when "
    r"(?P<feature3>[^\n]{3,80}?)[.!\s\"')]*$"
    # vLLM's reasons map: "Reasons: {FLASH_ATTN: [sink setting not supported], …"
    r"|(?P<backend4>[A-Z][A-Z0-9_]{3,}): \[(?P<feature4>[\w ]{3,60}?) not supported\]",
    re.M,
)


_NOT_INSTALLED_ERROR = re.compile(
    r"(?:Error:|raise \w+\(['\"])\s*(flash_attn|xformers|sageattention|flashinfer|triton"
    r"|sgl_kernel|vllm_flash_attn|flash_attn_interface)\s+(?:package\s+)?is\s+not\s+installed"
)
"""An error that names a backend module as not installed ("ImportError: flash_attn is not
installed.", a model's remote code): the module is missing, as "No module named" says it."""
INSTALL_FIRST = re.compile(
    r"(?i)^(?!\W*(?:INFO|WARN(?:ING)?)\b)[^\n]*?"
    r"(?:\bplease\s+install\s+(?P<a>[\w -]{4,20}?)\s+first\b"
    r"|\bimport\s+(?P<b>[\w -]{4,20}?)\s+(?:error|failed)\b"
    r"|\bmake\s+sure\s+(?:that\s+)?(?P<c>[\w -]{4,20}?)\s+is\s+(?:properly\s+)?installed\b"
    r"|(?:Error:|,)\s*['\"]?(?P<d>[\w -]{4,20}?)\s+is\s+not\s+installed\b"
    r"|\b(?P<e>flash[-_ ]?att(?:n|ention)(?:[-_ ]?[234])?|xformers|sage[-_ ]?att(?:n|ention)"
    r"|flashinfer)\s+(?:is\s+(?:currently\s+)?required|must\s+be\s+installed)\b(?!\s*for\b)"
    r"|\b(?P<f>flash[-_ ]?att(?:n|ention)(?:[-_ ]?[234])?|xformers|sage[-_ ]?att(?:n|ention)"
    r"|flashinfer)\s+is\s+not\s+available\.?\s+(?:Make\s+sure|Please)\b[^\n]{0,30}\binstall"
    # an import error's own words ("ImportError: Xformers is required for Pixtral inference")
    r"|(?:ImportError|ModuleNotFoundError):\s*(?P<g>flash[-_ ]?att(?:n|ention)(?:[-_ ]?[234])?"
    r"|xformers|sage[-_ ]?att(?:n|ention)|flashinfer)\s+is\s+required\b)",
    re.M,
)
"""A model's own error that a backend did not import, in its words ("import FlashAttention
error! Please install FlashAttention first.", "Make sure flash_attn is installed", "Flash
attention is currently required"); a line
logged at INFO or WARNING is a notice."""
_BACKEND_WORD = re.compile(
    r"(?i)^(?:(?P<flash_attn>flash[-_ ]?att(?:n|ention)(?:[-_ ]?2)?)|(?P<xformers>xformers)"
    r"|(?P<sageattention>sage[-_ ]?attn|sage[-_ ]?attention)|(?P<flashinfer>flashinfer))$"
)
"""A backend as an application names it, to its module."""
_DIFFUSERS_NO_XFORMERS = re.compile(
    r"Refer to https://github\.com/facebookresearch/xformers for more information on how to "
    r"install\s+xformers"
)
"""diffusers' ModuleNotFoundError (name="xformers") when xformers attention is enabled and
xformers does not import (models/attention_processor.py and attention.py, read at v0.40.0)."""


def named_missing_modules(body: str) -> list[str]:
    """Backend modules an error names as not installed in words, not as "No module named"."""
    missing = [m.group(1) for m in _NOT_INSTALLED_ERROR.finditer(body)]
    for m in INSTALL_FIRST.finditer(body):
        word = _BACKEND_WORD.match(
            next(g for g in m.group("a", "b", "c", "d", "e", "f", "g") if g).strip()
        )
        if word is not None and word.lastgroup is not None:
            missing.append(word.lastgroup)
    if _DIFFUSERS_NO_XFORMERS.search(body):
        missing.append("xformers")
    return missing


_NOT_DETERMINISTIC = re.compile(
    r"\b(?P<fn>\w*(?:attention|attn|fmha|sdp)\w*) does not have a deterministic implementation"
)
"""torch's alert (at::globalContext().alertNotDeterministic) when deterministic algorithms are
on and an attention kernel's backward has no deterministic path: "… does not have a
deterministic implementation, but you set 'torch.use_deterministic_algorithms(True)'"."""


_EXTENSION_OWNER = re.compile(
    r"(?:[\\/](?P<pkg>[A-Za-z_]\w*))?[\\/](?P<mod>[A-Za-z_]\w*)"
    r"(?:\.(?:cpython-\d+|abi3|cp\d+)[^\s/\\]*\.(?:so|pyd)|\.pyd\b)"
    r"|\bfrom (?P<imp>[A-Za-z_][\w.]*) import _C\b"
    # a package's own relative import, under the frame that names the package's file
    r"|[\\/](?P<rel>[A-Za-z_]\w*)[\\/]\w+\.py\"?, line \d+, in \S+\s*\n"
    r"\s*from \.\w* import _C\b"
)
"""The package a compiled extension in the message belongs to: ``pytorch3d/_C.cpython-310…so``
-> pytorch3d, ``causal_conv1d_cuda.cpython-38…so`` -> causal_conv1d_cuda, ``from pytorch3d
import _C`` -> pytorch3d, ``…/diff_gaussian_rasterization/__init__.py … from . import _C`` ->
diff_gaussian_rasterization."""

_WHEEL_TORCH = re.compile(
    r"\b(flash[-_]attn|sageattention|xformers|flashinfer[-_]python)-\d[\w.]*?\+cu\d+torch"
    r"(\d+\.\d+)",
    re.I,
)
"""A backend wheel whose local version names the torch it was built for
(``sageattention-2.2.0+cu128torch2.9.0.post3``, ``flash_attn-2.8.3+cu12torch2.8cxx11abiTRUE``)."""

_NOTICE_LEVEL = re.compile(
    r"^\W*(?:\[?(?:INFO|WARNING|WARN|Warning|warning|info)\]?\b|\S*\s*-\s*(?:INFO|WARNING)\s*-"
    r"|(?:INFO|WARNING) \d\d-\d\d|(?:User|Future|Runtime)Warning:)"
)
_NOTICE_SAYS = re.compile(
    r"\bfall(?:s|ing)? ?back to\b|\bdefaulting to\b|\bis disabled because\b"
    r"|\bwill use [^\n]{1,40} as (?:a )?fallback\b"
    r"|\b(?:is|are) not (?:installed|available)\b|\bnot installed\b[^\n]*\busing\b",
    re.I,
)
"""A log line at INFO or WARNING level that says the program goes on another way: a fallback,
a default, or an optional package that is not installed."""
_ERROR_LEVEL = re.compile(r"\W*(?:ERROR|FATAL|CRITICAL|Error|error)\b")
_BARE_FALLBACK = re.compile(
    r"(?:^\W*|[:\uff1a]\s*)"  # at the line's start, or quoted after a colon (a full-width one too)
    r"(?:flashinfer|flash[_-]?attn|flash[_ ]attention|xformers|sage[_ ]?attention|sageattn)"
    r"\b (?:is )?not (?:found|installed|available),? (?:so )?(?:use|uses|fall(?:s)? back to) "
    r"(?:the )?(?:triton|sdpa|torch|eager|native|xformers|flash)\b",
    re.I,
)
"""The same news printed with no log level, in a print's words ("flashinfer not found, use
triton for linux", a project's start-up print): a notice too. A logger's "…, using sdpa" needs
its level (split_lines keeps INFO/WARNING, drops ERROR): the same words at ERROR are not one."""

_AVAILABILITY_ASSERT = re.compile(
    r"^\W*(?:\[rank\d+\]:\s*)?assert\s+(?P<flag>\w*(?:flash|FLASH|Flash|xformers|XFORMERS|"
    r"Xformers|sage|SAGE|Sage)\w*(?:AVAILABLE|[Aa]vailable|_ok|_OK)\w*)\s*(?:,[^\n]*)?$",
    re.M,
)
"""An application's check that an attention package imported (``assert FLASH_ATTN_2_AVAILABLE``)."""


@dataclass(frozen=True, kw_only=True)
class More:
    missing_attrs: tuple[tuple[str, str], ...] = ()
    arch_instructions: tuple[tuple[str, int], ...] = ()
    torch_missing_kernels: tuple[str, ...] = ()
    pip_name_mismatch: tuple[str, str, str] | None = None
    advice: tuple[Advice, ...] = ()
    refused_families: tuple[int, ...] = ()
    none_called_in: tuple[tuple[str, str], ...] = ()
    pin_conflicts: tuple[tuple[str, str, str, str], ...] = ()
    uninstalled: tuple[str, ...] = ()
    features_refused: tuple[tuple[str, str], ...] = ()
    availability_asserts: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()
    wheel_torch: tuple[tuple[str, str], ...] = ()
    extension_owners: tuple[str, ...] = ()


def read_more(body: str) -> More:
    """The facts above, from the normalised text."""
    attrs: dict[tuple[str, str], None] = {}
    for m in _NO_ATTR.finditer(body):
        mod, name = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        attrs[(mod, name)] = None
    instr = {(m.group(1).split(".")[0], int(m.group(2))): None for m in _INSTRUCTION.finditer(body)}
    kernels = {
        {"memory efficient": "mem_efficient", "flash": "flash", "cudnn": "cudnn"}[
            m.group(1).lower()
        ]: None
        for m in _NOT_COMPILED.finditer(body)
    }
    pm = _PIP_NAME.search(body)
    pip = (pm.group("want"), pm.group("have"), pm.group("url") or "") if pm else None
    advice = (
        tuple(
            Advice(
                subject=m.group("subject").strip(),
                backend=m.group("backend").strip(),
                setting=m.group("setting") or "",
                value=m.group("value") or "",
            )
            for m in _ADVICE.finditer(body)
        )
        + tuple(
            Advice(
                subject=f"{m.group('subject')} training",
                backend=m.group("backend"),
                setting="attn_implementation",
                value=m.group("backend"),
            )
            for m in _RECOMMENDED.finditer(body)
        )
        + tuple(
            Advice(
                subject=m.group("subject").strip(),
                backend=m.group("backend"),
                setting=m.group("setting") or "",
                value=m.group("value") or "",
                refusal=True,
            )
            for m in _PLEASE_USE.finditer(body)
        )
    )
    families: dict[int, None] = {}
    for m in _FAMILY_REFUSED.finditer(body):
        for word in re.findall(r"[A-Za-z]+", m.group(1)):
            for sm in FAMILIES.get(word.lower(), ()):
                families[sm] = None
    none_in: tuple[tuple[str, str], ...] = ()
    if re.search(r"'NoneType' object is not callable", body):
        none_in = tuple(
            dict.fromkeys((m.group(1), m.group(2)) for m in _BACKEND_FRAME.finditer(body))
        )
    pins = tuple(
        dict.fromkeys(
            (m.group(1).lower(), m.group(2), m.group(3), m.group(4))
            for m in _PIN_CONFLICT.finditer(body)
        )
    )
    gone = tuple(
        dict.fromkeys((m.group(1) or m.group(2)).lower() for m in _UNINSTALLED.finditer(body))
    )
    features = tuple(
        dict.fromkeys(
            (
                next(
                    m.group(g)
                    for g in ("feature", "feature2", "feature3", "feature4")
                    if m.group(g)
                ).strip(" `"),
                next(
                    m.group(g)
                    for g in ("backend", "backend2", "backend3", "backend4")
                    if m.group(g)
                ).strip(),
            )
            for m in _FEATURE_REFUSED.finditer(body)
        )
    ) + tuple(
        # the kernel's name rarely names its package: the message's other words do
        (f"deterministic backward ({m.group('fn')})", f"{m.group('fn')} {body[:4000]}")
        for m in _NOT_DETERMINISTIC.finditer(body)
    )
    flags: tuple[str, ...] = ()
    if re.search(r"\bAssertionError\b", body):
        flags = tuple(dict.fromkeys(m.group("flag") for m in _AVAILABILITY_ASSERT.finditer(body)))
    notices = tuple(
        line.strip()
        for line in body.splitlines()
        if (_NOTICE_LEVEL.search(line) and _NOTICE_SAYS.search(line))
        or (_BARE_FALLBACK.search(line) and not _ERROR_LEVEL.match(line))
    )
    wheel_torch = tuple(
        dict.fromkeys(
            (m.group(1).lower().replace("_", "-"), m.group(2)) for m in _WHEEL_TORCH.finditer(body)
        )
    )
    owners = tuple(
        dict.fromkeys(
            (m.group("pkg") or m.group("mod") or m.group("imp") or m.group("rel")).split(".")[0]
            for m in _EXTENSION_OWNER.finditer(body)
        )
    )
    return More(
        extension_owners=owners,
        wheel_torch=wheel_torch,
        notices=notices,
        availability_asserts=flags,
        pin_conflicts=pins,
        uninstalled=gone,
        features_refused=features,
        missing_attrs=tuple(attrs),
        arch_instructions=tuple(instr),
        torch_missing_kernels=tuple(kernels),
        pip_name_mismatch=pip,
        advice=advice,
        refused_families=tuple(families),
        none_called_in=none_in,
    )


def platforms(text: str) -> list[str]:
    """The platforms a message shows: Windows, portable Python, WSL, Colab, conda, macOS, Linux."""
    out: list[str] = []
    low = text.lower()
    if re.search(
        r"[a-z]:\\|\\site-packages\\|\.pyd\b|\.dll\b|win_amd64|windows|powershell|\bc:/", low
    ):
        out.append("windows")
    if PORTABLE.search(low):
        out.append("comfyui-portable")
    if "/usr/lib/wsl" in low or "microsoft-standard-wsl" in low or re.search(r"\bwsl2?\b", low):
        out.append("wsl")
    if "/content/" in low or "google.colab" in low or "colab" in low:
        out.append("colab")
    if re.search(r"conda|miniforge|mambaforge|/envs/", low):
        out.append("conda")
    if re.search(r"macos|darwin|/opt/homebrew|\bmps\b|(?<![a-z])mac(?![a-z])|apple silicon", low):
        out.append("macos")
    if (
        re.search(r"/usr/|/home/|linux_x86_64|manylinux|/site-packages/", low)
        and "windows" not in out
    ):
        out.append("linux")
    return out


def more_summary(f: Any) -> list[tuple[str, str]]:
    """(fact, value) pairs for display of the facts above (``f`` is a ``TextFacts``)."""
    out: list[tuple[str, str]] = []
    for mod, name in f.missing_attrs:
        out.append(("missing attribute", f"{mod}.{name}"))
    for ins, sm in f.arch_instructions:
        out.append(("instruction refused", f"{ins} on sm_{sm}"))
    for kernel in f.torch_missing_kernels:
        out.append(("torch built without", f"SDPA {kernel} kernel"))
    if f.pip_name_mismatch:
        out.append(
            ("pip name", f"asked {f.pip_name_mismatch[0]}, metadata {f.pip_name_mismatch[1]}")
        )
    for adv in f.advice:
        out.append(("advice", f"{adv.subject}: {adv.backend}".strip(": ")))
    for framework, module in f.none_called_in:
        out.append(("None called in", f"{framework} {module} backend"))
    for flag in f.availability_asserts:
        out.append(("availability check failed", flag))
    return out
