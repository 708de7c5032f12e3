"""Hub kernels, offline: does the local cache hold what would be fetched, for this machine?

For each kernel the project locks (``kernels.lock``, ``[tool.kernels.dependencies]``) and each
kernel transformers or diffusers here would fetch (``[[hub_kernel]]`` of frameworks.toml), when
offline or already cached: is the repository in the cache at that version (its ``vN`` ref) or
locked commit, and does that snapshot hold a build variant ``kernels`` 0.19 accepts for this
torch, CUDA, C++ ABI, CPU and OS? Variant names follow kernels 0.19 ``variants.py``: legacy
``torch211-cxx11-cu130-x86_64-linux`` / ``torch-stable-abi211-…`` and new
``torch-2.11-cxx11-cuda-13.0-cpython-3.9-abi3-x86_64-linux`` / ``torch-stable-abi-2.11-…``,
plus noarch ``torch-universal`` / ``torch-cuda``. Matching (``_check_variants``): the torch
major.minor is equal (a stable ABI at most torch's), an ABI tag equals torch's, the CUDA major
is equal and its minor at most torch's, the CPU and OS are equal. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.version import Version

from attn_doctor.diagnose.context import Ctx, evidence_of
from attn_doctor.diagnosis import Finding
from attn_doctor.facts import CachedKernel, Environment, LockedKernel
from attn_doctor.index.frameworks import load_frameworks
from attn_doctor.planner.frameworks import framework_version, is_present, satisfies
from attn_doctor.versions import parse_version

_LEGACY_TORCH = re.compile(r"^torch(\d)(\d+)$")
_NEW_TORCH = re.compile(r"^torch-(\d+)\.(\d+)$")
_LEGACY_STABLE = re.compile(r"^torch-stable-abi(\d)(\d+)$")
_NEW_STABLE = re.compile(r"^torch-stable-abi-(\d+)\.(\d+)$")


@dataclass(frozen=True, kw_only=True)
class Variant:
    torch: tuple[int, int] | None
    """None for noarch variants."""
    stable_abi: bool = False
    cxx11: bool | None = None
    backend: str = ""
    """``cuda``, ``cpu``, ``rocm``, ``universal``…"""
    cuda: tuple[int, int] | None = None
    cpu: str | None = None
    os: str | None = None


def parse_variant(name: str) -> Variant | None:
    """A build variant name as kernels 0.19 writes it (None: not one it would read)."""
    parts = name.split("-")
    if len(parts) == 2 and parts[0] == "torch" and not parts[1][:1].isdigit():
        return Variant(torch=None, backend=parts[1])  # noarch: torch-universal, torch-cuda
    stable = name.startswith("torch-stable-abi")
    legacy = True
    if stable:
        legacy = not (len(parts) > 3 and parts[2] == "abi")
        n = 3 if legacy else 4
        m = (_LEGACY_STABLE if legacy else _NEW_STABLE).match("-".join(parts[:n]))
    elif len(parts) >= 2 and parts[0] == "torch" and parts[1][:1].isdigit():
        legacy, n = False, 2
        m = _NEW_TORCH.match("-".join(parts[:2]))
    else:
        n = 1
        m = _LEGACY_TORCH.match(parts[0])
    if m is None:
        return None
    torch = (int(m.group(1)), int(m.group(2)))
    rest = parts[n:]
    cxx11 = None
    if rest and rest[0] in ("cxx11", "cxx98"):
        cxx11 = rest[0] == "cxx11"
        rest = rest[1:]
    if len(rest) < 3:
        return None
    cpu, os_name = rest[-2], rest[-1]
    rest = rest[:-2]
    if not legacy and "cpython" in rest:
        rest = rest[: rest.index("cpython")]
    cuda = None
    backend = rest[0] if rest else ""
    if legacy and backend.startswith("cu") and backend[2:].isdigit() and len(backend) >= 4:
        digits = backend[2:]
        cuda, backend = (int(digits[:2]), int(digits[2:])), "cuda"
    elif backend == "cuda" and len(rest) >= 2:
        v = parse_version(rest[1])
        if v is None:
            return None
        cuda = (v.major, v.minor)
    return Variant(
        torch=torch, stable_abi=stable, cxx11=cxx11, backend=backend, cuda=cuda, cpu=cpu,
        os=os_name,
    )  # fmt: skip


def variant_fits(variant: Variant, env: Environment) -> bool:
    """Whether ``kernels`` here would accept this variant (torch, ABI, CUDA, CPU, OS)."""
    t = env.torch
    if t is None:
        return False
    if variant.torch is None:
        return variant.backend == "universal" or (variant.backend == "cuda" and t.build == "cuda")
    tv = parse_version(t.version, public=True)
    if tv is None:
        return False
    have = (tv.major, tv.minor)
    if variant.stable_abi and variant.torch > have:
        return False
    if not variant.stable_abi and variant.torch != have:
        return False
    if variant.cxx11 is not None and t.cxx11_abi is not None and variant.cxx11 != t.cxx11_abi:
        return False
    if variant.backend == "cuda":
        if t.build != "cuda" or not t.cuda or variant.cuda is None:
            return False
        cv = Version(t.cuda)
        if variant.cuda[0] != cv.major or variant.cuda[1] > cv.minor:
            return False
    elif variant.backend != "cpu" or t.build != "cpu":
        return False
    arch = {"arm64": "aarch64", "AMD64": "x86_64"}.get(env.host.arch or "", env.host.arch)
    return variant.cpu == arch and variant.os == env.host.os


def wanted_variant(env: Environment) -> str:
    """The variant this machine needs, in words (for a finding)."""
    t = env.torch
    if t is None:
        return "a torch build (none is installed)"
    tv = Version(Version(t.version).public)
    abi = "" if t.cxx11_abi is None else ("-cxx11" if t.cxx11_abi else "-cxx98")
    backend = f"cuda-{t.cuda}" if t.build == "cuda" and t.cuda else t.build
    return (
        f"torch-{tv.major}.{tv.minor}{abi}-{backend}-cpython-3.9-abi3-{env.host.arch}-"
        f"{env.host.os} (or its legacy name, or a torch-stable-abi variant up to {tv.major}."
        f"{tv.minor})"
    )


def _cached(env: Environment, repo: str) -> CachedKernel | None:
    facts = env.hub_kernels
    if facts is None:
        return None
    return next((c for c in facts.cached if c.repo == repo), None)


def _readiness(env: Environment, kernel: LockedKernel) -> tuple[str, str]:
    """(status, why): ``ready``, ``not-cached``, ``no-version``, ``no-variant``, ``modified``
    (the files differ from the digest in the variant's metadata.json)."""
    cached = _cached(env, kernel.repo)
    if cached is None:
        return "not-cached", f"{kernel.repo} is not in the cache"
    commit = kernel.commit
    if commit is None and kernel.version is not None:
        commit = dict(cached.versions).get(f"v{kernel.version}")
        if commit is None:
            return "no-version", f"the cache has no v{kernel.version} of {kernel.repo}"
    variants = [v for c, v in cached.variants if commit is None or c == commit]
    if commit is not None and not variants:
        return "no-version", f"the cache has no snapshot {commit[:12]} of {kernel.repo}"
    fitting = [v for v in variants if (p := parse_variant(v)) is not None and variant_fits(p, env)]
    if not fitting:
        return "no-variant", (
            f"the cached {kernel.repo} has {', '.join(variants[:4]) or 'no build'}; this machine "
            f"needs {wanted_variant(env)}"
        )
    result = next((r for c, v, r in cached.digests if v == fitting[0] and c == commit), None)
    where = f" at the locked commit {kernel.commit[:12]}" if kernel.commit else ""
    if result is not None and result.startswith("mismatch"):
        return "modified", (
            f"the cached variant {fitting[0]}{where} does not match the digest in its "
            f"metadata.json ({result.removeprefix('mismatch: ')}): kernels refuses to load it"
        )
    return "ready", f"cached with the variant {fitting[0]}{where}" + _digest_text(result)


def _digest_text(result: str | None) -> str:
    """The offline digest check of a ready variant, in words."""
    if result is None:
        return ""
    if result.startswith("ok "):
        _, algorithm, count, _ = result.split(" ", 3)
        return f"; its {count} files match the {algorithm} digest in its metadata.json"
    if result == "none":
        return "; its metadata.json records no digest (its files cannot be checked)"
    return f"; digest {result}"


def _offline(env: Environment) -> bool:
    return any(
        (env.env(k) or "").strip().lower() in ("1", "true", "yes", "on")
        for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_readiness_findings(ctx: Ctx) -> list[Finding]:
    env = ctx.env
    offline = _offline(env)
    out: list[Finding] = []
    facts = env.hub_kernels
    for kernel in facts.locked if facts is not None else ():
        status, why = _readiness(env, kernel)
        what = f"{kernel.repo}" + (f" v{kernel.version}" if kernel.version else "")
        ready = status == "ready"
        modified = status == "modified"
        out.append(
            ctx.finding(
                "hub-kernel-ready" if ready else "hub-kernel-not-ready",
                "info" if ready else ("error" if offline or modified else "warning"),
                f"Hub kernel {what} (locked by this project): "
                + (
                    "in the cache for this machine"
                    if ready
                    else "cached files differ from their digest"
                    if modified
                    else "not usable offline"
                ),
                why
                + (
                    "; load_kernel() never downloads, and HF_HUB_OFFLINE=1 is set"
                    if offline and not ready
                    else ""
                ),
                [evidence_of("hub_kernels.lockfile", facts.lockfile if facts else None)],
                fix=None
                if ready
                else "kernels download . (where the network is), then copy "
                "the cache (KERNELS_CACHE / HF_HUB_CACHE) here",
                sources=(
                    "huggingface/kernels 0.19.1 variants.py, locking.py (a commit per kernel), "
                    "digest.py (each variant's metadata.json digest)",
                ),
            )
        )
    for hub in load_frameworks().hub_kernels:
        version = framework_version(env, hub.framework)
        if not is_present(env, hub.framework) or satisfies(version, hub.versions) is False:
            continue
        chosen = any(
            s.framework == hub.framework and (env.env(s.variable) or "").strip() == hub.knob
            for s in load_frameworks().settings
        )
        plausible = chosen or env.package("kernels") is not None
        if _cached(env, hub.repo) is None and not (offline and plausible):
            continue  # never fetched and nothing would fetch it offline: nothing to say
        status, why = _readiness(env, LockedKernel(repo=hub.repo, version=str(hub.version)))
        ready = status == "ready"
        out.append(
            ctx.finding(
                "hub-kernel-ready" if ready else "hub-kernel-not-ready",
                "warning" if chosen and offline and not ready else "info",
                f"{hub.framework} {hub.knob} fetches {hub.repo} v{hub.version}: "
                + ("ready offline" if ready else "not in the cache for this machine"),
                f"{why}. Trust: {hub.trust}.",
                [evidence_of(f"packages.{hub.framework}", version)],
                fix=None
                if ready
                else f"kernels download {hub.repo} (version {hub.version}) where the network "
                "is, with this torch and CUDA",
                sources=(hub.source,),
            )
        )
    return out
