"""``explain_text``: match a message against the knowledge base, confirm, render the fixes."""

from __future__ import annotations

from dataclasses import dataclass

from attn_doctor.diagnosis import Evidence
from attn_doctor.explain.classes import SAME_CAUSE, ClassAnswer, classify, contradictions
from attn_doctor.explain.confirm import (
    Confirmation,
    confirm_checks,
    confirm_symptom,
    facts_unavailable,
)
from attn_doctor.explain.evidence import MAX_FACT_CHARS, TextFacts, extract_facts
from attn_doctor.explain.fix import RenderedFix, render_fix
from attn_doctor.explain.kb import KnowledgeBase, load_symptoms
from attn_doctor.explain.knowledge import Knowledge, load_knowledge
from attn_doctor.explain.match import (
    NOTICE_PREFIX,
    Match,
    count_lines,
    match_symptoms,
    split_lines,
)
from attn_doctor.explain.scope import outside_scope
from attn_doctor.facts import Environment, ImportResult

_RANK = {"confirmed": 0, "unknown": 1, "contradicted": 2}


@dataclass(frozen=True, kw_only=True)
class Explanation:
    """One known cause found in the text, confirmed (or not) on this machine."""

    match: Match
    cause: str
    confirmation: Confirmation
    fix: tuple[RenderedFix, ...] = ()
    fix_note: str | None = None
    threads: tuple[str, ...] = ()
    verified: bool = False
    note: str | None = None
    kind: str = "phrase"
    """``class`` (a failure class recognised from the facts), ``message`` (a framework
    message recorded from upstream source) or ``phrase`` (a symptom entry's pattern)."""
    source: str | None = None
    """For a class: where the knowledge it reasoned with comes from."""
    evidence: tuple[Evidence, ...] = ()
    """For a class: the facts from the message it used."""
    harmless: bool = False
    """A warning that changes nothing ("harmless: …, nothing to fix")."""


@dataclass(frozen=True, kw_only=True)
class Rejected:
    """An answer the message's own facts rule out (its premise does not fit)."""

    id: str
    title: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ExplainResult:
    """The answer to "what does this message mean here?"."""

    lines: int
    """Number of lines read."""
    explanations: tuple[Explanation, ...]
    """Known causes, best first: confirmed, then not checkable, then contradicted."""
    facts_available: bool
    facts_unavailable_reason: str | None = None
    key_facts: tuple[Evidence, ...] = ()
    """The facts that usually decide these failures (shown always, and alone for unknown text)."""
    message_facts: tuple[Evidence, ...] = ()
    """What the message itself shows (packages, torch build, GPU, dtype, missing module…)."""
    rejected: tuple[Rejected, ...] = ()
    """Answers the message's facts contradict (not listed in ``explanations``)."""

    @property
    def matched(self) -> bool:
        return bool(self.explanations)


def key_facts(env: Environment | None) -> tuple[Evidence, ...]:
    """Torch and its CUDA, the driver, GPUs, nvcc, flash-attn/xformers and friends."""
    if env is None:
        return ()
    out = [
        Evidence(fact="host.os", value=f"{env.host.os} {env.host.distro_name or ''}".strip()),
        Evidence(fact="python.version", value=env.python.version),
    ]
    if env.host.libc_version:
        out.append(
            Evidence(fact="host.libc_version", value=f"{env.host.libc} {env.host.libc_version}")
        )
    if env.torch is None:
        out.append(Evidence(fact="torch.version", value="not installed"))
    else:
        out.append(Evidence(fact="torch.version", value=env.torch.version))
        out.append(Evidence(fact="torch.cuda", value=env.torch.cuda or f"none ({env.torch.build})"))
        if env.torch.cxx11_abi is not None:
            out.append(Evidence(fact="torch.cxx11_abi", value=str(env.torch.cxx11_abi).lower()))
    drv = env.driver
    out.append(
        Evidence(
            fact="driver.version",
            value=(
                f"{drv.version} (CUDA {drv.cuda_version or '?'})" if drv.version else "not found"
            ),
        )
    )
    if env.gpus:
        for g in env.gpus:
            cc = f", compute capability {g.compute_capability}" if g.compute_capability else ""
            out.append(Evidence(fact=f"gpus[{g.index}]", value=f"{g.name}{cc}"))
    else:
        out.append(Evidence(fact="gpus", value="none found"))
    tk = env.cuda_toolkit
    out.append(
        Evidence(
            fact="cuda_toolkit.nvcc",
            value=(
                f"{tk.release or tk.nvcc_version} at {tk.nvcc_path}"
                if tk.nvcc_path
                else "not found"
            ),
        )
    )
    for name in ("flash-attn", "flash-attn-3", "xformers", "unsloth", "triton", "transformers"):
        pkg = env.package(name)
        out.append(Evidence(fact=f"packages.{name}", value=pkg.version if pkg else "not installed"))
    return tuple(out)


