"""The one knowledge the failure classes reason with, loaded and validated once.

- ``wheels_index/arch_support.toml``: per GPU architecture, the first release of nvcc, Triton,
  torch (and its CUDA variant), flash-attn and xformers that knows it, and the GPU names of
  each architecture; each framework's knob that forces a backend.
- ``wheels_index/backends.toml`` (through ``attn_doctor.backends``): each backend's GPU range,
  dtypes, head-dim limit, distributions, modules and dependencies.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attn_doctor.backends import BACKEND_NAMES, BackendName, BackendRule, load_backend_records
from attn_doctor.datafiles import Entry, read_toml
from attn_doctor.errors import IndexDataError
from attn_doctor.triton_data import TRITON_FILE, TritonPairing, parse_triton

ARCH_FILE = "arch_support.toml"
CLASSES_FILE = "explain_classes.toml"
TOOLS = ("nvcc", "triton", "torch", "flash_attn", "xformers")
"""The columns of the arch table: which release of each first knows an architecture."""


@dataclass(frozen=True, kw_only=True)
class ArchRecord:
    sm: int
    name: str
    gpus: tuple[str, ...]
    """Regexes matching GPU names of this architecture."""
    first: tuple[tuple[str, str], ...]
    """(tool, first release that knows this arch), for the tools in ``TOOLS``."""
    torch_cuda: str | None
    nvcc_dropped: str | None = None
    """The first CUDA toolkit whose nvcc no longer accepts this arch (None: still accepted)."""
    source: str
    verified: tuple[str, ...]
    """The columns checked against ``source``; others are unverified."""

    def first_release(self, tool: str) -> str | None:
        return dict(self.first).get(tool)


@dataclass(frozen=True, kw_only=True)
class Knob:
    """A framework setting that forces a backend."""

    pattern: re.Pattern[str]
    framework: str
    backend: str
    """A backend name; ``{n}`` is filled from the pattern's ``n`` group."""
    instead: str
    source: str


@dataclass(frozen=True, kw_only=True)
class Dependency:
    """A module a backend imports from another distribution."""

    backend: str
    module: str
    dist: str
    requirement: str
    source: str


@dataclass(frozen=True, kw_only=True)
class Harmless:
    """A warning that changes nothing."""

    id: str
    pattern: re.Pattern[str]
    why: str
    source: str
    explains_missing: tuple[str, ...] = ()
    """Modules whose absence the warning itself reports (its traceback is part of it)."""


@dataclass(frozen=True, kw_only=True)
class FrameworkMessage:
    """A framework's own error message, recorded from its source, with the framework's fix.
    ``{name}`` in ``cause``/``fix`` is filled from the pattern's named groups."""

    id: str
    framework: str
    pattern: re.Pattern[str]
    requires: re.Pattern[str] | None
    cause: str
    fix: tuple[str, ...]
    source: str
    answer: str = ""
    """The failure class the message is an instance of (its answer's id); empty: its own id."""
    reasons: bool = False
    """The message lists the framework's reasons (vLLM's "Reason: ['…']"): one naming the GPU,
    the dtype or the head size answers as that class instead."""
    gpu_floor: int | None = None
    """The oldest architecture (sm) the reported path runs on: a message that shows an older
    GPU answers as the GPU's range (installing the missing kernels would not help)."""


@dataclass(frozen=True, kw_only=True)
class JitCudaFloor:
    """The CUDA release a project's JIT needs for an architecture family (sm_<family>x)."""

    project: str
    family: int
    cuda: str
    source: str


@dataclass(frozen=True, kw_only=True)
class TritonKeyword:
    """A keyword of a Triton language function (``tl.dot(trans_b=…)``) and the release that
    no longer takes it: a kernel passing it was written for an older Triton."""

    function: str
    keyword: str
    removed_in: str
    source: str


@dataclass(frozen=True, kw_only=True)
class TorchApi:
    """An attribute of torch (``torch.version.xpu``) and the first release that has it."""

    name: str
    first: str
    source: str


@dataclass(frozen=True, kw_only=True)
class BackendApi:
    """A backend's public functions and the module that defines them."""

    backend: str
    module: str
    names: tuple[str, ...]
    renamed_from: str
    """The prefix the functions had before ``renamed_in`` (``flash_attn_unpadded``), or ``""``."""
    renamed_to: str
    """The prefix they have since (``flash_attn_varlen``)."""
    renamed_in: str
    source: str
    keywords: tuple[tuple[str, str], ...] = ()
    """(keyword, first release) the functions took later than their first release
    (``window_size``, flash-attn 2.3.0): a caller passing one needs at least that release."""
    guarded: tuple[str, ...] = ()
    """Names callers define only inside their guarded import of the backend
    (``_flash_supports_window_size``, ``pad_input``): undefined, the import failed."""
    top_level: tuple[tuple[str, str], ...] = ()
    """(function, first release) the package exports at its top level (``from flash_attn import
    flash_attn_func`` works since 2.0.0): a top-level lookup that fails means an older release."""


