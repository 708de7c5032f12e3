"""Hugging Face Hub kernel build variants: names and the ``kernels`` package's matching rules.

The rules restate huggingface/kernels ``variants.py`` (recorded in ``hub_kernels.toml``):
``torch{X}{Y}[-cxx11|-cxx98]-cu{X}{Y}-{cpu}-{os}`` matches when torch's major.minor is equal,
the ABI tag (if any) equals torch's C++11 ABI, the CUDA major is equal and the variant's CUDA
minor is not above torch's, and the CPU and OS are equal; ``torch-stable-abi{X}{Y}-…`` matches
any torch at or above that version. Pure functions: the caller supplies the facts.

``fallback_for`` says what transformers' own Hub fallback accepts on one machine: the
constants read from that machine's installed transformers when the snapshot has them, else
the bundled row for its transformers release, else unknown (never another release's range).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.version import Version

if TYPE_CHECKING:
    from attn_doctor.facts import Environment, TransformersConstants
    from attn_doctor.index.records import HubRules

_TORCH = re.compile(r"torch(\d)(\d+)(?:-(cxx11|cxx98))?")
_STABLE = re.compile(r"torch-stable-abi(\d)(\d+)")
_CUDA = re.compile(r"cu(\d{2})(\d+)")


def _cuda_str(cuda: str) -> str:
    v = Version(cuda)
    return f"cu{v.major}{v.minor}"


def expected_variants(
    *, torch: str, cxx11_abi: bool | None, cuda: str, cpu: str, os: str
) -> tuple[str, ...]:
    """The variant names a ``kernels`` install here would accept, most preferred first
    (ignoring stable-ABI variants, whose version set depends on the repository)."""
    v = Version(Version(torch).public)
    base = f"torch{v.major}{v.minor}"
    arch = f"{_cuda_str(cuda)}-{cpu}-{os}"
    names = [f"{base}-{arch}"]
    if cxx11_abi is not None and os == "linux":
        names.append(f"{base}-{'cxx11' if cxx11_abi else 'cxx98'}-{arch}")
    return tuple(names)


def variant_mismatch(
    variant: str, *, torch: str, cxx11_abi: bool | None, cuda: str, cpu: str, os: str
) -> str | None:
    """Why ``kernels`` would reject this build variant here, or None when it would accept it."""
    if variant.startswith("torch-stable-abi"):
        parts = variant.split("-")
        m = _STABLE.fullmatch("-".join(parts[:3]))
        rest = parts[3:]
        if not m:
            return f"not a variant name: {variant!r}"
        need = Version(f"{m.group(1)}.{m.group(2)}")
        if Version(Version(torch).public) < need:
            return f"stable ABI {need} is newer than torch {torch}"
    else:
        parts = variant.split("-")
        if len(parts) >= 2 and parts[1] in ("cxx11", "cxx98"):
            framework, rest = "-".join(parts[:2]), parts[2:]
        else:
            framework, rest = parts[0], parts[1:]
        m = _TORCH.fullmatch(framework)
        if not m:
            return f"not a variant name: {variant!r}"
        want = Version(Version(torch).public)
        if (int(m.group(1)), int(m.group(2))) != (want.major, want.minor):
            return (
                f"built for torch {m.group(1)}.{m.group(2)}, "
                f"torch here is {want.major}.{want.minor}"
            )
        if m.group(3) is not None and (m.group(3) == "cxx11") != cxx11_abi:
            return f"C++ ABI tag {m.group(3)} does not match torch's C++11 ABI ({cxx11_abi})"
    if len(rest) != 3:
        return f"not a variant name: {variant!r}"
    backend, vcpu, vos = rest
    if vcpu != cpu:
        return f"CPU {vcpu} does not match {cpu}"
    if vos != os:
        return f"OS {vos} does not match {os}"
    cm = _CUDA.fullmatch(backend)
    if not cm:
        return f"backend {backend} is not CUDA"
    have = Version(cuda)
    major, minor = int(cm.group(1)), int(cm.group(2))
    if major != have.major or minor > have.minor:
        return f"CUDA {major}.{minor} is not compatible with torch's CUDA {cuda}"
    return None


@dataclass(frozen=True, kw_only=True)
class HubFallback:
    """transformers' Hub fallback as one machine's transformers defines it."""

    transformers: str | None
    """The installed transformers version (None: not installed; the newest row applies)."""
    kernels_min_version: str | None
    """Inclusive; None with ``kernels_max_version`` when the range is not known here."""
    kernels_max_version: str | None
    repos: tuple[tuple[str, str], ...]
    """(``attn_implementation``, Hub repo) that transformers loads instead of the package."""
    kernel_versions: tuple[tuple[str, str], ...]
    source: str
    verified: bool
    read_here: bool
    """The values come from the machine's own transformers files, not the bundled table."""

    @property
    def known(self) -> bool:
        return self.kernels_min_version is not None and self.kernels_max_version is not None

    @property
    def requirement(self) -> str | None:
        """``kernels>=MIN,<MAX``, or None when the range is not known."""
        if not self.known:
            return None
        return f"kernels>={self.kernels_min_version},<{self.kernels_max_version}"

    def accepts(self, kernels: str) -> bool | None:
        """Whether this ``kernels`` version is in the range (None: range or version unknown)."""
        from packaging.version import InvalidVersion

        if self.kernels_min_version is None or self.kernels_max_version is None:
            return None
        try:
            v = Version(kernels)
        except InvalidVersion:
            return None
        return Version(self.kernels_min_version) <= v < Version(self.kernels_max_version)

    def kernel_version(self, repo: str) -> str | None:
        return next((v for r, v in self.kernel_versions if r == repo), None)


