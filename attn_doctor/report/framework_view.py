"""The frameworks' lines of ``check``'s human report: the one decision in each one's knob."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from attn_doctor.backends import BACKENDS
from attn_doctor.diagnosis import Diagnosis

_STYLES = {"ready": "green", "install": "yellow", "blocked": "red"}


def render_framework_knobs(out: Console, diagnosis: Diagnosis) -> None:
    """One line per framework (and GPU): the exact knob, its status, how to get it."""
    if not diagnosis.frameworks:
        return
    out.print(Text("In your framework", style="bold underline"))
    for a in diagnosis.frameworks:
        where = f" (GPU {a.gpu_index})" if a.gpu_index is not None else ""
        version = f" {a.framework_version}" if a.framework_version else " (not installed)"
        out.print(
            Text.assemble(
                (f"{a.framework}{version}{where}: ", "bold"),
                (a.knob, "cyan"),
                "  ",
                (a.status, _STYLES[a.status]),
                f" — {BACKENDS[a.backend].title}; {a.way}",
            )
        )
        if a.alternatives:
            out.print(Text(f"    then: {', '.join(a.alternatives)}", style="dim"))