@dataclass(frozen=True, kw_only=True)
class ArchInstruction:
    """A PTX instruction family that only one architecture's arch-specific target has."""

    prefix: str
    sm: int
    target: str
    source: str


@dataclass(frozen=True, kw_only=True)
class Feature:
    """A feature of attention (a mask, soft-capping) and the backends that have it."""

    name: str
    pattern: re.Pattern[str]
    backends: tuple[str, ...]
    source: str


@dataclass(frozen=True, kw_only=True)
class Knowledge:
    archs: tuple[ArchRecord, ...]
    knobs: tuple[Knob, ...]
    backends: tuple[BackendRule, ...]
    dependencies: tuple[Dependency, ...] = ()
    harmless: tuple[Harmless, ...] = ()
    messages: tuple[FrameworkMessage, ...] = ()
    torch_api: tuple[TorchApi, ...] = ()
    triton_keywords: tuple[TritonKeyword, ...] = ()
    backend_api: tuple[BackendApi, ...] = ()
    arch_instructions: tuple[ArchInstruction, ...] = ()
    features: tuple[Feature, ...] = ()
    jit_cuda_floors: tuple[JitCudaFloor, ...] = ()
    torch_pins: tuple[tuple[str, str, str], ...] = ()
    triton: TritonPairing | None = None
    """The Triton each torch release pins (wheels_index/triton.toml), when the table is there."""
    """(dist, version, the torch requirement its wheels pin), from the wheel tables."""

    def arch(self, sm: int) -> ArchRecord | None:
        for a in self.archs:
            if a.sm == sm:
                return a
        return None

    def gpu_names(self) -> tuple[tuple[str, int], ...]:
        return tuple((p, a.sm) for a in self.archs for p in a.gpus)

    def backend(self, name: str) -> BackendRule | None:
        for b in self.backends:
            if b.name == name:
                return b
        return None

    def backend_of_distribution(self, dist: str) -> BackendRule | None:
        """The backend a distribution ships: ``flash-attn`` -> flash_attn_2."""
        return next((b for b in self.backends if dist in b.distributions), None)

    def backend_of_module(self, module: str) -> BackendRule | None:
        """The backend a (missing) module belongs to: ``flash_attn`` -> flash_attn_2."""
        top = module.split(".", maxsplit=1)[0]
        for b in self.backends:
            if module in b.modules or top in {m.split(".")[0] for m in b.modules}:
                return b
        return None


def _regex(e: Entry, key: str) -> re.Pattern[str]:
    try:
        pattern = re.compile(e.str_(key))
    except re.error as exc:
        raise e.fail(key, f"not a valid regex: {exc}") from exc
    if pattern.search(""):
        raise e.fail(key, "matches the empty string")
    return pattern


def _release_table(e: Entry, item: dict[str, Any], key: str, what: str) -> dict[str, str]:
    """A ``{name = "first release"}`` table of a ``[[backend_api]]`` entry."""
    table = item.get(key) or {}
    if not isinstance(table, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and re.fullmatch(r"\d+(?:\.\d+)+", v)
        for k, v in table.items()
    ):
        raise e.fail(key, f'expected a table of {what} = "first release"')
    return dict(table)


def parse_arch_support(data: dict[str, Any]) -> tuple[ArchRecord, ...]:
    """Validate ``arch_support.toml``; errors name the entry and the key."""
    if data.get("schema_version") != 1:
        raise IndexDataError(f"{ARCH_FILE}: schema_version must be 1")
    archs = []
    for n, item in enumerate(data.get("arch") or []):
        e = Entry(item, f"{ARCH_FILE}: arch #{n + 1}")
        e.only({"sm", "name", "gpus", *TOOLS, "torch_cuda", "nvcc_dropped", "source", "verified"})
        sm = item.get("sm")
        if not isinstance(sm, int):
            raise e.fail("sm", "must be an integer (80 for sm_80)")
        first = tuple((t, e.str_(t)) for t in TOOLS if item.get(t) is not None)
        verified = tuple(e.strs("verified")) if item.get("verified") is not None else ()
        for col in verified:
            if col not in (*TOOLS, "torch_cuda", "nvcc_dropped"):
                raise e.fail("verified", f"unknown column {col!r}")
        gpus = tuple(e.strs("gpus")) if item.get("gpus") is not None else ()
        for g in gpus:
            try:
                re.compile(g)
            except re.error as exc:
                raise e.fail("gpus", f"{g!r} is not a valid regex: {exc}") from exc
        archs.append(
            ArchRecord(
                sm=sm,
                name=e.str_("name"),
                gpus=gpus,
                first=first,
                torch_cuda=e.str_("torch_cuda") if item.get("torch_cuda") is not None else None,
                nvcc_dropped=(
                    e.str_("nvcc_dropped") if item.get("nvcc_dropped") is not None else None
                ),
                source=e.str_("source"),
                verified=verified,
            )
        )
    return tuple(archs)