def fallback_for(
    hub: HubRules,
    *,
    transformers: str | None,
    read: TransformersConstants | None = None,
    rocm: bool = False,
) -> HubFallback:
    """What ``transformers`` (a version, or None when not installed) accepts for its Hub
    fallback: ``read`` (constants read from its files) when it belongs to that version, else
    the bundled row of its minor release, else unknown. Without transformers: the newest row
    (a fresh install gets the newest transformers)."""
    if (
        read is not None
        and (transformers is None or read.version == transformers)
        and read.kernels_min_version is not None
        and read.kernels_max_version is not None
    ):
        files = ", ".join(f.removeprefix("transformers/") for f in read.sources)
        return HubFallback(
            transformers=read.version,
            kernels_min_version=read.kernels_min_version,
            kernels_max_version=read.kernels_max_version,
            repos=(read.hub_fallback_rocm if rocm else read.hub_fallback) or _bundled_repos(hub),
            kernel_versions=read.hub_kernel_versions,
            source=f"read from the installed transformers {read.version} ({files})",
            verified=True,
            read_here=True,
        )
    row = hub.newest if transformers is None else hub.row_for(transformers)
    if row is None:
        listed = ", ".join(r.version for r in reversed(hub.rows))
        return HubFallback(
            transformers=transformers,
            kernels_min_version=None,
            kernels_max_version=None,
            repos=_bundled_repos(hub),
            kernel_versions=(),
            source=f"transformers {transformers}: its files were not read and the bundled "
            f"table has rows for {listed} only",
            verified=False,
            read_here=False,
        )
    return HubFallback(
        transformers=transformers,
        kernels_min_version=row.kernels_min_version,
        kernels_max_version=row.kernels_max_version,
        repos=_bundled_repos(hub),
        kernel_versions=row.kernel_versions,
        source=f"wheels_index/hub_kernels.toml, transformers {row.version} row: {row.source}",
        verified=row.verified,
        read_here=False,
    )


def fallback_of(env: Environment, hub: HubRules) -> HubFallback:
    """``fallback_for`` with the facts of ``env``."""
    tf = env.package("transformers")
    return fallback_for(
        hub,
        transformers=tf.version if tf is not None else None,
        read=env.transformers_constants,
        rocm=env.torch is not None and env.torch.build == "rocm",
    )


def _bundled_repos(hub: HubRules) -> tuple[tuple[str, str], ...]:
    return tuple((k.replaces, k.repo) for k in hub.kernels)


def kernels_requirement(
    hub: HubRules, transformers: str | None, read: TransformersConstants | None
) -> str:
    """The ``kernels`` requirement to install for this transformers (None: not installed):
    the range it accepts (read from its files, else its bundled row), else the newest
    bundled range (a transformers release the table does not know)."""
    rules = fallback_for(hub, transformers=transformers, read=read)
    return rules.requirement or f"kernels>={hub.kernels_min_version},<{hub.kernels_max_version}"
