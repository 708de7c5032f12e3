"""The wheel index: what every source publishes and what it needs (data in ``wheels_index/``).

``load_index()`` is the only way in; it validates every entry and raises ``IndexDataError``
naming the bad one. ``attn_doctor.index.naming`` holds the file-name rules.

The two names load lazily: importing one small module of this package (the frameworks' data,
read on ``check``'s path) does not load the whole index's record types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from attn_doctor.index.load import load_index
    from attn_doctor.index.records import Index

__all__ = ["Index", "load_index"]


def __getattr__(name: str) -> Any:
    if name == "load_index":
        from attn_doctor.index.load import load_index

        return load_index
    if name == "Index":
        from attn_doctor.index.records import Index

        return Index
    raise AttributeError(f"module 'attn_doctor.index' has no attribute {name!r}")
