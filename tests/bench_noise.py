"""A clock that injects noise, for bench's quality gate (imported by the bench child).

``noisy_clock`` is ``time.perf_counter`` plus an offset that grows, at every other pair of
readings, by four times the real time since the previous reading and 20 ms. The timing loop
reads the clock twice per call (before and after), so consecutive calls alternate between
their real time and five times it plus 20 ms: half the calls look far slower than the other
half, whatever the machine's load, and the spread (half the interquartile range over the
median) is far beyond the gate's bound at any number of repetitions. Deterministic: no seed,
no chance that a run happens to look steady.
"""

from __future__ import annotations

import time

_offset = 0.0
_last: float | None = None
_readings = 0


def noisy_clock() -> float:
    global _offset, _last, _readings  # noqa: PLW0603 - a clock is state; this one lives in a child
    now = time.perf_counter()
    if _last is not None and (_readings // 2) % 2 == 1:
        _offset += 4.0 * (now - _last) + 0.020
    _last = now
    _readings += 1
    return now + _offset
