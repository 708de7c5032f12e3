"""A library's warnings during a backend's run are notes, never failures.

Where warnings are errors (pytest's ``filterwarnings = error``, ``PYTHONWARNINGS=error`` in the
user's environment), a ``DeprecationWarning`` that torch or transformers issues inside a
kernel or model run would raise, and verify would report the backend as broken. On an H200
with torch 2.11 this happened to FlexAttention's model check: ``_compile`` warns that it will
be removed, during the backward pass. ``recorded_warnings`` records every warning issued inside
it whatever the filters in force, and ``warning_notes`` turns them into short notes that the
result carries.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

MAX_NOTES = 5
"""At most this many distinct warnings per result: a chatty library does not bury the report."""


@contextmanager
def recorded_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record every warning issued inside the block, none raised, none printed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def warning_notes(caught: Sequence[warnings.WarningMessage]) -> tuple[str, ...]:
    """``"warning: DeprecationWarning: first line (module.py:12)"``, each text once, in order."""
    notes: dict[str, None] = {}
    for w in caught:
        first = (str(w.message).strip().splitlines() or [""])[0][:200]
        where = f"{w.filename.replace(chr(92), '/').rsplit('/', 1)[-1]}:{w.lineno}"
        notes.setdefault(f"warning: {w.category.__name__}: {first} ({where})", None)
        if len(notes) == MAX_NOTES:
            break
    return tuple(notes)
