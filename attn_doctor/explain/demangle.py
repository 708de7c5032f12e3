"""A minimal Itanium C++ demangler for the symbols torch extensions fail on.

``c++filt`` is often absent where the message was pasted, and the symbols that matter here are
simple: nested names (``_ZN3c105ErrorC2E…``, ``_ZNK2at10TensorBase8data_ptrIN3c104HalfEEEPT_v``),
``std::`` prefixes (``St``, ``NSt7__cxx11``) and plain names (``_Z5flashv``). Only the *name*
is decoded (the parameter list is left out); anything not understood returns None, never a
guess.
"""

from __future__ import annotations

import re

_STD_ABBREV = {
    "St": "std",
    "Sa": "std::allocator",
    "Sb": "std::basic_string",
    "Ss": "std::string",
    "Si": "std::istream",
    "So": "std::ostream",
    "Sd": "std::iostream",
}
_CTOR_DTOR = {"C1", "C2", "C3", "D0", "D1", "D2"}
_SYMBOL = re.compile(r"_Z[A-Za-z0-9_]+")


def _source_name(s: str, i: int) -> tuple[str, int] | None:
    m = re.match(r"\d+", s[i:])
    if m is None:
        return None
    n = int(m.group(0))
    start = i + len(m.group(0))
    if n <= 0 or start + n > len(s):
        return None
    return s[start : start + n], start + n


def _skip_template_args(s: str, i: int) -> int | None:
    """Skip an ``I…E`` template argument list (nested lists counted); None if unbalanced."""
    depth = 0
    while i < len(s):
        c = s[i]
        if c == "I":
            depth += 1
            i += 1
        elif c == "E":
            depth -= 1
            i += 1
            if depth == 0:
                return i
        elif c.isdigit():
            name = _source_name(s, i)
            if name is None:
                return None
            i = name[1]
        else:
            i += 1
    return None


def demangle(symbol: str) -> str | None:
    """``c10::Error::Error`` for ``_ZN3c105ErrorC2E…``; None when the form is not understood."""
    s = symbol.strip()
    if not s.startswith("_Z"):
        return None
    i = 2
    if s.startswith("N", i):
        i += 1
        while i < len(s) and s[i] in "KVr":  # cv-qualifiers of a member function
            i += 1
        parts: list[str] = []
        while i < len(s) and s[i] != "E":
            two = s[i : i + 2]
            if two in _STD_ABBREV:
                parts.append(_STD_ABBREV[two])
                i += 2
            elif two in _CTOR_DTOR:
                if not parts:
                    return None
                last = parts[-1].split("<")[0]
                parts.append(("~" if two[0] == "D" else "") + last)
                i += 2
            elif s[i] == "S" and (end := s.find("_", i)) > 0 and end - i <= 3:
                i = end + 1  # a substitution (S_, S0_…): the name it stands for is already read
            elif s[i] == "I":
                end_args = _skip_template_args(s, i)
                if end_args is None:
                    return None
                i = end_args
            elif s[i] == "L":  # internal linkage
                i += 1
            elif s[i].isdigit():
                name = _source_name(s, i)
                if name is None:
                    return None
                parts.append(name[0])
                i = name[1]
            else:
                return None
        if not parts or i >= len(s):
            return None
        return "::".join(parts)
    if s[i:].startswith("St"):
        name = _source_name(s, i + 2)
        return None if name is None else f"std::{name[0]}"
    name = _source_name(s, i)
    return None if name is None else name[0]


def symbols_in(text: str) -> list[str]:
    """The mangled symbols in ``text``, in order, without repeats."""
    return list(dict.fromkeys(_SYMBOL.findall(text)))


def symbol_owner(demangled: str) -> str | None:
    """The library that defines a symbol, from its namespace: torch for ``c10``/``at``/``torch``
    /``caffe2``, the C++ runtime for ``std`` (a libstdc++ or ABI mismatch), the driver's
    libcuda for the CUDA driver API (``cu`` and a capital), else None."""
    if demangled.startswith("nccl"):
        return "torch"  # torch's wheels bundle their NCCL; a missing nccl* symbol is torch's
    if len(demangled) > 2 and demangled[:2] == "cu" and demangled[2].isupper():
        return "libcuda"  # the CUDA driver API (cuGreenCtxStreamCreate): the driver's library
    top = demangled.split("::", 1)[0]
    if top in {"c10", "at", "torch", "caffe2"}:
        return "torch"
    if top == "std":
        return "libstdc++"
    if top in {"flash", "pytorch_flash"}:
        return "flash-attn"
    return None
