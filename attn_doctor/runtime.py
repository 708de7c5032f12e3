"""``attn_doctor.runtime``: the earlier name of ``attn_doctor.loadtime``, kept for user code.

``from attn_doctor.runtime import load_kwargs`` (and every other name in
``attn_doctor.loadtime.__all__``) keeps working; new code imports ``attn_doctor.loadtime``.
Like that package, importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

from typing import Any

from attn_doctor import loadtime

__all__ = list(loadtime.__all__)


def __getattr__(name: str) -> Any:
    return getattr(loadtime, name)


def __dir__() -> list[str]:
    return sorted(__all__)
