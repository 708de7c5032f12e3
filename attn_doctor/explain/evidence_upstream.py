"""Evidence read through the wordings upstream projects use for the same few facts: the GPUs a
kernel runs on, the head dims and dtypes it takes, and messages that change nothing.

``wheels_index/upstream_messages.toml`` holds each message as its project's source writes it
(flash-attn, xformers, SageAttention, FlashInfer, torch SDPA, vLLM, SGLang, TensorRT-LLM,
transformers, diffusers, ComfyUI, unsloth), with the facts it states. Each text becomes a
pattern in which the placeholders read values from the message and the rest must match as
written (whitespace loosely, so a hard-wrapped paste still matches). The facts then feed the
same classes as every other piece of evidence: no answer is attached to a wording here."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from attn_doctor.backends import BACKEND_NAMES
from attn_doctor.datafiles import Entry, check_schema, read_toml
from attn_doctor.errors import IndexDataError

FILE = "upstream_messages.toml"

_ROLES: dict[str, str] = {
    "gpu_cc": r"\(?\s*\d{1,3}(?:\s*[.,]\s*\d)?\s*\)?",
    "min_cc": r"\(?\s*\d{1,3}(?:\s*[.,]\s*\d)?\s*\)?",
    "max_cc": r"\(?\s*\d{1,3}(?:\s*[.,]\s*\d)?\s*\)?",
    "only_cc": r"\(?\s*\d{1,3}(?:\s*[.,]\s*\d)?\s*\)?",
    "gpu_sm": r"(?:sm_?)?\d{1,3}(?:\.\d)?",
    "head_dim": r"\d{1,4}",
    "head_max": r"\d{1,4}",
    "head_multiple": r"\d{1,3}",
    "dtype": r"[\w.]+",
    "pkg": r"[A-Za-z][\w.-]*",
    "pkg_min": r"\d+(?:\.\d+)+(?:\.?post\d+)?",
    "built": r"[^\s()]+(?: with CUDA \d+)?",
    "have": r"[^\s()]+",
    "x": r"[^\n]*?",
}
"""What each placeholder of a text reads: a compute capability ("(8, 0)", "8.0", "80"), an
architecture ("sm_75", "7.5"), a number, a dtype, or any text on the line."""

_DTYPES = {
    "float16": "fp16",
    "half": "fp16",
    "fp16": "fp16",
    "bfloat16": "bf16",
    "bf16": "bf16",
    "float32": "fp32",
    "float": "fp32",
    "fp32": "fp32",
    "float64": "fp64",
    "double": "fp64",
}


@dataclass(frozen=True, kw_only=True)
class Template:
    project: str
    backend: str | None
    pattern: re.Pattern[str]
    min_sm: int | None
    max_sm: int | None
    exact_sm: tuple[int, ...]
    head_max: int | None
    head_multiple: int | None
    dtypes: tuple[str, ...]
    dtypes_refused: tuple[str, ...]
    harmless: str | None
    needs: str | None
    built_for: str | None
    missing: str | None
    source: str


@dataclass(frozen=True, kw_only=True)
class UpstreamFacts:
    """What the upstream wordings in a message state."""

    projects: tuple[str, ...] = ()
    """The projects whose wording matched (``xformers``, ``torch``)."""
    backend: str | None = None
    """The backend record the first refusing wording belongs to, when it is one."""
    required: tuple[int, int | None] | None = None
    """(lowest, highest) architecture the refusing kernel runs on."""
    exact: tuple[int, ...] = ()
    """The only architectures it runs on, when a wording names a set."""
    gpu_sms: tuple[int, ...] = ()
    """The GPU's own architecture, where the wording reports it."""
    head_rule: str | None = None
    """The head-dim rule stated ("at most 256", "a multiple of 8")."""
    head_dims: tuple[int, ...] = ()
    """The head dims the message reports."""
    dtypes_allowed: tuple[str, ...] = ()
    dtypes_seen: tuple[str, ...] = ()
    """The dtypes the message reports (refused ones, or those it got)."""
    harmless: tuple[tuple[str, str, str, str], ...] = ()
    """(project, why it changes nothing, source, the text it matched) of each harmless
    wording."""
    refusal: bool = False
    """A wording that refuses something matched: the message reports a failure."""
    needs: tuple[tuple[str, str], ...] = ()
    """(package, the release it must be at least) a wording states."""
    built_for: tuple[tuple[str, str, str], ...] = ()
    """(package, what it was built for, what is here) of a compiled package that does not fit."""
    missing: tuple[tuple[str, str], ...] = ()
    """(package, the project saying so) a framework was set to use and did not find."""
    sources: tuple[str, ...] = ()
    spans: tuple[str, ...] = ()
    """The text each refusing wording matched: its numbers are the kernel's range, not the
    GPU's, so the architecture scan leaves them out."""


