"""The backend rules data (``wheels_index/*.toml``), loaded and validated once.

Three files feed the diagnosis:

- ``driver_cuda.toml``: NVIDIA driver minimums per CUDA release and per CUDA major (minor
  version compatibility), GPU families that need a minimum CUDA in the torch build, and the
  CUDA/ROCm variants each torch minor release ships.
- ``backends.toml``: what each attention backend needs (GPU generation, OS, dtypes, head dims,
  torch/CUDA), the ranking policy, source-build and prebuilt-wheel thresholds, and the sources
  of every diagnosis rule.
- ``transformers.toml``: the ``attn_implementation`` values and the first transformers release
  accepting each, plus values that guides use but transformers rejects.

Every entry carries ``source`` and ``verified``; a malformed entry raises ``IndexDataError``
naming the file and the entry.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

from attn_doctor.backends import BACKEND_NAMES, BackendName
from attn_doctor.datafiles import Entry as _Entry
from attn_doctor.datafiles import check_schema, read_toml
from attn_doctor.datafiles import tables as _tables
from attn_doctor.errors import IndexDataError
from attn_doctor.facts import GpuVendor, OsName

DRIVER_FILE = "driver_cuda.toml"
BACKENDS_FILE = "backends.toml"
TRANSFORMERS_FILE = "transformers.toml"
SUPPORTED_SCHEMA = 1

Vendor = str
"""``nvidia``, ``amd``, ``apple``, ``intel`` (GPU vendors) or ``cpu``."""
_VENDORS = (*get_args(GpuVendor), "cpu")
_OSES: tuple[str, ...] = get_args(OsName)
_DTYPES = ("fp64", "fp32", "fp16", "bf16", "fp8")
_DRIVER_RE = re.compile(r"^\d+(\.\d+){0,2}$")
_CUDA_RE = re.compile(r"^\d+\.\d+$")


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


InstallSource = Literal[
    "torch", "upstream-release", "pypi", "pytorch-index", "hub", "community", "source-build"
]
"""Where a backend's installs come from; ``torch``: built into torch, nothing to install."""
INSTALL_SOURCES: tuple[InstallSource, ...] = get_args(InstallSource)
VerifyKind = Literal["kernel", "model", "none"]
Accuracy = Literal["flash-attn-ratio", "published-error"]
"""How a kernel's output is judged: flash-attn's own rule (error at most twice the error of the
same computation in the input dtype, both against a float64 reference), or a quantised
kernel's published error figures (``max_rel_l1`` and ``min_cosine``)."""
RuntimeDevice = Literal["cuda", "cpu", "mps"]
ModelFlag = Literal[
    "supports_sdpa", "supports_flash_attn", "supports_flex_attn", "supports_attention_backend"
]
SdpaKernel = Literal["FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH"]


@dataclass(frozen=True, kw_only=True)
class VerifySpec:
    """How ``attn-doctor verify`` proves a backend."""

    kind: VerifyKind
    """``kernel``: a kernel launch against a reference; ``model``: a model forward only;
    ``none``: not verified by attn-doctor (e.g. fetched from the Hub at first use)."""
    cpu: bool
    """True when the kernel runs on CPU tensors (verified in CI)."""
    accuracy: Accuracy
    max_head_dim: int | None = None
    """Largest head dim the verify matrix uses (None: the backend's ``max_head_dim`` or 256)."""
    max_rel_l1: float | None = None
    min_cosine: float | None = None


@dataclass(frozen=True, kw_only=True)
class RuntimeSpec:
    """What the runtime selector checks before it returns this backend's attn_implementation."""

    devices: tuple[RuntimeDevice, ...]
    min_sm: int | None = None
    max_sm: int | None = None
    train_min_sm: int | None = None
    bf16_min_sm: int | None = None
    min_version: str | None = None
    dtypes: tuple[str, ...] = ()
    """Overrides the backend's ``dtypes`` for the selector (empty: the backend's)."""
    softcap: bool = True
    training_dropout: bool = True
    backward: bool = True
    """False for inference-only kernels (never offered when ``training=True``)."""
    model_flags: tuple[ModelFlag, ...] = ()
    auto: bool = True
    """False: valid to force, never chosen automatically."""
    source: str


