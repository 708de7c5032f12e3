"""Load and validate ``wheels_index/``: ``load_index() -> Index``.

Every file is read through ``attn_doctor.datafiles.read_toml`` and checked field by field; a
bad entry raises ``IndexDataError`` naming the file, the entry and the field, e.g.
``flash_attn.toml: release[3] (v2.5.3).python: expected a list of strings``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from packaging.version import InvalidVersion, Version

from attn_doctor.datafiles import Entry as _Entry
from attn_doctor.datafiles import read_toml
from attn_doctor.errors import IndexDataError
from attn_doctor.index.listed import FILE as LISTED_FILE
from attn_doctor.index.listed import listed_wheels
from attn_doctor.index.naming import parse_wheel_filename
from attn_doctor.index.records import (
    BackendRequirement,
    BuildRunner,
    CommunitySource,
    CommunityWheel,
    CutlassDslLayout,
    FlashAttn4Release,
    FlashAttnRelease,
    GpuArch,
    HubKernel,
    HubRules,
    HubTransformersRow,
    Index,
    MatrixExclude,
    ReleaseBuild,
    RocmSourceBuild,
    SourceBuild,
    TorchPypiWheel,
    TorchRelease,
    UnslothExtra,
    UnslothIndex,
    UnslothRecipes,
    XformersBuild,
    XformersOp,
    XformersOps,
    XformersWheel,
)

T = TypeVar("T")

SCHEMA = 1
FILES = (
    "flash_attn.toml",
    "flash_attn_community.toml",
    "flash_attn_3_4.toml",
    "flash_attn_4.toml",
    "xformers.toml",
    "xformers_ops.toml",
    "xformers_builds.toml",
    "unsloth.toml",
    "unsloth_recipes.toml",
    "torch.toml",
    "torch_pypi.toml",
    "hub_kernels.toml",
    "build_runners.toml",
    "listed_wheels.toml",
)


def _file(name: str, directory: Path | None) -> _Entry:
    data = read_toml(name, directory)
    top = _Entry(data, name)
    schema = top.integer("schema")
    if schema != SCHEMA:
        raise IndexDataError(f"{name}: schema {schema} is not supported (expected {SCHEMA})")
    return top


def _entries(top: _Entry, key: str, label: Callable[[dict[str, Any]], object]) -> list[_Entry]:
    out = []
    for i, entry in enumerate(top.tables(key)):
        tag = label(entry.data)
        entry.where = f"{top.where}: {key}[{i}]" + (f" ({tag})" if tag else "")
        out.append(entry)
    return out


def _flash_attn(top: _Entry) -> tuple[FlashAttnRelease, ...]:
    releases = []
    for e in _entries(top, "release", lambda d: d.get("tag")):
        excludes = []
        for ex in e.tables("exclude"):
            unknown = set(ex.data) - {"torch", "python", "cuda"}
            if unknown:
                raise IndexDataError(f"{ex.where}: unknown key {sorted(unknown)[0]!r}")
            excludes.append(
                MatrixExclude(
                    torch=ex.data.get("torch"),
                    python=ex.data.get("python"),
                    cuda=ex.data.get("cuda"),
                )
            )
        cuda_tag = e.table("setup_cuda_tag")
        if not cuda_tag.data or not all(
            k.isdigit() and isinstance(v, str) and v.isdigit() for k, v in cuda_tag.data.items()
        ):
            raise IndexDataError(f'{cuda_tag.where}: expected {{major = "digits"}} pairs')
        style = e.text("published_cuda_tag")
        if style not in ("major", "major_minor"):
            raise IndexDataError(
                f"{e.where}.published_cuda_tag: {style!r} is not major|major_minor"
            )
        archs = []
        for a in e.tables("gpu_archs"):
            sm = a.text("sm", pattern=r"\d+")
            archs.append(GpuArch(sm=int(sm), min_nvcc=a.data.get("min_nvcc")))
        for key in ("python", "torch", "cuda"):
            for v in e.texts(key):
                try:
                    Version(v)
                except InvalidVersion:
                    raise IndexDataError(f"{e.where}.{key}: {v!r} is not a version") from None
        releases.append(
            FlashAttnRelease(
                version=e.version("version"),
                tag=e.text("tag", pattern=r"v\d+\.\d+\.\d+(\.post\d+)?"),
                date=e.text("date", pattern=r"\d{4}-\d{2}-\d{2}"),
                python=e.texts("python"),
                torch=e.texts("torch"),
                cuda=e.texts("cuda"),
                cxx11_abi=e.flags("cxx11_abi"),
                runner=e.texts("runner"),
                exclude=tuple(excludes),
                published_cuda_tag="major" if style == "major" else "major_minor",
                published_platform=e.text("published_platform"),
                setup_cuda_tag=tuple(sorted(cuda_tag.data.items())),
                setup_linux_platform=e.text(
                    "setup_linux_platform", pattern=r"linux_x86_64|linux_\{machine\}"
                ),
                gpu_archs=tuple(archs),
                source=e.text("source"),
                verified=e.flag("verified"),
                assets_confirmed=e.flag("assets_confirmed"),
                missing_assets=e.texts("missing_assets", []),
            )
        )
        if releases[-1].tag != f"v{releases[-1].version}":
            raise IndexDataError(f"{e.where}: tag does not match version {releases[-1].version}")
    return tuple(sorted(releases, key=lambda r: Version(r.version)))


_COMMUNITY_NAME = re.compile(
    r"(?P<package>flash_attn(?:_3)?)-(?P<version>[0-9][0-9a-z.]*)\+cu(?P<cuda>\d+)"
    r"torch(?P<torch>\d+\.\d+)(?:git[0-9a-f]+)?"
)


def _community(top: _Entry) -> CommunitySource:
    project = top.text("project")
    template = top.text("url_template")
    wheels = []
    for e in _entries(top, "release", lambda d: d.get("tag")):
        tag = e.text("tag")
        for filename in e.texts("files"):
            try:
                _, label, py, abi, plat = parse_wheel_filename(filename)
            except ValueError as exc:
                raise IndexDataError(f"{e.where}.files: {exc}") from None
            m = _COMMUNITY_NAME.fullmatch(filename.split("-")[0] + "-" + label)
            if not m:
                raise IndexDataError(f"{e.where}.files: cannot parse {filename!r}")
            cuda = m["cuda"]
            wheels.append(
                CommunityWheel(
                    project=project,
                    tag=tag,
                    filename=filename,
                    package=m["package"],
                    version=m["version"],
                    cuda=f"{cuda[:-1]}.{cuda[-1]}",
                    torch_minor=m["torch"],
                    python_tag=py,
                    abi_tag=abi,
                    platform_tags=tuple(plat.split(".")),
                    url=template.format(tag=tag, filename=filename.replace("+", "%2B")),
                )
            )
    trust = top.text("trust")
    if trust != "community":
        raise IndexDataError(f"{top.where}.trust: community builds must be labelled 'community'")
    return CommunitySource(
        project=project,
        trust="community",
        source=top.text("source"),
        verified=top.flag("verified"),
        wheels=tuple(wheels),
    )


def _xformers(top: _Entry) -> tuple[XformersWheel, ...]:
    out = []
    for e in _entries(top, "wheel", lambda d: d.get("filename")):
        req = e.text("requires_torch")
        if req:
            e.requirement("requires_torch", req)
        out.append(
            XformersWheel(
                version=e.version("version"),
                uploaded=e.text("uploaded"),
                filename=e.text("filename", pattern=r"xformers-.+\.whl"),
                python_tag=e.text("python_tag"),
                abi_tag=e.text("abi_tag"),
                platform_tag=e.text("platform_tag"),
                requires_python=e.text("requires_python"),
                requires_torch=req,
                source=e.text("source"),
                verified=e.flag("verified"),
                sha256=_sha256(e),
            )
        )
    return tuple(out)


_XF_VARIANT = r"cu\d{3}|rocm\d+(\.\d+)*"


def _xformers_builds(top: _Entry) -> tuple[XformersBuild, ...]:
    out = []
    for e in _entries(top, "release", lambda d: d.get("tag")):
        pairs = []
        for item in e.texts("pytorch_index"):
            os_name, _, variant = item.partition(":")
            if os_name not in ("linux", "windows") or not re.fullmatch(_XF_VARIANT, variant):
                raise IndexDataError(f"{e.where}.pytorch_index: {item!r} is not os:variant")
            pairs.append((os_name, variant))
        plats = e.texts("package_index_platforms")
        if any(p not in ("linux", "windows") for p in plats):
            raise IndexDataError(f"{e.where}.package_index_platforms: expected linux|windows")
        stable = e.text("stable_abi_torch", pattern=r"(\d+\.\d+)?")
        out.append(
            XformersBuild(
                version=e.version("version"),
                tag=e.text("tag", pattern=r"v\d+\.\d+\.\d+(\.post\d+)?"),
                build_torch=e.version("build_torch"),
                requires_torch=e.requirement("requires_torch", e.text("requires_torch")),
                stable_abi_torch=stable,
                python=e.texts("python"),
                python_tag=e.text("python_tag", pattern=r"cpXY-cpXY|cp\d+-abi3|py\d+-none"),
                linux_platform=e.text("linux_platform"),
                package_index_cuda=e.text("package_index_cuda", pattern=_XF_VARIANT),
                package_index_platforms=plats,
                pytorch_index=tuple(pairs),
                source=e.text("source"),
                verified=e.flag("verified"),
            )
        )
        if out[-1].tag != f"v{out[-1].version}":
            raise IndexDataError(f"{e.where}: tag does not match version {out[-1].version}")
    return tuple(sorted(out, key=lambda b: Version(b.version)))


def _xformers_ops(top: _Entry) -> tuple[XformersOps, ...]:
    out = []
    for e in _entries(top, "release", lambda d: d.get("version")):
        ops = []
        for o in e.tables("ops"):
            max_sm = o.data.get("max_sm")
            if max_sm is not None and (isinstance(max_sm, bool) or not isinstance(max_sm, int)):
                raise IndexDataError(f"{o.where}.max_sm: expected an integer")
            ops.append(
                XformersOp(
                    module=o.text("module"),
                    op=o.text("op"),
                    name=o.text("name"),
                    min_sm=o.integer("min_sm"),
                    max_sm=max_sm,
                )
            )
        out.append(
            XformersOps(
                version=e.version("version"),
                ops=tuple(ops),
                source=e.text("source"),
                verified=e.flag("verified"),
            )
        )
    return tuple(out)


def _flash_attn_4(top: _Entry) -> tuple[FlashAttn4Release, ...]:
    out = []
    for e in _entries(top, "release", lambda d: d.get("version")):
        reqs = e.texts("requires_dist")
        for r in reqs:
            e.requirement("requires_dist", r)
        out.append(
            FlashAttn4Release(
                version=e.version("version"),
                uploaded=e.text("uploaded"),
                filename=e.text("filename"),
                requires_python=e.text("requires_python"),
                requires_dist=reqs,
                source=e.text("source"),
                verified=e.flag("verified"),
                sha256=_sha256(e),
            )
        )
    return tuple(sorted(out, key=lambda r: Version(r.version)))


def _rocm_source_build(top: _Entry) -> RocmSourceBuild | None:
    if "rocm_source_build" not in top.data:
        return None
    e = top.table("rocm_source_build")
    return RocmSourceBuild(
        min_rocm=e.version("min_rocm"),
        ck_gfx=e.texts("ck_gfx"),
        triton_env=e.text("triton_env"),
        arch_env=e.text("arch_env"),
        source=e.text("source"),
        verified=e.flag("verified"),
    )


def _sha256(e: _Entry) -> str | None:
    """An optional ``sha256`` (64 lower-case hex digits; absent: not known)."""
    value = e.text("sha256", "")
    if value and not re.fullmatch(r"[0-9a-f]{64}", value):
        raise e.fail("sha256", f"{value!r} is not a sha256 hex digest")
    return value or None


def _cutlass_dsl(top: _Entry) -> tuple[CutlassDslLayout, ...]:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    out = []
    for e in _entries(top, "cutlass_dsl", lambda d: d.get("versions")):
        versions = e.text("versions")
        try:
            SpecifierSet(versions)
        except InvalidSpecifier:
            raise IndexDataError(f"{e.where}.versions: {versions!r} is not a specifier") from None
        deps = e.texts("deps")
        for r in deps:
            e.requirement("deps", r)
        out.append(
            CutlassDslLayout(
                versions=versions,
                requires=e.texts("requires"),
                cuda13=e.texts("cuda13"),
                deps=deps,
                source=e.text("source"),
                verified=e.flag("verified"),
            )
        )
    return tuple(out)


def _requirements(top: _Entry) -> tuple[tuple[BackendRequirement, ...], SourceBuild]:
    reqs = []
    for e in _entries(top, "backend", lambda d: d.get("backend")):
        reqs.append(
            BackendRequirement(
                backend=e.text("backend"),
                forward_sm=e.integers("forward_sm"),
                backward_sm=e.integers("backward_sm"),
                min_cuda=e.text("min_cuda") or None,
                min_torch=e.text("min_torch") or None,
                platforms=e.texts("platforms"),
                install=e.text("install"),
                notes=e.texts("notes"),
                source=e.text("source"),
                verified=e.flag("verified"),
            )
        )
    sb = top.table("source_build")
    build = SourceBuild(
        min_nvcc=sb.text("min_nvcc"),
        min_nvcc_blackwell=sb.text("min_nvcc_blackwell"),
        gib_per_nvcc_thread=sb.number("gib_per_nvcc_thread"),
        core_minutes_all_archs=sb.number("core_minutes_all_archs"),
        default_archs=sb.integers("default_archs"),
        nvcc_threads=sb.integer("nvcc_threads"),
        source=sb.text("source"),
        verified=sb.flag("verified"),
    )
    return tuple(reqs), build


def _unsloth_recipes(top: _Entry) -> UnslothRecipes:
    return UnslothRecipes(
        auto_install_cuda=top.texts("auto_install_cuda"),
        auto_install_cuda_torch27=top.texts("auto_install_cuda_torch27"),
        auto_install_cuda_torch210=top.texts("auto_install_cuda_torch210"),
        ampere_extras_used=top.flag("ampere_extras_used"),
        newest_torch=top.version("newest_torch"),
        printed_command=top.text("printed_command"),
        uv_command=top.text("uv_command"),
        source=top.text("source"),
        verified=top.flag("verified"),
    )


def _unsloth(top: _Entry, recipes: UnslothRecipes) -> UnslothIndex:
    extras = []
    for e in _entries(top, "extra", lambda d: d.get("name")):
        extras.append(
            UnslothExtra(
                name=e.text("name", pattern=r"cu\d+(-ampere)?-torch\d+"),
                cuda=e.version("cuda"),
                torch=e.version("torch"),
                ampere=e.flag("ampere"),
                pins=e.texts("pins"),
            )
        )
    reqs = top.texts("requires_dist")
    for r in reqs:
        top.requirement("requires_dist", r)
    return UnslothIndex(
        version=top.version("version"),
        requires_python=top.text("requires_python"),
        requires_dist=reqs,
        extras=tuple(extras),
        source=top.text("source"),
        verified=top.flag("verified"),
        recipes=recipes,
    )


def _torch_pypi(top: _Entry) -> tuple[TorchPypiWheel, ...]:
    return tuple(
        TorchPypiWheel(
            version=e.version("version"),
            platform=e.text("platform"),
            cuda=e.text("cuda", pattern=r"cpu|\d+\.\d+"),
            source=e.text("source"),
            verified=e.flag("verified"),
        )
        for e in _entries(top, "wheel", lambda d: f"{d.get('version')} {d.get('platform')}")
    )


def _torch(top: _Entry) -> tuple[TorchRelease, ...]:
    source = top.text("source")
    verified = top.flag("verified")
    return tuple(
        TorchRelease(
            minor=e.text("minor", pattern=r"\d+\.\d+"),
            python=e.text("python"),
            stable_cuda=e.texts("stable_cuda"),
            experimental_cuda=e.texts("experimental_cuda"),
            source=source,
            verified=verified,
        )
        for e in _entries(top, "release", lambda d: d.get("minor"))
    )


def _hub(top: _Entry) -> HubRules:
    kernels = tuple(
        HubKernel(
            repo=e.text("repo", pattern=r"[\w.-]+/[\w.-]+"),
            replaces=e.text("replaces"),
            devices=e.texts("devices"),
            min_sm=e.data.get("min_sm"),
            source=e.text("source"),
            verified=e.flag("verified"),
        )
        for e in _entries(top, "kernel", lambda d: d.get("repo"))
    )
    rows = []
    for e in _entries(top, "transformers", lambda d: d.get("version")):
        versions = e.table("kernel_versions")
        for repo, asked in versions.data.items():
            if not isinstance(asked, str) or not asked:
                raise versions.fail(repo, "expected the kernel version as a string")
        rows.append(
            HubTransformersRow(
                version=e.text("version", pattern=r"\d+\.\d+$"),
                kernels_min_version=e.version("kernels_min_version"),
                kernels_max_version=e.version("kernels_max_version"),
                kernel_versions=tuple(versions.data.items()),
                source=e.text("source"),
                verified=e.flag("verified"),
            )
        )
    if not rows:
        raise IndexDataError(f"{top.where}: no [[transformers]] rows")
    rows.sort(key=lambda r: Version(r.version), reverse=True)
    return HubRules(
        transformers_fallback_since=top.version("transformers_fallback_since"),
        rows=tuple(rows),
        kernels=kernels,
        source=top.text("source"),
        verified=top.flag("verified"),
    )


def _runners(top: _Entry) -> tuple[BuildRunner, ...]:
    return tuple(
        BuildRunner(
            name=e.text("name"),
            glibc=e.version("glibc"),
            source=e.text("source"),
            verified=e.flag("verified"),
            retired=e.opt_str("retired", pattern=_DATE),
            retired_source=e.text("retired_source", ""),
        )
        for e in _entries(top, "runner", lambda d: d.get("name"))
    )


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _release_builds(top: _Entry, runners: tuple[BuildRunner, ...]) -> tuple[ReleaseBuild, ...]:
    known = {r.name for r in runners}
    builds = []
    for e in _entries(top, "release", lambda d: d.get("version")):
        image = e.texts("image")
        unknown = [i for i in image if i not in known]
        if unknown:
            raise e.fail("image", f"{unknown[0]} has no [[runner]] entry (its glibc is unknown)")
        built = e.flag("built")
        why = e.text("not_built_why", "")
        if not built and not why:
            raise e.fail("not_built_why", "a release marked built = false must say why")
        builds.append(
            ReleaseBuild(
                version=e.version("version"),
                tag=e.text("tag"),
                date=e.text("date", pattern=_DATE.pattern),
                image=image,
                glibc=e.version("glibc"),
                built=built,
                not_built_why=why,
                source=e.text("source"),
                verified=e.flag("verified"),
            )
        )
    return tuple(builds)


def load_index(directory: Path | None = None) -> Index:
    """Read and validate every index file (cached per directory: files cannot change in a run).

    Raises ``IndexDataError`` naming the file, entry and field of the first bad fact.
    """
    from attn_doctor.datafiles import index_dir

    return _load_index(directory or index_dir())


@functools.cache
def _load_index(directory: Path) -> Index:
    fa = _file("flash_attn.toml", directory)
    fa34 = _file("flash_attn_3_4.toml", directory)
    reqs, build = _requirements(fa34)
    torch_top = _file("torch.toml", directory)
    abi = torch_top.table("cxx11_abi")
    build_top = _file("build_runners.toml", directory)
    runners = _runners(build_top)
    return Index(
        torch_cxx11_abi_since=abi.text("pytorch_wheels_true_since", pattern=r"\d+\.\d+"),
        torch_cxx11_abi_source=abi.text("source"),
        flash_attn=_flash_attn(fa),
        flash_attn_url_template=fa.text("url_template"),
        community=_community(_file("flash_attn_community.toml", directory)),
        xformers=_xformers(_file("xformers.toml", directory)),
        xformers_ops=_xformers_ops(_file("xformers_ops.toml", directory)),
        xformers_builds=_xformers_builds(_file("xformers_builds.toml", directory)),
        flash_attn_4=_flash_attn_4(_file("flash_attn_4.toml", directory)),
        requirements=reqs,
        unsloth=_unsloth(
            _file("unsloth.toml", directory),
            _unsloth_recipes(_file("unsloth_recipes.toml", directory)),
        ),
        torch_pypi=_torch_pypi(_file("torch_pypi.toml", directory)),
        torch_releases=_torch(torch_top),
        hub=_hub(_file("hub_kernels.toml", directory)),
        source_build=build,
        runners=runners,
        release_builds=_release_builds(build_top, runners),
        cutlass_dsl=_cutlass_dsl(fa34),
        flash_attn_rocm=_rocm_source_build(fa34),
        listed=listed_wheels(_file(LISTED_FILE, directory)),
    )