def parse_explain_classes(data: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """Validate ``explain_classes.toml`` into knobs, dependencies, harmless warnings and
    framework messages."""
    if data.get("schema_version") != 1:
        raise IndexDataError(f"{CLASSES_FILE}: schema_version must be 1")
    knobs = []
    for n, item in enumerate(data.get("knob") or []):
        e = Entry(item, f"{CLASSES_FILE}: knob #{n + 1}")
        e.only({"pattern", "framework", "backend", "instead", "source"})
        backend = e.str_("backend")
        if backend.replace("{n}", "2") not in BACKEND_NAMES:
            raise e.fail("backend", f"unknown backend {backend!r}")
        knobs.append(
            Knob(
                pattern=_regex(e, "pattern"),
                framework=e.str_("framework"),
                backend=backend,
                instead=e.str_("instead"),
                source=e.str_("source"),
            )
        )
    deps = []
    for n, item in enumerate(data.get("dependency") or []):
        e = Entry(item, f"{CLASSES_FILE}: dependency #{n + 1}")
        e.only({"backend", "module", "dist", "requirement", "source"})
        if e.str_("backend") not in BACKEND_NAMES:
            raise e.fail("backend", f"unknown backend {e.str_('backend')!r}")
        deps.append(
            Dependency(
                backend=e.str_("backend"),
                module=e.str_("module"),
                dist=e.str_("dist"),
                requirement=e.str_("requirement"),
                source=e.str_("source"),
            )
        )
    harmless = []
    for n, item in enumerate(data.get("harmless") or []):
        e = Entry(item, f"{CLASSES_FILE}: harmless #{n + 1}")
        e.only({"id", "pattern", "why", "source", "explains_missing"})
        harmless.append(
            Harmless(
                id=e.str_("id"),
                pattern=_regex(e, "pattern"),
                why=e.str_("why"),
                source=e.str_("source"),
                explains_missing=(
                    tuple(e.strs("explains_missing"))
                    if item.get("explains_missing") is not None
                    else ()
                ),
            )
        )
    messages = []
    for n, item in enumerate(data.get("message") or []):
        e = Entry(item, f"{CLASSES_FILE}: message #{n + 1}")
        e.only(
            {
                "id",
                "framework",
                "pattern",
                "requires",
                "cause",
                "fix",
                "source",
                "class",
                "reasons",
                "gpu_floor",
            }
        )
        messages.append(
            FrameworkMessage(
                id=e.str_("id"),
                answer=e.str_("class") if item.get("class") is not None else "",
                framework=e.str_("framework"),
                pattern=_regex(e, "pattern"),
                requires=_regex(e, "requires") if item.get("requires") is not None else None,
                cause=e.str_("cause"),
                fix=tuple(e.strs("fix")),
                source=e.str_("source"),
                reasons=e.bool_("reasons", default=False),
                gpu_floor=e.int_("gpu_floor") if item.get("gpu_floor") is not None else None,
            )
        )
    torch_api = []
    for n, item in enumerate(data.get("torch_api") or []):
        e = Entry(item, f"{CLASSES_FILE}: torch_api #{n + 1}")
        e.only({"name", "first", "source"})
        torch_api.append(
            TorchApi(name=e.str_("name"), first=e.str_("first"), source=e.str_("source"))
        )
    triton_keywords = []
    for n, item in enumerate(data.get("triton_keyword") or []):
        e = Entry(item, f"{CLASSES_FILE}: triton_keyword #{n + 1}")
        e.only({"function", "keyword", "removed_in", "source"})
        triton_keywords.append(
            TritonKeyword(
                function=e.str_("function"),
                keyword=e.str_("keyword"),
                removed_in=e.str_("removed_in"),
                source=e.str_("source"),
            )
        )
    backend_api = []
    for n, item in enumerate(data.get("backend_api") or []):
        e = Entry(item, f"{CLASSES_FILE}: backend_api #{n + 1}")
        e.only(
            {
                "backend", "module", "names", "renamed_from", "renamed_to", "renamed_in",
                "keywords", "top_level", "guarded", "source",
            }
        )  # fmt: skip
        kws = _release_table(e, item, "keywords", "keyword")
        tops = _release_table(e, item, "top_level", "function")
        if e.str_("backend") not in BACKEND_NAMES:
            raise e.fail("backend", f"unknown backend {e.str_('backend')!r}")
        backend_api.append(
            BackendApi(
                backend=e.str_("backend"),
                module=e.str_("module"),
                names=tuple(e.strs("names")),
                renamed_from=str(item.get("renamed_from") or ""),
                renamed_to=str(item.get("renamed_to") or ""),
                renamed_in=str(item.get("renamed_in") or ""),
                source=e.str_("source"),
                keywords=tuple(sorted(kws.items())),
                top_level=tuple(sorted(tops.items())),
                guarded=tuple(e.strs("guarded")) if "guarded" in item else (),
            )
        )
    instructions = []
    for n, item in enumerate(data.get("arch_instruction") or []):
        e = Entry(item, f"{CLASSES_FILE}: arch_instruction #{n + 1}")
        e.only({"prefix", "sm", "target", "source"})
        if not isinstance(item.get("sm"), int):
            raise e.fail("sm", "must be an integer (90 for sm_90)")
        instructions.append(
            ArchInstruction(
                prefix=e.str_("prefix"),
                sm=item["sm"],
                target=e.str_("target"),
                source=e.str_("source"),
            )
        )
    features = []
    for n, item in enumerate(data.get("feature") or []):
        e = Entry(item, f"{CLASSES_FILE}: feature #{n + 1}")
        e.only({"name", "pattern", "backends", "source"})
        for b in e.strs("backends"):
            if b not in BACKEND_NAMES:
                raise e.fail("backends", f"unknown backend {b!r}")
        features.append(
            Feature(
                name=e.str_("name"),
                pattern=re.compile(e.str_("pattern"), re.I),
                backends=tuple(e.strs("backends")),
                source=e.str_("source"),
            )
        )
    floors = []
    for n, item in enumerate(data.get("jit_cuda_floor") or []):
        e = Entry(item, f"{CLASSES_FILE}: jit_cuda_floor #{n + 1}")
        e.only({"project", "family", "cuda", "source"})
        floors.append(
            JitCudaFloor(
                project=e.str_("project"),
                family=e.int_("family"),
                cuda=e.str_("cuda", pattern=re.compile(r"\d+\.\d+")),
                source=e.str_("source"),
            )
        )
    ids = [h.id for h in harmless] + [m.id for m in messages]
    if len(set(ids)) != len(ids):
        raise IndexDataError(f"{CLASSES_FILE}: duplicate id")
    return {
        "knob": tuple(knobs),
        "dependency": tuple(deps),
        "harmless": tuple(harmless),
        "message": tuple(messages),
        "torch_api": tuple(torch_api),
        "triton_keyword": tuple(triton_keywords),
        "backend_api": tuple(backend_api),
        "arch_instruction": tuple(instructions),
        "feature": tuple(features),
        "jit_cuda_floor": tuple(floors),
    }


@functools.lru_cache(maxsize=4)
def load_knowledge(directory: Path | None = None) -> Knowledge:
    """The arch table, the class data and the backend records (cached for the run)."""
    archs = parse_arch_support(read_toml(ARCH_FILE, directory))
    extra = parse_explain_classes(read_toml(CLASSES_FILE, directory))
    return Knowledge(
        archs=archs,
        knobs=extra["knob"],
        backends=load_backend_records(directory),
        dependencies=extra["dependency"],
        harmless=extra["harmless"],
        messages=extra["message"],
        torch_api=extra["torch_api"],
        triton_keywords=extra["triton_keyword"],
        backend_api=extra["backend_api"],
        arch_instructions=extra["arch_instruction"],
        features=extra["feature"],
        jit_cuda_floors=extra["jit_cuda_floor"],
        torch_pins=_torch_pins(directory),
        triton=_triton_pairing(directory),
    )


def _triton_pairing(directory: Path | None) -> TritonPairing | None:
    try:
        return parse_triton(read_toml(TRITON_FILE, directory))
    except IndexDataError:
        return None  # a knowledge directory without the table (tests): no pins


def _torch_pins(directory: Path | None) -> tuple[tuple[str, str, str], ...]:
    """Each xformers release and the torch its wheels pin (``torch ==2.2.1``)."""
    pins: dict[tuple[str, str, str], None] = {}
    try:
        wheels = read_toml("xformers.toml", directory).get("wheel") or []
    except IndexDataError:
        return ()  # a knowledge directory without the wheel table (tests): no pins
    for w in wheels:
        req = str(w.get("requires_torch") or "")
        if w.get("version") and req:
            pins[("xformers", str(w["version"]), req.removeprefix("torch").replace(" ", ""))] = None
    return tuple(pins)


def backend_name(text: str) -> BackendName | None:
    return next((b for b in BACKEND_NAMES if b == text), None)
