"""What a failure class answers (``ClassAnswer``) and the helpers the rules share: reading
the message's lines, which backend it is about, a backend's GPU range, what fits instead."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from attn_doctor.backends import BackendRule
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.knowledge import Knowledge


@dataclass(frozen=True, kw_only=True)
class ClassAnswer:
    """One class recognised in the facts: its cause and fix computed for them."""

    class_id: str
    title: str
    cause: str
    fix: tuple[str, ...] = ()
    """Commands; ``<placeholder>`` is filled from the machine's facts like a symptom's fix."""
    checks: tuple[str, ...] = ()
    """Machine checks (``checks.CHECKS``) that confirm the cause on this machine."""
    evidence: tuple[tuple[str, str], ...] = ()
    """The facts from the message the class used."""
    source: str
    """Where the knowledge it used comes from (a table entry, an upstream file)."""
    line: str = ""
    """The message line that shows it best."""
    harmless: bool = False
    before_phrases: bool = True
    """False: only a fallback, ranked after phrase entries (they carry finer checks)."""


Rule = Callable[[TextFacts, Knowledge], list[ClassAnswer]]


ATTENTION_NAME = re.compile(
    r"attn|attention|flash|sage|xformers|fmha|flashinfer|sdpa|\bflex|natten", re.I
)
"""A name on the attention path: a package (flash_attn, xformers, sageattention, natten), a
callable or class (``attention_sage``, ``Qwen2FlashAttention2``), a kernel's source file."""

NO_GPU_VISIBLE = re.compile(
    r"not available on (?:the )?CPU|make sure torch can access a CUDA device", re.I
)
"""transformers' refusal when torch sees no GPU (Flash Attention 2 "is not available on CPU"):
the package may well be installed; the device is the cause."""


def body_of(f: TextFacts) -> str:
    return "\n".join(f.lines)


def line_of(f: TextFacts, pattern: str) -> str:
    rx = re.compile(pattern, re.I)
    for line in f.lines:
        if rx.search(line):
            return line.strip()[:400]
    return ""


def has_error(f: TextFacts) -> bool:
    if f.upstream.refusal:  # an upstream project's own wording of a refusal
        return True
    if (f.build.head_refused or f.build.head_allowed) and not re.search(
        r"fall(?:s|ing)? ?back", body_of(f), re.I
    ):
        return True  # a head dim refused, and nothing says the program went on without it
    return any(not e.endswith("Warning") for e in f.error_classes) or bool(
        re.search(
            # a word "error:" alone on its line is a poster's heading, not an error
            r"(?m)^\s*(?:(?:error|fatal|ERROR|FATAL)\b(?!:?[ \t]*$)|Error:(?![ \t]*$)"
            r"|Error running\b)|ptxas fatal"
            r"|AssertionError|[`']?ptxas[`']? failed|PassManager::run failed|不支持"
            r"|Killed|FAILED|Assertion failed|Assertion `[^`\n]+` failed"
            # a compiler's diagnostic anywhere in a line (build logs draw boxes before it)
            r"|\bfatal error:|:\d+:\d+: error:"
            # an MLIR diagnostic from Triton's compiler ("error: 'tt.fp_to_fp' op operand …")
            r"|\berror: '[\w.]+' op\b"
            r"|\bnot supported\b(?![^\n]*(?:fall(?:ing)? ?back|defaulting to|switching to))"
            r"|is only supported|only supports?|requires \.target sm_\d+"
            r"|\b(?:does not|doesn't) support [^\n]{0,30}\bGPUs?\b(?![^\n]*fall(?:ing)? ?back)"
            r"|is not a multiple of"
            r"|[Ee]xpected .* to be true|can't load|cannot load|could not load|unable to load"
            r"|\b(?:not enough|too many) values to unpack\b|\bNo module named\b"
            r"|\bNo operator found for\b|cannot be used due to the following error",
            body_of(f),
        )
    )