@dataclass(frozen=True, kw_only=True)
class Prior:
    """Expected speed per device class from published or recorded measurements.

    Relative to torch SDPA's flash kernel (FlashAttention-2) on sm80+, to its memory-efficient
    kernel below sm80 and to its CPU fused kernel on CPU (see backends.toml).
    """

    speeds: tuple[tuple[str, float], ...]
    """(``gpu`` | ``cpu`` | ``smN`` for GPU generation N, speed)."""
    source: str
    verified: bool

    def for_device(self, sm: int | None, *, cpu: bool) -> float | None:
        """The speed for a CPU, or for a GPU of compute capability ``sm`` (None: unknown)."""
        table = dict(self.speeds)
        if cpu:
            return table.get("cpu")
        if sm is not None and f"sm{sm // 10}" in table:
            return table[f"sm{sm // 10}"]
        return table.get("gpu")


@dataclass(frozen=True, kw_only=True)
class SdpaDispatch:
    """One row of "what SDPA's default dispatch runs": the first row that holds wins."""

    kernel: BackendName
    device: Literal["gpu", "cpu"]
    min_torch: str | None
    max_torch: str | None
    sm: tuple[int, ...]
    """Exact compute capabilities (empty: any from ``min_sm``)."""
    min_sm: int
    min_cudnn: str | None
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class BackendRule:
    """One backend's record: who it is, what it needs, how it is verified and installed.

    The only place a backend is described (``wheels_index/backends.toml``); every code table
    (the probe's imports, verify's kernel list, the runtime's requirements, install's sources)
    is derived from these records.
    """

    name: BackendName
    title: str
    aliases: tuple[str, ...] = ()
    """Other names people type for it (CLI, ``ATTN_DOCTOR_BACKEND``)."""
    distributions: tuple[str, ...] = ()
    """Distributions that provide it: installed means one of these is (empty: torch-internal)."""
    modules: tuple[str, ...] = ()
    """Modules whose import proves it loads (the first is the package itself)."""
    attn_implementation: str | None = None
    registration: str | None = None
    """The call that registers it with transformers, when it is not built in."""
    install: tuple[InstallSource, ...] = ()
    sdpa_kernel: SdpaKernel | None = None
    """For torch SDPA's kernels: the ``SDPBackend`` member that forces this one."""
    verify: VerifySpec
    runtime: RuntimeSpec | None = None
    prior: Prior | None = None
    """Expected speed where nothing was measured here (None: not a candidate of its own)."""
    vendors: tuple[Vendor, ...]
    min_sm: int
    """Lowest compute capability as an integer (0: no GPU floor)."""
    max_sm: int | None
    sm_majors: tuple[int, ...]
    """Generations upstream states as supported; empty means the whole [min_sm, max_sm] range."""
    sm_majors_code_only: tuple[int, ...]
    """Generations the code accepts without upstream advertising them."""
    amd_gfx: tuple[str, ...]
    os: tuple[str, ...]
    official_wheels_os: tuple[str, ...]
    official_wheels_vendors: tuple[Vendor, ...]
    """GPU vendors the official wheels are built for (empty: all of ``vendors``)."""
    dtypes: tuple[str, ...]
    max_head_dim: int | None
    min_torch: str | None
    os_min_torch: tuple[tuple[str, str], ...]
    min_cuda: str | None
    needs: tuple[str, ...]
    """Distributions that must be installed as well (``triton``, ``kernels``)."""
    network_first_use: bool
    notes: str
    source: str
    verified: bool

    @property
    def module(self) -> str | None:
        """The module whose import proves the package loads (None: torch-internal)."""
        return self.modules[0] if self.modules else None

    @property
    def distribution(self) -> str | None:
        """The distribution to install (None: torch-internal)."""
        return self.distributions[0] if self.distributions else None

    @property
    def builtin(self) -> bool:
        """Built into torch: nothing to install."""
        return "torch" in self.install

    def min_torch_for(self, os_name: str) -> str | None:
        """The torch floor on this OS (an OS-specific floor wins)."""
        for key, value in self.os_min_torch:
            if key == os_name:
                return value
        return self.min_torch


@dataclass(frozen=True, kw_only=True)
class Ranking:
    """Preference order among compatible backends, per kind of device."""

    gpu: tuple[BackendName, ...]
    cpu: tuple[BackendName, ...]
    apple: tuple[BackendName, ...]
    fallback: tuple[BackendName, ...]
    """Ranked after everything else: reference paths and special-purpose APIs."""
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class SourceBuild:
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
    ranking: Ranking
    source_build: SourceBuild
    prebuilt_flash_attn: PrebuiltPython
    rule_sources: tuple[tuple[str, tuple[str, ...]], ...]
    conflicts: tuple[Conflict, ...]
    attn_implementations: tuple[AttnImplementation, ...]
    invalid_attn_implementations: tuple[InvalidAttnImplementation, ...]
    sdpa_dispatch: tuple[SdpaDispatch, ...] = ()
    """What SDPA's default dispatch runs, first matching row first."""

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


