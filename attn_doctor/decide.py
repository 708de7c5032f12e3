"""The one decision: which attention backend, here, now.

Everything that picks "the best backend" — ``check``'s recommendation, ``install --auto``,
the runtime's ``best_attn_implementation`` / ``load_kwargs`` and bench's recommendation —
calls ``rank`` (directly or through ``decide``) and nothing else ranks. The policy
(docs/decision.md), in order:

1. **Gate.** A blocked option (torch missing or unable to use the GPU, a driver too old, a GPU
   the backend does not support) ranks after every option that is ready or installable.
2. **Evidence.** Where this machine measured a backend (bench TFLOP/s for the same GPU and
   torch, and the backend passed its kernel check in that run), the measurement is its score;
   fwd+bwd figures when the request is for training.
3. **Priors.** Otherwise its score is its record's published or recorded speed for this GPU
   generation (``prior`` in backends.toml, each with its source), scaled to the measured speed
   of SDPA's default dispatch when there is one. SDPA's own score is the score of the kernel
   its default dispatch really runs here (not torch's printed priority list).
4. **Cost and trust.** An option that needs an install must promise at least
   ``INSTALL_MARGIN`` times the speed to outrank one that is ready; ties go to ready over
   install, then to what the user installed over what torch has built in (the same kernel
   speed, but flash_attention_2 also unpads batches), then to the more trusted source
   (upstream > package index > PyTorch index > Hub > community > source build), then to the
   record order.

Options with ``auto = false`` (FlexAttention compiles on first use, Hub kernels download on
first use, SageAttention is quantised) are listed after every automatic option.

For a framework (``Request.framework``: diffusers, vLLM, SGLang, ComfyUI) only backends with a
name there (their record's ``[[backend.frameworks]]``) are ranked; a kernel the framework ships
itself is ready wherever the framework is installed (``plan.frameworks.framework_option``).

Pure: no I/O, no torch. ``decide`` builds the options from a diagnosis of an ``Environment``;
the runtime builds them from what it checked in its own process and calls ``rank``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from packaging.version import Version

from attn_doctor.backends import BACKEND_NAMES, BACKENDS, BackendName
from attn_doctor.facts import Environment, GpuFacts
from attn_doctor.framework_names import Device, FrameworkName
from attn_doctor.planner.pip_command import doctor_fix, shell_of
from attn_doctor.planner.plans import Option, Status
from attn_doctor.planner.sdpa_rule import Dtype, Mask, SdpaInputs, sdpa_dispatch
from attn_doctor.sdpa_data import SdpaKernel
from attn_doctor.shell import join_command
from attn_doctor.versions import parse_version

if TYPE_CHECKING:
    from attn_doctor.diagnosis import BackendStatus, Finding
    from attn_doctor.planner.plans import BackendPlan
    from attn_doctor.rules_data import Rules


INSTALL_MARGIN = 1.25
"""An install must promise this much more speed than what is ready now to rank above it:
a wheel download, a possible compile and a new moving part are not free."""

_TRUST: tuple[str, ...] = (
    "installed",
    "torch",
    "upstream-release",
    "wheelhouse",
    "pypi",
    "pytorch-index",
    "hub",
    "community",
    "source-build",
)
_STATUS_ORDER: dict[Status, int] = {"ready": 0, "install": 1, "blocked": 2}


# --- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """One backend measured on this machine (one bench run)."""

    backend: BackendName
    tflops: float | None = None
    """Forward geometric-mean TFLOP/s over the shapes of the run."""
    tflops_train: float | None = None
    """Forward+backward geometric-mean TFLOP/s, when the run measured it."""
    verified: bool = False
    """Its kernel check passed in the same run: only then is the figure evidence."""
    figures: int = 0
    """Figures the score rests on, each through bench's quality gate (spread within its
    bound, below the matmul peak and the datasheet rate); unreliable ones are never here."""
    left_out: int = 0
    """This backend's figures the gate refused (unreliable): not part of the score."""


