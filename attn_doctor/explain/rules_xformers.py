"""xformers' "No operator found": each operator it tried lists why it refused the inputs. When
every operator refused for the same kind of reason, that reason is the cause (the GPU, the
dtype, the head dim, a feature, Triton missing); when they differ, the general answer stays."""

from __future__ import annotations

import re

from attn_doctor.explain.answer import ClassAnswer, body_of, line_of
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.knowledge import Knowledge

_HEADER = re.compile(r"`([\w@.+-]+)` is not supported because:")
"""One operator's refusal header, its reasons after it up to the next header (xformers/ops/fmha/
dispatch.py formats NotImplementedError this way, read at v0.0.35). Pasted text may join the
lines, so the headers, not the line breaks, divide the reasons."""


def _sections(body: str) -> list[tuple[str, str]]:
    parts = _HEADER.split(body)
    out = []
    for i in range(1, len(parts) - 1, 2):
        reasons = parts[i + 1]
        if i + 2 >= len(parts):  # the last operator: its reasons end at a blank line or fence
            reasons = re.split(r"\n\s*\n|```", reasons, maxsplit=1)[0][:600]
        out.append((parts[i], reasons))
    return out


_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("device", re.compile(r"device=(?:cpu|mps|xpu)\b")),
    ("built", re.compile(r"operator wasn't built|xFormers wasn't build with CUDA support")),
    ("triton", re.compile(r"triton is not available|requires (?:a )?(?:recent )?triton", re.I)),
    (
        "gpu",
        re.compile(
            r"requires device with capability|requires NVidia GPU with sm\d+"
            r"|bf16 is only supported on A100\+ GPUs|only supported on (?:sm|SM)"
        ),
    ),
    ("dtype", re.compile(r"dtype=torch\.\w+ \(supported: ")),
    (
        "head",
        re.compile(
            r"query\.shape\[-1\] % \d+ != 0|Embed dim \d+ not supported|embed per head"
            r"|max\(query\.shape\[-1\], value\.shape\[-1\]\) > \d+|head-dim \(\d+\) must be"
        ),
    ),
    ("feature", re.compile(r"attn_bias type is|dropout > 0\.0|unsupported attn_bias|has_dropout")),
)
"""Kinds of reason, each to the class it names, in the order they decide: an operator not built
(or built for another torch) refuses whatever the inputs, so it comes before the inputs' own."""

_ANSWERS = {
    "gpu": ("gpu-outside-backend-range", "this GPU is outside the range its kernels are built for"),
    "dtype": ("dtype-unsupported", "the tensors' dtype is one its kernels do not take"),
    "head": ("head-dim-unsupported", "the head dim is one its kernels do not take"),
    "triton": ("backend-dependency-missing", "Triton, which its Triton kernels need, is missing"),
    "built": ("xformers-operator-not-built", "its operators were not built for CUDA"),
    "feature": ("backend-feature-unsupported", "the call uses a feature its kernels lack"),
}
_FIXES = {
    "gpu": 'use torch SDPA for this model (attn_implementation="sdpa"; in a web UI, '
    "--opt-sdp-attention) or an xformers build for this GPU (attn-doctor install xformers)",
    "dtype": "run in float16/bfloat16 (load the model with dtype=torch.float16, or autocast)",
    "head": "use torch SDPA for this model, whose math kernel takes any head dim",
    "triton": "pip install the Triton torch pins (attn-doctor check names it)",
    "built": "attn-doctor install xformers   # a build with CUDA kernels for this torch",
    "feature": "drop the feature for this call (the mask type or dropout), or use torch SDPA",
}


def xformers_no_operator_reason(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """The reason every operator of xformers' dispatch shares, as its class. CPU tensors are
    the xformers-cpu-tensors entry's."""
    body = body_of(f)
    if "No operator found for" not in body or re.search(
        r"can't load C\+\+/CUDA extensions|xFormers was built for", body
    ):
        return []  # xformers' own warning that it was built for another torch says why
    sections = _sections(body)
    if not sections:
        return []
    shared: set[str] | None = None
    for _op, reasons in sections:
        if not reasons.strip():
            continue  # the text's repeated lines are read once: its reasons were the same
        kinds = {k for k, rx in _KINDS if rx.search(reasons)}
        shared = kinds if shared is None else shared & kinds
    if not shared or "device" in shared:
        return []  # no common kind, or CPU tensors (xformers' own entry answers it)
    kind = next(k for k, _ in _KINDS if k in shared)
    class_id, why = _ANSWERS[kind]
    ops = ", ".join(op for op, _ in sections)
    return [
        ClassAnswer(
            class_id=class_id,
            title=f"xformers found no operator: {why}",
            cause=(
                f"memory_efficient_attention tried each operator it has ({ops}), and every one "
                f"refused these inputs for the same reason: {why}."
            ),
            fix=(_FIXES[kind],),
            evidence=(("operators", ops), ("shared reason", kind)),
            source=(
                "xformers/ops/fmha/dispatch.py ('No operator found for … `op` is not supported "
                "because: …') and each operator's not_supported_reasons (common.py, cutlass.py, "
                "flash.py, flash3.py, triton_splitk.py), read at v0.0.35 and ce4f89d5"
            ),
            line=line_of(f, r"No operator found for"),
        )
    ]
