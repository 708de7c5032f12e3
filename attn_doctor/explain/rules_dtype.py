"""A dtype an attention kernel does not take: the dtypes an upstream wording states, the
dtypes a failed assertion in the code checks for, or fp32 inputs to a half-precision-only
backend's record."""

from __future__ import annotations

import re

from attn_doctor.explain.answer import ClassAnswer, backends_in, body_of, line_of
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.knowledge import Knowledge

_ASSERTED_HALF = re.compile(
    r"^\s*assert\b[^\n]*\.dtype\s*(?:in\s*[\[(]\s*torch\.(?:float16|half|bfloat16)\s*,"
    r"\s*torch\.(?:float16|half|bfloat16)\s*[\])]|==\s*torch\.(?:float16|half|bfloat16)\b)",
    re.M,
)
"""An assertion that the tensors are half precision (``assert qkv.dtype in [torch.float16,
torch.bfloat16]``, flash-attn's modules/mha.py and model code copied from it)."""


_CPU_HALF = re.compile(
    r"[\"'`](?P<op>(?:baddbmm|bmm|softmax|_softmax|log_softmax)\w*?)[\"'`] not implemented for "
    r"[\"'`](?P<dtype>Half|BFloat16)[\"'`]"
)
"""torch's dispatch error for a kernel with no half-precision variant, named for one of the
ops the math attention path runs (q·kᵀ as baddbmm/bmm, then softmax): its CPU kernels
("baddbmm_with_gemm", "softmax_lastdim_kernel_impl"). CUDA ops are named with ``cuda``."""


def dtype_unsupported(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A dtype the kernel does not take: the dtypes an upstream wording states (or the one it
    reports refusing), else fp32 inputs to a half-precision-only backend's record."""
    if (stated := _stated_dtypes(f)) is not None:
        return [stated]
    if (asserted := _asserted_half(f)) is not None:
        return [asserted]
    if (cpu_half := _cpu_half(f)) is not None:
        return [cpu_half]
    body = body_of(f)
    if "fp32" not in f.dtypes or not re.search(r"only supports? fp16 and bf16|dtype|Float", body):
        return []
    for name in backends_in(f):
        b = know.backend(name)
        if b is None or not b.dtypes or "fp32" in b.dtypes:
            continue
        return [
            ClassAnswer(
                class_id="dtype-unsupported",
                title=f"{name} does not take fp32 inputs",
                cause=(
                    f"{name}'s kernels take {' and '.join(b.dtypes)} only; the tensors (or the "
                    "model) are float32."
                ),
                fix=("load the model with dtype=torch.<half_dtype> (or cast q, k, v to it)",),
                evidence=(("dtype", "fp32"), ("backend", name)),
                source=f"wheels_index/backends.toml {name}: dtypes",
                line=line_of(f, r"fp16|bf16|dtype|float32"),
                before_phrases=False,
            )
        ]
    return []


def _stated_dtypes(f: TextFacts) -> ClassAnswer | None:
    up = f.upstream
    if not up.refusal or not (up.dtypes_allowed or up.dtypes_seen) or up.required is not None:
        return None  # a dtype refused for the GPU (bf16 before Ampere) is the GPU's range
    got = [d for d in up.dtypes_seen if d not in up.dtypes_allowed]
    named = backends_in(f) or ([up.backend] if up.backend else [])
    who = named[0] if named else "the kernel"
    takes = " and ".join(up.dtypes_allowed) if up.dtypes_allowed else "other dtypes"
    return ClassAnswer(
        class_id="dtype-unsupported",
        title=f"{who} does not take {got[0] if got else 'these'} inputs",
        cause=(
            f"{who} takes {takes} only (as its message says)"
            + (f"; the tensors are {', '.join(got)}." if got else "; the tensors are not.")
        ),
        fix=(
            "load the model with dtype=torch.bfloat16 (torch.float16 before Ampere), or cast "
            "q, k, v to it before the call",
            'or attn_implementation="sdpa", which takes float32',
        ),
        evidence=(("takes", takes), *((("got", got[0]),) if got else ())),
        source="; ".join(up.sources),
        line=line_of(f, r"dtype|fp16|bf16|float16|bfloat16|data type"),
    )


def _asserted_half(f: TextFacts) -> ClassAnswer | None:
    """The code asserts its q/k/v are fp16 or bf16 before a half-precision-only kernel, and
    the assertion failed: the tensors are of another dtype (float32, most often: a model
    loaded or trained without half precision)."""
    if "AssertionError" not in f.error_classes or (m := _ASSERTED_HALF.search(body_of(f))) is None:
        return None
    return ClassAnswer(
        class_id="dtype-unsupported",
        title="the attention code takes fp16 or bf16 only; the tensors are not",
        cause=(
            "the failed assertion checks that the attention inputs are float16 or bfloat16, as "
            "the half-precision kernel after it (flash-attn's, here or in copied model code) "
            "needs; the tensors are of another dtype, float32 most often: the model was loaded "
            "or trained without half precision."
        ),
        fix=(
            "load the model with torch_dtype=torch.bfloat16 (torch.float16 before Ampere), or "
            "train with bf16/fp16 mixed precision (--bf16 / --fp16)",
            'or attn_implementation="sdpa", which takes float32',
        ),
        evidence=(("assertion", m.group(0).strip()[:120]),),
        source=(
            "the failed assertion in the message; flash-attn's modules/mha.py asserts "
            "qkv.dtype in [torch.float16, torch.bfloat16] (read on main)"
        ),
        line=line_of(f, r"assert\b[^\n]*\.dtype"),
    )


def _cpu_half(f: TextFacts) -> ClassAnswer | None:
    """The math attention path ran on the CPU in half precision, and this torch's CPU kernel
    for one of its ops has no such variant: the tensors were never moved to the GPU (or there
    is none), while the model or the inputs were made float16/bfloat16 for it."""
    m = _CPU_HALF.search(body_of(f))
    if m is None or "cuda" in m.group("op").lower():
        return None
    dtype = "fp16" if m.group("dtype") == "Half" else "bf16"
    return ClassAnswer(
        class_id="dtype-unsupported",
        title=f"attention ran on the CPU in {dtype}, which this torch's {m.group('op')} lacks",
        cause=(
            f"{m.group('op')} (the q·kᵀ or softmax step of the math attention) has no "
            f"{m.group('dtype')} kernel on the CPU in this torch; the attention ran on the CPU "
            f"with {dtype} tensors: the model or inputs were never moved to the GPU, or the "
            "machine has none, while the code assumed one."
        ),
        fix=(
            'move the model and inputs to the GPU (model.to("cuda"); q, k, v .to("cuda"))',
            "or, on the CPU, use torch.float32",
        ),
        evidence=(("op", m.group("op")), ("dtype", dtype), ("device", "cpu")),
        source=(
            "torch's dispatch error for a kernel without that dtype (the op named is a CPU kernel)"
        ),
        line=line_of(f, re.escape(m.group(0)[:60])),
    )