@dataclass(frozen=True, kw_only=True)
class BenchEvidence:
    """What this machine measured, for one GPU (or the CPU) and one torch build."""

    key: str
    """The bench cache key: device name and torch version (package versions are in the run)."""
    measurements: tuple[Measurement, ...] = ()
    sdpa_kernel: BackendName | None = None
    """The kernel SDPA's default dispatch ran in that run (``torch._fused_sdp_choice``)."""
    source: str = "attn-doctor bench"
    """Which runs the measurements come from (command, machine key, date)."""

    def used(self, backend: BackendName) -> str | None:
        """In words, which evidence ranks ``backend``: the runs and how many reliable
        figures (and how many unreliable ones were left out); None when unmeasured."""
        for m in self.measurements:
            if m.backend == backend and m.verified:
                figures = f"{m.figures} reliable figure(s)" if m.figures else "reliable figures"
                skipped = f", {m.left_out} unreliable left out" if m.left_out else ""
                return f"{figures}{skipped} from {self.source}"
        return None

    def speed(self, backend: BackendName, *, training: bool) -> float | None:
        for m in self.measurements:
            if m.backend == backend and m.verified:
                value = m.tflops_train if training else m.tflops
                if value is not None and value > 0:
                    return value
        return None


@dataclass(frozen=True, kw_only=True)
class Request:
    """What the caller wants a backend for."""

    training: bool = False
    gpu_index: int | None = None
    """The device the decision is for (None: the first GPU, else the CPU)."""
    framework: FrameworkName | None = None
    """The framework the backend is for (None: transformers, the default). Only backends with
    a name in that framework (its record's ``[[backend.frameworks]]``) are offered."""
    framework_version: str | None = None
    """That framework's version (None: not installed here, every name is assumed to hold)."""
    dtype: Dtype | None = None
    """The model's dtype (``check --model``), for SDPA's per-release dispatch rule."""
    head_dim: int | None = None
    """The model's head dim (``check --model``), for the same rule."""


# --- output -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RankedOption:
    """One ranked option with the figures its rank rests on."""

    rank: int
    backend: BackendName
    status: Status
    attn_implementation: str | None
    way: str
    reason: str
    score: float | None
    """The speed it was ranked by (TFLOP/s when measured, else relative to the unit)."""
    measured: bool
    """True when ``score`` was measured on this machine."""
    kernel: BackendName | None = None
    """For ``sdpa``: the kernel its default dispatch runs here."""
    kernel_source: str | None = None
    """Where ``kernel`` comes from: measured, asked of torch, or the dispatch rules."""
    activate: BackendName | None = None
    """For ``sdpa``: a kernel that passed verify and was measured faster than the default
    dispatch here; the runtime may set it first (``attn_doctor.loadtime.sdpa_priority``)."""
    auto: bool = True
    evidence: str | None = None
    """When ``measured``: which evidence the score comes from (the bench runs, how many
    reliable figures; unreliable figures are never used)."""
    framework_name: str | None = None
    """The backend's name in ``Request.framework`` (None: no framework asked)."""


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The ranked options for one device, best first."""

    choices: tuple[RankedOption, ...]
    gpu_index: int | None = None
    blocker: str | None = None
    """The gating problem (its fix) when torch cannot run here at all."""

    @property
    def top(self) -> RankedOption | None:
        return self.choices[0] if self.choices else None

    @property
    def best_ready(self) -> RankedOption | None:
        """What works now: the runtime's answer."""
        return next((c for c in self.choices if c.status == "ready"), None)


# --- SDPA's default dispatch ------------------------------------------------------------------


def sdpa_default_kernel(
    env: Environment,
    rules: Rules,
    gpu: GpuFacts | None,
    evidence: BenchEvidence | None = None,
    *,
    dtype: Dtype | None = None,
    head_dim: int | None = None,
) -> tuple[BackendName, str]:
    """The kernel ``attn_implementation="sdpa"`` runs here (the model's dtype and head dim where
    the caller knows them, else stated defaults).

    A measured answer (a bench run's default-dispatch row) wins, then what torch itself said
    in ``check --deep`` (``torch._fused_sdp_choice``), then the per-release rule of
    sdpa_dispatch.toml. Returns (kernel, where the answer comes from and what it assumed).
    """
    if evidence is not None and evidence.sdpa_kernel is not None:
        return evidence.sdpa_kernel, "measured here by attn-doctor bench"
    runtime = env.torch_runtime
    asked = runtime.sdpa_default_kernel if runtime is not None else None
    on_device_zero = gpu is None or gpu.index == 0
    for name in BACKEND_NAMES:
        if on_device_zero and name == asked and name.startswith("sdpa_"):
            inputs = runtime.sdpa_default_inputs if runtime is not None else None
            return name, "torch's own answer (check --deep" + (
                f"; for {inputs})" if inputs else ")"
            )
    kernel, why = dispatch_rule(
        rules,
        gpu,
        torch_version=env.torch.version if env.torch else None,
        cudnn=env.torch.cudnn_version if env.torch else None,
        os_name=env.host.os,
        torch_cuda=env.torch.cuda if env.torch else None,
        env_vars=dict(env.env_vars),
        dtype=dtype,
        head_dim=head_dim,
    )
    given = [t for t in (dtype, f"head dim {head_dim}" if head_dim else None) if t]
    return kernel, (f"for the model's {', '.join(given)}: " if given else "") + why


