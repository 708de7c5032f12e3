"""The NVIDIA driver and GPUs: NVML first, then ``nvidia-smi``, then the kernel module files.

- NVML (``pynvml`` from nvidia-ml-py) loads the driver's ``libnvidia-ml`` in this process; it
  is what ``nvidia-smi`` itself uses and answers in milliseconds.
- ``nvidia-smi`` is the fallback when NVML cannot be loaded from Python (a distribution
  without nvidia-ml-py's search path, a container with only the binary mounted).
- ``/sys/module/nvidia/version`` and ``/proc/driver/nvidia/version`` give the kernel driver's
  version at no cost (uv reads the same files), but no GPU list and no CUDA version.

The GPU list is every GPU the driver sees. ``CUDA_VISIBLE_DEVICES`` is recorded as an
environment variable and deliberately *not* applied here: NVML ignores it, and whether a
backend sees a GPU is the diagnosis' question, not the probe's.

Pure parsers: ``parse_smi_csv``, ``parse_smi_header``, ``parse_proc_driver_version``,
``format_cuda_driver_version``. Readers: ``probe_nvml`` (takes the ``pynvml`` module as a
parameter so tests can pass a fake one), ``probe_nvidia_smi``, ``probe_nvidia``.
"""

from __future__ import annotations

import contextlib
import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from attn_doctor.facts import DriverFacts, GpuFacts, Unknown
from attn_doctor.probe.runner import Completed, read_text, run_tool, unknown, which

MIB = 1024 * 1024

SMI_FIELDS: tuple[str, ...] = (
    "index",
    "name",
    "compute_cap",
    "memory.total",
    "uuid",
    "pci.bus_id",
    "driver_version",
)
"""``nvidia-smi --query-gpu`` fields. ``compute_cap`` exists from driver ~510 on; older
nvidia-smi answers ``Field "compute_cap" is not a valid field to query.`` (exit 2), and the
query is retried without it."""


def format_cuda_driver_version(value: int) -> str | None:
    """NVML's integer CUDA driver version (``12080``) as ``major.minor`` (``12.8``)."""
    if value <= 0:
        return None
    return f"{value // 1000}.{(value % 1000) // 10}"


def _text(value: object) -> str:
    # pynvml returned bytes before nvidia-ml-py 11.515 and str after; accept both.
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _smi_value(raw: str) -> str | None:
    value = raw.strip()
    if not value or (value.startswith("[") and value.endswith("]")) or value in {"N/A", "n/a"}:
        return None  # "[N/A]", "[Not Supported]", "[Field not supported]", "[Unknown Error]"
    return value


def parse_smi_csv(
    text: str, fields: Sequence[str] = SMI_FIELDS
) -> tuple[tuple[GpuFacts, ...], str | None]:
    """GPUs and the driver version from ``--query-gpu=<fields> --format=csv,noheader,nounits``.

    Memory is in MiB (``nounits``). Lines that do not have one value per field are skipped.
    """
    gpus: list[GpuFacts] = []
    driver: str | None = None
    for row in csv.reader(text.splitlines(), skipinitialspace=True):
        if len(row) != len(fields):
            continue
        values = dict(zip(fields, (_smi_value(v) for v in row), strict=True))
        index_s, name = values.get("index"), values.get("name")
        if index_s is None or not index_s.isdigit() or name is None:
            continue
        mem = values.get("memory.total")
        cc = values.get("compute_cap")
        gpus.append(
            GpuFacts(
                index=int(index_s),
                vendor="nvidia",
                name=name,
                compute_capability=cc if cc and re.fullmatch(r"\d+\.\d+", cc) else None,
                memory_total_bytes=int(float(mem)) * MIB if mem and _is_number(mem) else None,
                uuid=values.get("uuid"),
                pci_bus_id=values.get("pci.bus_id"),
                source="nvidia-smi",
            )
        )
        driver = driver or values.get("driver_version")
    return tuple(gpus), driver


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_HEADER_DRIVER = re.compile(r"(?<!CUDA )(?:Driver|KMD) Version\s*:\s*(\d+(?:\.\d+)+)")
_HEADER_SMI = re.compile(r"NVIDIA-SMI\s+(\d+(?:\.\d+)+)")
# "CUDA Version: 12.8" (the banner up to R580, and `nvidia-smi -q`), "CUDA UMD Version: 13.3"
# (the banner from R610 on, NVIDIA's nvidia-smi docs: "deprecated Driver Version and CUDA
# Version in favor of KMD Version and CUDA UMD Version").
_HEADER_CUDA = re.compile(r"CUDA (?:UMD |Driver )?Version\s*:\s*(\d+\.\d+)")


