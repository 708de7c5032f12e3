"""Backend compatibility: one backend's rules against one device and the environment.

Pure: verdicts come from ``Rules`` (backends.toml) and the ``Environment`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

from attn_doctor.backends import BACKENDS, BackendName, BackendRule
from attn_doctor.diagnosis import Tri
from attn_doctor.facts import Environment, GpuFacts, sm_text
from attn_doctor.planner.machine import family, gpu_label, rules_os, torch_version
from attn_doctor.rules_data import cuda_key

TORCH_INTERNAL: frozenset[BackendName] = frozenset(
    name for name, info in BACKENDS.items() if info.distribution is None
)


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """Whether a backend can run on a device here, and why (one line)."""

    compatible: Tri
    official: bool
    """False when only the code accepts this device and upstream does not advertise it."""
    reason: str
    device_limited: bool = False
    """True when the device itself (generation, vendor) is what rules the backend out."""


def _families(majors: tuple[int, ...]) -> str:
    return ", ".join(f"{family(m * 10)} ({sm_text(m * 10)}x)" for m in majors)


def device_verdict(rule: BackendRule, gpu: GpuFacts | None) -> Verdict:
    """The backend against one device (None: the CPU)."""
    title = BACKENDS[rule.name].title
    if gpu is None:
        if "cpu" in rule.vendors:
            return Verdict(compatible="yes", official=True, reason=f"{title} runs on the CPU")
        return Verdict(
            compatible="no",
            official=True,
            reason=f"{title} needs a GPU",
            device_limited=True,
        )
    if gpu.vendor not in rule.vendors:
        return Verdict(
            compatible="no",
            official=True,
            reason=f"{title} does not run on {gpu.vendor.upper()} GPUs",
            device_limited=True,
        )
    if gpu.vendor == "nvidia":
        return _nvidia_verdict(rule, gpu, title)
    if gpu.vendor == "amd":
        if rule.min_sm == 0:
            return Verdict(compatible="yes", official=True, reason=f"{title} runs on any device")
        if rule.amd_gfx:
            if gpu.gfx_arch is None:
                return Verdict(compatible="unknown", official=True, reason="AMD gfx target unknown")
            if gpu.gfx_arch in rule.amd_gfx:
                return Verdict(
                    compatible="yes",
                    official=True,
                    reason=f"{gpu_label(gpu)} is supported by {title}",
                )
            return Verdict(
                compatible="no",
                official=True,
                reason=f"{title} supports {', '.join(rule.amd_gfx)}; this GPU is {gpu.gfx_arch}",
                device_limited=True,
            )
        return Verdict(
            compatible="unknown",
            official=True,
            reason=f"support for AMD {gpu.gfx_arch or 'GPUs'} is not recorded for {title}",
        )
    return Verdict(compatible="yes", official=True, reason=f"{title} runs on {gpu.vendor} GPUs")


def _nvidia_verdict(rule: BackendRule, gpu: GpuFacts, title: str) -> Verdict:
    sm = gpu.sm
    if sm is None:
        return Verdict(
            compatible="unknown", official=True, reason=f"compute capability of {gpu.name} unknown"
        )
    if rule.min_sm == 0:
        return Verdict(compatible="yes", official=True, reason=f"{title} runs on any GPU")
    label = gpu_label(gpu)
    if sm < rule.min_sm:
        return Verdict(
            compatible="no",
            official=True,
            reason=f"{title} needs {sm_text(rule.min_sm)} ({family(rule.min_sm)}) or newer; "
            f"{label} is older",
            device_limited=True,
        )
    if rule.max_sm is not None and sm > rule.max_sm:
        return Verdict(
            compatible="no",
            official=True,
            reason=f"{title} supports up to {sm_text(rule.max_sm)}; {label} is newer",
            device_limited=True,
        )
    major = sm // 10
    if rule.sm_majors and major not in rule.sm_majors:
        if major in rule.sm_majors_code_only:
            return Verdict(
                compatible="yes",
                official=False,
                reason=f"{title}: the code accepts {label}, but upstream targets "
                f"{_families(rule.sm_majors)}",
            )
        return Verdict(
            compatible="no",
            official=True,
            reason=f"{title} supports {_families(rule.sm_majors)}; {label} is not one of them",
            device_limited=True,
        )
    return Verdict(compatible="yes", official=True, reason=f"{label} is supported by {title}")


def environment_problems(rule: BackendRule, env: Environment) -> tuple[str, ...]:
    """What in the OS / torch rules the backend out, independent of the device."""
    problems: list[str] = []
    title = BACKENDS[rule.name].title
    os_name = rules_os(env)
    if os_name not in rule.os:
        problems.append(f"{title} runs on {', '.join(rule.os)} only")
    version = torch_version(env)
    floor = rule.min_torch_for(os_name)
    if version is not None and floor is not None and version.release < _release(floor):
        where = f" on {os_name}" if dict(rule.os_min_torch).get(os_name) else ""
        problems.append(
            f"{title} needs torch >= {floor}{where}; torch "
            f"{env.torch.version if env.torch else ''} is installed"
        )
    if (
        env.torch is not None
        and env.torch.build == "cuda"
        and env.torch.cuda
        and rule.min_cuda
        and cuda_key(env.torch.cuda) < cuda_key(rule.min_cuda)
    ):
        problems.append(
            f"{title} needs CUDA >= {rule.min_cuda}; torch is built with {env.torch.cuda}"
        )
    return tuple(problems)


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def verdict(rule: BackendRule, gpu: GpuFacts | None, env: Environment) -> Verdict:
    """Device verdict combined with the environment's problems."""
    dev = device_verdict(rule, gpu)
    if dev.compatible == "no":
        return dev
    problems = environment_problems(rule, env)
    if problems:
        return Verdict(compatible="no", official=dev.official, reason="; ".join(problems))
    return dev


def devices(env: Environment) -> tuple[GpuFacts | None, ...]:
    """The devices recommendations are made for: each distinct GPU model, else the CPU."""
    seen: dict[tuple[str, str, str | None, str | None], GpuFacts] = {}
    for gpu in env.gpus:
        key = (gpu.vendor, gpu.name, gpu.compute_capability, gpu.gfx_arch)
        seen.setdefault(key, gpu)
    if not seen:
        return (None,)
    return tuple(seen.values())
