"""Classes read from recorded wordings: framework messages (recorded from upstream source,
with the framework's own fix), harmless warnings, and application wrapper messages."""

from __future__ import annotations

import re

from attn_doctor.explain.answer import (
    ATTENTION_NAME,
    ClassAnswer,
    backends_in_text,
    body_of,
    explained_missing,
    has_error,
    line_of,
    unexplained_missing,
)
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.knowledge import Knowledge


def _headline(cause: str, width: int = 80) -> str:
    """The cause's first clause, cut at a word (with an ellipsis) when longer than ``width``."""
    head = cause.split(";", maxsplit=1)[0].split(": ", maxsplit=1)[0].strip()
    if len(head) <= width:
        return head
    return head[: head.rfind(" ", 0, width - 1)].rstrip(" ,(") + "…"


_VLLM_REASON = re.compile(r"Reasons?:\s*(?P<rest>[^\n]{0,600})")
_REASON_CLASSES = (
    (
        re.compile(r"compute capability|only supported on|not supported on (?:this device|SM|sm)"),
        "gpu-outside-backend-range",
    ),
    (re.compile(r"(?<!\w)dtype not supported"), "dtype-unsupported"),
    (re.compile(r"head_?size not supported|head(?:_| )?dim"), "head-dim-unsupported"),
)
"""vLLM's backend validation reasons (validate_configuration in its attention backends'
base class: 'compute capability not supported', 'dtype not supported', 'head_size not
supported', …) to the class each names; a feature refused ('MLA not supported', 'attention
sinks not supported') stays the message's own answer, which names the setting to change."""


