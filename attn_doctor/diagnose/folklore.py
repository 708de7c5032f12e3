"""Where common advice ("Windows -> xformers, Linux -> flash-attn, unsloth first") is wrong
for this machine, and why (pure).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from packaging.version import Version

from attn_doctor.backends import BackendName
from attn_doctor.diagnosis import (
    BackendStatus,
)

if TYPE_CHECKING:
    pass
from attn_doctor.diagnose.context import Ctx
from attn_doctor.planner.compat import devices, verdict
from attn_doctor.planner.machine import (
    gpu_label,
    torch_version,
)

# --- folklore ----------------------------------------------------------------------------------


def folklore_notes(ctx: Ctx, table: dict[BackendName, BackendStatus]) -> list[str]:
    env, rules = ctx.env, ctx.rules
    out: list[str] = []
    os_name = env.host.os
    tv = torch_version(env)
    if not env.gpus:
        if os_name == "darwin" and (env.host.arch or "") in ("arm64", "aarch64"):
            out.append(
                '"Linux -> flash-attn, Windows -> xformers" does not apply on Apple silicon: both '
                "are CUDA-only. torch's SDPA on the MPS device is the fast path here."
            )
        else:
            out.append(
                "No GPU here: flash-attn, xformers and unsloth are GPU projects; "
                "attn_implementation="
                '"sdpa" uses torch\'s CPU kernels.'
            )
        return out
    for gpu in devices(env):
        if gpu is None:
            continue
        label = gpu_label(gpu)
        if gpu.vendor == "amd":
            out.append(
                f'"Linux -> flash-attn" on {label}: flash-attn for ROCm is a source build (CK or '
                "Triton backend); torch's SDPA (AOTriton flash / memory-efficient kernels) "
                "needs no install."
            )
            out.append(
                f'"unsloth first" on {label}: unsloth\'s documented floor is NVIDIA compute '
                "capability 7.0; AMD support is not confirmed here."
            )
            continue
        if gpu.vendor != "nvidia" or gpu.sm is None:
            continue
        sm = gpu.sm
        if sm < 80:
            if os_name in ("linux",):
                out.append(
                    f'"Linux -> flash-attn" is wrong for {label}: flash-attn 2 needs Ampere (sm80) '
                    "or newer and fails with 'FlashAttention only supports Ampere GPUs or "
                    "newer'. Use "
                    'attn_implementation="sdpa" (memory-efficient kernel) or xformers.'
                )
            if sm < rules.backend("unsloth").min_sm:
                out.append(
                    f'"unsloth first" is wrong for {label}: unsloth needs compute capability 7.0 '
                    "or newer."
                )
        if os_name == "windows" and sm >= 80:
            floor = rules.backend("sdpa_flash").min_torch_for("windows")
            if tv is not None and floor and tv >= Version(floor):
                out.append(
                    f'"Windows -> xformers" is not needed on {label}: torch '
                    f"{env.torch.version if env.torch else ''} "
                    "on Windows already has SDPA's flash and memory-efficient kernels; "
                    'attn_implementation="sdpa" needs no extra package.'
                )
            elif tv is not None:
                out.append(
                    f'"Windows -> xformers" on {label}: torch '
                    f"{env.torch.version if env.torch else ''} has no SDPA "
                    f"flash kernel on Windows (added for torch >= {floor}); upgrading torch gives "
                    "it without xformers."
                )
        if os_name == "linux" and 80 <= sm < 90 and table["flash_attn_2"].installed != "yes":
            out.append(
                f'"Linux -> flash-attn" on {label}: correct hardware, but torch\'s SDPA flash '
                "kernel is FlashAttention-2 already; the flash-attn package adds mainly "
                "varlen/padding-free APIs."
            )
        if sm // 10 == 9:
            out.append(
                f"On {label} flash-attn 2 is not the fastest choice: FlashAttention-3 (and FA4) "
                "target Hopper, and torch's cuDNN SDPA kernel is tuned for it."
            )
        if sm >= 100:
            fa4 = verdict(rules.backend("flash_attn_4"), gpu, env)
            note = (
                "flash-attn-4 targets it"
                if fa4.compatible == "yes" and fa4.official
                else (
                    "flash-attn-4's code accepts it, though upstream advertises Hopper and "
                    "datacenter Blackwell"
                )
            )
            out.append(
                f"On {label} flash-attn 3 does not apply (Hopper only); {note}; SDPA "
                "needs a torch built with CUDA >= 12.8."
            )
    return list(dict.fromkeys(out))
