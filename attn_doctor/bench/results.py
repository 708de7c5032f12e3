"""What a benchmark run produces: frozen facts, JSON round-trip with the facts codec.

``BenchResult`` is what ``attn-doctor bench --json`` puts in the envelope's ``result`` and what
the cache file (``attn_doctor.bench.cache``) stores per machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from attn_doctor.backends import BackendName
from attn_doctor.bench.shapes import BenchShape, Device, DType
from attn_doctor.bench.stats import TimingStats
from attn_doctor.errors import SnapshotError
from attn_doctor.facts import decode, encode

BENCH_SCHEMA_VERSION = 2
"""2: figures carry the quality gate's verdict (``problem``, ``attempts``). A version 1 run
(saved before the gate) still reads; its figures are gated when read as evidence."""


def ceiling_dtypes(device: Device, dtypes: tuple[DType, ...]) -> tuple[DType, ...]:
    """Which matmul rates a run measures. On a GPU, each dtype's tensor-core rate. On a CPU,
    fp32 only: CPUs without bf16/fp16 matrix units run a low-precision matmul far below their
    fp32 rate (0.4 vs ~20 GFLOP/s measured on an AVX2 EPYC), while fused attention kernels
    convert to fp32 inside — a bf16 "ceiling" would put them at thousands of per cent."""
    return ("fp32",) if device == "cpu" else dtypes


BenchMode = Literal["fwd", "fwd_bwd"]
PointStatus = Literal["ok", "oom", "error", "unsupported"]
SweepStatus = Literal["ok", "failed-check", "unavailable", "crashed", "timeout", "error"]
"""ok: the sweep ran to its end (single points may still have failed: see their status);
failed-check: a correctness check failed, nothing it covers was timed; unavailable: the backend
cannot be launched here (the reason says why); crashed/timeout/error: the child died, hung or
answered garbage; the points it finished before that are kept."""


@dataclass(frozen=True, kw_only=True)
class BenchPoint:
    """One backend at one shape."""

    shape: BenchShape
    status: PointStatus
    detail: str | None = None
    """Why the point has no figure (the exception's last line), when status is not ``ok``."""
    flops: float
    """flash-attn's FLOP count for this shape and mode (``attn_doctor.bench.flops``)."""
    time: TimingStats | None = None
    tflops: float | None = None
    """flops / median time."""
    tflops_q1: float | None = None
    """flops / the 75th-percentile time: the lower end of the middle half."""
    tflops_q3: float | None = None
    """flops / the 25th-percentile time: the upper end of the middle half."""
    ceiling_fraction: float | None = None
    """tflops / this run's measured matmul TFLOP/s at the same dtype."""
    problem: str | None = None
    """Why the figure failed the quality gate (``attn_doctor.bench.quality``) after its
    re-measurements: shown as unreliable, never saved or ranked by. None: it passed."""
    attempts: int = 1
    """Timed loops it took (the first, and re-measurements while the gate failed)."""
    peak_memory_bytes: int | None = None
    """Memory one call allocates at its peak, over what its inputs already hold (CUDA:
    ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``); None on CPU."""
    memory_note: str | None = None
    """Why peak memory is unknown."""


@dataclass(frozen=True, kw_only=True)
class CorrectnessCheck:
    """The quick check a backend must pass before it is timed."""

    passed: bool
    unsupported: bool = False
    """The backend has no kernel for this case (e.g. torch's flash kernel and fp32): its
    points there are ``unsupported``, which is not a failed check."""
    method: str
    """Which check ran: verify's kernel check, or bench's compare against SDPA math."""
    shape: BenchShape | None = None
    max_abs_error: float | None = None
    tolerance: float | None = None
    detail: str | None = None


@dataclass(frozen=True, kw_only=True)
class BackendSweep:
    """One backend's whole sweep, run in its own child process."""

    backend: BackendName
    status: SweepStatus
    detail: str | None = None
    checks: tuple[CorrectnessCheck, ...] = ()
    """verify's kernel check first, then bench's own at each (dtype, head dim, mask) timed."""
    points: tuple[BenchPoint, ...] = ()
    seconds: float | None = None
    stderr_tail: str | None = None
    """The child's last stderr lines when it crashed, timed out or failed."""


@dataclass(frozen=True, kw_only=True)
class GpuSpec:
    """A GPU's datasheet figure (``wheels_index/gpu_specs.toml``)."""

    key: str
    name: str
    dense_tflops_fp16: float
    dense_tflops_bf16: float | None
    """None where the GPU has no bf16 tensor cores (V100, T4)."""
    source: str
    verified: bool
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class Ceiling:
    """This device's measured dense matmul rate at one dtype, and the datasheet figure."""

    dtype: DType
    size: int
    """Square matrices n×n·n×n."""
    status: Literal["ok", "error"]
    detail: str | None = None
    time: TimingStats | None = None
    tflops: float | None = None
    problem: str | None = None
    """Why this ceiling cannot be judged by (its spread, or above the datasheet rate): then
    only the datasheet rate bounds the points."""
    attempts: int = 1
    datasheet: GpuSpec | None = None
    datasheet_tflops: float | None = None
    """The datasheet's dense figure at this dtype (sparse figures are 2× and not used)."""


@dataclass(frozen=True, kw_only=True)
class BenchRecommendation:
    """The fastest backend that passed its check, from this run's measurements."""

    backend: BackendName
    attn_implementation: str | None
    reason: str
    geomean_tflops: float
    """Geometric mean of its TFLOP/s over the shapes every candidate completed."""
    wins: int
    """Shapes at which it was the fastest."""
    shapes: int
    speedup_vs_eager: float | None = None
    """Geometric-mean time ratio eager / this backend over the common shapes."""
    runner_up: BackendName | None = None
    ranking: tuple[tuple[BackendName, float], ...] = ()
    """Every compared backend with its geometric-mean TFLOP/s, fastest first: what ``check``
    can rank by (backends not compared — fewer shapes completed — are absent)."""


@dataclass(frozen=True, kw_only=True)
class BenchResult:
    """A whole ``attn-doctor bench`` run on one device."""

    schema_version: int = BENCH_SCHEMA_VERSION
    created_at: str
    device: Device
    device_name: str
    """``torch.cuda.get_device_name()`` or the CPU's model name."""
    compute_capability: str | None = None
    torch_version: str
    torch_cuda: str | None = None
    """``torch.version.cuda``."""
    cache_key: str
    mode: BenchMode
    reps: int
    ops_source: str
    """Which adapters called the backends (verify's ``ops`` or bench's own fallback)."""
    ceilings: tuple[Ceiling, ...] = ()
    sweeps: tuple[BackendSweep, ...] = ()
    recommendation: BenchRecommendation | None = None
    notes: tuple[str, ...] = ()
    sdpa_kernel: BackendName | None = None
    """The kernel SDPA's default dispatch picked on this device (``torch._fused_sdp_choice``
    for bf16/fp32 causal inputs of head dim 128): what the ``sdpa`` row ran."""

    @property
    def unreliable(self) -> int:
        """Figures that failed the quality gate."""
        return sum(
            p.status == "ok" and p.problem is not None for s in self.sweeps for p in s.points
        )

    def ceiling(self, dtype: DType) -> Ceiling | None:
        for c in self.ceilings:
            if c.dtype == dtype:
                return c
        return None

    def ceiling_for(self, dtype: DType) -> Ceiling | None:
        """The ceiling points of this dtype are measured against: the same dtype's on a GPU;
        on a CPU always fp32's (see ``ceiling_dtypes``)."""
        return self.ceiling("fp32" if self.device == "cpu" else dtype)

    def sweep(self, backend: BackendName) -> BackendSweep | None:
        for s in self.sweeps:
            if s.backend == backend:
                return s
        return None

    def to_dict(self) -> dict[str, Any]:
        return encode(self)  # type: ignore[return-value]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: object) -> BenchResult:
        """Decode; raises ``SnapshotError`` naming the bad field or a newer schema."""
        if not isinstance(data, dict):
            raise SnapshotError("bench result: expected a JSON object")
        version = data.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise SnapshotError("bench result: schema_version is missing or not valid")
        if version > BENCH_SCHEMA_VERSION:
            raise SnapshotError(
                f"bench result: schema_version {version} is newer than this attn-doctor "
                f"understands ({BENCH_SCHEMA_VERSION})"
            )
        return decode(cls, data, "bench")