def _dist(name: str) -> str:
    """A distribution name as pip writes it (``flash_attn`` -> ``flash-attn``)."""
    return name.lower().replace("_", "-")


def _cc(text: str) -> int | None:
    """An architecture from "(8, 0)", "8.0", "8", "80", "sm_75", "121"."""
    nums = re.findall(r"\d+", text)
    if not nums:
        return None
    if len(nums) >= 2:
        return int(nums[0]) * 10 + int(nums[1][0])
    n = int(nums[0])
    return n * 10 if n < 13 else n


def _compile(text: str, whole_line: bool) -> re.Pattern[str]:
    out, pos = [], 0
    for n, m in enumerate(re.finditer(r"\{(\w+)\}", text)):
        out.append(_literal(text[pos : m.start()]))
        role = m.group(1)
        rx = _ROLES[role]
        out.append(f"({rx})" if role == "x" else f"(?P<{role}_{n}>{rx})")
        pos = m.end()
    out.append(_literal(text[pos:]))
    body = "".join(out).rstrip()
    if whole_line:
        return re.compile(rf"^\W*(?:\w+:\s*)?{body}\W*$", re.M | re.I)
    return re.compile(body, re.I)


def _literal(part: str) -> str:
    """The literal text as a pattern: whitespace matches any run of it (a wrapped paste), and
    backquotes are optional (a paste into a Markdown thread renders them as code and loses
    them)."""
    rx = r"\s+".join(re.escape(w) for w in part.split(" "))
    return rx.replace(r"\s+\s+", r"\s+").replace(re.escape("`"), "`?")


@functools.cache
def load_templates(directory: Path | None = None) -> tuple[Template, ...]:
    """Validate the upstream wordings; errors name the file, the entry and the key."""
    doc = read_toml(FILE, directory)
    check_schema(doc, FILE)
    out = []
    for n, item in enumerate(doc.get("template") or []):
        e = Entry(item, f"{FILE}: template #{n + 1}")
        e.only(
            {
                "project", "backend", "text", "source", "min_sm", "max_sm", "exact_sm",
                "head_max", "head_multiple", "dtypes", "dtypes_refused", "harmless",
                "whole_line", "needs", "built_for", "missing",
            }
        )  # fmt: skip
        text = e.str_("text")
        roles = re.findall(r"\{(\w+)\}", text)
        if bad := [r for r in roles if r not in _ROLES]:
            raise e.fail("text", f"unknown placeholder {{{bad[0]}}}")
        if len(re.sub(r"\{\w+\}", "", text).strip()) < 14:
            raise e.fail("text", "too little literal text to recognise it safely")
        backend = e.opt_str("backend")
        if backend is not None and backend not in BACKEND_NAMES:
            raise e.fail("backend", f"unknown backend {backend!r}")
        dtypes = e.strs("dtypes", allowed=tuple(sorted(set(_DTYPES.values()) | {"fp8"})))
        refused = e.strs("dtypes_refused", allowed=("fp16", "bf16", "fp32", "fp8"))
        out.append(
            Template(
                project=e.str_("project"),
                backend=backend,
                pattern=_compile(text, e.bool_("whole_line", default=False)),
                min_sm=e.opt_int("min_sm"),
                max_sm=e.opt_int("max_sm"),
                exact_sm=e.ints("exact_sm"),
                head_max=e.opt_int("head_max"),
                head_multiple=e.opt_int("head_multiple"),
                dtypes=dtypes,
                dtypes_refused=refused,
                harmless=e.opt_str("harmless"),
                needs=e.opt_str("needs"),
                built_for=e.opt_str("built_for"),
                missing=e.opt_str("missing"),
                source=e.str_("source"),
            )
        )
    if not out:
        raise IndexDataError(f"{FILE}: no template")
    return tuple(out)