def dispatch_rule(
    rules: Rules,
    gpu: GpuFacts | None,
    *,
    torch_version: str | None,
    cudnn: str | None,
    os_name: str | None = None,
    torch_cuda: str | None = None,
    env_vars: Mapping[str, str] | None = None,
    dtype: Dtype | None = None,
    head_dim: int | None = None,
    mask: Mask | None = None,
    decode: bool | None = None,
    training: bool | None = None,
    cudnn_loaded: bool = False,
) -> tuple[BackendName, str]:
    """What torch SDPA's default dispatch runs on this device, from the data (pure).

    NVIDIA GPUs: :func:`attn_doctor.planner.sdpa_rule.sdpa_dispatch` over the per-release table;
    ``cudnn`` is the cuDNN version known here (``cudnn_loaded``: read from the library torch
    loaded, else the pip package's, which a library on LD_LIBRARY_PATH can contradict). Returns
    (kernel, the reason with every assumed input)."""
    if gpu is not None and gpu.vendor == "amd":
        # ROCm builds run AOTriton's flash and memory-efficient kernels on the GPUs it targets.
        for kernel in ("sdpa_flash", "sdpa_mem_efficient"):
            if gpu.gfx_arch and gpu.gfx_arch in BACKENDS[kernel].amd_gfx:
                return kernel, "AOTriton's GPU targets (backends.toml)"
        return "sdpa_math", "no AOTriton kernel listed for this AMD GPU"
    tv = parse_version(torch_version, public=True)
    if gpu is None:
        # pytorch aten/src/ATen/native/transformers/sdp_utils_cpp.cpp: the CPU flash kernel
        # first (torch._fused_sdp_choice returns FLASH_ATTENTION for CPU tensors, torch 2.13).
        if tv is not None and tv >= Version("2.2"):
            return "sdpa_cpu_fused", "torch's CPU dispatch (flash kernel first, torch >= 2.2)"
        return "sdpa_math", "no fused CPU kernel before torch 2.2"
    if gpu.vendor != "nvidia" or gpu.sm is None:
        return "sdpa_math", "torch's own path on this device (no fused CUDA kernel)"
    floor = BACKENDS["sdpa_flash"].min_torch_for(os_name) if os_name else None
    absent: tuple[SdpaKernel, ...] = ()
    if floor and tv is not None and tv < Version(floor):
        absent = ("flash",)
    answer = sdpa_dispatch(
        rules.sdpa_releases,
        SdpaInputs(
            torch_version=torch_version,
            torch_cuda=torch_cuda,
            sm=gpu.sm,
            dtype=dtype,
            head_dim=head_dim,
            mask=mask,
            decode=decode,
            training=training,
            cudnn_loaded=cudnn,
            cudnn_from="the cuDNN torch loaded" if cudnn_loaded else "the cuDNN pip package",
            env=env_vars or {},
            absent=absent,
        ),
    )
    return cast(BackendName, answer.kernel), answer.describe()


# --- the sort key -----------------------------------------------------------------------------


def _prior(backend: BackendName, gpu: GpuFacts | None) -> float | None:
    record = BACKENDS[backend]
    if record.prior is None:
        return None
    sm = gpu.sm if gpu is not None and gpu.vendor == "nvidia" else None
    return record.prior.for_device(sm, cpu=gpu is None)


def _score(
    backend: BackendName,
    *,
    gpu: GpuFacts | None,
    evidence: BenchEvidence | None,
    training: bool,
    sdpa_kernel: BackendName,
    anchor: tuple[float, float] | None,
) -> tuple[float | None, bool]:
    """(score, measured). ``anchor`` = (measured TFLOP/s, prior) of SDPA's default kernel."""
    subject: BackendName = sdpa_kernel if backend == "sdpa" else backend
    if evidence is not None:
        for name in (backend, subject):
            speed = evidence.speed(name, training=training)
            if speed is not None:
                return speed, True
    prior = _prior(subject, gpu)
    if prior is None:
        return None, False
    if anchor is not None and anchor[1] > 0:
        return prior * anchor[0] / anchor[1], False
    return prior, False


