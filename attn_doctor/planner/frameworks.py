"""The frameworks of a machine, their pins and minimums, and each backend's knob there (pure).

A framework is *present* when its distribution is installed (ComfyUI: when its folder was
found). Its requirements are read from its installed metadata (Requires-Dist) when it is
installed; ``wheels_index/frameworks.toml`` holds them for a release that is not. The knob is
the framework's own way to pick a backend, with the backend's name from its record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.datafiles import SIMPLE_REQUIREMENT, name_and_specifier
from attn_doctor.facts import Environment
from attn_doctor.framework_names import FRAMEWORK_NAMES, FrameworkEntry, FrameworkName
from attn_doctor.index.frameworks import FrameworkData, Minimum, load_frameworks
from attn_doctor.planner.machine import marker_environment
from attn_doctor.probe.distributions import canonicalize_name
from attn_doctor.versions import parse_version

if TYPE_CHECKING:
    from attn_doctor.diagnosis import BackendStatus
    from attn_doctor.planner.plans import Option


def satisfies(version: str | None, specifier: str) -> bool | None:
    """Whether ``version`` is in ``specifier`` (None: the version cannot be read)."""
    v = parse_version(version, public=True)
    if v is None:
        return None
    return SpecifierSet(specifier).contains(v, prereleases=True)


def can_both_hold(a: str, b: str) -> bool:
    """Whether two specifiers can both hold: some version they mention satisfies both."""
    sa, sb = SpecifierSet(a), SpecifierSet(b)
    probes = []
    for spec in (*sa, *sb):
        try:
            v = Version(spec.version.rstrip(".*"))
        except InvalidVersion:
            return True
        probes += [v, Version(f"{v.public}.post9999")]
    if not probes:
        return True
    return any(
        sa.contains(v, prereleases=True) and sb.contains(v, prereleases=True) for v in probes
    )


def framework_version(env: Environment, framework: FrameworkName) -> str | None:
    """The installed version (ComfyUI: its ``comfyui_version.py``); None: absent or unknown."""
    if framework == "comfyui":
        return env.comfyui.version if env.comfyui is not None else None
    pkg = env.package(framework)
    return pkg.version if pkg is not None else None


def is_present(env: Environment, framework: FrameworkName) -> bool:
    if framework == "comfyui":
        return env.comfyui is not None
    return env.package(framework) is not None


def present_frameworks(env: Environment) -> tuple[FrameworkName, ...]:
    """The frameworks installed here, in ``FRAMEWORK_NAMES`` order."""
    return tuple(fw for fw in FRAMEWORK_NAMES if is_present(env, fw))


def installed_version(env: Environment, distribution: str) -> str | None:
    """The installed version of a distribution (torch from its own facts)."""
    name = canonicalize_name(distribution)
    if name == "torch":
        return env.torch.version if env.torch is not None else None
    pkg = env.package(name)
    return pkg.version if pkg is not None else None


@dataclass(frozen=True, kw_only=True)
class FrameworkRequirement:
    """One requirement of a framework on another distribution."""

    framework: FrameworkName
    framework_version: str | None
    requirement: str
    """``transformers>=5.16.1,<5.23.0`` (no extras, no markers)."""
    source: str
    """``metadata`` (read from the installed framework) or the data file's source."""
    optional: bool = False

    @property
    def name(self) -> str:
        return canonicalize_name(name_and_specifier(self.requirement)[0])

    @property
    def specifier(self) -> str:
        return name_and_specifier(self.requirement)[1]


def _plain(line: str, markers: dict[str, str]) -> str | None:
    """``name<spec>`` of a Requires-Dist line that applies to this machine, without extras and
    markers; None for lines under an ``extra``, lines whose markers do not hold for the
    machine (evaluated against its facts, not the running one), or lines that pin nothing.

    A plain ``name<spec>`` line, and any line under an ``extra``, is read without
    ``packaging.requirements`` (whose markers load ``packaging.tags``: not on ``check``'s
    start-up path); the rest gets the full PEP 508 parse."""
    head, _, marker = line.partition(";")
    if "extra" in marker:
        return None
    simple = None if marker.strip() else SIMPLE_REQUIREMENT.fullmatch(head.strip())
    if simple is not None:
        try:
            spec = SpecifierSet(simple["spec"] or "")
        except InvalidSpecifier:
            return None
        return f"{canonicalize_name(simple['name'])}{spec}" if str(spec) else None
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(line)
    except InvalidRequirement:
        return None
    if req.url or not str(req.specifier):
        return None
    if req.marker is not None:
        if "extra" in str(req.marker):
            return None
        try:
            if not req.marker.evaluate(markers):
                return None
        except Exception:  # an unknown marker variable: not for us to guess
            return None
    return f"{canonicalize_name(req.name)}{req.specifier}"


