"""flash-attn 2: upstream release wheels (setup.py's own naming), community builds (only where
upstream has none, matching torch, CUDA major, C++ ABI and Python tag), and a source build sized
to this machine (pure). flash-attn 3: ``flash_attn_3.py`` (with the community and source-build
helpers defined here); on ROCm: ``flash_attn_rocm.py``; flash-attn 4: ``flash_attn_4.py``.
"""

from __future__ import annotations

from dataclasses import replace

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from attn_doctor.backends import BackendName
from attn_doctor.facts import sm_text
from attn_doctor.index.hub import kernels_requirement
from attn_doctor.index.naming import (
    published_wheels,
    setup_py_wheel_name,
)
from attn_doctor.index.records import (
    CommunityWheel,
    FlashAttnRelease,
    Index,
    PublishedWheel,
)
from attn_doctor.planner.machine import SOURCE_BUILD_NVCC_THREADS, source_build_jobs
from attn_doctor.planner.plans import BackendPlan, Rejection, SourceKind, WheelCandidate
from attn_doctor.resolve.common import (
    MAX_COMMUNITY_CANDIDATES,
    MAX_UPSTREAM_CANDIDATES,
    Machine,
    cuda_torch_problem,
    fa_arch_family,
    gpu_problem,
    nightly_torch,
    platform_mismatch,
    python_mismatch,
    runs_on,
    vendor_torch,
)
from attn_doctor.resolve.listed import listed_flash_attn_2, merge

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
        build = index.release_build(release.version)
        if build is not None and not build.built:
            if not matches:
                reasons.append(
                    f"flash-attn {release.version}: no release wheels were built: "
                    f"{build.not_built_why}"
                )
            continue
        built_glibc = _release_glibc(release, index)
        if m.glibc is not None and built_glibc is not None and m.glibc < built_glibc:
            if not matches:
                images = build.image if build is not None else release.runner
                reasons.append(
                    f"flash-attn {release.version}: built on {', '.join(images)} "
                    f"(glibc {built_glibc}); this system has glibc {m.glibc}"
                )
            continue
        archs = release.archs_for(wheel.build_cuda)
        bad = [sm for sm in m.sms if not runs_on(archs, sm)]
        if bad:
            if not matches:
                reasons.append(
                    f"flash-attn {release.version}: {wheel.filename} carries "
                    f"{', '.join(f'sm_{a}' for a in archs)} only; "
                    f"this GPU is {sm_text(bad[0], form='both')}"
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
    """The glibc of the image that built this release's wheels, as read from its workflow at
    the tag (build_runners.toml); else the newest among its matrix runners (None when unknown)."""
    build = index.release_build(release.version)
    if build is not None:
        return Version(build.glibc)
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


def community_candidates(
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
                    f"built against PyTorch's torch {w.torch_minor}"
                    f"{_community_abi(index.pytorch_wheel_abi(w.torch_minor), m)}; "
                    "GPU archs not stated in the name"
                ),
                provenance=(index.community.source,),
            )
        )
        if len(out) >= MAX_COMMUNITY_CANDIDATES:
            break
    return out, near


def _community_abi(abi: bool, m: Machine) -> str:
    """How a community wheel's C++11 ABI compares with this torch's, saying only what is known
    (the flag is a libstdc++ one: it does not apply off Linux)."""
    if m.os != "linux":
        return ""
    if m.cxx11_abi is None:
        return f" (C++11 ABI {str(abi).upper()}; this torch's ABI is unknown)"
    if m.cxx11_abi == abi:
        return f" (C++11 ABI {str(abi).upper()}, like this torch)"
    return f" (C++11 ABI {str(abi).upper()}, unlike this torch's {str(m.cxx11_abi).upper()})"


# -------------------------------------------------------------------------------- source build


def source_build_option(
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
    families = sorted({f for sm in m.sms if (f := fa_arch_family(sm, archs)) is not None})
    if m.sms and not families:
        gpu = sm_text(m.sms[0], form="both")
        return None, f"source build: this GPU ({gpu}) is not a target of the build"
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


def plan_flash_attn_2(
    m: Machine,
    index: Index,
    allow: frozenset[SourceKind],
    allow_torch_change: bool,
    versions: SpecifierSet | None = None,
) -> BackendPlan:
    if m.torch_build == "rocm" and index.flash_attn_rocm is not None:
        from attn_doctor.resolve.flash_attn_rocm import plan_flash_attn_rocm

        return plan_flash_attn_rocm(m, index, allow)
    backend: BackendName = "flash_attn_2"
    rejections: list[Rejection] = []
    ways: list[str] = []

    def reject(source: SourceKind, what: str, reason: str) -> None:
        rejections.append(Rejection(backend=backend, source=source, what=what, reason=reason))

    problem = cuda_torch_problem(m, "flash-attn") or gpu_problem(m, 80, None, "flash-attn 2")
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
            (
                f"torch {m.torch} is a nightly (.dev) build, a pre-release"
                if nightly_torch(m)
                else f"torch {m.torch} is a vendor build (a pre-release or local label, e.g. "
                "an NGC container's torch)"
            )
            + ", not a PyTorch release: no prebuilt flash-attn wheel (upstream or community) "
            "was built against it; build from source against this torch",
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
        if not vendor:  # release pages read by `index update`: their real assets and digests
            found, _ = listed_flash_attn_2(m, index, ("official",), versions)
            candidates = merge(candidates, found, MAX_UPSTREAM_CANDIDATES, index)

    if vendor:
        pass
    elif not candidates and "community" in allow:
        community, near = community_candidates(backend, "flash_attn", m, index, versions)
        found, near2 = listed_flash_attn_2(m, index, ("community", "third-party index"), versions)
        community, near = merge(community, found, MAX_COMMUNITY_CANDIDATES, index), near + near2
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
        community, _ = community_candidates(backend, "flash_attn", m, index)
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
                "No flash-attn install at all: `"
                + m.pip(
                    "install",
                    kernels_requirement(index.hub, m.transformers, m.transformers_constants),
                )
                + "` and load the model with "
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
        built, why = source_build_option(
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
            if any(not runs_on(release.archs_for(w.build_cuda), sm) for sm in m.sms):
                continue
            if best is None or Version(w.build_torch) > Version(best.build_torch):
                best = w
        if best is not None:
            return release, best
    return None


def flash_attn_2_versions(index: Index) -> set[str]:
    """flash-attn 2 releases: upstream's and the community builds'."""
    found = {r.version for r in index.flash_attn}
    found |= {w.version.split("+")[0] for w in index.listed if w.package == "flash_attn"}
    return found | {w.version for w in index.community.wheels if w.package == "flash_attn"}
