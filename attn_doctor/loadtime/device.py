"""Which device a model will run on, and its compute capability, found cheaply.

Order of sources, cheapest and least intrusive first:

1. The caller's ``device`` argument: ``"cpu"``, ``"mps"``, ``"cuda"``, ``"cuda:1"``, an int, a
   ``torch.device``, or a ``GpuFacts`` (the facts of a GPU, e.g. from a saved snapshot: plan
   for another machine).
2. torch, when it is already imported *and* CUDA is already initialised in this process:
   asking it then costs nothing and respects ``CUDA_VISIBLE_DEVICES`` exactly.
3. NVML (``nvidia-ml-py``): no CUDA context is created, so a later ``fork`` stays safe. NVML
   numbers GPUs in PCI order while CUDA numbers them fastest first unless
   ``CUDA_DEVICE_ORDER=PCI_BUS_ID``; when the visible GPUs differ and the order is ambiguous,
   the oldest compute capability among them is used (what works on all of them).
4. On Linux with no NVIDIA driver (``/proc/driver/nvidia``, ``/sys/module/nvidia``), no ROCm
   device (``/dev/kfd``) and no WSL GPU bridge (``/dev/dxg``): the CPU, without importing torch.
5. torch, imported if need be (``torch.cuda.is_available()`` and
   ``get_device_capability()``): the caller is about to load a model with torch anyway. This
   initialises CUDA in this process.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from attn_doctor.errors import UsageError
from attn_doctor.facts import GpuFacts

TargetKind = Literal["cuda", "cpu", "mps", "rocm", "other"]


@dataclass(frozen=True, kw_only=True)
class Target:
    """The device a model will run on, as far as selection needs to know."""

    kind: TargetKind
    gpu: GpuFacts | None = None
    source: str
    """How it was found: ``argument``, ``torch``, ``nvml``, ``none``."""
    note: str | None = None
    """Anything the reader should know (ambiguity, a missing library)."""

    @property
    def sm(self) -> int | None:
        return self.gpu.sm if self.gpu is not None else None

    def describe(self) -> str:
        if self.gpu is None:
            return self.kind
        cc = self.gpu.compute_capability or "?"
        return f"{self.kind}:{self.gpu.index} ({self.gpu.name}, compute capability {cc})"


_SPEC = re.compile(r"^(?P<type>[a-z]+)(?::(?P<index>\d+))?$")


def parse_device(device: object) -> tuple[str, int | None] | GpuFacts | None:
    """Normalise the caller's ``device`` argument; ``None`` means detect."""
    if device is None:
        return None
    if isinstance(device, GpuFacts):
        return device
    if (
        isinstance(device, tuple)
        and len(device) == 2
        and isinstance(device[0], str)
        and (device[1] is None or isinstance(device[1], int))
    ):
        return (device[0], device[1])  # already parsed
    if isinstance(device, bool):
        raise UsageError(f"device={device!r} is not a device")
    if isinstance(device, int):
        return ("cuda", device)
    if type(device).__name__ == "device" and hasattr(device, "type"):  # torch.device
        index = getattr(device, "index", None)
        return (str(device.type), index if isinstance(index, int) else None)
    if isinstance(device, str):
        text = device.strip().lower()
        if text in ("", "auto"):
            return None
        match = _SPEC.match(text)
        if match:
            index = match.group("index")
            return (match.group("type"), int(index) if index is not None else None)
    raise UsageError(
        f"device={device!r} is not understood",
        hint="use 'cpu', 'cuda', 'cuda:N', 'mps', an integer GPU index, or a torch.device",
    )


def _visible_tokens(environ: Mapping[str, str]) -> list[str] | None:
    """``CUDA_VISIBLE_DEVICES`` as tokens; None when unset (all GPUs visible)."""
    raw = environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return None
    tokens = [t.strip() for t in raw.split(",")]
    visible: list[str] = []
    for token in tokens:
        # CUDA stops at the first invalid entry; "-1" and "" hide every device.
        if not token or token.startswith("-") or token.lower() == "nodevfiles":
            break
        visible.append(token)
    return visible


def _from_torch_initialised(index: int) -> Target | None:
    torch: Any = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_initialized():
            return None
        return _torch_target(torch, index)
    except Exception:
        return None


def _torch_target(torch: Any, index: int) -> Target:
    if not torch.cuda.is_available():
        if torch.backends.mps.is_available():
            return Target(kind="mps", source="torch")
        return Target(kind="cpu", source="torch", note="torch sees no CUDA device")
    count = torch.cuda.device_count()
    if index >= count:
        raise UsageError(f"device cuda:{index} does not exist here ({count} visible)")
    major, minor = torch.cuda.get_device_capability(index)
    hip = getattr(torch.version, "hip", None)
    gpu = GpuFacts(
        index=index,
        vendor="amd" if hip else "nvidia",
        name=str(torch.cuda.get_device_name(index)),
        compute_capability=None if hip else f"{major}.{minor}",
        source="platform",
    )
    return Target(kind="rocm" if hip else "cuda", gpu=gpu, source="torch")


