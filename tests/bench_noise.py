"""A clock that injects noise, for bench's quality gate (imported by the bench child).

``noisy_clock`` is ``time.perf_counter`` plus an offset that grows at each reading by a random
0–4 times the real time since the previous reading, plus a random 0–20 ms: every timed
interval then looks 1–5 times as long as it was, and up to 20 ms longer, at random. The spread
(half the interquartile range over the median) of a uniform 1–5 factor is about 33%, beyond
the gate's bound however long the timed calls take on a loaded machine, and the times stay
positive. Seeded: the same run gives the same noise.
"""

from __future__ import annotations

import random
import time

_random = random.Random(20)
_offset = 0.0
_last: float | None = None


def noisy_clock() -> float:
    global _offset, _last  # noqa: PLW0603 - a clock is state by nature; this one lives in a child
    now = time.perf_counter()
    if _last is not None:
        _offset += _random.uniform(0.0, 4.0) * (now - _last) + _random.uniform(0.0, 0.020)
    _last = now
    return now + _offset
