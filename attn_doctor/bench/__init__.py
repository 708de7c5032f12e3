"""attn-doctor bench: each backend's measured speed and memory, against the device's ceiling.

Importing this package imports no torch: the measuring happens in child processes
(``attn_doctor.bench.worker``), one per backend. ``load_bench_result(env)`` returns the cached
result of the last run on this machine (same GPU, same torch) for ``check``'s ranking.
"""

from __future__ import annotations

from attn_doctor.bench.cache import load_bench_result, save_bench_result
from attn_doctor.bench.results import BenchResult

__all__ = ["BenchResult", "load_bench_result", "save_bench_result"]
