"""The resolver: every way to get a backend onto this machine, from every source, and why not.

Pure: a function of (``Environment``, ``Index``, request). It never reads the machine, never
touches the network and never proposes anything that would replace the installed torch unless
``allow_torch_change=True``. Candidates are ranked best first; every source that does not fit
leaves a ``Rejection`` with the exact reason; when nothing fits, ``ways_out`` says what would.

Ranking: an official prebuilt wheel for this exact torch/CUDA/Python/ABI/platform/GPU first
(newest release first); then community builds (only when upstream has nothing); then a source
build. The Hub kernel route is its own backend (``hub_kernels``) and is named in ``ways_out``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.errors import UsageError
from attn_doctor.facts import Environment
from attn_doctor.index.hub import expected_variants
from attn_doctor.index.model import (
    CommunityWheel,
    FlashAttnRelease,
    Index,
    PublishedWheel,
    XformersBuild,
    XformersWheel,
)
from attn_doctor.index.naming import (
    published_wheels,
    python_minor,
    setup_py_wheel_name,
    torch_minor,
)
from attn_doctor.plan.machine import SOURCE_BUILD_NVCC_THREADS, source_build_jobs
from attn_doctor.plan.pip_command import command_lines
from attn_doctor.plan.types import BackendPlan, InstallPlan, Rejection, SourceKind, WheelCandidate

ALL_SOURCES: frozenset[SourceKind] = frozenset(
    {"upstream-release", "pypi", "pytorch-index", "community", "hub", "source-build"}
)
PYTORCH_INDEX = "https://download.pytorch.org/whl/{tag}"
PROTECTED = ("torch", "torchvision", "torchaudio", "triton")
MAX_UPSTREAM_CANDIDATES = 3
MAX_COMMUNITY_CANDIDATES = 3

# --------------------------------------------------------------------------------- machine


@dataclass(frozen=True, kw_only=True)
class Machine:
    """The facts the resolver matches against, normalised from an ``Environment``."""

    os: str
    arch: str | None
    python: str
    """``3.12``."""
    free_threaded: bool
    glibc: Version | None
    torch: str | None
    torch_minor: str | None
    torch_build: str | None
    torch_cuda: str | None
    cxx11_abi: bool | None
    sms: tuple[int, ...]
    """Compute capabilities of the NVIDIA GPUs whose capability is known."""
    gpu_names: tuple[str, ...]
    """Names of the same GPUs, in the same order."""
    nvcc: str | None
    cpu_count: int | None
    ram_bytes: int | None

    @property
    def sys_platform(self) -> str:
        return {"linux": "linux", "windows": "win32", "darwin": "darwin"}.get(self.os, self.os)

    @property
    def platform_label(self) -> str:
        return f"{self.os}-{self.arch or 'unknown'}"

    @property
    def cuda_major(self) -> int | None:
        return Version(self.torch_cuda).major if self.torch_cuda else None


def machine_of(env: Environment) -> Machine:
    torch = env.torch
    glibc: Version | None = None
    if env.host.libc == "glibc" and env.host.libc_version:
        try:
            glibc = Version(env.host.libc_version)
        except InvalidVersion:
            glibc = None
    return Machine(
        os=env.host.os,
        arch=env.host.arch,
        python=python_minor(env.python.version),
        free_threaded=env.python.free_threaded,
        glibc=glibc,
        torch=torch.version if torch else None,
        torch_minor=torch_minor(torch.version) if torch else None,
        torch_build=torch.build if torch else None,
        torch_cuda=torch.cuda if torch else None,
        cxx11_abi=torch.cxx11_abi if torch else None,
        sms=tuple(g.sm for g in env.nvidia_gpus if g.sm is not None),
        gpu_names=tuple(g.name for g in env.nvidia_gpus if g.sm is not None),
        nvcc=env.cuda_toolkit.release,
        cpu_count=env.host.cpu_count,
        ram_bytes=env.host.ram_available_bytes or env.host.ram_total_bytes,
    )


def _sm_text(sm: int) -> str:
    return f"sm{sm} ({sm // 10}.{sm % 10})"


def _runs_on(built: Iterable[int], device_sm: int) -> bool:
    """SASS built for sm_XY runs on devices of the same major with minor >= Y (no PTX here)."""
    return any(b // 10 == device_sm // 10 and device_sm % 10 >= b % 10 for b in built)


# ------------------------------------------------------------------------ wheel tag matching


def platform_mismatch(tag: str, m: Machine) -> str | None:
    """Why a wheel platform tag does not install here, or None when it does."""
    arch = {"AMD64": "x86_64", "arm64": "aarch64"}.get(m.arch or "", m.arch)
    if tag == "any":
        return None
    if tag == "win_amd64":
        return None if m.os == "windows" and arch == "x86_64" else "a Windows x86_64 wheel"
    if tag.startswith(("linux_", "manylinux")):
        if m.os != "linux":
            return f"a Linux wheel ({tag})"
        # manylinux_2_28_x86_64 | manylinux2014_x86_64 | linux_x86_64
        parts = tag.split("_", 3) if tag.startswith("manylinux_") else tag.split("_", 1)
        wheel_arch = parts[-1]
        if wheel_arch != arch:
            return f"a Linux {wheel_arch} wheel, this CPU is {arch or 'unknown'}"
        if tag.startswith("manylinux_"):
            _, major, minor, _rest = tag.split("_", 3)
            need = Version(f"{major}.{minor}")
            if m.glibc is not None and m.glibc < need:
                return f"needs glibc >= {need}, this system has {m.glibc}"
        return None
    return f"a wheel for {tag}"


def python_mismatch(python_tag: str, abi_tag: str, m: Machine) -> str | None:
    """Why ``python_tag-abi_tag`` does not install on this interpreter, or None."""
    here = Version(m.python)
    if python_tag.startswith("py"):
        digits = python_tag[2:]
        if len(digits) <= 1:
            return None if digits in ("", str(here.major)) else f"Python {digits} wheel"
        need = Version(f"{digits[0]}.{digits[1:]}")
        return None if here >= need else f"needs Python >= {need}"
    if abi_tag == "abi3":
        if m.free_threaded:
            return "an abi3 wheel: free-threaded Python cannot load it"
        need = Version(f"{python_tag[2]}.{python_tag[3:]}")
        return None if here >= need else f"needs Python >= {need}"
    want = "cp" + m.python.replace(".", "")
    if m.free_threaded:
        want_abi = want + "t"
        if abi_tag != want_abi:
            return f"built for {python_tag}-{abi_tag}, this free-threaded Python needs {want_abi}"
        return None
    if python_tag != want:
        return f"built for Python {python_tag[2]}.{python_tag[3:]}, this is Python {m.python}"
    return None


# ------------------------------------------------------------------------------ preconditions


def _torch_problem(m: Machine, what: str) -> str | None:
    if m.torch is None:
        return f"torch is not installed: {what} needs a CUDA build of torch first"
    if m.torch_build != "cuda" or not m.torch_cuda:
        extra = (
            " (ROCm builds of these kernels are source builds, not covered by this index)"
            if m.torch_build == "rocm"
            else ""
        )
        return (
            f"the installed torch {m.torch} is a {m.torch_build} build: {what} needs a CUDA "
            f"build{extra}"
        )
    return None


def _gpu_problem(
    m: Machine, min_sm: int | None, allowed: Iterable[int] | None, what: str
) -> str | None:
    allowed_t = tuple(allowed) if allowed is not None else None
    for name, sm in zip(m.gpu_names, m.sms, strict=False):
        if min_sm is not None and sm < min_sm:
            need = f"{min_sm // 10}.{min_sm % 10}"
            return f"{what} needs compute capability >= {need}; {name} is {_sm_text(sm)}"
        if allowed_t is not None and sm not in allowed_t:
            return (
                f"{what} supports {', '.join(_sm_text(s) for s in allowed_t)}; "
                f"{name} is {_sm_text(sm)}"
            )
    return None


def _fa_arch_family(device_sm: int, archs: Iterable[int]) -> int | None:
    """The flash-attn build arch whose SASS runs on this device (86 -> 80, 121 -> 120)."""
    fits = [a for a in archs if a // 10 == device_sm // 10 and a % 10 <= device_sm % 10]
    return max(fits) if fits else None


# ------------------------------------------------------------------------ flash-attn upstream


def _upstream_reason(release: FlashAttnRelease, requested: str, m: Machine) -> str:
    """Why the name setup.py asks for at this tag was not published: the first dimension off."""
    wheels = published_wheels(release)
    v = release.version
    plat = {w.platform_tag for w in wheels}
    if requested.rsplit("-", 1)[-1][:-4] not in plat:
        return (
            f"flash-attn {v}: setup.py asks for {requested}, but the release publishes only "
            f"{', '.join(sorted(plat))} wheels"
        )
    same_torch = [w for w in wheels if w.torch_minor == m.torch_minor]
    if not same_torch:
        built = sorted({w.torch_minor for w in wheels}, key=Version)
        return (
            f"flash-attn {v}: no wheel for torch {m.torch_minor} "
            f"(built for torch {', '.join(built)})"
        )
    cuda_tag = requested.split("+cu", 1)[1].split("torch", 1)[0]
    same_cuda = [w for w in same_torch if w.cuda_tag == cuda_tag]
    if not same_cuda:
        built = sorted({w.build_cuda for w in same_torch})
        return (
            f"flash-attn {v}: setup.py asks for a cu{cuda_tag} wheel (torch CUDA {m.torch_cuda}) "
            f"but torch {m.torch_minor} wheels were built with CUDA {', '.join(built)} only"
        )
    same_py = [w for w in same_cuda if w.python == m.python]
    if same_py and m.python == "3.7":
        return (
            f"flash-attn {v}: the release publishes cp37-cp37m wheels, but setup.py asks for "
            f"{requested} (cp37-cp37): no upstream prebuilt wheel reaches Python 3.7"
        )
    if not same_py:
        return f"flash-attn {v}: no wheel for Python {m.python} with torch {m.torch_minor}"
    return f"flash-attn {v}: no wheel with C++11 ABI {str(m.cxx11_abi).upper()} ({requested})"


def _upstream_flash_attn(
    m: Machine, index: Index, versions: SpecifierSet | None = None
) -> tuple[list[tuple[FlashAttnRelease, PublishedWheel]], list[str]]:
    """Matching (release, wheel) pairs newest first, and reasons for newer non-matching ones."""
    matches: list[tuple[FlashAttnRelease, PublishedWheel]] = []
    reasons: list[str] = []
    if m.os != "linux" or m.arch != "x86_64":
        reasons.append(
            "flash-attn: upstream releases publish only linux_x86_64 wheels; this machine is "
            f"{m.platform_label}"
        )
        return matches, reasons
    if m.torch is None or m.torch_cuda is None or m.cxx11_abi is None:
        return matches, reasons
    for release in reversed(index.flash_attn):
        if versions is not None and not versions.contains(release.version, prereleases=True):
            continue
        try:
            requested = setup_py_wheel_name(
                release,
                torch_version=m.torch,
                torch_cuda=m.torch_cuda,
                cxx11_abi=m.cxx11_abi,
                python=m.python,
                sys_platform=m.sys_platform,
                machine=m.arch or "x86_64",
            )
        except ValueError as exc:
            reasons.append(f"flash-attn {release.version}: {exc}")
            continue
        published = {w.filename: w for w in published_wheels(release)}
        wheel = published.get(requested)
        if wheel is None:
            if not matches:
                reasons.append(_upstream_reason(release, requested, m))
            continue
        pytag = "cp" + wheel.python.replace(".", "")
        wrong_platform = platform_mismatch(wheel.platform_tag, m) or python_mismatch(
            pytag, pytag, m
        )
        if wrong_platform:
            # v2.5.0-v2.5.6 setup.py names linux_x86_64 even on aarch64.
            if not matches:
                reasons.append(
                    f"flash-attn {release.version}: setup.py asks for {wheel.filename}, "
                    f"{wrong_platform}"
                )
            continue
        if not wheel.cxx11_abi and index.pytorch_wheel_abi(wheel.torch_minor):
            if not matches:
                reasons.append(
                    f"flash-attn {release.version}: {wheel.filename} is named cxx11abiFALSE but "
                    f"was built against PyTorch's torch {wheel.build_torch}, whose Linux wheels "
                    f"use the C++11 ABI from torch {index.torch_cxx11_abi_since} on: it would not "
                    "load in this ABI-FALSE torch"
                )
            continue
        built_glibc = _release_glibc(release, index)
        if m.glibc is not None and built_glibc is not None and m.glibc < built_glibc:
            if not matches:
                reasons.append(
                    f"flash-attn {release.version}: built on {', '.join(release.runner)} "
                    f"(glibc {built_glibc}); this system has glibc {m.glibc}"
                )
            continue
        archs = release.archs_for(wheel.build_cuda)
        bad = [sm for sm in m.sms if not _runs_on(archs, sm)]
        if bad:
            if not matches:
                reasons.append(
                    f"flash-attn {release.version}: {wheel.filename} carries "
                    f"{', '.join(f'sm_{a}' for a in archs)} only; this GPU is {_sm_text(bad[0])}"
                )
            continue
        matches.append((release, wheel))
    return matches, reasons


def _group_reasons(reasons: list[str]) -> list[tuple[str, str]]:
    """Merge consecutive releases refused for the same reason: ``flash-attn 2.8.0 … 2.8.3``."""
    groups: list[tuple[list[str], str]] = []
    for text in reasons:
        head, _, tail = text.partition(": ")
        version = head.removeprefix("flash-attn ").strip()
        if not version[:1].isdigit():  # a reason about every release at once
            groups.append(([head], tail))
            continue
        # The file name in a tail names the version: compare tails without it.
        key = tail.replace(version, "{v}")
        if groups and groups[-1][1] == key:
            groups[-1][0].append(version)
        else:
            groups.append(([version], key))
    out = []
    for versions, key in groups:
        newest, oldest = versions[0], versions[-1]
        if not newest[:1].isdigit():
            out.append((newest, f"{newest}: {key}"))
            continue
        what = f"flash-attn {newest}" if newest == oldest else f"flash-attn {oldest} … {newest}"
        out.append((what, f"{what}: {key.replace('{v}', newest)}"))
    return out


def _release_glibc(release: FlashAttnRelease, index: Index) -> Version | None:
    """The newest glibc among the images that built this release (None when unknown)."""
    known = [g for r in release.runner if (g := index.runner_glibc(r)) is not None]
    return max((Version(g) for g in known), default=None)


def _upstream_candidate(
    release: FlashAttnRelease, wheel: PublishedWheel, index: Index, m: Machine
) -> WheelCandidate:
    url = index.flash_attn_url_template.format(
        tag=release.tag, filename=wheel.filename.replace("+", "%2B")
    )
    archs = release.archs_for(wheel.build_cuda)
    return WheelCandidate(
        backend="flash_attn_2",
        source="upstream-release",
        trust="official",
        requirement=f"flash-attn @ {url}",
        version=release.version,
        filename=wheel.filename,
        url=url,
        verified=release.verified and release.assets_confirmed,
        reason=(
            f"upstream release {release.tag} built this wheel for torch {wheel.torch_minor} "
            f"(built against {wheel.build_torch}), CUDA {wheel.build_cuda}, Python {wheel.python}, "
            f"C++11 ABI {str(wheel.cxx11_abi).upper()}; GPU code for "
            f"{', '.join(f'sm_{a}' for a in archs)}; it is the file flash-attn's own setup.py "
            "asks for here"
            + ("" if release.assets_confirmed else " (upload not confirmed offline)")
        ),
        provenance=(release.source,),
    )


# ---------------------------------------------------------------------------- community builds


def _community_match(w: CommunityWheel, m: Machine, index: Index) -> str | None:
    if w.torch_minor != m.torch_minor:
        return f"built for torch {w.torch_minor}"
    if any(t.startswith(("linux", "manylinux")) for t in w.platform_tags) and m.os == "linux":
        # Built against PyTorch's own torch of that minor: its C++11 ABI is that torch's.
        abi = index.pytorch_wheel_abi(w.torch_minor)
        if m.cxx11_abi is None:
            return "torch's C++11 ABI flag is unknown here (the build needs it to match)"
        if m.cxx11_abi != abi:
            return (
                f"built against PyTorch's torch {w.torch_minor} (C++11 ABI "
                f"{str(abi).upper()}); this torch has C++11 ABI {str(m.cxx11_abi).upper()}"
            )
    if m.torch_cuda is None:
        return "torch has no CUDA"
    have = Version(m.torch_cuda)
    built = Version(w.cuda)
    if built.major != have.major or built.minor > have.minor:
        return f"built with CUDA {w.cuda}, torch has CUDA {m.torch_cuda}"
    py = python_mismatch(w.python_tag, w.abi_tag, m)
    if py:
        return py
    plats = [platform_mismatch(t, m) for t in w.platform_tags]
    if all(plats):
        return next(p for p in plats if p)
    return None


def _community_candidates(
    backend: BackendName,
    package: str,
    m: Machine,
    index: Index,
    versions: SpecifierSet | None = None,
) -> tuple[list[WheelCandidate], list[str]]:
    fits: list[CommunityWheel] = []
    near: list[str] = []
    for w in index.community.wheels:
        if w.package != package:
            continue
        if versions is not None and not versions.contains(w.version, prereleases=True):
            continue
        why = _community_match(w, m, index)
        if why is None:
            fits.append(w)
        elif w.torch_minor == m.torch_minor and len(near) < 3:
            near.append(f"{w.filename}: {why}")
    have_cuda = Version(m.torch_cuda) if m.torch_cuda else Version("0")

    def rank(w: CommunityWheel) -> tuple[Version, int, Version, str]:
        exact = 1 if Version(w.cuda) == have_cuda else 0
        return (Version(w.version), exact, Version(w.cuda), w.tag)

    fits.sort(key=rank, reverse=True)
    seen: set[str] = set()
    out: list[WheelCandidate] = []
    for w in fits:
        if w.version in seen:
            continue
        seen.add(w.version)
        dist = "flash-attn" if package == "flash_attn" else "flash-attn-3"
        exact = Version(w.cuda) == have_cuda
        older = f" (torch has {m.torch_cuda}; same major, older minor)"
        out.append(
            WheelCandidate(
                backend=backend,
                source="community",
                trust="community",
                requirement=f"{dist} @ {w.url}",
                version=w.version,
                filename=w.filename,
                url=w.url,
                verified=index.community.verified,
                reason=(
                    f"community build ({w.project}, release {w.tag}) for torch {w.torch_minor}, "
                    f"CUDA {w.cuda}{'' if exact else older}, "
                    f"{w.python_tag}-{w.abi_tag}; not built or tested by flash-attn's authors; "
                    f"built against PyTorch's torch {w.torch_minor} (C++11 ABI "
                    f"{str(index.pytorch_wheel_abi(w.torch_minor)).upper()}, like this torch); "
                    "GPU archs not stated in the name"
                ),
                provenance=(index.community.source,),
            )
        )
        if len(out) >= MAX_COMMUNITY_CANDIDATES:
            break
    return out, near


# -------------------------------------------------------------------------------- source build


def _source_build(
    backend: BackendName,
    requirement: str,
    m: Machine,
    index: Index,
    *,
    min_nvcc: str,
    arch_env: str,
    archs: tuple[int, ...],
    extra_env: tuple[tuple[str, str], ...] = (),
    pip_args: tuple[str, ...] = ("--no-build-isolation",),
) -> tuple[WheelCandidate | None, str]:
    """A source-build candidate, or None and the reason it cannot work here."""
    sb = index.source_build
    if m.nvcc is None:
        return None, "source build: no nvcc (CUDA toolkit) found on this machine"
    nvcc = Version(m.nvcc)
    if nvcc < Version(min_nvcc):
        return None, f"source build: needs nvcc >= {min_nvcc}, this machine has {m.nvcc}"
    if m.cuda_major is not None and nvcc.major != m.cuda_major:
        return None, (
            f"source build: nvcc {m.nvcc} and torch's CUDA {m.torch_cuda} differ in major "
            "version; torch's cpp_extension refuses to build (install a CUDA "
            f"{m.cuda_major}.x toolkit)"
        )
    families = sorted({f for sm in m.sms if (f := _fa_arch_family(sm, archs)) is not None})
    if m.sms and not families:
        return None, f"source build: this GPU ({_sm_text(m.sms[0])}) is not a target of the build"
    if any(f >= 100 for f in families) and nvcc < Version(sb.min_nvcc_blackwell):
        return None, (
            f"source build: Blackwell targets need nvcc >= {sb.min_nvcc_blackwell}, "
            f"this machine has {m.nvcc}"
        )
    ram_gib = (m.ram_bytes or 0) / 2**30
    cpus = m.cpu_count or 1
    jobs = source_build_jobs(
        m.cpu_count,
        m.ram_bytes,
        gib_per_nvcc_thread=sb.gib_per_nvcc_thread,
        nvcc_threads=SOURCE_BUILD_NVCC_THREADS,
    )
    share = (len(families) or len(archs)) / len(sb.default_archs)
    minutes = round(sb.core_minutes_all_archs * share / jobs, 1)
    env: list[tuple[str, str]] = [("MAX_JOBS", str(jobs))]
    if families:
        env.append((arch_env, ";".join(str(f) for f in families)))
    env += list(extra_env)
    return (
        WheelCandidate(
            backend=backend,
            source="source-build",
            trust="official",
            requirement=requirement,
            pip_args=pip_args,
            build_env=tuple(env),
            verified=False,
            estimated_minutes=minutes,
            reason=(
                f"compile from source with nvcc {m.nvcc}: about "
                f"{sb.gib_per_nvcc_thread * SOURCE_BUILD_NVCC_THREADS:g} GiB RAM per job "
                f"(NVCC_THREADS={SOURCE_BUILD_NVCC_THREADS}), so MAX_JOBS={jobs} here "
                f"({ram_gib:.0f} GiB free RAM, {cpus} CPUs); "
                + (
                    f"only this GPU's arch ({arch_env}={';'.join(map(str, families))}); "
                    if families
                    else ""
                )
                + f"about {minutes:g} minutes (estimate)"
            ),
            provenance=(sb.source,),
        ),
        "",
    )


# -------------------------------------------------------------------------------- backends


def _plan_flash_attn_2(
    m: Machine,
    index: Index,
    allow: frozenset[SourceKind],
    allow_torch_change: bool,
    versions: SpecifierSet | None = None,
) -> BackendPlan:
    backend: BackendName = "flash_attn_2"
    rejections: list[Rejection] = []
    ways: list[str] = []

    def reject(source: SourceKind, what: str, reason: str) -> None:
        rejections.append(Rejection(backend=backend, source=source, what=what, reason=reason))

    problem = _torch_problem(m, "flash-attn") or _gpu_problem(m, 80, None, "flash-attn 2")
    if problem:
        reject("upstream-release", "flash-attn", problem)
        if "compute capability" in problem:
            ways.append(
                "flash-attn 2 does not run on this GPU: use torch SDPA "
                "(attn_implementation='sdpa', memory-efficient kernel) or xformers."
            )
        return BackendPlan(backend=backend, rejections=tuple(rejections), ways_out=tuple(ways))

    candidates: list[WheelCandidate] = []
    vendor = vendor_torch(m)
    if vendor:
        reject(
            "upstream-release",
            "flash-attn prebuilt wheels",
            f"torch {m.torch} is a vendor build (a pre-release or local label, e.g. an NGC "
            "container's torch), not a PyTorch release: no prebuilt flash-attn wheel (upstream "
            "or community) was built against it; build from source against this torch",
        )
        matches: list[tuple[FlashAttnRelease, PublishedWheel]] = []
    elif m.cxx11_abi is None and m.os == "linux":
        reject(
            "upstream-release",
            "flash-attn release wheels",
            "torch's C++11 ABI flag is unknown, so the right release wheel cannot be named "
            "(run `attn-doctor check --deep`)",
        )
        matches = []
    else:
        matches, reasons = _upstream_flash_attn(m, index, versions)
        for what, reason in _group_reasons(reasons):
            reject("upstream-release", what, reason)
    if "upstream-release" in allow:
        for release, wheel in matches[:MAX_UPSTREAM_CANDIDATES]:
            candidates.append(_upstream_candidate(release, wheel, index, m))

    if vendor:
        pass
    elif not candidates and "community" in allow:
        community, near = _community_candidates(backend, "flash_attn", m, index, versions)
        candidates += community
        if not community:
            reject(
                "community",
                index.community.project,
                f"no community build for torch {m.torch_minor}, CUDA {m.torch_cuda}, "
                f"Python {m.python}, {m.platform_label}"
                + (f" (nearest: {near[0]})" if near else ""),
            )
    elif not candidates:
        community, _ = _community_candidates(backend, "flash_attn", m, index)
        if community:
            ways.append(
                f"A community build exists ({community[0].filename} from "
                f"{index.community.project}); allow community sources to use it."
            )

    # A torch with an upstream wheel for this Python/platform/ABI.
    if not matches and versions is None:
        other = _torch_with_upstream_wheel(m, index)
        if other is not None:
            release, wheel = other
            if allow_torch_change and "upstream-release" in allow:
                cand = _upstream_candidate(release, wheel, index, m)
                candidates.append(
                    replace(
                        cand,
                        torch_requirement=f"torch=={wheel.build_torch.split('.dev')[0]}",
                        reason=cand.reason
                        + f"; REPLACES torch {m.torch} with torch {wheel.torch_minor}",
                    )
                )
            else:
                ways.append(
                    f"torch {wheel.torch_minor} has an upstream flash-attn wheel "
                    f"({wheel.filename}); that means replacing torch {m.torch} "
                    "(re-run with torch changes allowed)."
                )

    if "hub" in allow:
        kernel = next((k for k in index.hub.kernels if k.replaces == "flash_attention_2"), None)
        if kernel is not None:
            ways.append(
                f"No flash-attn install at all: `pip install 'kernels>="
                f"{index.hub.kernels_min_version},"
                f"<{index.hub.kernels_max_version}'` and load the model with "
                f"attn_implementation='{kernel.repo}' (needs the Hugging Face Hub on first use); "
                f"transformers >= {index.hub.transformers_fallback_since} also falls back to "
                "it by itself for 'flash_attention_2' when flash-attn is missing and `kernels` "
                "is installed."
            )

    if "source-build" in allow:
        pinned = [
            r.version
            for r in index.flash_attn
            if versions is None or versions.contains(r.version, prereleases=True)
        ]
        newest = pinned[-1] if pinned else index.flash_attn[-1].version
        sb = index.source_build
        built, why = _source_build(
            backend,
            f"flash-attn=={newest}",
            m,
            index,
            min_nvcc=sb.min_nvcc,
            arch_env="FLASH_ATTN_CUDA_ARCHS",
            archs=sb.default_archs,
            extra_env=(
                ("FLASH_ATTENTION_FORCE_BUILD", "TRUE"),
                ("NVCC_THREADS", str(SOURCE_BUILD_NVCC_THREADS)),
            ),
        )
        if built is not None:
            candidates.append(replace(built, version=newest))
        else:
            reject("source-build", f"flash-attn=={newest}", why)
            if m.nvcc is None:
                ways.append(
                    f"Build from source: install a CUDA {m.cuda_major}.x toolkit (nvcc >= "
                    f"{sb.min_nvcc}) and the `ninja` package, then rerun."
                )
    return BackendPlan(
        backend=backend,
        candidates=tuple(candidates),
        rejections=tuple(rejections),
        ways_out=tuple(ways) if not candidates or not matches else (),
    )


def _torch_with_upstream_wheel(
    m: Machine, index: Index
) -> tuple[FlashAttnRelease, PublishedWheel] | None:
    """The newest (release, wheel) for this Python/platform/ABI and CUDA major, any torch."""
    if m.os != "linux" or m.arch != "x86_64":
        return None
    for release in reversed(index.flash_attn):
        best: PublishedWheel | None = None
        for w in published_wheels(release):
            if w.python != m.python or (m.cxx11_abi is not None and w.cxx11_abi != m.cxx11_abi):
                continue
            if m.cuda_major is not None and Version(w.build_cuda).major != m.cuda_major:
                continue
            if any(not _runs_on(release.archs_for(w.build_cuda), sm) for sm in m.sms):
                continue
            if best is None or Version(w.build_torch) > Version(best.build_torch):
                best = w
        if best is not None:
            return release, best
    return None


def _plan_flash_attn_3(
    m: Machine, index: Index, allow: frozenset[SourceKind], allow_torch_change: bool
) -> BackendPlan:
    backend: BackendName = "flash_attn_3"
    req = index.requirement("flash_attn_3")
    assert req is not None
    rejections: list[Rejection] = []
    ways: list[str] = []
    problem = (
        _torch_problem(m, "flash-attn 3")
        or _gpu_problem(m, None, req.forward_sm, "flash-attn 3")
        or (None if m.os == "linux" else f"flash-attn 3 builds on Linux only; this is {m.os}")
    )
    if (
        problem is None
        and req.min_cuda
        and m.torch_cuda
        and Version(m.torch_cuda) < Version(req.min_cuda)
    ):
        problem = f"flash-attn 3 needs CUDA >= {req.min_cuda}; torch has CUDA {m.torch_cuda}"
    if problem:
        rejections.append(
            Rejection(backend=backend, source="source-build", what="flash-attn-3", reason=problem)
        )
        return BackendPlan(backend=backend, rejections=tuple(rejections))
    rejections.append(
        Rejection(
            backend=backend,
            source="upstream-release",
            what="flash-attn-3",
            reason="upstream publishes no flash-attn 3 wheel (source only: hopper/ directory)",
        )
    )
    candidates: list[WheelCandidate] = []
    if "community" in allow:
        community, near = _community_candidates(backend, "flash_attn_3", m, index)
        candidates += community
        if not community:
            rejections.append(
                Rejection(
                    backend=backend,
                    source="community",
                    what=index.community.project,
                    reason=f"no community flash_attn_3 build for torch {m.torch_minor}, CUDA "
                    f"{m.torch_cuda}, {m.platform_label}"
                    + (f" (nearest: {near[0]})" if near else ""),
                )
            )
    if "source-build" in allow:
        cand, why = _source_build(
            backend,
            "flash-attn-3 @ git+https://github.com/Dao-AILab/flash-attention.git#subdirectory=hopper",
            m,
            index,
            min_nvcc=req.min_cuda or "12.3",
            arch_env="FLASH_ATTN_CUDA_ARCHS",
            archs=(90,),
        )
        if cand is not None:
            candidates.append(replace(cand, reason=cand.reason + "; " + req.notes[1]))
        else:
            rejections.append(
                Rejection(backend=backend, source="source-build", what="hopper/", reason=why)
            )
    if "hub" in allow:
        kernel = next((k for k in index.hub.kernels if k.replaces == "flash_attention_3"), None)
        if kernel is not None:
            ways.append(
                f"Hub kernel: install `kernels` and use attn_implementation='{kernel.repo}'."
            )
    return BackendPlan(
        backend=backend,
        candidates=tuple(candidates),
        rejections=tuple(rejections),
        ways_out=tuple(ways),
    )


def flash_attn_4_runtime(
    requires_dist: Iterable[str], index: Index, cuda_major: int | None
) -> tuple[str, ...]:
    """The nvidia-cutlass-dsl distributions a working flash-attn-4 needs (flash_attn_3_4.toml
    [[cutlass_dsl]]), for the lowest nvidia-cutlass-dsl its ``Requires-Dist`` admits."""
    for line in requires_dist:
        req = Requirement(line)
        if req.name != "nvidia-cutlass-dsl" or req.marker is not None:
            continue
        floor = next(
            (sp.version for sp in req.specifier if sp.operator in (">=", "==", "~=")), None
        )
        if floor is not None:
            return index.cutlass_dsl_distributions(floor, cuda_major)
    return ()


def _plan_flash_attn_4(
    m: Machine, index: Index, allow: frozenset[SourceKind], allow_torch_change: bool
) -> BackendPlan:
    backend: BackendName = "flash_attn_4"
    req = index.requirement("flash_attn_4")
    assert req is not None
    problem = (
        _torch_problem(m, "flash-attn 4")
        or (None if m.os == "linux" else f"flash-attn 4 supports Linux only; this is {m.os}")
        or _gpu_problem(m, None, req.forward_sm, "flash-attn 4")
    )
    releases = index.flash_attn_4
    if problem is None and not releases:
        problem = "the index lists no flash-attn-4 release"
    if problem is None:
        newest = releases[-1]
        if not SpecifierSet(newest.requires_python).contains(m.python + ".0"):
            problem = f"flash-attn-4 {newest.version} needs Python {newest.requires_python}"
    if problem is not None:
        return BackendPlan(
            backend=backend,
            rejections=(
                Rejection(backend=backend, source="pypi", what="flash-attn-4", reason=problem),
            ),
        )
    newest = releases[-1]
    extra = "[cu13]" if m.cuda_major == 13 else ""
    dsl = flash_attn_4_runtime(newest.requires_dist, index, m.cuda_major)
    torch_req = next((r for r in newest.requires_dist if Requirement(r).name == "torch"), "torch")
    cand = WheelCandidate(
        backend=backend,
        source="pypi",
        trust="official",
        requirement=f"flash-attn-4{extra}=={newest.version}",
        version=newest.version,
        filename=newest.filename,
        verified=newest.verified,
        reason=(
            f"pure-Python wheel on the package index (Requires-Dist {torch_req!r}: keeps the "
            f"installed torch); kernels JIT-compiled for this GPU by nvidia-cutlass-dsl"
            + ("; the cu13 extra matches torch's CUDA 13" if extra else "")
            + (f"; a working install also has {', '.join(dsl)}" if dsl else "")
        ),
        provenance=(newest.source, req.source),
    )
    if "pypi" not in allow:
        return BackendPlan(
            backend=backend,
            rejections=(
                Rejection(
                    backend=backend,
                    source="pypi",
                    what=cand.requirement,
                    reason="the package index is not an allowed source",
                ),
            ),
        )
    return BackendPlan(backend=backend, candidates=(cand,))


def _xformers_gpu_ops(version: str, m: Machine, index: Index) -> tuple[str, str | None]:
    """(``; forward ops for this GPU: …``, or a reason no forward op runs on a GPU here)."""
    table = index.xformers_ops_for(version)
    if table is None or not m.sms:
        return "", None
    names: list[str] = []
    for gpu, sm in zip(m.gpu_names, m.sms, strict=False):
        usable = [o.name for o in table.ops if o.forward and o.supports(sm)]
        if not usable:
            return "", (
                f"no xformers {version} attention operator supports {gpu} ({_sm_text(sm)}); "
                + ", ".join(
                    f"{o.name}: sm{o.min_sm}" + (f"-sm{o.max_sm}" if o.max_sm else "+")
                    for o in table.ops
                    if o.forward
                )
            )
        names += [n for n in usable if n not in names]
    return f"; forward operators for this GPU: {', '.join(names)}", None


def torch_variant(m: Machine) -> str | None:
    """The PyTorch index variant of the installed torch: ``cu124``, ``rocm6.1``, or None.

    From the local label (``2.4.0+cu124``), else from torch's CUDA version (the package
    index's default torch has no label). A vendor label (``2.2.0a0+6a974be``) names none.
    """
    if m.torch is None:
        return None
    local = Version(m.torch).local or ""
    if re.fullmatch(r"cu\d{3}|rocm\d+(\.\d+)*", local):
        return local
    if m.torch_build == "cuda" and m.torch_cuda and not local:
        return "cu" + "".join(m.torch_cuda.split(".")[:2])
    return None


def _variant_text(variant: str) -> str:
    if variant.startswith("rocm"):
        return f"ROCm {variant[4:]}"
    digits = variant[2:]
    return f"CUDA {digits[:-1]}.{digits[-1]}"


def vendor_torch(m: Machine) -> bool:
    """A torch built outside PyTorch's releases (NGC containers, distributions): a
    pre-release or a local label that is not ``cuXYZ``/``rocmX``/``cpu``, e.g. ``2.2.0a0+6a974be``.
    No prebuilt extension wheel is built against it."""
    if m.torch is None:
        return False
    v = Version(m.torch)
    local = v.local or ""
    label_ok = not local or re.fullmatch(r"cu\d+|rocm[\d.]+|cpu|xpu", local) is not None
    return not label_ok or (v.pre is not None and not v.is_devrelease)


def _xformers_python_problem(build: XformersBuild, m: Machine) -> str | None:
    here = Version(m.python)
    if build.python_tag == "cpXY-cpXY":
        if m.free_threaded:
            return "no free-threaded (cp3XYt) wheel"
        if m.python not in build.python:
            return f"built for Python {', '.join(build.python)}; this is Python {m.python}"
        return None
    py, abi = build.python_tag.split("-")
    return python_mismatch(py, abi, m) if here.major == 3 else "needs Python 3"


def _xformers_build_fit(
    build: XformersBuild, m: Machine, index: Index
) -> tuple[XformersWheel | None, str | None, str | None]:
    """(package-index wheel, PyTorch index variant, reason none fits) for one release."""
    variant = torch_variant(m)
    if m.os not in ("linux", "windows"):
        return None, None, f"xformers {build.version}: no wheel for {m.os} (Linux and Windows only)"
    plat = build.linux_platform if m.os == "linux" else "win_amd64"
    why = platform_mismatch(plat, m) or _xformers_python_problem(build, m)
    if why:
        return None, None, f"xformers {build.version}: {plat} wheels only; {why}"
    spec = Requirement(build.requires_torch).specifier
    torch_public = Version(m.torch or "0").public
    if not spec.contains(torch_public, prereleases=True):
        return (
            None,
            None,
            (
                f"xformers {build.version} requires {build.requires_torch} (built against torch "
                f"{build.build_torch}); installed torch is {m.torch} (pip would replace torch)"
            ),
        )
    if build.stable_abi_torch and Version(torch_public) < Version(build.stable_abi_torch):
        return None, None, f"xformers {build.version} needs torch >= {build.stable_abi_torch}"
    built_here = build.pytorch_variants(m.os)
    on_pypi = [
        w
        for w in index.xformers
        if w.version == build.version
        and platform_mismatch(w.platform_tag, m) is None
        and python_mismatch(w.python_tag, w.abi_tag, m) is None
    ]
    pypi_variant = (
        build.package_index_cuda if m.os in build.package_index_platforms and on_pypi else None
    )
    if variant is not None and variant == pypi_variant:
        return on_pypi[0], None, None
    if variant is not None and variant in built_here:
        return None, variant, None
    offered = [f"{v} (PyTorch index)" for v in built_here]
    if pypi_variant:
        offered.append(f"{pypi_variant} (package index)")
    have = f"torch {m.torch}" + (f" ({_variant_text(variant)})" if variant else "")
    if variant is None and vendor_torch(m):
        have = f"torch {m.torch} is a vendor build (not a PyTorch release)"
    if not offered:
        return (
            None,
            None,
            (
                f"xformers {build.version} published no {m.os} wheel (built against torch "
                f"{build.build_torch})"
            ),
        )
    return (
        None,
        None,
        (
            f"xformers {build.version} was built against torch {build.build_torch} for "
            f"{', '.join(offered)} on {m.os}; {have}: no wheel for it"
        ),
    )


def _plan_xformers(
    m: Machine,
    index: Index,
    allow: frozenset[SourceKind],
    allow_torch_change: bool,
    versions: SpecifierSet | None = None,
) -> BackendPlan:
    backend: BackendName = "xformers"
    problem = None
    if m.torch is None:
        problem = "torch is not installed: xformers needs a CUDA or ROCm build of torch first"
    elif m.torch_build not in ("cuda", "rocm"):
        problem = (
            f"the installed torch {m.torch} is a {m.torch_build} build: xformers' wheels need "
            "a CUDA or ROCm build"
        )
    if problem:
        return BackendPlan(
            backend=backend,
            rejections=(
                Rejection(backend=backend, source="pypi", what="xformers", reason=problem),
            ),
        )
    assert m.torch is not None
    rejections: list[Rejection] = []
    candidates: list[WheelCandidate] = []
    ways: list[str] = []
    builds = [
        b
        for b in reversed(index.xformers_builds)
        if versions is None or versions.contains(b.version, prereleases=True)
    ]
    for build in builds:
        wheel, variant, why = _xformers_build_fit(build, m, index)
        what = f"xformers=={build.version}"
        if why is not None:
            if not candidates:
                rejections.append(Rejection(backend=backend, source="pypi", what=what, reason=why))
            continue
        gpu_ops, gpu_problem = _xformers_gpu_ops(build.version, m, index)
        if gpu_problem:
            if not candidates:
                rejections.append(
                    Rejection(backend=backend, source="pypi", what=what, reason=gpu_problem)
                )
            continue
        built = (
            f"built by xformers' CI ({build.tag}) against torch {build.build_torch}"
            f"+{build.package_index_cuda if wheel is not None else variant}"
        )
        if wheel is not None and "pypi" in allow:
            candidates.append(
                WheelCandidate(
                    backend=backend,
                    source="pypi",
                    trust="official",
                    requirement=what,
                    version=build.version,
                    filename=wheel.filename,
                    verified=wheel.verified and build.verified,
                    reason=(
                        f"package-index wheel {built} (its upload_pip filter), like the "
                        f"installed torch {m.torch}; METADATA requires "
                        f"{wheel.requires_torch or 'torch (unpinned)'}{gpu_ops}"
                    ),
                    provenance=(wheel.source, build.source),
                )
            )
        elif variant is not None and "pytorch-index" in allow:
            candidates.append(
                WheelCandidate(
                    backend=backend,
                    source="pytorch-index",
                    trust="official",
                    requirement=what,
                    version=build.version,
                    index_url=PYTORCH_INDEX.format(tag=variant),
                    verified=False,
                    reason=(
                        f"PyTorch's {variant} index holds the {m.os} wheel {built} (its "
                        f"upload_pt job), matching the installed torch {m.torch}; pins "
                        f"{build.requires_torch} (the upload itself is not confirmed offline)"
                        f"{gpu_ops}"
                    ),
                    provenance=(build.source,),
                )
            )
        else:
            source: SourceKind = "pypi" if wheel is not None else "pytorch-index"
            rejections.append(
                Rejection(
                    backend=backend,
                    source=source,
                    what=what,
                    reason=f"fits here ({built}) but the {source} source is not allowed",
                )
            )
            continue
        if len(candidates) >= 2:
            break
    if not candidates:
        variant = torch_variant(m)
        for build in builds:
            if variant is None:
                break
            here = variant in build.pytorch_variants(m.os) or (
                variant == build.package_index_cuda and m.os in build.package_index_platforms
            )
            if not here:
                continue
            pin = f"torch=={build.build_torch}"
            if allow_torch_change and "pytorch-index" in allow:
                candidates.append(
                    WheelCandidate(
                        backend=backend,
                        source="pytorch-index",
                        trust="official",
                        requirement=f"xformers=={build.version}",
                        version=build.version,
                        index_url=PYTORCH_INDEX.format(tag=variant),
                        verified=False,
                        torch_requirement=pin,
                        reason=f"REPLACES torch {m.torch}: xformers {build.version} was built "
                        f"against torch {build.build_torch}+{variant} ({build.tag} CI)",
                        provenance=(build.source,),
                    )
                )
            else:
                ways.append(
                    f"xformers {build.version} has a {variant} wheel built against torch "
                    f"{build.build_torch}: that means replacing torch {m.torch} with "
                    f"{pin} from PyTorch's {variant} index (re-run with torch changes allowed)."
                )
            break
        ways.append(
            "torch's own SDPA memory-efficient kernel (attn_implementation='sdpa') is the "
            "same algorithm family and needs no install."
        )
    return BackendPlan(
        backend=backend,
        candidates=tuple(candidates),
        rejections=_group_xformers(rejections),
        ways_out=tuple(ways),
    )


def _group_xformers(rejections: list[Rejection]) -> tuple[Rejection, ...]:
    """Merge consecutive releases refused for the same reason (their version left out)."""
    groups: list[tuple[list[Rejection], str]] = []
    for r in rejections:
        version = r.what.removeprefix("xformers==")
        key = r.source + "|" + r.reason.replace(f"xformers {version}", "xformers {v}")
        if groups and groups[-1][1] == key:
            groups[-1][0].append(r)
        else:
            groups.append(([r], key))
    out = []
    for members, key in groups:
        newest = members[0].what.removeprefix("xformers==")
        oldest = members[-1].what.removeprefix("xformers==")
        if newest == oldest:
            out.append(members[0])
            continue
        span = f"{oldest} … {newest}"
        out.append(
            replace(
                members[0],
                what=f"xformers {span}",
                reason=key.split("|", 1)[1].replace("xformers {v}", f"xformers {span}"),
            )
        )
    # Releases whose torch pin accepts this torch carry the real reason: they come first.
    return tuple(sorted(out, key=lambda r: "pip would replace torch" in r.reason))


def _plan_unsloth(
    m: Machine, index: Index, allow: frozenset[SourceKind], allow_torch_change: bool
) -> BackendPlan:
    backend: BackendName = "unsloth"
    u = index.unsloth
    problem = _torch_problem(m, "unsloth")
    rejections: list[Rejection] = []
    if problem is None:
        assert m.torch is not None
        torch_req = next((r for r in u.requires_dist if Requirement(r).name == "torch"), None)
        if torch_req and not Requirement(torch_req).specifier.contains(
            Version(m.torch).public, prereleases=True
        ):
            problem = f"unsloth {u.version} requires {torch_req}; installed torch is {m.torch}"
    if problem is None and not SpecifierSet(u.requires_python).contains(m.python + ".0"):
        problem = f"unsloth {u.version} needs Python {u.requires_python}"
    if problem:
        return BackendPlan(
            backend=backend,
            rejections=(
                Rejection(
                    backend=backend, source="pypi", what=f"unsloth=={u.version}", reason=problem
                ),
            ),
        )
    notes: list[str] = []
    pip_args: tuple[str, ...] = ()
    xf_req = next((r for r in u.requires_dist if Requirement(r).name == "xformers"), None)
    xf_plan = _plan_xformers(m, index, allow, False) if xf_req else None
    marker_applies = m.arch == "x86_64" and m.os in ("linux", "windows")
    if xf_req and marker_applies and xf_plan is not None and not xf_plan.candidates:
        rejections.append(
            Rejection(
                backend=backend,
                source="pypi",
                what=xf_req,
                reason=(
                    f"unsloth requires {xf_req.split(';')[0].strip()} on this platform, and no "
                    "xformers "
                    f"release accepts torch {m.torch}: pip would replace torch. Installing unsloth "
                    "with --no-deps and its other requirements avoids that (xformers unused)"
                ),
            )
        )
        pip_args = ("--no-deps",)
        notes.append(
            "installed with --no-deps: install its other requirements (unsloth_zoo, "
            "bitsandbytes, peft, trl, …) under the torch constraint"
        )
    extra = None
    if m.torch_cuda and m.torch:
        tv = Version(m.torch)
        code = f"{tv.major}{tv.minor}{tv.micro}"
        name = f"cu{m.torch_cuda.replace('.', '')}-torch{code}"
        extra = next((e for e in u.extras if e.name == name), None)
    if extra is not None:
        notes.append(
            f"uses unsloth's own extra for this torch/CUDA, [{extra.name}] "
            f"(pins {', '.join(extra.pins) or 'nothing'})"
        )
    recipes = u.recipes
    if m.torch and m.torch_cuda and not recipes.cuda_supported(m.torch, m.torch_cuda):
        notes.append(
            f"unsloth's _auto_install.py would refuse CUDA {m.torch_cuda} for torch {m.torch}"
        )
    notes.append(f"unsloth's documented fresh-install route is `{recipes.uv_command}`")
    cand = WheelCandidate(
        backend=backend,
        source="pypi",
        trust="official",
        requirement=(
            f"unsloth[{extra.name}]=={u.version}"
            if extra is not None and not pip_args
            else f"unsloth=={u.version}"
        ),
        version=u.version,
        pip_args=pip_args,
        verified=u.verified,
        reason="; ".join([f"Requires-Dist accepts torch {m.torch}", *notes]),
        provenance=(u.source,),
    )
    if "pypi" not in allow:
        return BackendPlan(
            backend=backend,
            rejections=(
                Rejection(
                    backend=backend,
                    source="pypi",
                    what=cand.requirement,
                    reason="the package index is not an allowed source",
                ),
            ),
        )
    return BackendPlan(backend=backend, candidates=(cand,), rejections=tuple(rejections))


def _plan_hub(
    m: Machine, index: Index, allow: frozenset[SourceKind], allow_torch_change: bool
) -> BackendPlan:
    backend: BackendName = "hub_kernels"
    hub = index.hub
    kernel = next(k for k in hub.kernels if k.replaces == "flash_attention_2")
    problem = (
        _torch_problem(m, "a Hub kernel")
        or (None if m.os in ("linux", "windows") else f"no Hub kernel builds for {m.os}")
        or _gpu_problem(m, kernel.min_sm, None, kernel.repo)
        or (
            None
            if not m.free_threaded or Version(m.python) >= Version("3.15")
            else "the kernels package rejects arch kernels on free-threaded Python < 3.15"
        )
    )
    if problem is None and "hub" not in allow:
        problem = "the Hugging Face Hub is not an allowed source"
    if problem:
        return BackendPlan(
            backend=backend,
            rejections=(
                Rejection(backend=backend, source="hub", what=kernel.repo, reason=problem),
            ),
        )
    variants = expected_variants(
        torch=m.torch or "0",
        cxx11_abi=m.cxx11_abi,
        cuda=m.torch_cuda or "0",
        cpu={"AMD64": "x86_64", "arm64": "aarch64"}.get(m.arch or "", m.arch or "x86_64"),
        os=m.os,
    )
    cand = WheelCandidate(
        backend=backend,
        source="hub",
        trust="official",
        requirement=f"kernels>={hub.kernels_min_version},<{hub.kernels_max_version}",
        attn_implementation=kernel.repo,
        verified=False,
        reason=(
            f"prebuilt flash-attn 2 from the Hugging Face Hub ({kernel.repo}); the `kernels` "
            f"package looks for build/{' or build/'.join(variants)} (or an older CUDA minor, "
            "or a torch stable-ABI build); whether one is published is checked on first use "
            "(needs the Hub)"
        ),
        provenance=(hub.source, kernel.source),
    )
    return BackendPlan(backend=backend, candidates=(cand,))


_BUILTIN: frozenset[BackendName] = frozenset(n for n in BACKENDS if BACKENDS[n].builtin)


def _plan_sage(
    m: Machine, index: Index, allow: frozenset[SourceKind], allow_torch_change: bool
) -> BackendPlan:
    from attn_doctor.plan.resolve_sage import plan_sageattention

    plan = plan_sageattention(m, _torch_problem)
    kept = tuple(c for c in plan.candidates if c.source in allow)
    return replace(plan, candidates=kept)


def known_versions(index: Index, backend: BackendName) -> tuple[str, ...]:
    """Every release of ``backend`` the index knows, oldest first (empty: not versioned)."""
    found: set[str] = set()
    if backend == "flash_attn_2":
        found = {r.version for r in index.flash_attn}
        found |= {w.version for w in index.community.wheels if w.package == "flash_attn"}
    elif backend == "flash_attn_3":
        found = {w.version for w in index.community.wheels if w.package == "flash_attn_3"}
    elif backend == "flash_attn_4":
        found = {r.version for r in index.flash_attn_4}
    elif backend == "xformers":
        found = {b.version for b in index.xformers_builds} | {w.version for w in index.xformers}
    elif backend == "unsloth":
        found = {index.unsloth.version}
    return tuple(sorted(found, key=Version))


def check_versions(index: Index, backend: BackendName, versions: SpecifierSet) -> None:
    """Raise ``UsageError`` when no release the index knows satisfies ``versions``."""
    known = known_versions(index, backend)
    name = BACKENDS[backend].distribution or backend
    if not known:
        raise UsageError(f"{name} takes no version: drop {versions}")
    if not any(versions.contains(v, prereleases=True) for v in known):
        raise UsageError(
            f"{name}{versions}: no such release in the index (known: {known[0]} … {known[-1]})"
        )


def plan_backend(
    env: Environment,
    index: Index,
    backend: BackendName,
    *,
    allow_sources: Iterable[SourceKind] = ALL_SOURCES,
    allow_torch_change: bool = False,
    versions: SpecifierSet | None = None,
) -> BackendPlan:
    """Every way to get ``backend`` onto the machine ``env`` describes, best first, and why not.

    With ``versions`` (``==0.0.30``) only releases it accepts are planned; when none fits,
    ``ways_out`` names the versions that do fit here. Raises ``UsageError`` when the index
    knows no release it accepts.
    """
    if versions is not None:
        check_versions(index, backend, versions)
    m = machine_of(env)
    allow = frozenset(allow_sources)
    info = BACKENDS[backend]
    installed = env.package(info.distribution) if info.distribution else None
    if backend in _BUILTIN:
        return BackendPlan(
            backend=backend,
            ways_out=(f"{info.title} ships with torch: nothing to install.",),
            already_installed=m.torch,
        )
    planners = {
        "flash_attn_2": _plan_flash_attn_2,
        "flash_attn_3": _plan_flash_attn_3,
        "flash_attn_4": _plan_flash_attn_4,
        "xformers": _plan_xformers,
        "unsloth": _plan_unsloth,
        "hub_kernels": _plan_hub,
        "sageattention": _plan_sage,
    }
    if versions is not None and backend in ("flash_attn_2", "xformers"):
        versioned = _plan_flash_attn_2 if backend == "flash_attn_2" else _plan_xformers
        plan = versioned(m, index, allow, allow_torch_change, versions)
    else:
        plan = planners[backend](m, index, allow, allow_torch_change)
    if versions is not None:
        plan = _only_versions(
            plan, versions, planners[backend](m, index, allow, allow_torch_change)
        )
    if installed is not None:
        plan = replace(plan, already_installed=installed.version)
    return plan


def _only_versions(plan: BackendPlan, versions: SpecifierSet, unpinned: BackendPlan) -> BackendPlan:
    """Keep the candidates ``versions`` accepts; when none is left, say which versions fit."""
    kept = tuple(
        c
        for c in plan.candidates
        if c.version is not None and versions.contains(c.version, prereleases=True)
    )
    if kept:
        return replace(plan, candidates=kept)
    fit = sorted(
        {c.version for c in unpinned.candidates if c.version is not None},
        key=Version,
        reverse=True,
    )
    ways = (
        f"Versions that fit here: {', '.join(fit)}." if fit else "No version fits here.",
        *plan.ways_out,
    )
    return replace(plan, candidates=(), ways_out=ways)


def plan_install(
    env: Environment,
    index: Index,
    backend: BackendName,
    *,
    allow_sources: Iterable[SourceKind] = ALL_SOURCES,
    allow_torch_change: bool = False,
    choice: int = 0,
    versions: SpecifierSet | None = None,
) -> InstallPlan:
    """The install plan for the ``choice``-th candidate (best first).

    Raises ``UsageError`` when no candidate fits (the hint carries the ways out).
    """
    plan = plan_backend(
        env,
        index,
        backend,
        allow_sources=allow_sources,
        allow_torch_change=allow_torch_change,
        versions=versions,
    )
    if not plan.candidates:
        reasons = "; ".join(r.reason for r in plan.rejections[:3]) or "no source offers it"
        what = (
            f"{BACKENDS[backend].distribution or backend}{versions}"
            if versions is not None
            else BACKENDS[backend].title
        )
        raise UsageError(
            f"no way to install {what} here: {reasons}",
            hint=" ".join(plan.ways_out) or None,
        )
    if not 0 <= choice < len(plan.candidates):
        raise UsageError(f"choice {choice} is out of range (0..{len(plan.candidates) - 1})")
    cand = plan.candidates[choice]
    protected = protected_lines(env, except_torch=cand.torch_requirement is not None)
    py = env.python.executable or "python"
    notes: list[str] = []
    if cand.torch_requirement is not None:
        notes.append(
            f"torch {env.torch.version if env.torch else '(none)'} WILL BE REPLACED: "
            f"{cand.torch_requirement}"
        )
    if cand.source == "hub":
        notes.append(f"then load models with attn_implementation='{cand.attn_implementation}'")
    # The same builder the installer runs (``install.pip.command_lines``).
    commands = command_lines(cand, python=py, build_env=cand.build_env)
    if cand.source == "community":
        notes.append("community build: not produced by the backend's authors")
    if not cand.verified:
        notes.append("the index entry behind this choice is not confirmed against upstream")
    if cand.confirmed_online is None and cand.url:
        notes.append("the URL was not checked online (the installer confirms it before acting)")
    return InstallPlan(
        backend=backend,
        candidate=cand,
        protected=protected,
        commands=commands,
        notes=tuple(notes),
    )


def protected_lines(env: Environment, *, except_torch: bool = False) -> tuple[str, ...]:
    """Constraint lines pinning the installed torch, torchvision, torchaudio and triton."""
    lines: list[str] = []
    for name in PROTECTED:
        if name == "torch":
            if env.torch is not None and not except_torch:
                lines.append(f"torch=={env.torch.version}")
            continue
        pkg = env.package(name)
        if pkg is not None and not except_torch:
            lines.append(f"{name}=={pkg.version}")
    return tuple(lines)
