"""attn-doctor bench: each backend's measured speed and memory, against the device's ceiling.

Importing this package imports no torch: the measuring happens in child processes
(``attn_doctor.bench.worker``), one per backend. ``load_bench_result(env)`` returns the cached
result of the last run on this machine (same GPU, same torch) for ``check``'s ranking.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BenchResult", "load_bench_result", "save_bench_result"]


def __getattr__(name: str) -> Any:
    # Lazy: `check` reads the cache on its start-up path and must not pay for the result
    # types unless a cached result exists.
    if name in ("load_bench_result", "save_bench_result"):
        from attn_doctor.bench import cache

        return getattr(cache, name)
    if name == "BenchResult":
        from attn_doctor.bench.results import BenchResult

        return BenchResult
    raise AttributeError(name)