def rank(
    options: Iterable[Option],
    *,
    gpu: GpuFacts | None,
    sdpa_kernel: BackendName,
    sdpa_kernel_source: str,
    evidence: BenchEvidence | None = None,
    request: Request = Request(),
    verified: Iterable[BackendName] = (),
) -> tuple[RankedOption, ...]:
    """Rank ``options`` by the policy in this module's docstring. The only ranking there is.

    ``verified``: kernels that passed verify here (with ``evidence``, they may be activated
    for SDPA when measured faster than its default dispatch).
    """
    opts = list(options)
    if request.framework is not None:  # what that framework cannot use is not offered for it
        fw, fv, dev = request.framework, request.framework_version, _device(gpu)
        opts = [o for o in opts if BACKENDS[o.backend].framework_entry(fw, fv, dev) is not None]
    training = request.training
    anchor = None
    if evidence is not None:
        measured = evidence.speed(sdpa_kernel, training=training) or evidence.speed(
            "sdpa", training=training
        )
        base = _prior(sdpa_kernel, gpu)
        if measured is not None and base:
            anchor = (measured, base)
    scores = {
        o.backend: _score(
            o.backend,
            gpu=gpu,
            evidence=evidence,
            training=training,
            sdpa_kernel=sdpa_kernel,
            anchor=anchor,
        )
        for o in opts
    }

    def key(o: Option) -> tuple[object, ...]:
        score = scores[o.backend][0]
        effective = score if score is not None else 0.0
        if o.status == "install":
            effective /= INSTALL_MARGIN
        trust = _TRUST.index(o.source) if o.source in _TRUST else len(_TRUST)
        return (
            o.status == "blocked",
            not o.auto,
            -effective,
            _STATUS_ORDER[o.status],
            trust,
            BACKEND_NAMES.index(o.backend),
        )

    activate = _activation(evidence, sdpa_kernel, training)
    out: list[RankedOption] = []
    for position, o in enumerate(sorted(opts, key=key), start=1):
        score, was_measured = scores[o.backend]
        is_sdpa = o.backend == "sdpa"
        out.append(
            RankedOption(
                rank=position,
                backend=o.backend,
                status=o.status,
                attn_implementation=BACKENDS[o.backend].attn_implementation,
                way=o.way,
                reason=o.reason,
                score=score,
                measured=was_measured,
                kernel=sdpa_kernel if is_sdpa else None,
                kernel_source=sdpa_kernel_source if is_sdpa else None,
                activate=activate if is_sdpa else None,
                auto=o.auto,
                evidence=_used(evidence, o.backend, sdpa_kernel, training)
                if was_measured
                else None,
                framework_name=_framework_name(o.backend, request),
            )
        )
    return tuple(out)


def _used(
    evidence: BenchEvidence | None, backend: BackendName, sdpa_kernel: BackendName, training: bool
) -> str | None:
    """Which evidence ``_score`` took for ``backend`` (the same lookup order)."""
    if evidence is None:
        return None
    for name in (backend, sdpa_kernel if backend == "sdpa" else backend):
        if evidence.speed(name, training=training) is not None:
            used = evidence.used(name)
            return used if name == backend else f"{name}: {used}"
    return None


def _device(gpu: GpuFacts | None) -> Device | None:
    if gpu is None:
        return "cpu"
    match gpu.vendor:
        case "nvidia":
            return "cuda"
        case "amd":
            return "rocm"
        case _:
            return None


def _framework_name(backend: BackendName, request: Request) -> str | None:
    if request.framework is None:
        return None
    entry = BACKENDS[backend].framework_entry(request.framework, request.framework_version)
    return entry.name if entry is not None else None


def _activation(
    evidence: BenchEvidence | None, default: BackendName, training: bool
) -> BackendName | None:
    """A verified SDPA kernel measured faster than the default dispatch (by 5%), or None."""
    if evidence is None:
        return None
    base = evidence.speed("sdpa", training=training) or evidence.speed(default, training=training)
    if base is None:
        return None
    best: tuple[float, BackendName] | None = None
    for name in BACKEND_NAMES:
        if not name.startswith("sdpa_") or name == default:
            continue
        if BACKENDS[name].sdpa_kernel is None or name == "sdpa_math":
            continue
        speed = evidence.speed(name, training=training)
        if speed is not None and speed > base * 1.05 and (best is None or speed > best[0]):
            best = (speed, name)
    return best[1] if best else None


# --- options from a diagnosis -----------------------------------------------------------------


