"""AMD GPUs (ROCm) from the amdgpu KFD topology in sysfs, the ROCm version, and Apple GPUs.

The KFD topology (``/sys/class/kfd/kfd/topology/nodes/N/properties``) lists one node per CPU
socket and per GPU; GPU nodes have a non-zero ``gfx_target_version`` (``90402`` = gfx942,
MI300). It is readable without ROCm installed and without loading any library.

Pure parsers: ``parse_kfd_properties``, ``gfx_from_target_version``, ``parse_rocm_version``.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Mapping
from pathlib import Path

from attn_doctor.facts import GpuFacts, Unknown
from attn_doctor.probe.runner import read_text, run_tool, unknown, which

KFD_NODES = Path("/sys/class/kfd/kfd/topology/nodes")


def parse_kfd_properties(text: str) -> dict[str, int]:
    """``key value`` lines of a KFD node's ``properties`` file (integer values only)."""
    result: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            result[parts[0]] = int(parts[1])
    return result


def gfx_from_target_version(value: int) -> str | None:
    """KFD ``gfx_target_version`` as the LLVM target name.

    The number is ``major*10000 + minor*100 + stepping`` and the name spells minor and
    stepping in hex: ``90402`` -> ``gfx942``, ``90010`` -> ``gfx90a``, ``110000`` -> ``gfx1100``.
    """
    if value <= 0:
        return None
    major, rest = divmod(value, 10000)
    minor, stepping = divmod(rest, 100)
    return f"gfx{major}{minor:x}{stepping:x}"


def parse_rocm_version(text: str) -> str | None:
    """``6.3.1`` from ``/opt/rocm/.info/version`` (``6.3.1-48``)."""
    m = re.match(r"\s*(\d+\.\d+(?:\.\d+)?)", text)
    return m.group(1) if m else None


def _bank_bytes(node: Path) -> int | None:
    total = 0
    for props in sorted(node.glob("mem_banks/*/properties")):
        text = read_text(props)
        if text is None:
            continue
        values = parse_kfd_properties(text)
        # heap_type 1 and 2 are the GPU's public and private frame buffer (kfd_topology.h).
        if values.get("heap_type") in (1, 2):
            total += values.get("size_in_bytes", 0)
    return total or None


def probe_amd_gpus(root: Path = KFD_NODES) -> tuple[tuple[GpuFacts, ...], list[Unknown]]:
    """AMD GPUs from the KFD topology. An absent topology is no AMD GPU, not an unknown."""
    if not root.is_dir():
        return (), []
    gpus: list[GpuFacts] = []
    unknowns: list[Unknown] = []

    def node_key(p: Path) -> int:
        return int(p.name) if p.name.isdigit() else 1 << 30

    for node in sorted(root.iterdir(), key=node_key):
        text = read_text(node / "properties")
        if text is None:
            continue
        props = parse_kfd_properties(text)
        if props.get("simd_count", 0) == 0:
            continue  # a CPU node
        gfx = gfx_from_target_version(props.get("gfx_target_version", 0))
        if gfx is None:  # older kernels have no gfx_target_version; the name file has it
            name_text = (read_text(node / "name") or "").strip()
            gfx = name_text if name_text.startswith("gfx") else None
        index = len(gpus)
        if gfx is None:
            unknowns.append(unknown(f"gpus[amd {index}].gfx_arch", f"{node}: no gfx target"))
        gpus.append(
            GpuFacts(
                index=index,
                vendor="amd",
                name=f"AMD {gfx}" if gfx else "AMD GPU",
                gfx_arch=gfx,
                memory_total_bytes=_bank_bytes(node),
                source="sysfs",
            )
        )
    return tuple(gpus), unknowns


def probe_rocm_version(environ: Mapping[str, str]) -> str | None:
    """The ROCm release installed under ``ROCM_PATH`` (default ``/opt/rocm``), if any."""
    base = Path(environ.get("ROCM_PATH") or "/opt/rocm")
    text = read_text(base / ".info" / "version")
    return parse_rocm_version(text) if text else None


def probe_apple_gpu(*, system: str, machine: str, timeout: float) -> GpuFacts | None:
    """The integrated GPU of an Apple-silicon Mac (the MPS device), named after the chip."""
    if system != "Darwin" or machine != "arm64":
        return None
    name = "Apple silicon GPU"
    sysctl = which("sysctl", {"PATH": "/usr/sbin:/sbin:/usr/bin"})
    if sysctl is not None:
        res = run_tool([sysctl, "-n", "machdep.cpu.brand_string"], timeout=timeout)
        if not isinstance(res, str) and res.returncode == 0 and res.stdout.strip():
            name = res.stdout.strip()  # "Apple M2 Pro"
    return GpuFacts(index=0, vendor="apple", name=name, source="platform")


def probe_amd_and_apple(
    environ: Mapping[str, str], *, timeout: float
) -> tuple[tuple[GpuFacts, ...], str | None, list[Unknown]]:
    """(AMD or Apple GPUs, ROCm version, unknowns)."""
    gpus, unknowns = probe_amd_gpus()
    apple = probe_apple_gpu(system=platform.system(), machine=platform.machine(), timeout=timeout)
    if apple is not None:
        gpus = (*gpus, apple)
    return gpus, probe_rocm_version(environ), unknowns