def _backend_name(entry: _Entry, key: str, value: str) -> BackendName:
    for name in BACKEND_NAMES:
        if name == value:
            return name
    raise entry.fail(key, f"{value!r} is not a known backend")


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
                cuda=e.str_("cuda", pattern=_CUDA_RE),
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
                min_cuda=e.str_("min_cuda", pattern=_CUDA_RE),
                source=source,
                verified=verified,
            )
        )
    variants = []
    for e in _tables(doc, file, "torch_variants"):
        source, verified = e.provenance()
        cuda = e.strs("cuda")
        for c in cuda:
            if not _CUDA_RE.match(c):
                raise e.fail("cuda", f"{c!r} is not a CUDA major.minor")
        variants.append(
            TorchVariants(
                torch=e.str_("torch", pattern=_CUDA_RE),
                cuda=cuda,
                rocm=e.strs("rocm"),
                python=e.specifier("python"),
                source=source,
                verified=verified,
            )
        )
    return tuple(releases), tuple(compat), tuple(archs), tuple(variants)


_RECORD_KEYS = frozenset(
    {
        "name",
        "title",
        "aliases",
        "distributions",
        "modules",
        "attn_implementation",
        "registration",
        "install",
        "sdpa_kernel",
        "verify",
        "runtime",
        "vendors",
        "min_sm",
        "max_sm",
        "sm_majors",
        "sm_majors_code_only",
        "amd_gfx",
        "os",
        "official_wheels_os",
        "official_wheels_vendors",
        "dtypes",
        "max_head_dim",
        "min_torch",
        "os_min_torch",
        "min_cuda",
        "needs",
        "network_first_use",
        "notes",
        "source",
        "verified",
        "prior",
    }
)
_VERIFY_KEYS = frozenset({"kind", "cpu", "accuracy", "max_head_dim", "max_rel_l1", "min_cosine"})
_RUNTIME_KEYS = frozenset(
    {
        "backward",
        "devices",
        "min_sm",
        "max_sm",
        "train_min_sm",
        "bf16_min_sm",
        "min_version",
        "dtypes",
        "softcap",
        "training_dropout",
        "model_flags",
        "auto",
        "source",
    }
)