def _nvml_gpus() -> list[GpuFacts] | None:
    """Every NVIDIA GPU NVML sees, in NVML (PCI) order; None when NVML cannot be used."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        gpus: list[GpuFacts] = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            gpus.append(
                GpuFacts(
                    index=i,
                    vendor="nvidia",
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    compute_capability=f"{major}.{minor}",
                    uuid=uuid.decode() if isinstance(uuid, bytes) else str(uuid),
                    source="nvml",
                )
            )
        return gpus
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def target_from_nvml(gpus: list[GpuFacts], index: int, environ: Mapping[str, str]) -> Target | None:
    """Pick the GPU CUDA calls ``cuda:index`` among NVML's list (pure; see module notes)."""
    tokens = _visible_tokens(environ)
    candidates = gpus
    exact_order = environ.get("CUDA_DEVICE_ORDER", "").upper() == "PCI_BUS_ID"
    if tokens is not None:
        if not tokens:
            return Target(kind="cpu", source="nvml", note="CUDA_VISIBLE_DEVICES hides every GPU")
        picked: list[GpuFacts] = []
        for token in tokens:
            if token.isdigit():
                found = [g for g in gpus if g.index == int(token)]
            else:  # GPU-<uuid> or a unique prefix; MIG-… cannot be matched here
                found = [g for g in gpus if g.uuid and g.uuid.startswith(token)]
            if len(found) != 1:
                picked = gpus
                exact_order = False
                break
            picked.append(found[0])
        candidates = picked
    if not candidates:
        return None
    if index >= len(candidates):
        raise UsageError(f"device cuda:{index} does not exist here ({len(candidates)} visible)")
    capabilities = {g.compute_capability for g in candidates}
    if len(capabilities) == 1 or exact_order:
        chosen = candidates[index]
        renumbered = GpuFacts(
            index=index,
            vendor="nvidia",
            name=chosen.name,
            compute_capability=chosen.compute_capability,
            uuid=chosen.uuid,
            source="nvml",
        )
        return Target(kind="cuda", gpu=renumbered, source="nvml")
    oldest = min(candidates, key=lambda g: g.sm or 0)
    return Target(
        kind="cuda",
        gpu=GpuFacts(
            index=index,
            vendor="nvidia",
            name=oldest.name,
            compute_capability=oldest.compute_capability,
            uuid=oldest.uuid,
            source="nvml",
        ),
        source="nvml",
        note=(
            "the visible GPUs differ and CUDA's device order is not PCI order "
            "(set CUDA_DEVICE_ORDER=PCI_BUS_ID); using the oldest one's capability"
        ),
    )


def _no_gpu_driver() -> bool:
    """Linux without an NVIDIA kernel driver, a ROCm device or WSL's GPU bridge: CPU only.

    Lets a CPU machine skip importing torch just to hear that there is no GPU.
    """
    if not sys.platform.startswith("linux"):
        return False
    signs = ("/proc/driver/nvidia", "/sys/module/nvidia", "/dev/kfd", "/dev/dxg")
    return not any(Path(p).exists() for p in signs)


def resolve_target(device: object, environ: Mapping[str, str]) -> Target:
    """The target device for ``device`` (see the module notes for the sources' order)."""
    parsed = parse_device(device)
    if isinstance(parsed, GpuFacts):
        kinds: dict[str, TargetKind] = {"nvidia": "cuda", "amd": "rocm", "apple": "mps"}
        return Target(kind=kinds.get(parsed.vendor, "other"), gpu=parsed, source="argument")
    if parsed is not None and parsed[0] != "cuda":
        kind_name = parsed[0]
        known: dict[str, TargetKind] = {"cpu": "cpu", "mps": "mps"}
        return Target(kind=known.get(kind_name, "other"), source="argument")
    explicit = parsed is not None
    index = parsed[1] if parsed is not None and parsed[1] is not None else 0

    target = _from_torch_initialised(index)
    if target is not None:
        return target
    gpus = _nvml_gpus()
    if gpus:
        target = target_from_nvml(gpus, index, environ)
        if target is not None:
            if explicit and target.kind != "cuda":
                raise UsageError(f"device={device!r} was asked for, but no GPU is visible")
            return target
    if not explicit and _no_gpu_driver():
        return Target(
            kind="cpu",
            source="none",
            note="no NVIDIA driver (/proc/driver/nvidia) and no ROCm device (/dev/kfd)",
        )
    try:
        import torch
    except Exception as exc:
        if explicit:
            raise UsageError(f"device={device!r} was asked for, but torch cannot load") from exc
        return Target(kind="cpu", source="none", note=f"no NVML and torch cannot load: {exc}")
    target = _torch_target(torch, index)
    if explicit and target.kind not in ("cuda", "rocm"):
        raise UsageError(f"device={device!r} was asked for, but torch sees no CUDA device")
    note = "NVML unavailable; asked torch (this initialises CUDA in this process)"
    if target.kind in ("cuda", "rocm"):
        return Target(kind=target.kind, gpu=target.gpu, source="torch", note=note)
    return target
