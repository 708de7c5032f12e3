"""``attn-doctor explain``: turn an error message or log into its cause and this machine's fix.

Public API::

    from attn_doctor.explain import explain_text
    result = explain_text(traceback_text, env)   # env: attn_doctor.facts.Environment | None

The knowledge base is ``wheels_index/symptoms.toml``; ``match_symptoms`` (pure, text only)
and ``confirm`` (pure, facts only) are the two halves ``explain_text`` joins.
"""

from __future__ import annotations

from attn_doctor.explain.checks import CheckResult, evaluate_check
from attn_doctor.explain.confirm import Confirmation, confirm
from attn_doctor.explain.engine import (
    ExplainResult,
    Explanation,
    explain_imports,
    explain_text,
    key_facts,
)
from attn_doctor.explain.fix import RenderedFix, render_fix
from attn_doctor.explain.kb import KnowledgeBase, Symptom, load_symptoms, parse_symptoms
from attn_doctor.explain.match import Match, match_symptoms

__all__ = [
    "CheckResult",
    "Confirmation",
    "ExplainResult",
    "Explanation",
    "KnowledgeBase",
    "Match",
    "RenderedFix",
    "Symptom",
    "confirm",
    "evaluate_check",
    "explain_imports",
    "explain_text",
    "key_facts",
    "load_symptoms",
    "match_symptoms",
    "parse_symptoms",
    "render_fix",
]
