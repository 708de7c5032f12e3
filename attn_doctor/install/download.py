"""Fetch the wheels another machine needs, from its snapshot (for air-gapped installs).

``pip download --no-deps --only-binary=:all:`` with the target's Python version, ABI and
platform tags taken from the snapshot, so that pip picks the files that machine would pick.
Dependencies are then followed one level at a time, also with ``--no-deps``: each wheel's
``Requires-Dist`` is evaluated against the target's environment markers, and requirements
that the target already satisfies (its torch, the packages in its snapshot) or that must never
change (torch, torchvision, torchaudio, triton) are skipped. The destination directory is
then a ``--wheelhouse`` for ``attn-doctor install`` on the target.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from attn_doctor.errors import UsageError
from attn_doctor.facts import Environment
from attn_doctor.install.pip import PROTECTED_DISTRIBUTIONS, canonical_name, run_pip

MAX_DEPTH = 5

_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}


@dataclass(frozen=True, kw_only=True)
class DownloadReport:
    """What ``download_for_snapshot`` fetched and what it skipped, with reasons."""

    dest: str
    files: tuple[str, ...]
    skipped: tuple[str, ...]
    commands: tuple[str, ...]
    notes: tuple[str, ...] = ()
    """What the completeness check added or found missing (nvidia-cutlass-dsl's parts)."""


def _arch(env: Environment) -> str:
    arch = (env.host.arch or "").lower()
    if not arch:
        raise UsageError("the snapshot does not record the CPU architecture")
    return _ARCH_ALIASES.get(arch, arch) if env.host.os != "darwin" else arch


def platform_tags(env: Environment) -> tuple[str, ...]:
    """The wheel platform tags the snapshot's machine accepts, most specific first (pure)."""
    arch = _arch(env)
    match env.host.os:
        case "linux":
            tags: list[str] = []
            version = env.host.libc_version or ""
            major, _, minor = version.partition(".")
            if env.host.libc == "musl":
                if major == "1" and minor.isdigit():
                    tags += [f"musllinux_1_{m}_{arch}" for m in range(int(minor), 0, -1)]
            elif major == "2" and minor.isdigit():
                tags += [f"manylinux_2_{m}_{arch}" for m in range(int(minor), 16, -1)]
                tags.append(f"manylinux2014_{arch}")
            else:
                raise UsageError("the snapshot does not record the glibc version")
            # Upstream flash-attn release wheels carry the bare linux tag.
            tags.append(f"linux_{arch}")
            return tuple(tags)
        case "windows":
            return ("win_arm64",) if arch == "aarch64" else ("win_amd64",)
        case _:
            raise UsageError(
                f"download for a {env.host.os} machine is not supported",
                hint="CUDA attention wheels exist for Linux and Windows only.",
            )


def python_tag_args(env: Environment) -> list[str]:
    """``--python-version``/``--implementation``/``--abi`` for the snapshot's Python (pure)."""
    parts = env.python.version.split(".")
    if len(parts) < 2:
        raise UsageError(f"the snapshot's Python version {env.python.version!r} is incomplete")
    impl = env.python.implementation.lower()
    short = {"cpython": "cp", "pypy": "pp"}.get(impl)
    if short is None:
        raise UsageError(f"download for a {env.python.implementation} interpreter is not supported")
    abi = env.python.abi_tag or f"{short}{parts[0]}{parts[1]}"
    return [
        "--python-version",
        f"{parts[0]}.{parts[1]}",
        "--implementation",
        short,
        "--abi",
        abi,
        "--abi",
        "abi3",
        "--abi",
        "none",
    ]


def download_args(env: Environment, dest: Path) -> list[str]:
    """pip download's target arguments for the snapshot's machine (pure)."""
    args = ["download", "--no-deps", "--only-binary=:all:", "--dest", str(dest)]
    args += python_tag_args(env)
    for tag in platform_tags(env):
        args += ["--platform", tag]
    return args


def marker_environment(env: Environment) -> dict[str, str]:
    """PEP 508 marker values for the snapshot's machine (pure)."""
    parts = env.python.version.split(".")
    sys_platform = {"linux": "linux", "windows": "win32", "darwin": "darwin"}.get(env.host.os, "")
    machine = _arch(env)
    if env.host.os == "windows":
        machine = "ARM64" if machine == "aarch64" else "AMD64"
    impl = env.python.implementation.lower()
    return {
        "python_version": ".".join(parts[:2]),
        "python_full_version": env.python.version,
        "implementation_name": impl,
        "platform_python_implementation": {"cpython": "CPython", "pypy": "PyPy"}.get(impl, impl),
        "sys_platform": sys_platform,
        "platform_system": {"linux": "Linux", "windows": "Windows", "darwin": "Darwin"}.get(
            env.host.os, ""
        ),
        "os_name": "nt" if env.host.os == "windows" else "posix",
        "platform_machine": machine,
        "platform_release": env.host.os_release or "",
        "platform_version": env.host.os_version or "",
        "implementation_version": env.python.version,
        "extra": "",
    }


def installed_on_target(env: Environment) -> dict[str, str]:
    """What the snapshot says is installed (canonical name -> version)."""
    out = {canonical_name(p.name): p.version for p in env.packages}
    if env.torch is not None:
        out["torch"] = env.torch.version
    return out


def wheel_requirements(wheel: Path) -> tuple[str, ...]:
    """The ``Requires-Dist`` lines of a wheel file."""
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        if not names:
            return ()
        text = zf.read(names[0]).decode("utf-8", errors="replace")
    return tuple(Parser().parsestr(text).get_all("Requires-Dist") or ())


def needed_requirements(
    lines: Sequence[str],
    *,
    markers: Mapping[str, str],
    installed: Mapping[str, str],
    extras: Sequence[str] = (),
) -> tuple[list[str], list[str]]:
    """Split ``Requires-Dist`` lines into (to download, skipped with reason) (pure).

    ``extras`` are the extras the wheel was asked for (``flash-attn-4[cu13]``): a line whose
    marker holds for one of them is needed too, and keeps its own extras for the next level.
    """
    from packaging.requirements import Requirement

    fetch: list[str] = []
    skipped: list[str] = []
    for line in lines:
        req = Requirement(line)
        name = canonical_name(req.name)
        if req.marker is not None and not any(
            req.marker.evaluate({**markers, "extra": extra}) for extra in ("", *extras)
        ):
            continue
        if name in PROTECTED_DISTRIBUTIONS:
            skipped.append(f"{line}: protected, the target keeps its own")
            continue
        have = installed.get(name)
        if have is not None and req.specifier.contains(have, prereleases=True):
            skipped.append(f"{line}: the target has {name} {have}")
            continue
        req.marker = None
        fetch.append(str(req))
    return fetch, skipped


def download_for_snapshot(
    env: Environment,
    requirement: str,
    dest: Path,
    *,
    index_args: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    log: Path | None = None,
) -> DownloadReport:
    """Download ``requirement`` and the dependencies the target lacks into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    base = download_args(env, dest)
    markers = marker_environment(env)
    installed = installed_on_target(env)
    seen: set[str] = set()
    skipped: list[str] = []
    commands: list[str] = []
    queue = [requirement]
    for _ in range(MAX_DEPTH):
        if not queue:
            break
        res = run_pip([*base, *index_args, *queue], python=_python(), env=environ, log=log)
        commands.append(res.command)
        wanted: dict[str, set[str]] = {}
        for q in queue:
            wanted.setdefault(canonical_name(_req_name(q)), set()).update(_req_extras(q))
        seen |= set(wanted)
        queue = []
        for wheel in sorted(w for w in dest.glob("*.whl") if _wheel_name(w) in wanted):
            fetch, skip = needed_requirements(
                wheel_requirements(wheel),
                markers=markers,
                installed=installed,
                extras=sorted(wanted[_wheel_name(wheel)]),
            )
            skipped += skip
            queue += [r for r in fetch if canonical_name(_req_name(r)) not in seen]
        queue = sorted(set(queue))
    missing, notes = missing_runtime_parts(env, dest, installed)
    if missing:
        res = run_pip([*base, *index_args, *missing], python=_python(), env=environ, log=log)
        commands.append(res.command)
        notes.append("added to complete nvidia-cutlass-dsl: " + ", ".join(missing))
    return DownloadReport(
        dest=str(dest),
        files=tuple(sorted(p.name for p in dest.glob("*.whl"))),
        skipped=tuple(sorted(set(skipped))),
        commands=tuple(commands),
        notes=tuple(notes),
    )


def missing_runtime_parts(
    env: Environment, dest: Path, installed: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    """Pinned requirements for the parts of nvidia-cutlass-dsl (flash-attn-4's runtime) that
    neither ``dest`` nor the target holds, per flash_attn_3_4.toml [[cutlass_dsl]]; and notes.

    A wheelhouse with nvidia-cutlass-dsl but without, say, nvidia-cutlass-dsl-libs-core
    installs a ``cutlass`` without ``cutlass.cute`` (seen on an H200).
    """
    from attn_doctor.index import load_index

    have = {_wheel_name(w): w.name.split("-")[1] for w in dest.glob("*.whl")}
    version = have.get("nvidia-cutlass-dsl")
    if version is None:
        return [], []
    cuda = env.torch.cuda if env.torch is not None else None
    major = int(cuda.split(".")[0]) if cuda and cuda.split(".")[0].isdigit() else None
    parts = load_index().cutlass_dsl_distributions(version, major)
    if not parts:
        return [], [f"nvidia-cutlass-dsl {version}: the index does not know its parts"]
    missing = [
        f"{name}=={version}"
        for name in parts
        if name not in have and installed.get(name) != version
    ]
    return missing, []


def _python() -> str:
    import sys

    return sys.executable


def _req_name(requirement: str) -> str:
    from packaging.requirements import Requirement

    return Requirement(requirement).name


def _req_extras(requirement: str) -> set[str]:
    from packaging.requirements import Requirement

    return set(Requirement(requirement).extras)


def _wheel_name(path: Path) -> str:
    return canonical_name(path.name.split("-")[0])