def import_failure_text(result: ImportResult) -> str | None:
    """The text ``check --deep`` recorded for a failed child-process import, or None if ok."""
    if result.status == "ok":
        return None
    parts = [result.traceback_tail or "", f"importing {result.module}: {result.status}"]
    if result.detail:
        parts.append(result.detail)
    return "\n".join(p for p in parts if p)


def explain_imports(
    env: Environment, *, kb: KnowledgeBase | None = None
) -> tuple[tuple[str, ExplainResult], ...]:
    """For ``check --deep``: each failed import (module name) with its explanation here."""
    base = kb if kb is not None else load_symptoms()
    out = []
    for res in env.imports:
        text = import_failure_text(res)
        if text is not None:
            # Each module's explanation speaks only of its own package's imports.
            out.append((res.module, explain_text(text, env, kb=base, import_scope=res.module)))
    return tuple(out)


def _line_number(text_lines: list[str], line: str) -> int:
    probe = line.strip()[:60]
    if probe:
        for n, raw in enumerate(text_lines, start=1):
            if probe in raw or (raw.strip()[:60] and raw.strip()[:60] in probe):
                return n
    return 1


def _from_class(
    ans: ClassAnswer, env: Environment | None, why: str, text_lines: list[str]
) -> Explanation:
    kind = "message" if ans.class_id not in _CLASS_IDS else "class"
    match = Match(
        symptom_id=ans.class_id,
        title=ans.title,
        line_number=_line_number(text_lines, ans.line),
        line=ans.line,
        pattern=kind,
        captures=tuple(ans.evidence),
    )
    confirmation = confirm_checks(ans.checks, env) if env is not None else facts_unavailable(why)
    if ans.harmless:
        confirmation = Confirmation(status="unknown", summary="nothing to check: harmless")
    return Explanation(
        match=match,
        cause=ans.cause,
        confirmation=confirmation,
        fix=tuple(render_fix(t, env) for t in ans.fix),
        verified="unverified" not in ans.cause,
        kind=kind,
        source=ans.source,
        evidence=tuple(Evidence(fact=k, value=v) for k, v in ans.evidence),
        harmless=ans.harmless,
    )


_CLASS_IDS = frozenset(
    {
        "compiler-too-old-for-arch",
        "torch-too-old-for-gpu",
        "backend-dependency-missing",
        "backend-forced-package-missing",
        "libcuda-not-found",
        "hub-kernel-no-variant",
        "head-dim-unsupported",
        "backend-needs-other-device",
        "gpu-outside-backend-range",
        "dtype-unsupported",
        "extension-built-for-other-torch",
        "backend-not-installed",
        "harmless-warning",
        "app-wrapper-message",
        "triton-attention-kernel-out-of-shared-memory",
        "triton-embedded-python-missing-include-libs",
        "flash-attn-source-missing-cutlass-submodule",
        "torch-cuda-arch-list-below-backend-minimum",
        "remote-code-imports-removed-transformers-helper",
        "sdpa-attn-mask-dtype-mismatch",
        "sdpa-qkv-dtype-mismatch",
        "sdpa-qkv-device-mismatch",
        "sdpa-gqa-heads-not-divisible",
        "cudnn-too-old-for-fused-attention",
        "torch-cudnn-too-old-for-cudnn-attention",
        "torch-sdpa-flash-backward-sm8x-dispatch-bug",
        "kernels-client-too-old-for-stable-abi-variant",
        "flash-attn-version-outside-supported-range",
        "flash-attn-build-without-ninja",
        "flash-attn-stale-extension-mixed-install",
        "sglang-too-old-for-flashinfer-package-name",
        "diffusers-no-xformers-processor-for-flux",
        "xformers-build-without-ninja",
        "sageattention-build-without-ninja",
    }
)
"""The failure classes of ``classes.RULES`` (the other answers there are framework messages)."""


def message_facts(facts: TextFacts) -> tuple[Evidence, ...]:
    return tuple(Evidence(fact=k, value=v) for k, v in facts.summary())