def requires_itself(env: Environment, framework: FrameworkName, distribution: str) -> bool:
    """The framework itself requires ``distribution`` (SGLang 0.5.23 requires flash-attn-4,
    though its fa4 backend runs the copy it vendors): then it is not an idle install."""
    name = canonicalize_name(distribution)
    return any(not r.optional and r.name == name for r in framework_requirements(env, framework))


def framework_requirements(
    env: Environment, framework: FrameworkName, data: FrameworkData | None = None
) -> tuple[FrameworkRequirement, ...]:
    """What the framework here requires: its installed metadata, else the data's pins for its
    version; plus the data's optional needs (transformers' Hub fallback range of kernels)."""
    data = data or load_frameworks()
    version = framework_version(env, framework)
    markers = marker_environment(env)
    out: list[FrameworkRequirement] = []
    pkg = env.package(framework) if framework != "comfyui" else None
    for pin in data.pins:
        if pin.framework != framework or version is None or not satisfies(version, pin.versions):
            continue
        if pkg is not None and pkg.requires and not pin.optional:
            continue  # the installed metadata holds the truth
        for line in pin.requires:
            plain = _plain(line, markers)
            if plain is not None:
                out.append(
                    FrameworkRequirement(
                        framework=framework,
                        framework_version=version,
                        requirement=plain,
                        source=pin.source,
                        optional=pin.optional,
                    )
                )
    if pkg is not None:
        for line in pkg.requires:
            plain = _plain(line, markers)
            if plain is not None:
                out.append(
                    FrameworkRequirement(
                        framework=framework,
                        framework_version=version,
                        requirement=plain,
                        source=f"{framework} {version} metadata (Requires-Dist)",
                    )
                )
    return tuple(out)


def minimums_for(
    env: Environment, backend: BackendName, frameworks: Iterable[FrameworkName]
) -> tuple[Minimum, ...]:
    """The minimum versions these frameworks (at their versions here) ask of ``backend``."""
    data = load_frameworks()
    wanted = set(frameworks)
    return tuple(
        m
        for m in data.minimums
        if m.backend == backend
        and m.framework in wanted
        and satisfies(framework_version(env, m.framework), m.versions) is not False
    )


def knob(framework: FrameworkName, entry: FrameworkEntry) -> str:
    """The exact setting that picks ``entry``'s backend in ``framework``."""
    fw = load_frameworks().framework(framework)
    if entry.default and fw.default_knob:
        return fw.default_knob.format(name=entry.name)
    text = fw.knob.format(name=entry.name)
    for key, value in entry.extra:
        text += " " + fw.extra_knob.format(key=key, value=value)
    return text


def backend_for_name(
    framework: FrameworkName, name: str, version: str | None
) -> BackendName | None:
    """The backend a framework's name stands for (``sage`` in diffusers: sageattention)."""
    for backend, record in BACKENDS.items():
        entry = record.framework_entry(framework, version)
        if entry is not None and entry.name.lower() == name.strip().lower():
            return backend
    return None


def framework_title(framework: FrameworkName) -> str:
    return load_frameworks().framework(framework).title


def framework_option(
    option: Option, env: Environment, framework: FrameworkName, status: BackendStatus
) -> Option | None:
    """``option`` as ``framework`` sees it (None: the framework cannot use the backend).

    A kernel the framework ships itself (vLLM's vllm_flash_attn) is ready wherever the
    framework is installed, whatever the backend's own package; a package below the minimum
    the framework checks needs an upgrade first.
    """
    version = framework_version(env, framework)
    entry = BACKENDS[option.backend].framework_entry(framework, version)
    if entry is None:
        return None
    title = framework_title(framework)
    # vLLM's own flash-attn build is its CUDA one; on ROCm it imports the upstream package.
    cuda_here = bool(env.nvidia_gpus) or not env.amd_gpus
    if entry.bundled and cuda_here and not option.way.startswith("fix first"):
        if is_present(env, framework):
            return replace(
                option,
                status="ready",
                way=f"ships inside {title} {version or ''}".rstrip(),
                source="installed",
            )
        return replace(
            option,
            status="install",
            way=f"comes with {title} (its own build of the kernel)",
            source="pypi",
        )
    for minimum in minimums_for(env, option.backend, (framework,)):
        ok = satisfies(status.version, minimum.specifier)
        if option.status == "ready" and ok is False:
            return replace(
                option,
                status="install",
                way=f"upgrade to {minimum.requirement}: {title} refuses {status.version}",
                reason=f"{title} checks {minimum.requirement} ({minimum.source})",
                source="source-build",
            )
        if option.status == "install":
            return replace(option, way=f"{option.way}; {title} needs {minimum.requirement}")
    return option
