"""Findings about the GPU generation against each backend's requirements (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attn_doctor.backends import BACKENDS
from attn_doctor.diagnosis import (
    Finding,
)
from attn_doctor.facts import GpuFacts, PackageFacts, sm_text

if TYPE_CHECKING:
    pass
from attn_doctor.diagnose.context import PACKAGE_BACKENDS, Ctx, evidence_of, first_package
from attn_doctor.planner.compat import device_verdict, devices, verdict
from attn_doctor.planner.machine import (
    family,
    gpu_label,
)
from attn_doctor.planner.pip_command import pip_fix

# --- GPU generation vs backends ----------------------------------------------------------------


def _works_instead(ctx: Ctx, gpu: GpuFacts) -> list[str]:
    """What runs on this GPU instead, in the one decision's order (its priors: nothing here
    is measured or installed yet)."""
    from attn_doctor.decide import candidates, dispatch_rule, rank
    from attn_doctor.planner.plans import Option

    options = []
    for name in candidates():
        record = BACKENDS[name]
        automatic = record.runtime is not None and record.runtime.auto
        if name == "eager" or not automatic:
            continue
        if verdict(ctx.rules.backend(name), gpu, ctx.env).compatible != "yes":
            continue
        trust = "torch" if record.builtin else record.install[0]
        options.append(Option(backend=name, status="ready", way="", reason="", source=trust))
    kernel, source = dispatch_rule(
        ctx.rules,
        gpu,
        torch_version=ctx.env.torch.version if ctx.env.torch else None,
        cudnn=ctx.env.torch.cudnn_version if ctx.env.torch else None,
        os_name=ctx.env.host.os,
    )
    ranked = rank(options, gpu=gpu, sdpa_kernel=kernel, sdpa_kernel_source=source)
    runs = BACKENDS[kernel].title.removeprefix("torch SDPA: ")
    return [
        f"torch SDPA (attn_implementation='sdpa', its {runs} here)"
        if c.backend == "sdpa"
        else BACKENDS[c.backend].title
        for c in ranked
    ]


def gpu_backend_findings(ctx: Ctx) -> list[Finding]:
    env, rules = ctx.env, ctx.rules
    out: list[Finding] = []
    for name in PACKAGE_BACKENDS:
        info = BACKENDS[name]
        if info.distribution is None or first_package(env, info.distribution) is None:
            continue
        rule = rules.backend(name)
        for gpu in devices(env):
            if gpu is None:
                continue
            v = verdict(rule, gpu, env)
            if v.compatible != "no" or device_verdict(rule, gpu).compatible != "no":
                continue
            instead = _works_instead(ctx, gpu)
            out.append(
                ctx.finding(
                    "gpu-unsupported-by-backend",
                    "warning",
                    f"{info.title} is installed but cannot run on {gpu_label(gpu)}",
                    v.reason + ".",
                    [
                        evidence_of(
                            f"gpus[{gpu.index}].compute_capability",
                            gpu.compute_capability or gpu.gfx_arch,
                        ),
                        evidence_of(
                            f"packages.{info.distribution}.version",
                            (
                                first_package(env, info.distribution)
                                or PackageFacts(name="", version="")
                            ).version,
                        ),
                        evidence_of(f"index:backends.toml#{name}.min_sm", rule.min_sm),
                    ],
                    fix=pip_fix(env, "uninstall", "-y", info.distribution),
                    fix_note="Works on this GPU instead: " + ", ".join(instead)
                    if instead
                    else None,
                    backends=(name,),
                    sources=(rule.source,),
                )
            )
    for gpu in devices(env):
        if gpu is None or gpu.vendor != "nvidia" or gpu.sm is None or gpu.sm >= 80:
            continue
        instead = _works_instead(ctx, gpu)
        out.append(
            ctx.finding(
                "gpu-pre-ampere",
                "info",
                f"{gpu_label(gpu)} predates Ampere",
                f"flash-attn 2/3/4, SDPA's flash and cuDNN kernels and FlexAttention need sm80+; "
                f"{gpu.name} is {sm_text(gpu.sm)} ({family(gpu.sm)}).",
                [evidence_of(f"gpus[{gpu.index}].compute_capability", gpu.compute_capability)],
                fix_note=("What runs here: " + ", ".join(instead)) if instead else None,
                backends=("flash_attn_2", "flash_attn_3", "flash_attn_4", "sdpa_flash"),
            )
        )
    return out
