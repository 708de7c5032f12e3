"""The wheel index: what every source publishes and what it needs (data in ``wheels_index/``).

``load_index()`` is the only way in; it validates every entry and raises ``IndexDataError``
naming the bad one. ``attn_doctor.index.naming`` holds the file-name rules.
"""

from __future__ import annotations

from attn_doctor.index.load import load_index
from attn_doctor.index.records import Index

__all__ = ["Index", "load_index"]