def parse_smi_header(text: str) -> tuple[str | None, str | None]:
    """(driver version, highest CUDA version) from plain ``nvidia-smi`` or ``nvidia-smi -q``."""
    m = _HEADER_DRIVER.search(text) or _HEADER_SMI.search(text)
    driver = m.group(1) if m else None
    c = _HEADER_CUDA.search(text)
    return driver, c.group(1) if c else None


_PROC_VERSION = re.compile(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+\.\d+(?:\.\d+)?)")


def parse_proc_driver_version(text: str) -> str | None:
    """``550.54.14`` from ``/proc/driver/nvidia/version``.

    Proprietary: ``NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 …``;
    open modules: ``NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.133.20 …``.
    """
    m = _PROC_VERSION.search(text)
    return m.group(1) if m else None


def parse_sys_module_version(text: str) -> str | None:
    """``/sys/module/nvidia/version`` holds the bare version, e.g. ``580.65.06``."""
    value = text.strip()
    return value if re.fullmatch(r"\d+(?:\.\d+)+", value) else None


PCI_DEVICES = Path("/sys/bus/pci/devices")
NVIDIA_PCI_VENDOR = "0x10de"
GPU_PCI_CLASSES = ("0x0300", "0x0302")
"""PCI class codes of a VGA-compatible controller and a 3D controller (data-centre GPUs)."""


def nvml_bus_id(sysfs_name: str) -> str:
    """``0000:2a:00.0`` (a sysfs device name) in NVML's spelling, ``00000000:2A:00.0``."""
    domain, _, rest = sysfs_name.partition(":")
    return f"{domain.zfill(8)}:{rest}".upper() if rest else sysfs_name.upper()


def probe_pci_nvidia(root: Path = PCI_DEVICES) -> tuple[GpuFacts, ...]:
    """NVIDIA GPUs on the PCI bus, whatever the driver's state (Linux sysfs, no driver needed).

    They are reported only when no driver answers, so that "a GPU is there but no driver is
    loaded" can be told apart from "no GPU". The name is the PCI ID (``NVIDIA PCI device
    10de:2330``): without the driver there is no product name or compute capability. Inside a
    container started without GPU access the host's PCI devices may still be listed.
    """
    try:
        devices = sorted(root.iterdir())
    except OSError:
        return ()
    gpus: list[GpuFacts] = []
    for dev in devices:
        vendor = (read_text(dev / "vendor") or "").strip().lower()
        pci_class = (read_text(dev / "class") or "").strip().lower()
        if vendor != NVIDIA_PCI_VENDOR or not pci_class.startswith(GPU_PCI_CLASSES):
            continue
        device = (read_text(dev / "device") or "").strip().lower().removeprefix("0x")
        gpus.append(
            GpuFacts(
                index=len(gpus),
                vendor="nvidia",
                name=f"NVIDIA PCI device 10de:{device or '?'}",
                pci_bus_id=nvml_bus_id(dev.name),
                source="sysfs",
            )
        )
    return tuple(gpus)


@dataclass(frozen=True, kw_only=True)
class NvidiaFacts:
    driver: DriverFacts
    gpus: tuple[GpuFacts, ...]
    unknowns: tuple[Unknown, ...] = ()


def _nvml_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"NVML: {text}"


def _no_nvidia_device_nodes(root: Path = Path("/")) -> str | None:
    """On Linux, the reason NVML cannot work when no NVIDIA driver is visible; else None."""
    if not (root / "proc").is_dir() or not (root / "dev").is_dir():
        return None  # not Linux-like: let NVML decide (Windows, macOS)
    markers = ("proc/driver/nvidia", "dev/nvidiactl", "dev/nvidia0", "dev/dxg")
    if any((root / m).exists() for m in markers):
        return None
    return (
        "NVML: no NVIDIA kernel module or device node (/proc/driver/nvidia, /dev/nvidia*, /dev/dxg)"
    )