def candidates() -> tuple[BackendName, ...]:
    """Backends a model can be loaded with (a runtime spec in their record), record order."""
    return tuple(n for n in BACKEND_NAMES if BACKENDS[n].runtime is not None)


def _install_way(env: Environment, dist: str) -> str:
    """``attn-doctor install DIST``, with ``--python X`` when the inspected interpreter X is not
    the one attn-doctor runs under (a snapshot, or ``--python``): the command then installs
    into the environment that was diagnosed, whichever attn-doctor runs it."""
    here = env.python.executable
    if here is None or os.path.normpath(here) == os.path.normpath(sys.executable):
        return join_command(["attn-doctor", "install", dist], shell_of(env))
    return doctor_fix(env, "install", dist)


def _option(
    name: BackendName,
    status: BackendStatus,
    *,
    blocker: Finding | None,
    route: BackendPlan | None,
    compatible_here: bool,
    compat_reason: str,
    env: Environment,
) -> Option | None:
    record = BACKENDS[name]
    install = _install_way(env, record.distribution or name)
    auto = record.runtime.auto if record.runtime is not None else False
    if not compatible_here:
        return None
    if blocker is not None:
        fix = blocker.fix or blocker.title
        return Option(
            backend=name,
            status="blocked",
            way=f"fix first: {fix}",
            reason=f"{blocker.title}; {compat_reason}",
            source=(
                "torch"
                if record.builtin
                else "installed"
                if status.installed == "yes"
                else record.install[0]
            ),
            auto=auto,
        )
    if status.usable:
        way = (
            f"built into torch {status.version}"
            if record.builtin
            else f"installed ({status.version})"
        )
        if record.registration:
            way += f"; register it first: {record.registration}"
        return Option(
            backend=name,
            status="ready",
            way=way,
            reason=compat_reason,
            source="torch" if record.builtin else "installed",
            auto=auto,
        )
    if record.builtin:
        return Option(
            backend=name,
            status="blocked",
            way=f"in torch, but not usable now: {status.reason}",
            reason=status.reason,
            source="torch",
            auto=auto,
        )
    if route is None:
        return Option(
            backend=name,
            status="install",
            way=install,
            reason=compat_reason if status.installed != "yes" else status.reason,
            source=record.install[0],
            auto=auto,
        )
    if not route.candidates:
        why = route.rejections[0].reason if route.rejections else "no source offers it"
        return Option(
            backend=name,
            status="blocked",
            way=f"no way to install it here: {why}",
            reason=status.reason,
            source="source-build",
            auto=auto,
        )
    best = route.candidates[0]
    what = best.filename or best.requirement or best.source
    return Option(
        backend=name,
        status="install",
        way=f"{install} ({best.source}: {what})",
        reason=status.reason if status.installed == "yes" else compat_reason,
        source=best.source,
        auto=auto,
    )


def decide(
    env: Environment,
    rules: Rules,
    *,
    table: Mapping[BackendName, BackendStatus],
    blocker: Finding | None,
    compatible: Mapping[BackendName, tuple[bool, str]],
    route: Mapping[BackendName, BackendPlan | None] | None = None,
    evidence: BenchEvidence | None = None,
    request: Request = Request(),
    gpu: GpuFacts | None = None,
) -> Decision:
    """The decision for one device of ``env`` from its diagnosis (pure).

    ``table``: the diagnosis' backend rows; ``blocker``: the finding that stops torch from
    running here at all (None when there is none); ``compatible``: per backend, whether it can
    run on this device and why (the rules' verdict); ``route``: the resolver's plan per package
    backend (None: no index at hand).
    """
    options: list[Option] = []
    for name in candidates():
        ok, why = compatible.get(name, (False, "no verdict"))
        option = _option(
            name,
            table[name],
            blocker=blocker,
            route=(route or {}).get(name),
            compatible_here=ok,
            compat_reason=why,
            env=env,
        )
        if option is not None and request.framework is not None:
            from attn_doctor.planner.frameworks import framework_option

            option = framework_option(option, env, request.framework, table[name])
        if option is not None:
            options.append(option)
    kernel, source = sdpa_default_kernel(
        env, rules, gpu, evidence, dtype=request.dtype, head_dim=request.head_dim
    )
    return Decision(
        choices=rank(
            options,
            gpu=gpu,
            sdpa_kernel=kernel,
            sdpa_kernel_source=source,
            evidence=evidence,
            request=request,
        ),
        gpu_index=gpu.index if gpu is not None else None,
        blocker=(blocker.fix or blocker.title) if blocker is not None else None,
    )
