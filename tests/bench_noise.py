"""A clock that injects noise, for bench's quality gate (imported by the bench child).

``noisy_clock`` is ``time.perf_counter`` plus an offset that grows by a random 0–20 ms at each
reading: every timed call then looks 0–20 ms slower than it was, at random, so the per-call
times spread far beyond any bound while staying positive. Seeded: the same run gives the
same noise.
"""

from __future__ import annotations

import random
import time

_random = random.Random(20)
_offset = 0.0


def noisy_clock() -> float:
    global _offset  # noqa: PLW0603 - a clock is state by nature; this one lives in a child
    _offset += _random.uniform(0.0, 0.020)
    return time.perf_counter() + _offset