def probe_nvml(nvml: ModuleType | Any | None = None) -> NvidiaFacts | str:
    """Driver and GPUs through NVML; the reason as a string when NVML cannot be used.

    ``nvml`` is the ``pynvml`` module (imported here when omitted); tests pass a fake object
    with the same functions, since the machine running them has no GPU.
    """
    if nvml is None:
        absent = _no_nvidia_device_nodes()
        if absent is not None:
            # Importing pynvml costs more than the rest of the probe together; without a
            # loaded kernel module (or WSL's GPU bridge) NVML could only fail anyway.
            return absent
        try:
            import pynvml as nvml_module
        except Exception as exc:
            return f"pynvml (nvidia-ml-py) cannot be imported: {exc}"
        nvml = nvml_module
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, _DriverNotLoaded, _LibRmVersionMismatch
        return _nvml_error(exc)
    unknowns: list[Unknown] = []
    try:
        driver_version: str | None = _text(nvml.nvmlSystemGetDriverVersion())
    except Exception as exc:
        driver_version = None
        unknowns.append(unknown("driver.version", _nvml_error(exc)))
    cuda: str | None = None
    getter = getattr(nvml, "nvmlSystemGetCudaDriverVersion_v2", None) or getattr(
        nvml, "nvmlSystemGetCudaDriverVersion", None
    )
    if getter is None:
        unknowns.append(unknown("driver.cuda_version", "this pynvml has no CUDA version call"))
    else:
        try:
            cuda = format_cuda_driver_version(int(getter()))
        except Exception as exc:
            unknowns.append(unknown("driver.cuda_version", _nvml_error(exc)))
    gpus: list[GpuFacts] = []
    try:
        count = int(nvml.nvmlDeviceGetCount())
    except Exception as exc:
        count = 0
        unknowns.append(unknown("gpus", _nvml_error(exc)))
    for i in range(count):
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            name = _text(nvml.nvmlDeviceGetName(handle))
        except Exception as exc:
            unknowns.append(unknown(f"gpus[{i}]", _nvml_error(exc)))
            continue
        cc: str | None = None
        try:
            major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
            cc = f"{int(major)}.{int(minor)}"
        except Exception as exc:
            unknowns.append(unknown(f"gpus[{i}].compute_capability", _nvml_error(exc)))
        mem: int | None = None
        try:
            mem = int(nvml.nvmlDeviceGetMemoryInfo(handle).total)
        except Exception as exc:
            unknowns.append(unknown(f"gpus[{i}].memory_total_bytes", _nvml_error(exc)))
        uuid: str | None = None
        try:
            uuid = _text(nvml.nvmlDeviceGetUUID(handle))
        except Exception as exc:
            unknowns.append(unknown(f"gpus[{i}].uuid", _nvml_error(exc)))
        bus: str | None = None
        try:
            info = nvml.nvmlDeviceGetPciInfo(handle)
            bus = _text(getattr(info, "busId", None) or getattr(info, "busIdLegacy", ""))
        except Exception as exc:
            unknowns.append(unknown(f"gpus[{i}].pci_bus_id", _nvml_error(exc)))
        gpus.append(
            GpuFacts(
                index=i,
                vendor="nvidia",
                name=name,
                compute_capability=cc,
                memory_total_bytes=mem,
                uuid=uuid or None,
                pci_bus_id=bus or None,
                source="nvml",
            )
        )
    # Shutting NVML down can only fail if init did; there is nothing to report.
    with contextlib.suppress(Exception):
        nvml.nvmlShutdown()
    driver = DriverFacts(version=driver_version, cuda_version=cuda, source="nvml")
    return NvidiaFacts(driver=driver, gpus=tuple(gpus), unknowns=tuple(unknowns))


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return "no output"


