"""The backend record: every attention backend attn-doctor knows, and everything about it.

One record per backend in ``wheels_index/backends.toml`` holds its identity (title, aliases,
distributions, modules, transformers value or registration), what it needs (GPU generations,
dtypes, head dims, torch/CUDA floors, platforms), how ``verify`` judges it, where its
installs come from, its published speed (``prior``) and what the runtime checks. This module
reads the records (one typed reader, ``datafiles.Entry``), and ``BACKENDS`` is that set; every
code table (the probe's imports, verify's kernels, the runtime's requirements, install's
built-in backends, the CLI's aliases) is derived from it. ``BackendName`` is the closed set
for type checking; the loader refuses a record without a name here, and a name without a
record.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

from attn_doctor.datafiles import Entry as _Entry
from attn_doctor.datafiles import check_schema, read_toml
from attn_doctor.datafiles import tables as _tables
from attn_doctor.errors import IndexDataError
from attn_doctor.facts import GpuVendor, OsName
from attn_doctor.framework_names import (
    Device,
    FrameworkEntry,
    FrameworkName,
    parse_framework_entries,
)

BackendName = Literal[
    "flash_attn_2",
    "flash_attn_3",
    "flash_attn_4",
    "xformers",
    "sageattention",
    "unsloth",
    "sdpa",
    "sdpa_flash",
    "sdpa_mem_efficient",
    "sdpa_cudnn",
    "sdpa_math",
    "sdpa_cpu_fused",
    "flex_attention",
    "hub_kernels",
    "eager",
    "flashinfer",
]

BACKEND_NAMES: tuple[BackendName, ...] = get_args(BackendName)

BACKENDS_FILE = "backends.toml"
SUPPORTED_SCHEMA = 1

Vendor = str
"""``nvidia``, ``amd``, ``apple``, ``intel`` (GPU vendors) or ``cpu``."""
_VENDORS = (*get_args(GpuVendor), "cpu")
_OSES: tuple[str, ...] = get_args(OsName)
_DTYPES = ("fp64", "fp32", "fp16", "bf16", "fp8")
CUDA_RE = re.compile(r"^\d+\.\d+$")


# --- the record ---------------------------------------------------------------------------

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
AdapterKind = Literal[
    "torch-sdpa",
    "flex-attention",
    "eager",
    "flash-attn",
    "xformers",
    "sageattention",
    "flashinfer",
    "unsloth",
    "hub-kernels",
]
"""The adapter class that speaks for a backend (``attn_doctor.adapters``): how verify calls
it, why it cannot run, its install planner and its framework integration."""


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
class BackendRule:
    """One backend's record: who it is, what it needs, how it is verified and installed.

    The only place a backend is described (``wheels_index/backends.toml``); every code table
    (the probe's imports, verify's kernel list, the runtime's requirements, install's sources)
    is derived from these records.
    """

    name: BackendName
    title: str
    adapter: AdapterKind
    """Which adapter speaks for it (``attn_doctor.adapters.adapter_for``)."""
    aliases: tuple[str, ...] = ()
    """Other names people type for it (CLI, ``ATTN_DOCTOR_BACKEND``)."""
    distributions: tuple[str, ...] = ()
    """Distributions that provide it: installed means one of these is (empty: torch-internal)."""
    companions: tuple[str, ...] = ()
    """Optional distributions that ship beside it (prebuilt kernels, caches): watched by the
    probe and named by its planner, never required."""
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
    frameworks: tuple[FrameworkEntry, ...] = ()
    """Each framework's name for it (``[[backend.frameworks]]``); transformers' is
    ``attn_implementation``."""

    def framework_entry(
        self, framework: FrameworkName, version: str | None = None, device: Device | None = None
    ) -> FrameworkEntry | None:
        """This framework's name for the backend at ``version`` on ``device`` (None: it has
        none there)."""
        if framework == "transformers":
            if self.attn_implementation is None:
                return None
            return FrameworkEntry(
                framework="transformers",
                name=self.attn_implementation,
                source=self.source,
                verified=self.verified,
            )
        for entry in self.frameworks:
            if entry.framework == framework and entry.holds_for(version) and entry.runs_on(device):
                return entry
        return None

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


# --- reading the records ---------------------------------------------------------------


def backend_name(entry: _Entry, key: str, value: str) -> BackendName:
    """``value`` as a ``BackendName``; refused (naming the entry) when unknown."""
    for name in BACKEND_NAMES:
        if name == value:
            return name
    raise entry.fail(key, f"{value!r} is not a known backend")


_RECORD_KEYS = frozenset(
    {
        "name",
        "title",
        "adapter",
        "companions",
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
        "frameworks",
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


def one_of(entry: _Entry, key: str, allowed: tuple[str, ...], *, default: str | None = None) -> str:
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
    accuracy = cast(Accuracy, one_of(v, "accuracy", get_args(Accuracy)))
    spec = VerifySpec(
        kind=cast(VerifyKind, one_of(v, "kind", get_args(VerifyKind))),
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


def _backend_record(e: _Entry) -> BackendRule:
    e.only(_RECORD_KEYS)
    source, verified = e.provenance()
    name = backend_name(e, "name", e.str_("name"))
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
        adapter=cast(AdapterKind, one_of(e, "adapter", get_args(AdapterKind))),
        aliases=e.strs("aliases"),
        distributions=distributions,
        companions=e.strs("companions"),
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
        min_cuda=e.opt_str("min_cuda", pattern=CUDA_RE),
        needs=e.strs("needs"),
        network_first_use=e.bool_("network_first_use", default=False),
        notes=e.str_("notes", default=""),
        source=source,
        verified=verified,
        frameworks=parse_framework_entries(e),
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


class _Records(Mapping[BackendName, BackendRule]):
    """``BACKENDS[name]``: the backend's record, loaded from the data on first use."""

    def _load(self) -> dict[BackendName, BackendRule]:
        return {r.name: r for r in load_backend_records()}

    def __getitem__(self, name: BackendName) -> BackendRule:
        return self._load()[name]

    def __iter__(self) -> Iterator[BackendName]:
        return iter(BACKEND_NAMES)

    def __len__(self) -> int:
        return len(BACKEND_NAMES)


BACKENDS: Mapping[BackendName, BackendRule] = _Records()
"""Every backend's record, by name, in ``BACKEND_NAMES`` order."""


def backend_aliases() -> dict[str, BackendName]:
    """Every name a user may type (normalised: lower case, ``-`` as ``_``) -> backend."""
    out: dict[str, BackendName] = {}
    for name in BACKEND_NAMES:
        for alias in (name, *BACKENDS[name].aliases):
            out[alias.lower().replace("-", "_")] = name
    return out


def parse_backend(text: str) -> BackendName:
    """Map a user's backend name (``flash-attn``, ``fa2``, ``xformers``…) to a ``BackendName``.

    Raises ``UsageError`` with "did you mean …" for a near miss, and the known names.
    """
    from attn_doctor.errors import UsageError, did_you_mean

    key = text.strip().lower().replace("-", "_")
    aliases = backend_aliases()
    if key in aliases:
        return aliases[key]
    guess = did_you_mean(key, aliases)
    known = "known backends: " + ", ".join(BACKEND_NAMES) + " (and aliases such as fa2)"
    raise UsageError(f"unknown backend {text!r}", hint=guess or known)
