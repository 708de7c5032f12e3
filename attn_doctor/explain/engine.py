"""``explain_text``: match a message against the knowledge base, confirm, render the fixes."""

from __future__ import annotations

from dataclasses import dataclass

from attn_doctor.diagnosis import Evidence
from attn_doctor.explain.confirm import Confirmation, confirm_symptom, facts_unavailable
from attn_doctor.explain.fix import RenderedFix, render_fix
from attn_doctor.explain.kb import KnowledgeBase, load_symptoms
from attn_doctor.explain.match import Match, count_lines, match_symptoms
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


def explain_text(
    text: str,
    env: Environment | None,
    *,
    kb: KnowledgeBase | None = None,
    facts_reason: str | None = None,
    import_scope: str | None = None,
) -> ExplainResult:
    """Explain an error message, traceback or log on the machine described by ``env``.

    ``env`` None means the facts could not be read: matches are still reported, each with
    "could not confirm: facts unavailable" (``facts_reason`` says why). ``import_scope`` (the
    module whose failed import the text is) limits the import checks to that module's package.
    Pure given ``env``.
    """
    base = kb if kb is not None else load_symptoms()
    why = facts_reason or "no facts were given"
    explanations = []
    for match in match_symptoms(text, base):
        symptom = base.get(match.symptom_id)
        assert symptom is not None  # match_symptoms only returns ids from ``base``
        caps = match.captured()
        confirmation = (
            confirm_symptom(symptom, match, env, import_scope=import_scope)
            if env is not None
            else facts_unavailable(why)
        )
        explanations.append(
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
    # Stable sort: the matcher's specificity order holds within each confirmation status.
    explanations.sort(key=lambda e: _RANK[e.confirmation.status])
    return ExplainResult(
        lines=count_lines(text),
        explanations=tuple(explanations),
        facts_available=env is not None,
        facts_unavailable_reason=None if env is not None else why,
        key_facts=key_facts(env),
    )
