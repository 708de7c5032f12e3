"""The frameworks people run attention through (``wheels_index/frameworks.toml``), validated.

Per framework: how it is found, the knob that picks a backend (each backend's name there is in
its record, ``[[backend.frameworks]]``), the environment variables that steer it, the pins of a
release that is not installed here, and the minimum versions it checks when a backend is set.
One reader, cached for the run; errors name the file, the entry and the key.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attn_doctor.backends import BackendName as _BackendName
from attn_doctor.backends import backend_name
from attn_doctor.datafiles import Entry, check_schema, name_and_specifier, read_toml, tables
from attn_doctor.framework_names import FRAMEWORK_NAMES, FrameworkName

FILE = "frameworks.toml"


@dataclass(frozen=True, kw_only=True)
class Framework:
    name: FrameworkName
    title: str
    distributions: tuple[str, ...]
    """Distributions whose presence means the framework is installed (ComfyUI: a folder)."""
    knob: str
    """How a backend is chosen there; ``{name}`` is the backend's name in that framework."""
    extra_knob: str = ""
    """How each extra setting of a name is passed (``{key}``, ``{value}``)."""
    default_knob: str = ""
    """What to say when the framework picks the backend by itself (no knob)."""
    constrain: bool = False
    """Its pins are constraints of every install here (vLLM and SGLang pin torch, kernels and
    transformers exactly: moving one breaks them)."""
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class Setting:
    """An environment variable a framework reads (or once read) to pick a backend."""

    variable: str
    framework: FrameworkName
    read: str
    """The framework versions that read it (a specifier)."""
    names_backend: bool
    """Its value is one of the framework's backend names."""
    replacement: str
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class Pin:
    """What a framework release requires, for when it is not installed here to ask."""

    framework: FrameworkName
    versions: str
    requires: tuple[str, ...]
    optional: bool = False
    """Needed only for one feature (transformers' Hub kernel fallback), not in its metadata."""
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class Minimum:
    """The lowest version of a backend's package a framework accepts for it."""

    framework: FrameworkName
    backend: _BackendName
    requirement: str
    versions: str
    ways: tuple[str, ...] = ()
    """How to get a version that qualifies when the package index has none."""
    source: str
    verified: bool

    @property
    def distribution(self) -> str:
        return name_and_specifier(self.requirement)[0]

    @property
    def specifier(self) -> str:
        return name_and_specifier(self.requirement)[1]


@dataclass(frozen=True, kw_only=True)
class HubKernel:
    """A Hub kernel a framework fetches for one of its knob values."""

    framework: FrameworkName
    versions: str
    knob: str
    """The knob value that fetches it (``flash_attention_2``, ``flash_hub``, ``sage_hub``)."""
    repo: str
    version: int
    """The kernel version (the repository's ``v{N}`` branch)."""
    trust: str
    """The switch it needs to load, or why none is needed."""
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class FrameworkData:
    frameworks: tuple[Framework, ...]
    settings: tuple[Setting, ...]
    pins: tuple[Pin, ...]
    minimums: tuple[Minimum, ...]
    hub_kernels: tuple[HubKernel, ...] = ()

    def framework(self, name: FrameworkName) -> Framework:
        for fw in self.frameworks:
            if fw.name == name:
                return fw
        raise KeyError(name)  # the loader refuses data without every framework


def _framework_name(e: Entry, key: str) -> FrameworkName:
    value = e.str_(key)
    if value not in FRAMEWORK_NAMES:
        raise e.fail(key, f"{value!r} is not one of {', '.join(FRAMEWORK_NAMES)}")
    return value


def _requirements(e: Entry, key: str) -> tuple[str, ...]:
    return tuple(e.requirement(key, r) for r in e.strs(key))


def parse_frameworks(doc: dict[str, Any]) -> FrameworkData:
    """Validate the whole file; raises ``IndexDataError`` naming the bad entry."""
    check_schema(doc, FILE)
    frameworks = []
    for e in tables(doc, FILE, "framework"):
        e.only({"name", "title", "distributions", "knob", "extra_knob", "default_knob",
                "constrain", "source", "verified"})  # fmt: skip
        source, verified = e.provenance()
        knob = e.str_("knob")
        if "{name}" not in knob:
            raise e.fail("knob", "must contain {name}")
        frameworks.append(
            Framework(
                name=_framework_name(e, "name"),
                title=e.str_("title"),
                distributions=e.strs("distributions"),
                knob=knob,
                extra_knob=e.str_("extra_knob", default=""),
                default_knob=e.str_("default_knob", default=""),
                constrain=e.bool_("constrain", default=False),
                source=source,
                verified=verified,
            )
        )
    missing = set(FRAMEWORK_NAMES) - {f.name for f in frameworks}
    if missing:
        raise tables(doc, FILE, "framework")[0].fail("name", f"no entry for {sorted(missing)}")
    settings = []
    for e in tables(doc, FILE, "setting"):
        e.only({"variable", "framework", "read", "names_backend", "replacement", "source",
                "verified"})  # fmt: skip
        source, verified = e.provenance()
        settings.append(
            Setting(
                variable=e.str_("variable"),
                framework=_framework_name(e, "framework"),
                read=e.specifier("read"),
                names_backend=e.bool_("names_backend", default=False),
                replacement=e.str_("replacement"),
                source=source,
                verified=verified,
            )
        )
    pins = []
    for e in tables(doc, FILE, "pin"):
        e.only({"framework", "versions", "requires", "optional", "source", "verified"})
        source, verified = e.provenance()
        pins.append(
            Pin(
                framework=_framework_name(e, "framework"),
                versions=e.specifier("versions"),
                requires=_requirements(e, "requires"),
                optional=e.bool_("optional", default=False),
                source=source,
                verified=verified,
            )
        )
    minimums = []
    for e in tables(doc, FILE, "minimum"):
        e.only({"framework", "backend", "requirement", "versions", "ways", "source", "verified"})
        source, verified = e.provenance()
        minimums.append(
            Minimum(
                framework=_framework_name(e, "framework"),
                backend=backend_name(e, "backend", e.str_("backend")),
                requirement=e.requirement("requirement", e.str_("requirement")),
                versions=e.specifier("versions"),
                ways=e.strs("ways"),
                source=source,
                verified=verified,
            )
        )
    hub = []
    for e in tables(doc, FILE, "hub_kernel"):
        e.only({"framework", "versions", "knob", "repo", "version", "trust", "source", "verified"})
        source, verified = e.provenance()
        hub.append(
            HubKernel(
                framework=_framework_name(e, "framework"),
                versions=e.specifier("versions"),
                knob=e.str_("knob"),
                repo=e.str_("repo"),
                version=e.int_("version"),
                trust=e.str_("trust"),
                source=source,
                verified=verified,
            )
        )
    return FrameworkData(
        hub_kernels=tuple(hub),
        frameworks=tuple(frameworks),
        settings=tuple(settings),
        pins=tuple(pins),
        minimums=tuple(minimums),
    )


@functools.cache
def load_frameworks(directory: Path | None = None) -> FrameworkData:
    """``frameworks.toml``, validated (cached for the run)."""
    return parse_frameworks(read_toml(FILE, directory))
