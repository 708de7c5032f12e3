"""``attn_doctor.runtime``, the earlier name of ``attn_doctor.loadtime``, still works."""

from __future__ import annotations

import attn_doctor
from attn_doctor import loadtime


def test_the_old_name_hands_on_the_library_api() -> None:
    from attn_doctor import runtime
    from attn_doctor.runtime import best_attn_implementation, load_kwargs

    assert load_kwargs is loadtime.load_kwargs
    assert best_attn_implementation is attn_doctor.best_attn_implementation
    assert runtime.__all__ == loadtime.__all__
    assert all(getattr(runtime, name) is getattr(loadtime, name) for name in runtime.__all__)
