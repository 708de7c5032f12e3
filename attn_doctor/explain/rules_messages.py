"""Classes read from recorded wordings: framework messages (recorded from upstream source,
with the framework's own fix), harmless warnings, and application wrapper messages."""

from __future__ import annotations

import re

from attn_doctor.explain.answer import (
    ClassAnswer,
    body_of,
    explained_missing,
    has_error,
    line_of,
    unexplained_missing,
)
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.knowledge import Knowledge


def framework_message(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """Framework messages recorded from upstream source, each with the framework's own fix."""
    body = body_of(f)
    out = []
    for msg in know.messages:
        m = msg.pattern.search(body)
        if m is None or (msg.requires is not None and msg.requires.search(body) is None):
            continue
        groups = {k: v for k, v in m.groupdict().items() if v}
        if "backend2" in groups:
            groups.setdefault("backend", groups["backend2"])

        def fill(text: str, groups: dict[str, str] = groups) -> str:
            return re.sub(r"\{(\w+)\}", lambda g: groups.get(g.group(1), f"<{g.group(1)}>"), text)

        out.append(
            ClassAnswer(
                class_id=msg.id,
                title=f"{msg.framework}: {fill(msg.cause).split(';')[0].split(':')[0][:80]}",
                cause=fill(msg.cause),
                fix=tuple(fill(x) for x in msg.fix),
                evidence=tuple(groups.items()),
                source=msg.source,
                line=line_of(f, re.escape(m.group(0)[:60])),
            )
        )
    return out


def harmless_warning(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """Known warnings that change nothing, when the text has no error of its own (an import
    error the warning itself reports, like xformers' missing Triton, is part of it)."""
    errors = [e for e in f.error_classes if not e.endswith("Warning")]
    if explained_missing(f, know) and not unexplained_missing(f, know):
        errors = [e for e in errors if e not in {"ModuleNotFoundError", "ImportError"}]
    elif has_error(f):
        return []
    if errors:
        return []
    body = body_of(f)
    out = []
    for h in know.harmless:
        m = h.pattern.search(body)
        if m is None:
            continue
        out.append(
            ClassAnswer(
                class_id="harmless-warning",
                title=f"harmless: {h.why.split(';')[0]}",
                cause=f"harmless: {h.why}, nothing to fix.",
                evidence=(("warning", h.id),),
                source=h.source,
                line=line_of(f, re.escape(m.group(0)[:60])),
                harmless=True,
            )
        )
    return out


_WRAPPERS = (
    (r"Engine core initialization failed", "vLLM"),
    (r"!!! Exception during processing !!!|Error occurred when executing", "ComfyUI"),
    (r"Scheduler hit an exception|Rank \d+ scheduler is dead", "SGLang"),
    (r"RuntimeError: Worker failed with error|WorkerProc failed to start", "vLLM"),
    (r"exited with code -?\d+|ChildFailedError", "a launcher"),
)


def app_wrapper(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """An application's own wrapper message, which says only that something failed."""
    for rx, app in _WRAPPERS:
        line = line_of(f, rx)
        if line:
            return [
                ClassAnswer(
                    class_id="app-wrapper-message",
                    title=f"{app}'s wrapper message: the cause is in the lines before it",
                    cause=(
                        f"'{line[:120]}' is {app}'s summary that a worker failed; it hides the "
                        "real error, which is printed earlier (the first Traceback or error of "
                        "the worker)."
                    ),
                    fix=(
                        "attn-doctor explain --log FULL_LOG   # the whole log, from the first "
                        "Traceback",
                    ),
                    evidence=(("wrapper", app),),
                    source="the application's own log format",
                    line=line,
                    before_phrases=False,
                )
            ]
    return []
