"""The frameworks' lines of ``check``'s human view: the one decision in each one's knob."""

from __future__ import annotations

from attn_doctor.backends import BACKENDS
from attn_doctor.diagnosis import Diagnosis
from attn_doctor.report.text import Painter, wrap

_STYLES = {"ready": "green", "install": "yellow", "blocked": "red"}


def framework_lines(
    diagnosis: Diagnosis, *, width: int, paint: Painter, verbose: bool = False
) -> list[str]:
    """Per framework (and GPU): its version, the status, and the exact knob on a line of its
    own (a command is never split). transformers' knob is the answer's first line already:
    it is repeated here, with every framework's fallbacks, only with ``verbose``."""
    shown = [a for a in diagnosis.frameworks if verbose or a.framework != "transformers"]
    if not shown:
        return []
    lines = [paint("In your framework", "bold")]
    for a in shown:
        where = f" (GPU {a.gpu_index})" if a.gpu_index is not None else ""
        version = f" {a.framework_version}" if a.framework_version else " (not installed)"
        head = f"{a.framework}{version}{where}: "
        lines += wrap(
            f"{paint(a.status, _STYLES[a.status])}, {BACKENDS[a.backend].title}; {a.way}",
            width,
            first=paint(head, "bold"),
            indent="  ",
        )
        lines.append(f"    {paint(a.knob, 'cyan')}")
        if verbose and a.alternatives:
            lines += wrap(", ".join(a.alternatives), width, first="  then: ", indent="        ")
    return lines