def probe_nvidia_smi(environ: Mapping[str, str], *, timeout: float) -> NvidiaFacts | str:
    """Driver and GPUs from ``nvidia-smi``; the reason as a string when it fails."""
    smi = which("nvidia-smi", environ)
    if smi is None:
        return "nvidia-smi is not on PATH"
    fields: tuple[str, ...] = SMI_FIELDS
    res = run_tool(
        [smi, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
        timeout=timeout,
        environ=environ,
    )
    if isinstance(res, Completed) and res.returncode != 0 and "not a valid field" in res.output:
        fields = tuple(f for f in SMI_FIELDS if f != "compute_cap")
        res = run_tool(
            [smi, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
            timeout=timeout,
            environ=environ,
        )
    if isinstance(res, str):
        return res
    if res.returncode != 0:
        return f"nvidia-smi failed (exit {res.returncode}): {_first_line(res.output)}"
    gpus, csv_driver = parse_smi_csv(res.stdout, fields)
    unknowns: list[Unknown] = []
    if "compute_cap" not in fields:
        for gpu in gpus:
            unknowns.append(
                unknown(
                    f"gpus[{gpu.index}].compute_capability",
                    "this nvidia-smi is too old to report compute_cap and NVML is unavailable",
                )
            )
    header = run_tool([smi], timeout=timeout, environ=environ)
    header_driver: str | None = None
    cuda: str | None = None
    if isinstance(header, str):
        unknowns.append(unknown("driver.cuda_version", header))
    else:
        header_driver, cuda = parse_smi_header(header.stdout)
        if cuda is None:
            unknowns.append(
                unknown("driver.cuda_version", "no CUDA version in the nvidia-smi banner")
            )
    driver = DriverFacts(
        version=csv_driver or header_driver, cuda_version=cuda, source="nvidia-smi"
    )
    return NvidiaFacts(driver=driver, gpus=gpus, unknowns=tuple(unknowns))


def read_driver_files() -> tuple[str, Literal["sysfs", "procfs"]] | str:
    """The kernel module's version from sysfs or procfs (Linux), or why not."""
    text = read_text("/sys/module/nvidia/version")
    if text is not None and (version := parse_sys_module_version(text)):
        return version, "sysfs"
    text = read_text("/proc/driver/nvidia/version")
    if text is not None and (version := parse_proc_driver_version(text)):
        return version, "procfs"
    return (
        "no NVIDIA kernel module "
        "(/sys/module/nvidia/version and /proc/driver/nvidia/version absent)"
    )


def probe_nvidia(
    environ: Mapping[str, str],
    *,
    timeout: float,
    nvml: ModuleType | Any | None = None,
    pci_root: Path = PCI_DEVICES,
) -> NvidiaFacts:
    """NVML, else nvidia-smi, else the kernel module files (and the PCI bus for GPUs without
    a working driver); unknowns carry every reason."""
    nvml_result = probe_nvml(nvml)
    if isinstance(nvml_result, NvidiaFacts):
        return nvml_result
    smi_result = probe_nvidia_smi(environ, timeout=timeout)
    if isinstance(smi_result, NvidiaFacts):
        extra = unknown("gpus", f"read with nvidia-smi because {nvml_result}")
        return NvidiaFacts(
            driver=smi_result.driver,
            gpus=smi_result.gpus,
            unknowns=(*smi_result.unknowns, extra),
        )
    files = read_driver_files()
    reasons = f"{nvml_result}; {smi_result}"
    pci = probe_pci_nvidia(pci_root)
    pci_unknowns: tuple[Unknown, ...] = ()
    if pci:
        pci_unknowns = (
            unknown(
                "gpus",
                f"{len(pci)} NVIDIA GPU(s) on the PCI bus but no driver answers: {reasons}",
            ),
        )
    if isinstance(files, tuple):
        version, source = files
        return NvidiaFacts(
            driver=DriverFacts(version=version, source=source),
            gpus=pci,
            unknowns=(
                unknown("driver.cuda_version", reasons),
                *(
                    pci_unknowns
                    or (unknown("gpus", f"the NVIDIA kernel module is loaded but {reasons}"),)
                ),
            ),
        )
    return NvidiaFacts(
        driver=DriverFacts(),
        gpus=pci,
        unknowns=(
            unknown("driver.version", f"no NVIDIA driver found: {reasons}; {files}"),
            *pci_unknowns,
        ),
    )
