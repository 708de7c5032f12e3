"""Operating system, Linux distribution, C library, WSL, CPU architecture, CPU count, RAM,
container.

Pure parsers (``parse_os_release``, ``parse_wsl``, ``parse_ldd_version``,
``parse_cgroup_container``, ``normalise_arch``) take recorded text; ``probe_host`` reads the
machine. Nothing here raises.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from attn_doctor.facts import HostFacts, OsName, Unknown
from attn_doctor.probe.runner import read_text, run_tool, unknown, which


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` lines of os-release(5), with shell quoting removed. Bad lines are skipped."""
    result: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            parts = shlex.split(value)
        except ValueError:
            parts = [value.strip("\"'")]
        result[key.strip()] = parts[0] if parts else ""
    return result


def parse_wsl(proc_version: str | None, kernel_osrelease: str | None) -> int | None:
    """0 (not WSL), 1 or 2 from ``/proc/version`` and ``/proc/sys/kernel/osrelease``.

    WSL 2 kernels are Microsoft-built Linux kernels named ``…-microsoft-standard-WSL2``
    (older ones ``4.19.…-microsoft-standard``); WSL 1 has no Linux kernel at all and reports
    a fake one, ``4.4.0-19041-Microsoft``. None when neither file could be read.
    """
    if proc_version is None and kernel_osrelease is None:
        return None
    text = f"{kernel_osrelease or ''}\n{proc_version or ''}"
    lower = text.lower()
    if "microsoft" not in lower and "wsl" not in lower:
        return 0
    if "wsl2" in lower or "microsoft-standard" in lower:
        return 2
    return 1


_GLIBC_LDD = re.compile(r"^ldd \(.*\)\s+(\d+\.\d+)", re.MULTILINE)
_MUSL_LDD = re.compile(r"^Version\s+(\d+\.\d+(?:\.\d+)?)", re.MULTILINE)


LibcName = Literal["glibc", "musl"]


def parse_ldd_version(output: str) -> tuple[LibcName, str] | None:
    """(``glibc``|``musl``, version) from ``ldd --version`` output (musl prints to stderr)."""
    if "musl" in output:
        m = _MUSL_LDD.search(output)
        return ("musl", m.group(1)) if m else None
    m = _GLIBC_LDD.search(output)
    if m:
        return ("glibc", m.group(1))
    return None


_CONTAINER_CGROUP = re.compile(r"docker|kubepods|containerd|libpod|/lxc/|crio-|/ecs/")


def parse_cgroup_container(text: str) -> bool:
    """True when ``/proc/1/cgroup`` names a container runtime (cgroup v1; v2 shows ``0::/``)."""
    return bool(_CONTAINER_CGROUP.search(text))


def normalise_arch(machine: str, system: str) -> str | None:
    """The architecture as wheel platform tags spell it.

    Linux: ``x86_64``, ``aarch64``, ``ppc64le``, ``s390x``; macOS: ``x86_64``, ``arm64``;
    Windows: ``x86_64`` (``AMD64``) and ``arm64`` (``ARM64``). None for an empty machine string.
    """
    m = machine.strip().lower()
    if not m:
        return None
    if m in {"amd64", "x86_64", "x64", "em64t"}:
        return "x86_64"
    if m in {"aarch64", "arm64", "armv8", "armv8l"}:
        return "aarch64" if system == "linux" else "arm64"
    if m in {"i386", "i486", "i586", "i686", "x86"}:
        return "i686"
    return m


def os_name(platform_system: str) -> OsName:
    match platform_system.lower():
        case "linux":
            return "linux"
        case "windows":
            return "windows"
        case "darwin":
            return "darwin"
        case _:
            return "other"


def _cpu_count() -> int | None:
    # Affinity-aware: a job scheduler or `taskset` may give this process fewer CPUs than the
    # machine has, and MAX_JOBS must not count CPUs we cannot use.
    process_cpu_count = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if process_cpu_count is not None:
        count = process_cpu_count()
        return count if isinstance(count, int) else None
    if hasattr(os, "sched_getaffinity"):
        try:
            return len(os.sched_getaffinity(0))
        except OSError:
            pass
    return os.cpu_count()