def _reason_class(body: str) -> tuple[str, str] | None:
    """The class every reason vLLM lists names (one backend's, or all backends' alike), with
    the reasons; None when they differ or an import error is among them (read as that)."""
    m = _VLLM_REASON.search(body)
    if m is None or re.search(r"Error\b|No module named", m.group("rest")):
        return None
    reasons = re.findall(r"'([^']{3,80})'|\[([^\]\[']{3,80})\]", m.group("rest"))
    texts = [a or b for a, b in reasons]
    classes = {next((cid for rx, cid in _REASON_CLASSES if rx.search(t)), None) for t in texts}
    if len(classes) != 1 or None in classes:
        return None
    return classes.pop() or "", "; ".join(dict.fromkeys(texts))


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

        answer, said, cause = msg.answer or msg.id, "", fill(msg.cause)
        fix = tuple(fill(x) for x in msg.fix)
        # the reasons the framework lists name the class: the GPU, the dtype, the head size
        if msg.reasons and (named := _reason_class(body)):
            answer, said = named[0], f" Here the reason is: {named[1]}."
        elif msg.gpu_floor is not None and f.sms and max(f.sms) < msg.gpu_floor:
            # the path it reports needs a newer GPU than the one the message shows
            answer = "gpu-outside-backend-range"
            cause = (
                f"{msg.framework} says '{m.group(0)[:100]}': the path it needs runs on "
                f"sm_{msg.gpu_floor} and newer, and this GPU is sm_{max(f.sms)}, so its kernels "
                "do not load here; installing them would not make it run"
            )
            fix = (
                f"run on a GPU of sm_{msg.gpu_floor} or newer, or use the framework's path "
                "without flash attention (unsharded, or another serving stack)",
            )
        out.append(
            ClassAnswer(
                class_id=answer,
                title=f"{msg.framework}: {_headline(cause)}",
                cause=cause + said,
                fix=fix,
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
    out = [
        ClassAnswer(
            class_id="harmless-warning",
            title=f"harmless: {why.split(';')[0]}",
            cause=f"harmless: {why}, nothing to fix.",
            evidence=(("message", f"{project}'s own"),),
            source=source,
            line=line_of(f, re.escape(text[:60])),
            harmless=True,
        )
        for project, why, source, text in f.upstream.harmless
    ]
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
    return out[:1]  # the most specific entry (upstream wordings, then the list's order)


_ATTENTION_NEWS = re.compile(
    ATTENTION_NAME.pattern + r"|\bMLA\b|\bFA ?(?:version )?\d\b|torch_native|\bbackend\b", re.I
)
"""Words of attention news in a notice: the backends, MLA, "FA version 4", a serving framework's
"backend" (SGLang's torch_native)."""


def fallback_notice(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A log whose only attention news is a notice: the program falls back, keeps a default, or
    runs without an optional backend. Nothing failed; answered only when no error is in the
    text and no recorded harmless warning says more."""
    if not f.notices or has_error(f) or any(not e.endswith("Warning") for e in f.error_classes):
        return []
    if harmless_warning(f, know):
        return []
    line = f.notices[0]
    named = backends_in_text(line)
    if not named and not _ATTENTION_NEWS.search(line):
        return []  # another library's notice (a quantization kernel's): not attention news
    missing = re.search(r"not (?:installed|available)", line, re.I)
    what = (
        f"{named[0]} is not installed or not usable, and the program runs without it"
        if missing and named
        else "the program uses another implementation for this step"
    )
    return [
        ClassAnswer(
            class_id="harmless-warning",
            title="harmless: a notice, not a failure",
            cause=(
                f"harmless: '{line[:140]}' is an {('INFO' if 'INFO' in line else 'WARNING')}-level "
                f"notice: {what}. Nothing failed, nothing to fix"
                + (f" (install {named[0]} if you want its speed)." if missing and named else ".")
            ),
            evidence=(("notice", line[:80]),),
            source="the message itself (a log line at INFO/WARNING level, no error in the text)",
            line=line,
            harmless=True,
        )
    ]


_WRAPPERS = (
    (r"Engine core initialization failed", "vLLM"),
    (r"!!! Exception during processing !!!|Error occurred when executing", "ComfyUI"),
    (r"Scheduler hit an exception|Rank \d+ scheduler is dead", "SGLang"),
    (r"RuntimeError: Worker failed with error|WorkerProc failed to start", "vLLM"),
    (r"exited with code -?\d+|ChildFailedError", "a launcher"),
)


_OWN_CAUSE = re.compile(
    r"OutOfMemoryError|CUDA out of memory|\(out of memory\)|NCCL error|ncclInternalError"
)
"""Errors whose cause is their own and outside attention (out of memory, NCCL): printed with
a wrapper's summary, the summary hides nothing."""


def _availability_assert(f: TextFacts) -> list[ClassAnswer]:
    """An application's own check that an attention package imported (``assert
    FLASH_ATTN_2_AVAILABLE``): the flag was set from an import the application wrapped in
    try/except, so the real import error was swallowed."""
    if not f.availability_asserts:
        return []
    flag = f.availability_asserts[0]
    backend = next(iter(backends_in_text(flag)), None)
    module = {"flash_attn_3": "flash_attn_interface", "flash_attn_4": "flash_attn.cute"}.get(
        backend or "", backend or "the package"
    )
    module = {"flash_attn_2": "flash_attn"}.get(module, module)
    return [
        ClassAnswer(
            # a flag naming a backend: that backend did not import, most often as not installed
            class_id="backend-not-installed" if backend else "app-wrapper-message",
            title=f"the application's check {flag} failed: {module} did not import",
            cause=(
                f"the application sets {flag} from an import it wraps in try/except, and asserts "
                "it when that attention path is used; the assertion only says the import "
                f"failed: {module} is not installed in this Python, or it is and does not import "
                "(built for another torch or CUDA). The import's own error, which the "
                "application did not print, says which."
            ),
            fix=(
                f'python -c "import {module}"   # prints the real import error',
                "attn-doctor check   # names what is wrong with the installed backends",
            ),
            evidence=(("flag", flag), *((("backend", backend),) if backend else ())),
            source="the application's own availability flag (the message shows the assertion)",
            line=line_of(f, rf"assert\s+{re.escape(flag)}"),
            before_phrases=False,
        )
    ]


def app_wrapper(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """An application's own wrapper message, which says only that something failed."""
    if found := _availability_assert(f):
        return found
    if _OWN_CAUSE.search(body_of(f)):
        return []  # the worker's error is in the text, and it is not an attention failure
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
