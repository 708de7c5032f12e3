"""A caller written for another release of an attention backend's (or its framework's) API:
the call passes a keyword the installed function does not take, the wrong number of
arguments, or looks up a name the installed module or class no longer (or not yet) has."""

from __future__ import annotations

import re

from attn_doctor.explain.answer import ClassAnswer, line_of
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.knowledge import Knowledge

_ATTN = re.compile(r"attn|attention|flash|sage|xformers|fmha|flashinfer", re.I)
"""A callable or class that belongs to the attention path (``attention_sage``,
``Qwen2FlashAttention2``, ``apply_rotary_pos_emb_flashatt``)."""
BACKEND_MODULES = ("xformers", "flash_attn", "sageattention", "flashinfer")
"""Top-level modules of the attention backends whose API callers are written against."""


def _answer(f: TextFacts, what: str, name: str, pattern: str) -> ClassAnswer:
    return ClassAnswer(
        class_id="caller-written-for-other-api",
        title=f"the caller was written for another release's API ({what})",
        cause=(
            f"the calling code {what}: it was written against a different release of the "
            "attention backend or of the framework around it than the one installed "
            "(the API changed between them)."
        ),
        fix=(
            "pip install --upgrade <the package the traceback's calling frame belongs to>   "
            "# a release written for the installed API",
            "or pin the backend/framework release the caller was written for "
            "(its requirements or changelog name it)",
        ),
        evidence=(("call", name), ("mismatch", what)),
        source="Python's TypeError/AttributeError/ImportError wording for a call that does "
        "not fit the installed code",
        line=line_of(f, pattern),
    )


def caller_written_for_other_api(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """An attention-path callable refuses a keyword or the argument count, an attention class
    lacks an attribute, or a backend module lacks a name the knowledge does not place
    elsewhere (that case is ``backend-function-import-path``)."""
    calls = f.calls
    for fn, kw in calls.bad_kwargs:
        if _ATTN.search(fn):
            return [
                _answer(f, f"passes {kw}= to {fn}(), which does not take it", fn, re.escape(kw))
            ]
    for fn, said in calls.bad_arity:
        if _ATTN.search(fn):
            return [_answer(f, f"calls {fn}(): {said}", fn, re.escape(fn))]
    for cls, attr in calls.object_attrs:
        if _ATTN.search(cls) or _ATTN.search(attr):
            return [
                _answer(
                    f,
                    f"uses {cls}.{attr}, which the installed {cls} lacks",
                    f"{cls}.{attr}",
                    re.escape(attr),
                )
            ]
    known = {n for api in know.backend_api for n in api.names}
    for mod, name in f.missing_attrs:
        if mod.split(".", maxsplit=1)[0] in BACKEND_MODULES and name not in known:
            return [
                _answer(
                    f,
                    f"looks up {name} in {mod}, which the installed release lacks",
                    f"{mod}.{name}",
                    re.escape(name),
                )
            ]
    return []