def explain_text(
    text: str,
    env: Environment | None,
    *,
    kb: KnowledgeBase | None = None,
    facts_reason: str | None = None,
    import_scope: str | None = None,
    knowledge: Knowledge | None = None,
) -> ExplainResult:
    """Explain an error message, traceback or log on the machine described by ``env``.

    First the message's facts are extracted (``evidence.extract_facts``) and the failure
    classes run over them (``classes.classify``); then the symptom phrases are matched, over
    the text as given and unwrapped. A phrase answer whose machine checks the message's own
    facts contradict is rejected (listed in ``rejected``). Classes come before phrases,
    except fallback classes, which come after; the harmless ones last.

    ``env`` None means the facts could not be read: matches are still reported, each with
    "could not confirm: facts unavailable" (``facts_reason`` says why). ``import_scope`` (the
    module whose failed import the text is) limits the import checks to that module's package.
    Pure given ``env``.
    """
    base = kb if kb is not None else load_symptoms()
    know = knowledge if knowledge is not None else load_knowledge()
    why = facts_reason or "no facts were given"
    text_lines = split_lines(text)
    facts = extract_facts(text, know.gpu_names())
    answers: list[ClassAnswer] = []
    rejected: list[Rejected] = []
    for a in classify(facts, know):
        if (scope := outside_scope(facts, a.class_id)) is not None:
            rejected.append(Rejected(id=a.class_id, title=a.title, reasons=(scope,)))
        else:
            answers.append(a)
    first = [_from_class(a, env, why, text_lines) for a in answers if a.before_phrases]
    late = [_from_class(a, env, why, text_lines) for a in answers if not a.before_phrases]
    phrases: list[Explanation] = []
    matches = {m.symptom_id: m for m in match_symptoms(text, base)}
    unwrapped = "\n".join(facts.lines) if len(text) <= MAX_FACT_CHARS else ""
    if unwrapped and unwrapped != "\n".join(text_lines):
        for m in match_symptoms(unwrapped, base):
            matches.setdefault(m.symptom_id, m)
    for match in sorted(matches.values(), key=lambda m: (-m.specificity, m.line_number)):
        symptom = base.get(match.symptom_id)
        assert symptom is not None  # match_symptoms only returns ids from ``base``
        against = contradictions(facts, symptom.checks, match.captured(), know)
        if (scope := outside_scope(facts, symptom.id)) is not None:
            against.append(scope)
        if against:
            rejected.append(Rejected(id=symptom.id, title=symptom.title, reasons=tuple(against)))
            continue
        caps = match.captured()
        confirmation = (
            confirm_symptom(symptom, match, env, import_scope=import_scope)
            if env is not None
            else facts_unavailable(why)
        )
        phrases.append(
            Explanation(
                match=match,
                cause=symptom.cause,
                confirmation=confirmation,
                fix=tuple(render_fix(t, env, caps) for t in symptom.fix),
                fix_note=(
                    render_fix(symptom.fix_note, env, caps).command if symptom.fix_note else None
                ),
                threads=symptom.threads,
                verified=symptom.verified,
                note=symptom.note,
            )
        )
    shown = {e.match.symptom_id for e in phrases}
    first = [e for e in first if not SAME_CAUSE.get(e.match.symptom_id, frozenset()) & shown]
    late = [e for e in late if not SAME_CAUSE.get(e.match.symptom_id, frozenset()) & shown]
    harmless = [e for e in first + late if e.harmless]
    explanations = (
        [e for e in first if not e.harmless] + phrases + [e for e in late if not e.harmless]
    )
    if not explanations:
        explanations = harmless
    # A cause read from a line logged as a notice (INFO/WARNING) goes after one read from the
    # error the program stopped on, when there is one. Stable sort: the order above holds
    # within each confirmation status.
    notice = [NOTICE_PREFIX.match(e.match.line) is not None for e in explanations]
    if not all(notice):
        explanations = [e for e, n in zip(explanations, notice, strict=True) if not n] + [
            e for e, n in zip(explanations, notice, strict=True) if n
        ]
    explanations.sort(key=lambda e: _RANK[e.confirmation.status])
    return ExplainResult(
        lines=count_lines(text),
        explanations=tuple(explanations),
        facts_available=env is not None,
        facts_unavailable_reason=None if env is not None else why,
        key_facts=key_facts(env),
        message_facts=message_facts(facts),
        rejected=tuple(rejected),
    )
