"""Calls that do not fit the installed code: a function given a keyword it does not take or
the wrong number of arguments, a name a module or an object does not have. Pure functions of
the normalised text; ``extract_facts`` calls ``read_calls``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_Q = "['\"\u2018\u2019]"
_KWARG = re.compile(rf"([\w.<>]+)\(\) got an unexpected keyword argument {_Q}(\w+){_Q}")
_ARITY = re.compile(
    r"([\w.<>]+)\(\) (takes (?:from )?\d+ (?:to \d+ )?positional arguments? but \d+ "
    r"(?:were|was) given|missing \d+ required\s+(?:positional|keyword-only)\s+arguments?: [^\n]+)"
)
_OP_ARITY = re.compile(
    r"(\w+::\w+)\(\) (expected at most \d+ argument\(s\) but received \d+ argument\(s\)"
    r"|is missing value for argument '\w+')"
)
"""torch's schema check of a registered custom op called with another signature than the one
registered (torch/csrc/utils/python_arg_parser and the JIT's schema matching): the caller and
the op's registration come from different releases."""
_OBJ_ATTR = re.compile(rf"{_Q}(\w+){_Q} object has no attribute {_Q}(\w+){_Q}")
_VIEW = re.compile(r"shape '\[([\d, -]+)\]' is invalid for input of size (\d+)")
_SIZES = re.compile(
    r"size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\) at non-singleton "
    r"dimension (\d+)"
)
_VARLEN_ARG = re.compile(
    r"\b(cu_seqlens_[qk]|seqused_[qk]|cache_seqlens|block_table|cache_batch_idx|leftpad_k)"
    r" must (?:have (?:shape|dtype)|be (?:of )?(?:int32|torch\.int32))"
)
_UNDEFINED = re.compile(rf"(?:NameError: (?:global )?name|\bName) {_Q}(\w+){_Q} is not defined")


@dataclass(frozen=True, kw_only=True)
class CallFacts:
    bad_kwargs: tuple[tuple[str, str], ...] = ()
    """(callable, keyword) a call passed and the callable does not take."""
    bad_arity: tuple[tuple[str, str], ...] = ()
    """(callable, what Python said) when the number of arguments does not fit."""
    object_attrs: tuple[tuple[str, str], ...] = ()
    """(class, attribute) an object lacks ("'Qwen2FlashAttention2' object has no …")."""
    view_mismatch: tuple[tuple[int, ...], int] | None = None
    """(the shape a ``view``/``reshape`` asked for, the element count it got): "shape '[4, 897,
    64, 128]' is invalid for input of size 3674112"."""
    size_mismatch: tuple[int, int, int] | None = None
    """(size a, size b, dimension) of an elementwise op whose shapes do not broadcast: "The size
    of tensor a (32) must match the size of tensor b (8) at non-singleton dimension 1"."""
    varlen_args: tuple[str, ...] = ()
    """Variable-length arguments a kernel's checks refused ("cu_seqlens_q must have shape
    (batch_size + 1)"): the caller built them for another calling convention."""
    undefined_names: tuple[str, ...] = ()
    """Names a call used that are not defined (``NameError``): often a guarded import that
    failed or found no such name in the installed release."""


def read_calls(body: str) -> CallFacts:
    """The facts above, from the normalised text."""
    return CallFacts(
        bad_kwargs=tuple(dict.fromkeys((m.group(1), m.group(2)) for m in _KWARG.finditer(body))),
        bad_arity=tuple(
            dict.fromkeys(
                (m.group(1), m.group(2)) for rx in (_ARITY, _OP_ARITY) for m in rx.finditer(body)
            )
        ),
        object_attrs=tuple(
            dict.fromkeys((m.group(1), m.group(2)) for m in _OBJ_ATTR.finditer(body))
        ),
        undefined_names=tuple(dict.fromkeys(m.group(1) for m in _UNDEFINED.finditer(body))),
        view_mismatch=_view_mismatch(body),
        size_mismatch=(
            (int(sm.group(1)), int(sm.group(2)), int(sm.group(3)))
            if (sm := _SIZES.search(body))
            else None
        ),
        varlen_args=tuple(dict.fromkeys(m.group(1) for m in _VARLEN_ARG.finditer(body))),
    )


def _view_mismatch(body: str) -> tuple[tuple[int, ...], int] | None:
    m = _VIEW.search(body)
    if m is None:
        return None
    try:
        dims = tuple(int(x) for x in m.group(1).replace(" ", "").split(","))
    except ValueError:
        return None
    return dims, int(m.group(2))


_OTHER_DEVICE = (
    ("npu", re.compile(r"torch[-_]npu|\bAscend\b|\b910[BC]\d?\b|\bnpu:\d|device=.npu", re.I)),
    ("xpu", re.compile(r"\btorch\.xpu\b|intel_extension_for_pytorch|\bxpu:\d|device=.xpu", re.I)),
    ("mps", re.compile(r"\bMPS backend\b|\bmps:\d|device=.mps|torch\.backends\.mps", re.I)),
)
"""A non-CUDA accelerator the message's torch runs on: Ascend's torch-npu, Intel's XPU,
Apple's MPS."""


def read_other_device(body: str) -> str | None:
    """The non-CUDA accelerator the message names (``npu``, ``xpu``, ``mps``), or None."""
    return next((name for name, rx in _OTHER_DEVICE if rx.search(body)), None)
