"""The facts about one machine: a frozen, schema-versioned ``Environment``.

Everything the planner, the report and the resolver know about a machine is in here, and
nothing else: they never look at the machine themselves. A snapshot saved with
``attn-doctor check --save-snapshot FILE`` is ``Environment.to_json()``; another machine can
diagnose it with ``--snapshot FILE``.

Conventions:
- Every field that could not be read is ``None``, and an ``Unknown`` entry in
  ``Environment.unknowns`` says why (the dotted field path and the reason). Never a guess.
- Collections are tuples; mappings are tuples of pairs, so that every fact is hashable.
- Versions are strings exactly as the source printed them; parse with ``packaging`` at use.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from attn_doctor.errors import SnapshotError

SCHEMA_VERSION = 1
"""Bumped when a field changes meaning or is removed. Adding an optional field is not a bump:
older snapshots load with the new field at its default."""

OsName = Literal["linux", "windows", "darwin", "other"]
TorchBuild = Literal["cuda", "rocm", "cpu", "xpu", "unknown"]
GpuVendor = Literal["nvidia", "amd", "apple", "intel"]
ImportStatus = Literal["ok", "error", "crashed", "timeout"]


@dataclass(frozen=True, kw_only=True)
class Unknown:
    """A fact that could not be read, and why."""

    field: str
    """Dotted path of the fact, e.g. ``driver.version``."""
    reason: str


@dataclass(frozen=True, kw_only=True)
class HostFacts:
    """Operating system, C library, CPU and memory."""

    os: OsName
    os_release: str | None = None
    """Kernel release (Linux) or OS release (``platform.release()``)."""
    os_version: str | None = None
    """``platform.version()``: the Windows build number, the kernel build string on Linux."""
    distro_id: str | None = None
    """``ID`` from /etc/os-release, e.g. ``ubuntu``."""
    distro_version: str | None = None
    """``VERSION_ID`` from /etc/os-release, e.g. ``22.04``."""
    distro_name: str | None = None
    """``PRETTY_NAME`` from /etc/os-release."""
    libc: Literal["glibc", "musl"] | None = None
    libc_version: str | None = None
    """glibc or musl version; bounds which manylinux/musllinux wheels install."""
    wsl: int | None = None
    """1 or 2 under the Windows Subsystem for Linux, 0 when not under WSL, None if unknown."""
    arch: str | None = None
    """Normalised CPU architecture: ``x86_64``, ``aarch64``, ``arm64`` (macOS), ``ppc64le``…"""
    cpu_count: int | None = None
    """Logical CPUs usable by this process (affinity-aware)."""
    ram_total_bytes: int | None = None
    ram_available_bytes: int | None = None
    in_container: bool | None = None
    """In a Docker/Podman/Kubernetes container (/.dockerenv, /run/.containerenv, cgroup)."""


@dataclass(frozen=True, kw_only=True)
class PythonFacts:
    """The Python interpreter that attn-doctor runs under (and would install into)."""

    version: str
    """``3.11.7``."""
    implementation: str
    """``cpython``, ``pypy``…"""
    executable: str | None = None
    abi_tag: str | None = None
    """The wheel ABI tag this interpreter accepts first, e.g. ``cp311`` or ``cp313t``."""
    free_threaded: bool = False
    in_venv: bool | None = None
    pip_version: str | None = None
    """Version of the pip importable by this interpreter; None when pip is absent."""
    uv_version: str | None = None
    """``uv --version`` when uv is on PATH."""
    conda_env: str | None = None
    """Name of the active conda environment (``CONDA_DEFAULT_ENV``)."""


@dataclass(frozen=True, kw_only=True)
class DriverFacts:
    """The NVIDIA kernel driver."""

    version: str | None = None
    """e.g. ``580.65.06`` (Linux) or ``581.15`` (Windows)."""
    cuda_version: str | None = None
    """Highest CUDA version this driver supports, ``major.minor`` (NVML
    ``nvmlSystemGetCudaDriverVersion``; nvidia-smi's "CUDA Version")."""
    source: Literal["nvml", "nvidia-smi", "procfs", "sysfs"] | None = None


def sm_text(sm: int, *, form: Literal["sm", "capability", "both"] = "sm") -> str:
    """A compute capability in words: ``sm86`` (``sm``), ``8.6`` (``capability``) or
    ``sm86 (8.6)`` (``both``)."""
    capability = f"{sm // 10}.{sm % 10}"
    match form:
        case "sm":
            return f"sm{sm}"
        case "capability":
            return capability
        case "both":
            return f"sm{sm} ({capability})"


@dataclass(frozen=True, kw_only=True)
class GpuFacts:
    """One GPU."""

    index: int
    vendor: GpuVendor
    name: str
    compute_capability: str | None = None
    """NVIDIA ``major.minor`` (``8.0`` A100, ``9.0`` H100, ``12.0`` RTX 5090)."""
    gfx_arch: str | None = None
    """AMD ``gfx`` target (``gfx942`` for MI300)."""
    memory_total_bytes: int | None = None
    uuid: str | None = None
    pci_bus_id: str | None = None
    source: Literal["nvml", "nvidia-smi", "sysfs", "rocm-smi", "platform"] | None = None

    @property
    def sm(self) -> int | None:
        """Compute capability as one integer (``8.6`` -> 86, ``12.0`` -> 120)."""
        if self.compute_capability is None:
            return None
        major, _, minor = self.compute_capability.partition(".")
        try:
            return int(major) * 10 + int(minor or 0)
        except ValueError:
            return None


@dataclass(frozen=True, kw_only=True)
class CudaToolkitFacts:
    """The CUDA toolkit used for source builds (not the runtime that torch bundles)."""

    nvcc_path: str | None = None
    nvcc_version: str | None = None
    """``13.0.88``: the ``V`` number printed by ``nvcc --version``."""
    release: str | None = None
    """``13.0``: the ``release`` number printed by ``nvcc --version``."""
    cuda_home: str | None = None
    """``CUDA_HOME`` (or ``CUDA_PATH`` on Windows) as set, else the directory nvcc lives in."""
    rocm_version: str | None = None
    """ROCm version from the ROCm install (``/opt/rocm/.info/version``)."""


@dataclass(frozen=True, kw_only=True)
class TorchFacts:
    """The installed torch, read from its metadata and files without importing it."""

    version: str
    """Full version with local label, e.g. ``2.8.0+cu128``."""
    build: TorchBuild
    cuda: str | None = None
    """CUDA version torch was built with (``torch/version.py: cuda``), e.g. ``12.8``."""
    hip: str | None = None
    """HIP version for ROCm builds."""
    cxx11_abi: bool | None = None
    """``_GLIBCXX_USE_CXX11_ABI`` torch was built with (TorchConfig.cmake), Linux only."""
    git_version: str | None = None
    location: str | None = None
    requires: tuple[str, ...] = ()
    """Requires-Dist lines of the torch distribution (nvidia-* runtime wheels, triton)."""
    cudnn_version: str | None = None
    """Version of the nvidia-cudnn wheel torch depends on, when installed as a wheel."""
    cxx11_abi_source: str | None = None
    """Where ``cxx11_abi`` was read: ``TorchConfig.cmake`` (the ``-D_GLIBCXX_USE_CXX11_ABI``
    flag, torch < 2.10-ish) or ``libc10 symbols`` (``std::__cxx11`` names in torch/lib/libc10,
    for newer torch whose TorchConfig.cmake no longer carries the flag)."""
    build_source: str | None = None
    """What ``build`` was decided from: ``version.py`` (its ``cuda``/``hip``/``xpu`` fields)
    or ``local label`` (``+cu128``, ``+rocm6.3``, ``+cpu``, ``+xpu``)."""


@dataclass(frozen=True, kw_only=True)
class PackageFacts:
    """An installed distribution that matters to attention backends."""

    name: str
    """Canonical distribution name, e.g. ``flash-attn``."""
    version: str
    location: str | None = None
    requires: tuple[str, ...] = ()
    """Requires-Dist lines, used to find packages that pin another torch."""
    installer: str | None = None
    """From the INSTALLER file: ``pip``, ``uv``, ``conda``…"""
    build_info: tuple[tuple[str, str], ...] = ()
    """What the package says it was built for, e.g. xformers' ``cpp_lib.json``
    (``torch``, ``cuda``, ``python``) or a local version label (``cu128torch2.8``)."""
    editable: bool = False


@dataclass(frozen=True, kw_only=True)
class ImportResult:
    """The outcome of importing one module in a child process (``check --deep``)."""

    module: str
    status: ImportStatus
    detail: str | None = None
    """The exception's last line, the signal name, or the timeout, as text."""
    traceback_tail: str | None = None
    seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class TorchRuntimeFacts:
    """What torch reports about itself once imported in a child process (``--deep``)."""

    cuda_available: bool | None = None
    device_count: int | None = None
    arch_list: tuple[str, ...] = ()
    """``torch.cuda.get_arch_list()``: the GPU architectures compiled into this torch."""
    cudnn_version: int | None = None
    cxx11_abi: bool | None = None
    device_capabilities: tuple[str, ...] = ()
    """``major.minor`` per visible device, as torch sees them."""
    flash_sdp_available: bool | None = None
    """``torch.backends.cuda.is_flash_attention_available()`` where it exists."""
    sdpa_default_kernel: str | None = None
    """The kernel SDPA's default dispatch picks on device 0 (the CPU without a GPU) for bf16
    causal inputs of head dim 128, by ``torch._fused_sdp_choice``: ``sdpa_cudnn``,
    ``sdpa_flash``, ``sdpa_mem_efficient``, ``sdpa_math`` or ``sdpa_cpu_fused``."""
    sdpa_default_inputs: str | None = None
    """The inputs that answer is for: ``bfloat16, head dim 64, 32 heads, causal, no mask (from
    MODEL's config.json)``, or the assumed ones (``check --deep --model`` gives a model's)."""
    mps_available: bool | None = None
    error: str | None = None
    torch_version: str | None = None
    """``torch.__version__`` as the imported torch reports it (it can differ from the metadata
    when two torch installs shadow each other)."""
    torch_cuda: str | None = None
    """``torch.version.cuda`` as the imported torch reports it."""
    device_names: tuple[str, ...] = ()
    """``torch.cuda.get_device_name(i)`` per visible device (honours CUDA_VISIBLE_DEVICES)."""
    seconds: float | None = None
    """Wall time of the child process that imported torch."""


@dataclass(frozen=True, kw_only=True)
class ComfyUIFacts:
    """A ComfyUI installation: a folder with ``comfy/cli_args.py`` and ``main.py``."""

    path: str
    found_by: Literal["cwd", "option"]
    """``cwd``: the current folder (or its ``ComfyUI`` subfolder); ``option``: ``--comfyui``."""
    version: str | None = None
    """``__version__`` of ``comfyui_version.py``."""
    python: str | None = None
    """The Windows portable build's ``python_embeded`` interpreter, which runs it (the
    environment probed here is another one unless attn-doctor runs under it; its packages are
    in ``packages``)."""
    python_version: str | None = None
    """That interpreter's ``major.minor``, from its ``pythonXY._pth`` / ``pythonXY.dll`` name."""
    packages: tuple[PackageFacts, ...] | None = None
    """The distributions installed in ``python_embeded`` that matter to attention (torch and the
    watched ones), read from its ``Lib/site-packages/*.dist-info`` without running it. None: no
    ``python_embeded``, or its site-packages could not be read."""


@dataclass(frozen=True, kw_only=True)
class LockedKernel:
    """One Hub kernel a project asks for (``kernels.lock`` / ``[tool.kernels.dependencies]``)."""

    repo: str
    version: str | None = None
    """The kernel version (``vN`` branch) asked for."""
    commit: str | None = None
    """The commit ``kernels.lock`` pins (None: not locked)."""


@dataclass(frozen=True, kw_only=True)
class CachedKernel:
    """A Hub kernel repository in the local Hugging Face cache."""

    repo: str
    versions: tuple[tuple[str, str], ...] = ()
    """(``vN`` ref, commit) pairs from the cache's ``refs/``."""
    variants: tuple[tuple[str, str], ...] = ()
    """(commit, build variant) pairs: the ``build/<variant>`` folders of each snapshot."""
    digests: tuple[tuple[str, str, str], ...] = ()
    """(commit, build variant, result) for the variants of the commit the project asks for:
    its files checked offline against the digest in its ``metadata.json`` (``ok sha256 12
    files``, ``mismatch: …``, ``none``: no digest recorded, ``not checked: …``)."""


@dataclass(frozen=True, kw_only=True)
class HubKernelFacts:
    """What is on disk for Hugging Face Hub kernels, read without the network."""

    cache_dir: str | None = None
    """``KERNELS_CACHE``, else ``HF_HUB_CACHE``, else ``HF_HOME``/hub, else the default."""
    lockfile: str | None = None
    """The ``kernels.lock`` read (current folder)."""
    locked: tuple[LockedKernel, ...] = ()
    """Kernels asked for by ``kernels.lock`` and ``[tool.kernels.dependencies]``."""
    cached: tuple[CachedKernel, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TransformersConstants:
    """Constants read from the installed transformers' own source files (never imported).

    Where transformers holds the truth (the ``kernels`` range it accepts for its Hub fallback,
    the kernel versions it asks for, the ``attn_implementation`` values it accepts), the
    diagnosis uses these instead of a bundled copy. A constant that could not be read is
    empty/None and an ``Unknown`` entry (``transformers_constants.<field>``) says why.
    """

    version: str
    """The transformers distribution's version whose files were read."""
    kernels_min_version: str | None = None
    """``utils/import_utils.py: KERNELS_MIN_VERSION`` (inclusive)."""
    kernels_max_version: str | None = None
    """``utils/import_utils.py: KERNELS_MAX_VERSION`` (exclusive)."""
    hub_fallback: tuple[tuple[str, str], ...] = ()
    """``modeling_flash_attention_utils.py: FLASH_ATTN_KERNEL_FALLBACK`` on CUDA:
    (``attn_implementation``, Hub repo) pairs."""
    hub_fallback_rocm: tuple[tuple[str, str], ...] = ()
    """The same table's ROCm branch (``is_rocm_platform()``)."""
    hub_kernel_versions: tuple[tuple[str, str], ...] = ()
    """``FLASH_ATTN_KERNEL_VERSIONS``: (Hub repo, kernel version asked for)."""
    attn_implementations: tuple[str, ...] = ()
    """Values ``from_pretrained`` accepts by name: ``eager`` plus the keys of
    ``modeling_utils.py: AttentionInterface._global_mapping``."""
    flash_attn_2_min_version: str | None = None
    """The oldest flash-attn that ``utils/import_utils.py: is_flash_attn_2_available`` takes
    (``2.3.3`` in 5.25); an older one is not used for ``flash_attention_2``."""
    sources: tuple[str, ...] = ()
    """The files read, relative to site-packages (``transformers/utils/import_utils.py``)."""


@dataclass(frozen=True, kw_only=True)
class Environment:
    """Every fact attn-doctor uses about one machine. Round-trips through JSON."""

    schema_version: int = SCHEMA_VERSION
    attn_doctor_version: str = ""
    created_at: str = ""
    """ISO 8601 UTC time the snapshot was taken."""
    host: HostFacts
    python: PythonFacts
    driver: DriverFacts = field(default_factory=DriverFacts)
    gpus: tuple[GpuFacts, ...] = ()
    cuda_toolkit: CudaToolkitFacts = field(default_factory=CudaToolkitFacts)
    torch: TorchFacts | None = None
    """None when torch is not installed."""
    packages: tuple[PackageFacts, ...] = ()
    """Installed attention-related distributions (torch excluded), sorted by name."""
    env_vars: tuple[tuple[str, str], ...] = ()
    """Environment variables that change backend behaviour, as set."""
    imports: tuple[ImportResult, ...] = ()
    """Child-process import results (empty unless ``--deep``)."""
    torch_runtime: TorchRuntimeFacts | None = None
    """Set by ``--deep`` when torch imports."""
    transformers_constants: TransformersConstants | None = None
    """Read from the installed transformers' files; None when it is not installed (or in a
    snapshot written before this field existed: the bundled table then stands in)."""
    deep: bool = False
    comfyui: ComfyUIFacts | None = None
    """A ComfyUI installation found here or named with ``check --comfyui``."""
    hub_kernels: HubKernelFacts | None = None
    """Hub kernels asked for by the project here, and those in the local cache."""
    unknowns: tuple[Unknown, ...] = ()

    # Convenience lookups: pure functions of the fields above.
    def package(self, name: str) -> PackageFacts | None:
        """The installed distribution with this canonical name, if any."""
        for pkg in self.packages:
            if pkg.name == name:
                return pkg
        return None

    def import_result(self, module: str) -> ImportResult | None:
        """The ``--deep`` import result for this module, if it was tried."""
        for res in self.imports:
            if res.module == module:
                return res
        return None

    def env(self, name: str) -> str | None:
        """The value of a recorded environment variable."""
        for key, value in self.env_vars:
            if key == name:
                return value
        return None

    def unknown_reason(self, field_path: str) -> str | None:
        """Why a fact is unknown, if it is."""
        for unk in self.unknowns:
            if unk.field == field_path:
                return unk.reason
        return None

    @property
    def nvidia_gpus(self) -> tuple[GpuFacts, ...]:
        return tuple(g for g in self.gpus if g.vendor == "nvidia")

    @property
    def amd_gpus(self) -> tuple[GpuFacts, ...]:
        return tuple(g for g in self.gpus if g.vendor == "amd")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        encoded = _encode(self)
        assert isinstance(encoded, dict)
        return encoded

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, data: object) -> Environment:
        """Build from a decoded JSON object; raises ``SnapshotError`` naming the bad field."""
        if not isinstance(data, dict):
            raise SnapshotError("snapshot: expected a JSON object at the top level")
        version = data.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise SnapshotError("snapshot: schema_version is missing or not an integer")
        if version > SCHEMA_VERSION:
            from attn_doctor.shell import own_pip

            raise SnapshotError(
                f"snapshot: schema_version {version} is newer than this attn-doctor "
                f"understands ({SCHEMA_VERSION})",
                hint="upgrade attn-doctor on this machine:\n  "
                + own_pip("install", "-U", "attn-doctor"),
            )
        if version < 1:
            raise SnapshotError(f"snapshot: schema_version {version} is not valid")
        return decode(cls, data, "snapshot")

    @classmethod
    def from_json(cls, text: str | bytes) -> Environment:
        """Build from a snapshot's text or bytes; any content gives ``SnapshotError``."""
        from attn_doctor.userfiles import UnreadableFile, load_json_bytes

        try:
            data = load_json_bytes(text)
        except UnreadableFile as exc:
            raise SnapshotError(f"snapshot: {exc}") from None
        return cls.from_dict(data)


# --- JSON codec driven by the type hints above -------------------------------------------

T = TypeVar("T")


def _encode(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


def encode(value: object) -> object:
    """Any frozen fact dataclass (or tuple of them) as JSON-ready data."""
    return _encode(value)


def decode(cls: type[T], data: object, path: str) -> T:
    """Decode ``data`` into dataclass ``cls``, validating every field against its type.

    Unknown keys are refused (a typo must not silently drop a fact); missing keys take the
    field's default, or are refused when the field has none. Errors name the dotted path.
    """
    if not isinstance(data, dict):
        raise SnapshotError(f"{path}: expected an object, got {_kind(data)}")
    hints, fields = _fields_of(cls)
    extra = sorted(set(data) - set(fields))
    if extra:
        raise SnapshotError(f"{path}: unknown field {extra[0]!r}")
    kwargs: dict[str, object] = {}
    for name, fld in fields.items():
        if name not in data:
            if fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING:
                raise SnapshotError(f"{path}.{name}: missing")
            continue
        value = _decode_value(hints[name], data[name], f"{path}.{name}")
        _check_range(cls.__name__, name, value, f"{path}.{name}")
        kwargs[name] = value
    return cls(**kwargs)


_RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("HostFacts", "wsl"): (0, 2),
    ("HostFacts", "cpu_count"): (1, 1 << 20),
    ("GpuFacts", "index"): (0, 1 << 16),
    ("TorchRuntimeFacts", "device_count"): (0, 1 << 16),
}
"""Bounds beyond "not negative" (every number in a snapshot is a count, a size or seconds)."""


def _check_range(owner: str, name: str, value: object, path: str) -> None:
    """Refuse numbers no machine reports: negative sizes, NaN, a WSL version 7."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    low, high = _RANGES.get((owner, name), (0, float("inf")))
    if not (low <= value <= high and math.isfinite(value)):  # NaN and inf too
        where = f"between {low:g} and {high:g}" if high != float("inf") else f">= {low:g}"
        raise SnapshotError(f"{path}: {value!r} is out of range (must be {where})")


_FieldsOf = tuple[dict[str, Any], dict[str, "dataclasses.Field[Any]"]]
_FIELDS_OF: dict[type, _FieldsOf] = {}
"""Per dataclass: fixed for the life of the process (the classes never change)."""


def _fields_of(cls: type) -> _FieldsOf:
    """A dataclass's resolved type hints and fields, computed once per class: resolving the
    hints re-evaluates every annotation, which was 80% of reading a snapshot."""
    found = _FIELDS_OF.get(cls)
    if found is None:
        found = (get_type_hints(cls), {f.name: f for f in dataclasses.fields(cls)})
        _FIELDS_OF[cls] = found
    return found


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _decode_value(tp: object, value: object, path: str) -> object:
    origin = get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        options = get_args(tp)
        if value is None:
            if type(None) in options:
                return None
            raise SnapshotError(f"{path}: must not be null")
        errors = []
        for opt in options:
            if opt is type(None):
                continue
            try:
                return _decode_value(opt, value, path)
            except SnapshotError as exc:
                errors.append(exc.message)
        raise SnapshotError(errors[0] if len(errors) == 1 else f"{path}: unexpected {value!r}")
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed or isinstance(value, bool) != any(
            isinstance(a, bool) for a in allowed
        ):
            raise SnapshotError(
                f"{path}: {value!r} is not one of {', '.join(repr(a) for a in allowed)}"
            )
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise SnapshotError(f"{path}: expected a list, got {_kind(value)}")
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            if args[0] is str and all(isinstance(v, str) for v in value):
                return tuple(value)  # the common case (Requires-Dist lines), without recursion
            return tuple(_decode_value(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise SnapshotError(f"{path}: expected {len(args)} items, got {len(value)}")
        pairs = enumerate(zip(args, value, strict=True))
        return tuple(_decode_value(a, v, f"{path}[{i}]") for i, (a, v) in pairs)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return decode(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise SnapshotError(f"{path}: expected true/false, got {_kind(value)}")
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise SnapshotError(f"{path}: expected an integer, got {_kind(value)}")
        return value
    if tp is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise SnapshotError(f"{path}: expected a number, got {_kind(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise SnapshotError(f"{path}: expected a string, got {_kind(value)}")
        return value
    raise TypeError(f"facts codec: unsupported type {tp!r} at {path}")  # a bug, not bad input