def _libc(unknowns: list[Unknown]) -> tuple[LibcName | None, str | None]:
    try:
        name, ver = os.confstr("CS_GNU_LIBC_VERSION").split()  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        pass
    else:
        if name.lower() == "glibc":
            return "glibc", ver
    # musl has no confstr: ask ldd, which on musl prints its version (to stderr) and exits 1.
    ldd = which("ldd", os.environ)
    if ldd is None:
        unknowns.append(unknown("host.libc_version", "no glibc confstr and no ldd on PATH"))
        return None, None
    res = run_tool([ldd, "--version"], timeout=5)
    if isinstance(res, str):
        unknowns.append(unknown("host.libc_version", res))
        return None, None
    parsed = parse_ldd_version(res.output)
    if parsed is None:
        unknowns.append(unknown("host.libc_version", "`ldd --version` printed no version"))
        return None, None
    return parsed


def _in_container(environ: Mapping[str, str]) -> bool:
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        return True
    if environ.get("KUBERNETES_SERVICE_HOST") or environ.get("container"):
        return True
    cgroup = read_text("/proc/1/cgroup")
    return bool(cgroup and parse_cgroup_container(cgroup))


def parse_meminfo(text: str) -> tuple[int | None, int | None]:
    """``MemTotal`` and ``MemAvailable`` from /proc/meminfo, in bytes."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if key in ("MemTotal", "MemAvailable") and parts and parts[0].isdigit():
            scale = 1024 if len(parts) > 1 and parts[1].lower() == "kb" else 1
            values[key] = int(parts[0]) * scale
    return values.get("MemTotal"), values.get("MemAvailable")


def probe_host(environ: Mapping[str, str]) -> tuple[HostFacts, list[Unknown]]:
    """Read the host facts; unknowns say what could not be read and why."""
    unknowns: list[Unknown] = []
    name = os_name(platform.system())
    distro: dict[str, str] = {}
    libc: LibcName | None = None
    libc_version: str | None = None
    wsl: int | None = None
    in_container: bool | None = None
    if name == "linux":
        text = read_text("/etc/os-release") or read_text("/usr/lib/os-release")
        if text is None:
            unknowns.append(unknown("host.distro_id", "no /etc/os-release"))
        else:
            distro = parse_os_release(text)
        libc, libc_version = _libc(unknowns)
        wsl = parse_wsl(read_text("/proc/version"), read_text("/proc/sys/kernel/osrelease"))
        if wsl is None:
            unknowns.append(unknown("host.wsl", "/proc/version is not readable"))
        in_container = _in_container(environ)
    else:
        wsl = 0
        in_container = False if name == "windows" else None
    arch = normalise_arch(platform.machine(), name)
    if arch is None:
        unknowns.append(unknown("host.arch", "platform.machine() is empty"))
    cpu_count = _cpu_count()
    if cpu_count is None:
        unknowns.append(unknown("host.cpu_count", "os.cpu_count() returned None"))
    ram_total: int | None = None
    ram_available: int | None = None
    meminfo = read_text(Path("/proc/meminfo"))
    if meminfo is not None:  # Linux: a file read is much cheaper than importing psutil
        ram_total, ram_available = parse_meminfo(meminfo)
    if ram_total is None:
        try:
            import psutil

            vm = psutil.virtual_memory()
            ram_total, ram_available = int(vm.total), int(vm.available)
        except Exception as exc:  # psutil may be missing or fail on exotic systems
            unknowns.append(unknown("host.ram_total_bytes", f"psutil: {exc}"))
    facts = HostFacts(
        os=name,
        os_release=platform.release() or None,
        os_version=platform.version() or None,
        distro_id=distro.get("ID"),
        distro_version=distro.get("VERSION_ID"),
        distro_name=distro.get("PRETTY_NAME") or distro.get("NAME"),
        libc=libc,
        libc_version=libc_version,
        wsl=wsl,
        arch=arch,
        cpu_count=cpu_count,
        ram_total_bytes=ram_total,
        ram_available_bytes=ram_available,
        in_container=in_container,
    )
    return facts, unknowns