def read_upstream(body: str, templates: tuple[Template, ...] | None = None) -> UpstreamFacts:
    """The facts the upstream wordings in ``body`` state (nothing when none matches)."""
    found: list[tuple[Template, dict[str, str], str]] = []
    spans: list[str] = []
    # xformers' "No operator found" lists each operator's reasons: one operator refusing the
    # GPU, a head dim or a dtype says nothing of the others (nor of operators not built), so
    # the listing's own classes judge it, not these reasons.
    listing = (
        "No operator found for" in body or len(re.findall(r"is not supported because", body)) >= 2
    )
    for t in templates if templates is not None else load_templates():
        if listing and t.project == "xformers" and t.harmless is None:
            continue
        m = t.pattern.search(body)
        if m is not None:
            found.append((t, {k: v for k, v in m.groupdict().items() if v}, m.group(0)))
            spans.append(m.group(0))
    if not found:
        return UpstreamFacts()
    lo: int | None = None
    hi: int | None = None
    exact: list[int] = []
    sms: list[int] = []
    heads: list[int] = []
    rules: list[str] = []
    allowed: list[str] = []
    seen: list[str] = []
    harmless: list[tuple[str, str, str, str]] = []
    needs: list[tuple[str, str]] = []
    built_for: list[tuple[str, str, str]] = []
    missing: list[tuple[str, str]] = []
    backend = None
    refusing = [t for t, _, _ in found if t.harmless is None]
    for t, values, text in found:
        if t.harmless is not None:
            harmless.append((t.project, t.harmless, t.source, text))
            continue
        backend = backend or t.backend
        by_role: dict[str, list[str]] = {}
        for key, value in values.items():
            by_role.setdefault(key.rsplit("_", 1)[0], []).append(value)
        named = next(iter(by_role.get("pkg", [])), None)
        if (pkg := t.needs or named) and (floor := next(iter(by_role.get("pkg_min", [])), None)):
            needs.append((_dist(pkg), floor))
        if t.built_for:
            built = next(iter(by_role.get("built", [])), "")
            here = next(iter(by_role.get("have", [])), "")
            built_for.append((t.built_for, built, here))
        if t.missing:
            missing.append((t.missing, t.project))
        mins = [t.min_sm] if t.min_sm else [x for v in by_role.get("min_cc", []) if (x := _cc(v))]
        maxs = [t.max_sm] if t.max_sm else [x for v in by_role.get("max_cc", []) if (x := _cc(v))]
        lo = lo if lo is not None else next(iter(mins), None)
        hi = hi if hi is not None else next(iter(maxs), None)
        exact += [s for s in t.exact_sm if s not in exact]
        for v in by_role.get("only_cc", []):
            if (sm := _cc(v)) is not None and sm not in exact:
                exact.append(sm)
        for v in by_role.get("gpu_cc", []) + by_role.get("gpu_sm", []):
            if (sm := _cc(v)) is not None and sm not in sms:
                sms.append(sm)
        head_max = t.head_max or next(
            (int(v) for v in by_role.get("head_max", []) if v.isdigit()), None
        )
        mult = t.head_multiple or next(
            (int(v) for v in by_role.get("head_multiple", []) if v.isdigit()), None
        )
        if head_max:
            rules.append(f"at most {head_max}")
        if mult:
            rules.append(f"a multiple of {mult}")
        heads += [int(v) for v in by_role.get("head_dim", []) if v.isdigit()]
        allowed += [d for d in t.dtypes if d not in allowed]
        for v in by_role.get("dtype", []):
            d = _DTYPES.get(v.lower().removeprefix("torch.").rstrip("."))
            if d and d not in seen:
                seen.append(d)
        seen += [d for d in t.dtypes_refused if d not in seen]
    if exact and lo is None:
        lo, hi = min(exact), max(exact)
    if heads and not rules:
        rules.append(f"its kernels have ({heads[0]} is not one)")
    return UpstreamFacts(
        projects=tuple(dict.fromkeys(t.project for t, _, _ in found)),
        backend=backend,
        required=(lo, hi) if lo is not None else ((0, hi) if hi is not None else None),
        exact=tuple(exact),
        gpu_sms=tuple(sms),
        head_rule=" and ".join(dict.fromkeys(rules)) or None,
        head_dims=tuple(dict.fromkeys(heads)),
        dtypes_allowed=tuple(allowed),
        dtypes_seen=tuple(seen),
        harmless=tuple(harmless),
        refusal=bool(refusing),
        sources=tuple(dict.fromkeys(t.source for t, _, _ in found)),
        spans=tuple(spans),
        needs=tuple(dict.fromkeys(needs)),
        built_for=tuple(dict.fromkeys(built_for)),
        missing=tuple(dict.fromkeys(missing)),
    )