def _literal(
    entry: _Entry, key: str, allowed: tuple[str, ...], *, default: str | None = None
) -> str:
    value = entry.str_(key, default=default)
    if value not in allowed:
        raise entry.fail(key, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def _float(entry: _Entry, key: str) -> float | None:
    value = entry.data.get(key)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise entry.fail(key, f"expected a positive number, got {value!r}")
    return float(value)


def _verify_spec(e: _Entry) -> VerifySpec:
    v = e.sub("verify")
    if v is None:
        raise e.fail("verify", "missing (how attn-doctor verify proves this backend)")
    v.only(_VERIFY_KEYS)
    accuracy = cast(Accuracy, _literal(v, "accuracy", get_args(Accuracy)))
    spec = VerifySpec(
        kind=cast(VerifyKind, _literal(v, "kind", get_args(VerifyKind))),
        cpu=v.bool_("cpu"),
        accuracy=accuracy,
        max_head_dim=v.opt_int("max_head_dim"),
        max_rel_l1=_float(v, "max_rel_l1"),
        min_cosine=_float(v, "min_cosine"),
    )
    if accuracy == "published-error" and (spec.max_rel_l1 is None or spec.min_cosine is None):
        raise v.fail("accuracy", "published-error needs max_rel_l1 and min_cosine")
    return spec


def _runtime_spec(e: _Entry) -> RuntimeSpec | None:
    r = e.sub("runtime")
    if r is None:
        return None
    r.only(_RUNTIME_KEYS)
    devices = r.strs("devices", allowed=get_args(RuntimeDevice))
    if not devices:
        raise r.fail("devices", "needs at least one device")
    source = r.str_("source")
    if not source.strip():
        raise r.fail("source", "must name where the fact comes from")
    return RuntimeSpec(
        devices=cast(tuple[RuntimeDevice, ...], devices),
        min_sm=r.opt_int("min_sm"),
        max_sm=r.opt_int("max_sm"),
        train_min_sm=r.opt_int("train_min_sm"),
        bf16_min_sm=r.opt_int("bf16_min_sm"),
        min_version=r.version("min_version", optional=True),
        dtypes=r.strs("dtypes", allowed=_DTYPES),
        softcap=r.bool_("softcap", default=True),
        training_dropout=r.bool_("training_dropout", default=True),
        backward=r.bool_("backward", default=True),
        model_flags=cast(tuple[ModelFlag, ...], r.strs("model_flags", allowed=get_args(ModelFlag))),
        auto=r.bool_("auto", default=True),
        source=source,
    )


_PRIOR_KEY = re.compile(r"^(gpu|cpu|sm\d+)$")


def _prior(e: _Entry) -> Prior | None:
    p = e.sub("prior")
    if p is None:
        return None
    source, verified = p.provenance()
    speeds = []
    for key, value in sorted(p.data.items()):
        if key in ("source", "verified"):
            continue
        if not _PRIOR_KEY.match(key):
            raise p.fail(key, "expected gpu, cpu or smN")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise p.fail(key, f"expected a non-negative speed, got {value!r}")
        speeds.append((key, float(value)))
    return Prior(speeds=tuple(speeds), source=source, verified=verified)


def _sdpa_dispatch(doc: dict[str, Any]) -> tuple[SdpaDispatch, ...]:
    rows = []
    for e in _tables(doc, BACKENDS_FILE, "sdpa_dispatch"):
        source, verified = e.provenance()
        kernel = _backend_name(e, "kernel", e.str_("kernel"))
        if not kernel.startswith("sdpa_"):
            raise e.fail("kernel", f"{kernel!r} is not an SDPA kernel")
        rows.append(
            SdpaDispatch(
                kernel=kernel,
                device=cast(
                    Literal["gpu", "cpu"], _literal(e, "device", ("gpu", "cpu"), default="gpu")
                ),
                min_torch=e.version("min_torch", optional=True),
                max_torch=e.version("max_torch", optional=True),
                sm=e.ints("sm"),
                min_sm=e.int_("min_sm", default=0),
                min_cudnn=e.version("min_cudnn", optional=True),
                source=source,
                verified=verified,
            )
        )
    if rows[-1].min_sm or rows[-1].sm or rows[-1].min_torch:
        raise IndexDataError(f"{BACKENDS_FILE}: the last [[sdpa_dispatch]] row must always hold")
    return tuple(rows)


def _backend_record(e: _Entry) -> BackendRule:
    e.only(_RECORD_KEYS)
    source, verified = e.provenance()
    name = _backend_name(e, "name", e.str_("name"))
    os_min = e.data.get("os_min_torch", {})
    if not isinstance(os_min, dict):
        raise e.fail("os_min_torch", "expected a table")
    os_min_torch = []
    for os_name, floor in sorted(os_min.items()):
        if os_name not in _OSES or not isinstance(floor, str):
            raise e.fail("os_min_torch", f"bad entry {os_name!r} = {floor!r}")
        os_min_torch.append((os_name, floor))
    max_sm = e.int_("max_sm") if "max_sm" in e.data else None
    min_sm = e.int_("min_sm")
    if max_sm is not None and max_sm < min_sm:
        raise e.fail("max_sm", f"{max_sm} is below min_sm {min_sm}")
    max_head = e.int_("max_head_dim", default=0)
    install = cast(tuple[InstallSource, ...], e.strs("install", allowed=INSTALL_SOURCES))
    if not install:
        raise e.fail("install", "name where its installs come from (torch: built in)")
    distributions = e.strs("distributions")
    if ("torch" in install) == bool(distributions):
        raise e.fail("distributions", "a package backend names its distributions; a torch one none")
    kernel = e.opt_str("sdpa_kernel")
    if kernel is not None and kernel not in get_args(SdpaKernel):
        raise e.fail("sdpa_kernel", f"{kernel!r} is not an SDPBackend member")
    return BackendRule(
        name=name,
        title=e.str_("title"),
        aliases=e.strs("aliases"),
        distributions=distributions,
        modules=e.strs("modules"),
        attn_implementation=e.opt_str("attn_implementation"),
        registration=e.opt_str("registration"),
        install=install,
        sdpa_kernel=cast(SdpaKernel | None, kernel),
        verify=_verify_spec(e),
        runtime=_runtime_spec(e),
        prior=_prior(e),
        vendors=e.strs("vendors", allowed=_VENDORS),
        min_sm=min_sm,
        max_sm=max_sm,
        sm_majors=e.ints("sm_majors"),
        sm_majors_code_only=e.ints("sm_majors_code_only"),
        amd_gfx=e.strs("amd_gfx"),
        os=e.strs("os", allowed=_OSES),
        official_wheels_os=e.strs("official_wheels_os", allowed=_OSES),
        official_wheels_vendors=e.strs("official_wheels_vendors", allowed=_VENDORS),
        dtypes=e.strs("dtypes", allowed=_DTYPES),
        max_head_dim=max_head or None,
        min_torch=e.version("min_torch", optional=True),
        os_min_torch=tuple(os_min_torch),
        min_cuda=e.opt_str("min_cuda", pattern=_CUDA_RE),
        needs=e.strs("needs"),
        network_first_use=e.bool_("network_first_use", default=False),
        notes=e.str_("notes", default=""),
        source=source,
        verified=verified,
    )


def parse_backend_records(doc: dict[str, Any]) -> tuple[BackendRule, ...]:
    """Validate every ``[[backend]]`` record; names and aliases must be unique.

    Raises ``IndexDataError`` naming the file, the entry and the key.
    """
    file = BACKENDS_FILE
    check_schema(doc, file, SUPPORTED_SCHEMA)
    records: list[BackendRule] = []
    names: dict[str, str] = {}
    for e in _tables(doc, file, "backend"):
        record = _backend_record(e)
        for alias in (record.name, *record.aliases):
            key = alias.lower().replace("-", "_")
            if names.get(key, record.name) != record.name:
                raise e.fail("aliases", f"{alias!r} already names {names[key]}")
            names[key] = record.name
        records.append(record)
    missing = [n for n in BACKEND_NAMES if not any(r.name == n for r in records)]
    if missing:
        raise IndexDataError(f"{file}: no [[backend]] entry for {', '.join(missing)}")
    order = {name: i for i, name in enumerate(BACKEND_NAMES)}
    return tuple(sorted(records, key=lambda r: order[r.name]))


@functools.cache
def load_backend_records(directory: Path | None = None) -> tuple[BackendRule, ...]:
    """The backend records of ``backends.toml``, validated (cached for the run)."""
    return parse_backend_records(read_toml(BACKENDS_FILE, directory))


def _load_backends(
    doc: dict[str, Any],
) -> tuple[
    tuple[BackendRule, ...],
    Ranking,
    SourceBuild,
    PrebuiltPython,
    tuple[tuple[str, tuple[str, ...]], ...],
    tuple[Conflict, ...],
]:
    file = BACKENDS_FILE
    check_schema(doc, file, SUPPORTED_SCHEMA)
    rules = parse_backend_records(doc)

    rank = _Entry(doc.get("ranking"), f"{file}: [ranking]")
    source, verified = rank.provenance()

    def order(key: str) -> tuple[BackendName, ...]:
        return tuple(_backend_name(rank, key, v) for v in rank.strs(key))

    ranking = Ranking(
        gpu=order("gpu"),
        cpu=order("cpu"),
        apple=order("apple"),
        fallback=order("fallback"),
        source=source,
        verified=verified,
    )

    builds = doc.get("source_build")
    sb = _Entry(
        builds.get("flash_attn_2") if isinstance(builds, dict) else None,
        f"{file}: [source_build.flash_attn_2]",
    )
    source, verified = sb.provenance()
    source_build = SourceBuild(
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
    return tuple(rules), ranking, source_build, prebuilt, tuple(rule_sources), tuple(conflicts)


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
                backend=_backend_name(e, "backend", e.str_("backend")),
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
    backends, ranking, source_build, prebuilt, rule_sources, conflicts = _load_backends(
        read_toml(BACKENDS_FILE, directory)
    )
    values, invalid = _load_transformers(read_toml(TRANSFORMERS_FILE, directory))
    return Rules(
        releases=releases,
        minor_compat=compat,
        arch_min_cuda=archs,
        torch_variants=variants,
        backends=backends,
        ranking=ranking,
        source_build=source_build,
        prebuilt_flash_attn=prebuilt,
        rule_sources=rule_sources,
        conflicts=conflicts,
        attn_implementations=values,
        invalid_attn_implementations=invalid,
        sdpa_dispatch=_sdpa_dispatch(read_toml(BACKENDS_FILE, directory)),
    )
