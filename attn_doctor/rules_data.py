"""The backend rules data (``wheels_index/*.toml``), loaded and validated once.

Four files feed the diagnosis:

- ``driver_cuda.toml``: NVIDIA driver minimums per CUDA release and per CUDA major (minor
  version compatibility), GPU families that need a minimum CUDA in the torch build, and the
  CUDA/ROCm variants each torch minor release ships.
- ``backends.toml``: what each attention backend needs (GPU generation, OS, dtypes, head dims,
  torch/CUDA) in its backend records, source-build and prebuilt-wheel thresholds, and the sources
  of every diagnosis rule.
- ``transformers.toml``: the ``attn_implementation`` values and the first transformers release
  accepting each, plus values that guides use but transformers rejects.
- ``sdpa_dispatch.toml``: what torch SDPA's default dispatch runs, per torch release
  (:mod:`attn_doctor.sdpa_data`; the rule is :func:`attn_doctor.planner.sdpa_rule.sdpa_dispatch`).

Every entry carries ``source`` and ``verified``; a malformed entry raises ``IndexDataError``
naming the file and the entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attn_doctor.backends import (
    BACKENDS_FILE,
    CUDA_RE,
    SUPPORTED_SCHEMA,
    BackendName,
    BackendRule,
    backend_name,
    parse_backend_records,
)
from attn_doctor.datafiles import Entry as _Entry
from attn_doctor.datafiles import check_schema, read_toml
from attn_doctor.datafiles import tables as _tables
from attn_doctor.errors import IndexDataError
from attn_doctor.sdpa_data import SDPA_FILE, SdpaRelease, parse_sdpa_releases
from attn_doctor.triton_data import TRITON_FILE, TritonPairing, parse_triton

DRIVER_FILE = "driver_cuda.toml"
TRANSFORMERS_FILE = "transformers.toml"

_DRIVER_RE = re.compile(r"^\d+(\.\d+){0,2}$")


def driver_key(version: str) -> tuple[int, ...]:
    """A driver version as a comparable tuple (``570.124.06`` -> ``(570, 124, 6)``).

    Raises ``ValueError`` for text that is not a dotted number.
    """
    text = version.strip()
    if not _DRIVER_RE.match(text):
        raise ValueError(f"not a driver version: {version!r}")
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def cuda_key(version: str) -> tuple[int, int]:
    """A CUDA ``major.minor`` (or ``major.minor.patch``) as ``(major, minor)``."""
    parts = version.strip().split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError as exc:
        raise ValueError(f"not a CUDA version: {version!r}") from exc


@dataclass(frozen=True, kw_only=True)
class DriverRelease:
    """Minimum driver for one CUDA minor release (its GA row in NVIDIA's Table 3)."""

    cuda: str
    label: str
    linux: str
    windows: str | None
    """None where NVIDIA lists N/A (CUDA 13.x on Windows)."""
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class MinorCompat:
    """Lowest driver that runs any build of a CUDA major (minor version compatibility)."""

    cuda_major: int
    linux: str
    windows: str
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class ArchMinCuda:
    """GPU architectures whose kernels need a torch built with at least this CUDA."""

    sm_min: int
    sm_max: int
    family: str
    min_cuda: str
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class TorchVariants:
    """The CUDA and ROCm builds a torch minor release ships."""

    torch: str
    """``major.minor``."""
    cuda: tuple[str, ...]
    rocm: tuple[str, ...]
    python: str
    """PEP 440 specifier for the Python versions it ships for."""
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class SourceBuildMemory:
    """Memory needs of a flash-attn source build (its setup.py's own MAX_JOBS rule)."""

    gb_per_nvcc_thread: int
    nvcc_threads_default: int
    ram_readme_gb: int
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class PrebuiltPython:
    """A conservative rule for which interpreters upstream flash-attn wheels exist."""

    python: str
    free_threaded: bool
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class AttnImplementation:
    """One transformers ``attn_implementation`` value and the releases accepting it."""

    value: str
    backend: BackendName
    first: str
    before_not: str | None
    removed: str | None
    """First release that no longer accepts it (None: still accepted)."""
    pattern: str | None
    """A regular expression for value families (Hub kernels ``org/repo[:kernel]``)."""
    source: str
    verified: bool

    def matches(self, value: str) -> bool:
        if self.pattern is not None:
            return re.search(self.pattern, value) is not None
        return value == self.value


@dataclass(frozen=True, kw_only=True)
class InvalidAttnImplementation:
    """A value guides recommend that transformers rejects, with the exact error."""

    value: str
    error: str
    recorded_with: str
    instead: str
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class Conflict:
    """Distributions that break each other when installed together."""

    packages: tuple[str, ...]
    reason: str
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class Rules:
    """Validated rules: driver table, backend requirements, transformers support."""

    releases: tuple[DriverRelease, ...]
    minor_compat: tuple[MinorCompat, ...]
    arch_min_cuda: tuple[ArchMinCuda, ...]
    torch_variants: tuple[TorchVariants, ...]
    backends: tuple[BackendRule, ...]
    source_build: SourceBuildMemory
    prebuilt_flash_attn: PrebuiltPython
    rule_sources: tuple[tuple[str, tuple[str, ...]], ...]
    conflicts: tuple[Conflict, ...]
    attn_implementations: tuple[AttnImplementation, ...]
    invalid_attn_implementations: tuple[InvalidAttnImplementation, ...]
    triton: TritonPairing | None = None
    """The triton each torch release pins (triton.toml)."""
    sdpa_releases: tuple[SdpaRelease, ...] = ()
    """What SDPA's default dispatch runs on NVIDIA GPUs, per torch release (sdpa_dispatch.toml)."""

    def backend(self, name: BackendName) -> BackendRule:
        for rule in self.backends:
            if rule.name == name:
                return rule
        raise KeyError(name)  # load_rules guarantees every backend has a rule

    def release(self, cuda: str) -> DriverRelease | None:
        """The driver row for this CUDA ``major.minor``, if the table has one."""
        want = cuda_key(cuda)
        for row in self.releases:
            if cuda_key(row.cuda) == want:
                return row
        return None

    def compat(self, cuda_major: int) -> MinorCompat | None:
        for row in self.minor_compat:
            if row.cuda_major == cuda_major:
                return row
        return None

    def variants(self, torch_minor: str) -> TorchVariants | None:
        for row in self.torch_variants:
            if row.torch == torch_minor:
                return row
        return None

    def sources_for(self, rule_id: str) -> tuple[str, ...]:
        for key, sources in self.rule_sources:
            if key == rule_id:
                return sources
        return ()

    def attn_implementation(self, backend: BackendName) -> AttnImplementation | None:
        """The current (not removed) attn_implementation value that selects this backend."""
        for entry in self.attn_implementations:
            if entry.backend == backend and entry.removed is None and "|" not in entry.value:
                return entry
        return None


# --- loading and validation ------------------------------------------------------------------


def _load_driver(
    doc: dict[str, Any],
) -> tuple[
    tuple[DriverRelease, ...],
    tuple[MinorCompat, ...],
    tuple[ArchMinCuda, ...],
    tuple[TorchVariants, ...],
]:
    file = DRIVER_FILE
    check_schema(doc, file, SUPPORTED_SCHEMA)
    releases = []
    for e in _tables(doc, file, "release"):
        source, verified = e.provenance()
        releases.append(
            DriverRelease(
                cuda=e.str_("cuda", pattern=CUDA_RE),
                label=e.str_("label"),
                linux=e.str_("linux", pattern=_DRIVER_RE),
                windows=e.opt_str("windows", pattern=_DRIVER_RE),
                source=source,
                verified=verified,
            )
        )
    compat = []
    for e in _tables(doc, file, "minor_compat"):
        source, verified = e.provenance()
        compat.append(
            MinorCompat(
                cuda_major=e.int_("cuda_major"),
                linux=e.str_("linux", pattern=_DRIVER_RE),
                windows=e.str_("windows", pattern=_DRIVER_RE),
                source=source,
                verified=verified,
            )
        )
    archs = []
    for e in _tables(doc, file, "arch_min_cuda"):
        source, verified = e.provenance()
        archs.append(
            ArchMinCuda(
                sm_min=e.int_("sm_min"),
                sm_max=e.int_("sm_max"),
                family=e.str_("family"),
                min_cuda=e.str_("min_cuda", pattern=CUDA_RE),
                source=source,
                verified=verified,
            )
        )
    variants = []
    for e in _tables(doc, file, "torch_variants"):
        source, verified = e.provenance()
        cuda = e.strs("cuda")
        for c in cuda:
            if not CUDA_RE.match(c):
                raise e.fail("cuda", f"{c!r} is not a CUDA major.minor")
        variants.append(
            TorchVariants(
                torch=e.str_("torch", pattern=CUDA_RE),
                cuda=cuda,
                rocm=e.strs("rocm"),
                python=e.specifier("python"),
                source=source,
                verified=verified,
            )
        )
    return tuple(releases), tuple(compat), tuple(archs), tuple(variants)


def _load_backends(
    doc: dict[str, Any],
) -> tuple[
    tuple[BackendRule, ...],
    SourceBuildMemory,
    PrebuiltPython,
    tuple[tuple[str, tuple[str, ...]], ...],
    tuple[Conflict, ...],
]:
    file = BACKENDS_FILE
    check_schema(doc, file, SUPPORTED_SCHEMA)
    rules = parse_backend_records(doc)

    builds = doc.get("source_build")
    sb = _Entry(
        builds.get("flash_attn_2") if isinstance(builds, dict) else None,
        f"{file}: [source_build.flash_attn_2]",
    )
    source, verified = sb.provenance()
    source_build = SourceBuildMemory(
        gb_per_nvcc_thread=sb.int_("gb_per_nvcc_thread"),
        nvcc_threads_default=sb.int_("nvcc_threads_default"),
        ram_readme_gb=sb.int_("ram_readme_gb"),
        source=source,
        verified=verified,
    )
    if source_build.gb_per_nvcc_thread == 0 or source_build.nvcc_threads_default == 0:
        raise sb.fail("gb_per_nvcc_thread", "must be positive")

    pre = doc.get("prebuilt")
    pb = _Entry(
        pre.get("flash_attn_2") if isinstance(pre, dict) else None,
        f"{file}: [prebuilt.flash_attn_2]",
    )
    source, verified = pb.provenance()
    prebuilt = PrebuiltPython(
        python=pb.specifier("python"),
        free_threaded=pb.bool_("free_threaded"),
        source=source,
        verified=verified,
    )

    conflicts = []
    for e in _tables(doc, file, "conflict"):
        source, verified = e.provenance()
        packages = e.strs("packages")
        if len(packages) < 2:
            raise e.fail("packages", "a conflict needs at least two distributions")
        conflicts.append(
            Conflict(packages=packages, reason=e.str_("reason"), source=source, verified=verified)
        )

    raw_sources = doc.get("rule_sources")
    if not isinstance(raw_sources, dict) or not raw_sources:
        raise IndexDataError(f"{file}: [rule_sources] is missing")
    rule_sources = []
    for rule_id, sources in sorted(raw_sources.items()):
        if (
            not isinstance(sources, list)
            or not sources
            or not all(isinstance(s, str) and s for s in sources)
        ):
            raise IndexDataError(
                f"{file}: [rule_sources].{rule_id}: expected a non-empty list of strings"
            )
        rule_sources.append((rule_id, tuple(sources)))
    return tuple(rules), source_build, prebuilt, tuple(rule_sources), tuple(conflicts)


def _load_transformers(
    doc: dict[str, Any],
) -> tuple[tuple[AttnImplementation, ...], tuple[InvalidAttnImplementation, ...]]:
    file = TRANSFORMERS_FILE
    check_schema(doc, file, SUPPORTED_SCHEMA)
    values = []
    for e in _tables(doc, file, "attn_implementation"):
        source, verified = e.provenance()
        pattern = e.opt_str("pattern")
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise e.fail("pattern", f"not a regular expression ({exc})") from exc
        values.append(
            AttnImplementation(
                value=e.str_("value"),
                backend=backend_name(e, "backend", e.str_("backend")),
                first=e.version("first") or "",
                before_not=e.version("before_not", optional=True),
                removed=e.version("removed", optional=True),
                pattern=pattern,
                source=source,
                verified=verified,
            )
        )
    invalid = []
    for e in _tables(doc, file, "invalid"):
        source, verified = e.provenance()
        invalid.append(
            InvalidAttnImplementation(
                value=e.str_("value"),
                error=e.str_("error"),
                recorded_with=e.version("recorded_with") or "",
                instead=e.str_("instead"),
                source=source,
                verified=verified,
            )
        )
    return tuple(values), tuple(invalid)


def load_rules(directory: Path | None = None) -> Rules:
    """Read and validate the three rules files (from ``directory`` when given, for tests).

    Raises ``IndexDataError`` naming the file and the entry when anything is malformed.
    """
    releases, compat, archs, variants = _load_driver(read_toml(DRIVER_FILE, directory))
    backends, source_build, prebuilt, rule_sources, conflicts = _load_backends(
        read_toml(BACKENDS_FILE, directory)
    )
    values, invalid = _load_transformers(read_toml(TRANSFORMERS_FILE, directory))
    return Rules(
        releases=releases,
        minor_compat=compat,
        arch_min_cuda=archs,
        torch_variants=variants,
        backends=backends,
        source_build=source_build,
        prebuilt_flash_attn=prebuilt,
        rule_sources=rule_sources,
        conflicts=conflicts,
        attn_implementations=values,
        invalid_attn_implementations=invalid,
        sdpa_releases=parse_sdpa_releases(read_toml(SDPA_FILE, directory)),
        triton=parse_triton(read_toml(TRITON_FILE, directory)),
    )
