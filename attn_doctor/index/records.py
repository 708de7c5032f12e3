"""The wheel index as frozen facts: what exists upstream, from each source, and what it needs.

Built only by ``attn_doctor.index.load.load_index`` from the TOML files in ``wheels_index/``.
Every entry carries ``source`` (where the fact was read) and ``verified``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from packaging.version import InvalidVersion, Version

CudaTagStyle = Literal["major", "major_minor"]


@dataclass(frozen=True, kw_only=True)
class GpuArch:
    """One ``-gencode arch=compute_X,code=sm_X`` a build compiles (SASS only, no PTX)."""

    sm: int
    min_nvcc: str | None = None
    """The nvcc release setup.py requires before it adds this arch."""


@dataclass(frozen=True, kw_only=True)
class MatrixExclude:
    """One ``exclude:`` entry of a workflow matrix: every key must match to exclude a cell."""

    torch: str | None = None
    python: str | None = None
    cuda: str | None = None


@dataclass(frozen=True, kw_only=True)
class PublishedWheel:
    """One wheel the release workflow built and uploaded (one matrix cell)."""

    filename: str
    version: str
    torch_minor: str
    """``2.8``: the torch major.minor in the name (the workflow built against ``build_torch``)."""
    build_torch: str
    build_cuda: str
    """The CUDA toolkit the cell compiled with, e.g. ``12.9.1``."""
    cuda_tag: str
    """The CUDA part of the name: ``122`` or ``12``."""
    cxx11_abi: bool
    python: str
    """``3.12``."""
    platform_tag: str


@dataclass(frozen=True, kw_only=True)
class FlashAttnRelease:
    """One upstream flash-attn 2.x release: its build matrix and its setup.py naming rule."""

    version: str
    tag: str
    date: str
    python: tuple[str, ...]
    torch: tuple[str, ...]
    cuda: tuple[str, ...]
    cxx11_abi: tuple[bool, ...]
    runner: tuple[str, ...]
    exclude: tuple[MatrixExclude, ...]
    published_cuda_tag: CudaTagStyle
    published_platform: str
    setup_cuda_tag: tuple[tuple[str, str], ...]
    """setup.py at this tag: torch CUDA major -> the CUDA part it puts in the name."""
    setup_linux_platform: str
    """``linux_x86_64`` (hard-coded, even on aarch64) or ``linux_{machine}``."""
    gpu_archs: tuple[GpuArch, ...]
    source: str
    verified: bool
    assets_confirmed: bool
    """The release page was compared with the matrix (``missing_assets`` lists the gaps)."""
    missing_assets: tuple[str, ...] = ()
    """Matrix cells whose wheel is not on the release page (failed or skipped builds)."""

    def excluded(self, *, torch: str, python: str, cuda: str) -> bool:
        return any(
            (ex.torch is None or ex.torch == torch)
            and (ex.python is None or ex.python == python)
            and (ex.cuda is None or ex.cuda == cuda)
            for ex in self.exclude
        )

    def archs_for(self, build_cuda: str) -> tuple[int, ...]:
        """The SASS archs a wheel built with nvcc ``build_cuda`` carries."""
        from packaging.version import Version

        built = Version(build_cuda)
        return tuple(
            a.sm for a in self.gpu_archs if a.min_nvcc is None or built >= Version(a.min_nvcc)
        )


@dataclass(frozen=True, kw_only=True)
class CommunityWheel:
    """One wheel a community build project published (parsed from its file name)."""

    project: str
    tag: str
    filename: str
    package: str
    """``flash_attn`` (FA2) or ``flash_attn_3``."""
    version: str
    cuda: str
    """``12.8``."""
    torch_minor: str
    python_tag: str
    abi_tag: str
    platform_tags: tuple[str, ...]
    url: str


@dataclass(frozen=True, kw_only=True)
class ListedWheel:
    """A wheel that ``attn-doctor index update`` found listed by a source it read: a GitHub
    release page (flash-attn's own, the community builds) or a PEP 503 / ``--find-links`` page
    (``listed_wheels.toml`` in the overlay; the bundled file lists none)."""

    package: str
    """The file-name prefix: ``flash_attn``, ``flash_attn_3``, ``sageattention``, ``xformers``."""
    version: str
    filename: str
    url: str
    sha256: str | None
    requires_torch: str
    """The torch it fits, as a specifier (``==2.14.*``); empty: not known (never planned)."""
    torch_from: Literal["metadata", "filename"]
    """``metadata``: the wheel's own ``Requires-Dist: torch``; ``filename``: the project's
    naming rule (release assets whose METADATA does not pin torch)."""
    listed_by: str
    """The repository or page that lists it."""
    trust: Literal["official", "community", "third-party index"]
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class CommunitySource:
    project: str
    trust: Literal["community"]
    source: str
    verified: bool
    wheels: tuple[CommunityWheel, ...]


@dataclass(frozen=True, kw_only=True)
class XformersWheel:
    """One xformers wheel on the package index, with the torch its METADATA requires."""

    version: str
    uploaded: str
    filename: str
    python_tag: str
    abi_tag: str
    platform_tag: str
    requires_python: str
    requires_torch: str
    """``torch==2.8.0`` or ``torch>=2.10``: read from the wheel's own METADATA."""
    source: str
    verified: bool
    sha256: str | None = None
    """The file's sha256 as the package index publishes it (None: not recorded)."""


@dataclass(frozen=True, kw_only=True)
class XformersBuild:
    """What xformers' CI built and uploaded for one release (its ``wheels.yml`` at the tag).

    A variant is ``cu128`` or ``rocm6.1``: the package index holds one CUDA variant
    (``package_index_cuda``) for ``package_index_platforms``; PyTorch's per-variant index
    (``whl/{variant}``) holds the ``pytorch_index`` pairs.
    """

    version: str
    tag: str
    build_torch: str
    """The torch every wheel of this release was compiled against (``2.4.1``)."""
    requires_torch: str
    """The pin the CI writes into the wheel (``torch==2.4.1``), or requirements.txt's line."""
    stable_abi_torch: str
    """``2.10`` when the C++ code uses torch's stable ABI (loads with any torch >= it)."""
    python: tuple[str, ...]
    python_tag: str
    """``cpXY-cpXY`` (one wheel per Python), ``cp39-abi3`` or ``py39-none``."""
    linux_platform: str
    package_index_cuda: str
    package_index_platforms: tuple[str, ...]
    pytorch_index: tuple[tuple[str, str], ...]
    """(os, variant) pairs: ``("linux", "cu118")``, ``("windows", "cu124")``."""
    source: str
    verified: bool

    def pytorch_variants(self, os: str) -> tuple[str, ...]:
        return tuple(v for o, v in self.pytorch_index if o == os)


@dataclass(frozen=True, kw_only=True)
class XformersOp:
    """One memory-efficient-attention operator of an xformers release and its GPU range."""

    module: str
    op: str
    """``FwOp``, ``BwOp``, ``FwOp_KVSplit``…"""
    name: str
    min_sm: int
    max_sm: int | None

    @property
    def forward(self) -> bool:
        return self.op.startswith("FwOp")

    def supports(self, sm: int) -> bool:
        return self.min_sm <= sm and (self.max_sm is None or sm <= self.max_sm)


@dataclass(frozen=True, kw_only=True)
class XformersOps:
    version: str
    ops: tuple[XformersOp, ...]
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class FlashAttn4Release:
    version: str
    uploaded: str
    filename: str
    requires_python: str
    requires_dist: tuple[str, ...]
    source: str
    verified: bool
    sha256: str | None = None
    """The wheel's sha256 as the package index publishes it (None: not recorded)."""


@dataclass(frozen=True, kw_only=True)
class RocmSourceBuild:
    """flash-attn 2's source build on AMD GPUs (flash_attn_3_4.toml [rocm_source_build])."""

    min_rocm: str
    ck_gfx: tuple[str, ...]
    """gfx archs of the composable_kernel backend (others: the Triton backend)."""
    triton_env: str
    arch_env: str
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class CutlassDslLayout:
    """Which distributions make a complete nvidia-cutlass-dsl of some versions (flash-attn-4's
    runtime): ``requires`` on every machine, plus ``cuda13`` on a CUDA 13 torch."""

    versions: str
    """A version specifier (``>=4.6.0``)."""
    requires: tuple[str, ...]
    cuda13: tuple[str, ...]
    deps: tuple[str, ...]
    """Their own requirements on other distributions (for the record)."""
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class BackendRequirement:
    """Hand-kept requirements of a backend (FA3, FA4): GPU archs, CUDA, torch, platform."""

    backend: str
    forward_sm: tuple[int, ...]
    """Compute capabilities (as integers, 90 = 9.0) with a forward kernel."""
    backward_sm: tuple[int, ...]
    min_cuda: str | None
    min_torch: str | None
    platforms: tuple[str, ...]
    install: str
    notes: tuple[str, ...]
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class UnslothExtra:
    name: str
    """``cu128-torch280`` or ``cu128-ampere-torch280`` (adds flash-attn)."""
    cuda: str
    torch: str
    ampere: bool
    pins: tuple[str, ...]
    """What the matching ``cuXXXonlytorchYYY`` extra pins (xformers)."""


@dataclass(frozen=True, kw_only=True)
class UnslothRecipes:
    """How unsloth's ``_auto_install.py`` maps torch/CUDA to an extra (hand-kept)."""

    auto_install_cuda: tuple[str, ...]
    auto_install_cuda_torch27: tuple[str, ...]
    auto_install_cuda_torch210: tuple[str, ...]
    ampere_extras_used: bool
    newest_torch: str
    printed_command: str
    uv_command: str
    source: str
    verified: bool

    def cuda_supported(self, torch: str, cuda: str) -> bool:
        """Would ``_auto_install.py`` accept this torch/CUDA pair's CUDA?"""
        from packaging.version import Version

        v = Version(Version(torch).public)
        if v >= Version("2.10.0"):
            return cuda in self.auto_install_cuda_torch210
        if v > Version("2.6.9"):
            return cuda in self.auto_install_cuda_torch27
        return cuda in self.auto_install_cuda


@dataclass(frozen=True, kw_only=True)
class UnslothIndex:
    version: str
    requires_python: str
    requires_dist: tuple[str, ...]
    extras: tuple[UnslothExtra, ...]
    source: str
    verified: bool
    recipes: UnslothRecipes


@dataclass(frozen=True, kw_only=True)
class TorchPypiWheel:
    """Which CUDA the package index's default torch wheel bundles, per platform."""

    version: str
    platform: str
    cuda: str
    """``12.8``, or ``cpu``."""
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class TorchRelease:
    """One torch minor release from PyTorch's release compatibility matrix."""

    minor: str
    python: str
    stable_cuda: tuple[str, ...]
    experimental_cuda: tuple[str, ...]
    source: str
    verified: bool

    @property
    def cuda_variants(self) -> tuple[str, ...]:
        return self.stable_cuda + self.experimental_cuda


@dataclass(frozen=True, kw_only=True)
class HubKernel:
    """A flash-attention kernel on the Hugging Face Hub, used through the ``kernels`` package."""

    repo: str
    replaces: str
    """The transformers ``attn_implementation`` it stands in for (``flash_attention_2``)."""
    devices: tuple[str, ...]
    min_sm: int | None
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class HubTransformersRow:
    """What one transformers minor release accepts for its Hub fallback (a bundled copy of
    its constants, for machines whose own files were not read)."""

    version: str
    """The transformers minor release, ``5.25``."""
    kernels_min_version: str
    kernels_max_version: str
    kernel_versions: tuple[tuple[str, str], ...]
    """(Hub repo, kernel version asked for)."""
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class HubRules:
    """How the ``kernels`` package matches build variants, and transformers' fallback."""

    transformers_fallback_since: str
    """The first transformers release that falls back to Hub kernels by itself."""
    rows: tuple[HubTransformersRow, ...]
    """Newest transformers first."""
    kernels: tuple[HubKernel, ...]
    source: str
    verified: bool

    def row_for(self, transformers: str | None) -> HubTransformersRow | None:
        """The row of this transformers release's minor version, if the table has one."""
        if transformers is None:
            return None
        try:
            v = Version(transformers)
        except InvalidVersion:
            return None
        return next((r for r in self.rows if r.version == f"{v.major}.{v.minor}"), None)

    @property
    def newest(self) -> HubTransformersRow:
        """The newest transformers release in the table (what a fresh install gets)."""
        return self.rows[0]

    @property
    def kernels_min_version(self) -> str:
        """The newest row's minimum: for a given machine use ``index.hub_fallback.fallback_for``."""
        return self.newest.kernels_min_version

    @property
    def kernels_max_version(self) -> str:
        """The newest row's bound (exclusive); see ``kernels_min_version``."""
        return self.newest.kernels_max_version


@dataclass(frozen=True, kw_only=True)
class SourceBuild:
    """Facts for building flash-attn from source (README and setup.py)."""

    min_nvcc: str
    min_nvcc_blackwell: str
    gib_per_nvcc_thread: float
    core_minutes_all_archs: float
    default_archs: tuple[int, ...]
    nvcc_threads: int
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class BuildRunner:
    """A CI image that built release wheels, and its glibc."""

    name: str
    glibc: str
    source: str
    verified: bool
    retired: str | None = None
    """The date GitHub stopped running jobs on this image (ISO), when it has."""
    retired_source: str = ""


@dataclass(frozen=True, kw_only=True)
class ReleaseBuild:
    """The image that built one flash-attn release's wheels, read from its workflow at the tag."""

    version: str
    tag: str
    date: str
    image: tuple[str, ...]
    glibc: str
    built: bool
    """False when the release job could not run (its runner image was retired before the tag)."""
    not_built_why: str
    source: str
    verified: bool


@dataclass(frozen=True, kw_only=True)
class Index:
    """Everything in ``wheels_index/`` that the resolver reads."""

    flash_attn: tuple[FlashAttnRelease, ...]
    flash_attn_url_template: str
    community: CommunitySource
    xformers: tuple[XformersWheel, ...]
    xformers_ops: tuple[XformersOps, ...]
    xformers_builds: tuple[XformersBuild, ...]
    flash_attn_4: tuple[FlashAttn4Release, ...]
    requirements: tuple[BackendRequirement, ...]
    unsloth: UnslothIndex
    torch_pypi: tuple[TorchPypiWheel, ...]
    torch_releases: tuple[TorchRelease, ...]
    hub: HubRules
    source_build: SourceBuild
    runners: tuple[BuildRunner, ...] = ()
    release_builds: tuple[ReleaseBuild, ...] = ()
    torch_cxx11_abi_since: str = "2.7"
    """PyTorch's own Linux wheels use the C++11 ABI from this torch minor on."""
    torch_cxx11_abi_source: str = ""

    def pytorch_wheel_abi(self, torch_minor: str) -> bool:
        """The C++11 ABI flag of PyTorch's own Linux wheels of ``torch_minor``."""
        from packaging.version import Version

        return Version(torch_minor) >= Version(self.torch_cxx11_abi_since)

    cutlass_dsl: tuple[CutlassDslLayout, ...] = ()
    flash_attn_rocm: RocmSourceBuild | None = None
    listed: tuple[ListedWheel, ...] = ()
    """Wheels listed by the release pages and indexes ``index update`` read (overlay only)."""

    def cutlass_dsl_distributions(self, version: str, cuda_major: int | None) -> tuple[str, ...]:
        """The distributions a complete nvidia-cutlass-dsl ``version`` needs on a torch of
        CUDA ``cuda_major`` (empty when the index has no layout for that version)."""
        from packaging.specifiers import SpecifierSet

        for layout in self.cutlass_dsl:
            if SpecifierSet(layout.versions).contains(version, prereleases=True):
                return layout.requires + (layout.cuda13 if cuda_major == 13 else ())
        return ()

    def runner_glibc(self, name: str) -> str | None:
        return next((r.glibc for r in self.runners if r.name == name), None)

    def release_build(self, version: str) -> ReleaseBuild | None:
        """How flash-attn ``version``'s release wheels were built (None when not recorded)."""
        return next((b for b in self.release_builds if b.version == version), None)

    def xformers_build(self, version: str) -> XformersBuild | None:
        return next((b for b in self.xformers_builds if b.version == version), None)

    def xformers_ops_for(self, version: str) -> XformersOps | None:
        return next((x for x in self.xformers_ops if x.version == version), None)

    def requirement(self, backend: str) -> BackendRequirement | None:
        for req in self.requirements:
            if req.backend == backend:
                return req
        return None