def version_of(text: str | None) -> Version | None:
    if not text:
        return None
    try:
        return Version(text.split("+")[0])
    except InvalidVersion:
        return None


def mm(text: str) -> str:
    return ".".join(text.split("+", maxsplit=1)[0].split(".")[:2])


# --- which backend a message is about ----------------------------------------------------

_BACKEND_WORDS: tuple[tuple[str, str], ...] = (
    ("flash_attn_4", r"flash_attn[./]cute|flash-attn-4|flash_attn_4|FlashAttention ?4|FA4\b"),
    (
        "flash_attn_3",
        r"flash_attn_interface|flash_attn_3|flash-attn-3|hopper/|FlashAttention ?3|FA3\b",
    ),
    ("sageattention", r"sageattn|sage[ _-]?attention"),
    ("xformers", r"xformers|No operator found for (?:this attention|`memory_efficient_attention)"),
    ("flex_attention", r"flex_attention|FlexAttention"),
    ("flashinfer", r"flashinfer|flash-infer"),
    ("sdpa_cudnn", r"cudnn_attention|cuDNN Frontend|_scaled_dot_product_cudnn|CUDNN_STATUS"),
    ("flash_attn_2", r"flash[ _-]?attn|FlashAttention|flash_attention_2|flash[ -]attention"),
)


def backends_in(f: TextFacts) -> list[str]:
    """The backends a message is about, most specific first (FA3/FA4 before flash_attn)."""
    return backends_in_text(body_of(f))


def backends_in_text(body: str) -> list[str]:
    """The backends a text names, most specific first."""
    found = [name for name, rx in _BACKEND_WORDS if re.search(rx, body, re.I)]
    if ("flash_attn_4" in found or "flash_attn_3" in found) and "flash_attn_2" in found:
        found.remove("flash_attn_2")
    return found


def gpu_range(b: BackendRule) -> tuple[int, int | None]:
    rt = b.runtime
    lo = rt.min_sm if rt is not None and rt.min_sm is not None else b.min_sm
    hi = rt.max_sm if rt is not None and rt.max_sm is not None else b.max_sm
    return lo, hi


def fits(b: BackendRule, sm: int) -> bool:
    lo, hi = gpu_range(b)
    return sm >= lo and (hi is None or sm <= hi)


_ALTERNATIVES = ("flash_attn_2", "xformers", "sdpa")


def instead(
    know: Knowledge,
    *,
    sm: int | None = None,
    head_dim: int | None = None,
    dtype: str | None = None,
    exclude: str = "",
) -> list[str]:
    """Backends (of the usual ones) that fit the GPU, head dim and dtype at hand."""
    out = []
    for name in _ALTERNATIVES:
        b = know.backend(name)
        if b is None or name == exclude:
            continue
        if sm is not None and not fits(b, sm):
            continue
        if head_dim is not None and b.max_head_dim and head_dim > b.max_head_dim:
            continue
        if dtype is not None and b.dtypes and dtype not in b.dtypes:
            continue
        out.append(name)
    return out


def sm_name(know: Knowledge, sm: int) -> str:
    a = know.arch(sm)
    return f"sm_{sm} ({a.name})" if a else f"sm_{sm}"


def explained_missing(f: TextFacts, know: Knowledge) -> set[str]:
    """Modules whose absence a known harmless warning in the text itself reports (xformers'
    "A matching Triton is not available … No module named 'triton'")."""
    body = body_of(f)
    out: set[str] = set()
    for h in know.harmless:
        if h.explains_missing and h.pattern.search(body):
            out.update(h.explains_missing)
    return out


def unexplained_missing(f: TextFacts, know: Knowledge) -> list[str]:
    """The missing modules no harmless warning accounts for."""
    explained = explained_missing(f, know)
    return [m for m in f.missing_modules if m.split(".", maxsplit=1)[0] not in explained]
