"""The machine as the resolver sees it, wheel-tag matching and the preconditions every
backend's planner checks first (pure).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from attn_doctor.backends import BackendName, BackendRule
from attn_doctor.facts import Environment, TransformersConstants, sm_text
from attn_doctor.index.naming import (
    python_minor,
    torch_minor,
)
from attn_doctor.index.records import Index
from attn_doctor.planner.plans import BackendPlan, Rejection, SourceKind
from attn_doctor.shell import Shell, join_command

ALL_SOURCES: frozenset[SourceKind] = frozenset(
    {"upstream-release", "pypi", "pytorch-index", "community", "hub", "source-build"}
)
PYTORCH_INDEX = "https://download.pytorch.org/whl/{tag}"
PROTECTED = ("torch", "torchvision", "torchaudio", "triton")
MAX_UPSTREAM_CANDIDATES = 3
MAX_COMMUNITY_CANDIDATES = 3

# --------------------------------------------------------------------------------- machine


@dataclass(frozen=True, kw_only=True)
class Machine:
    """The facts the resolver matches against, normalised from an ``Environment``."""

    os: str
    arch: str | None
    python: str
    """``3.12``."""
    free_threaded: bool
    glibc: Version | None
    torch: str | None
    torch_minor: str | None
    torch_build: str | None
    torch_cuda: str | None
    cxx11_abi: bool | None
    sms: tuple[int, ...]
    """Compute capabilities of the NVIDIA GPUs whose capability is known."""
    gpu_names: tuple[str, ...]
    """Names of the same GPUs, in the same order."""
    nvcc: str | None
    cpu_count: int | None
    ram_bytes: int | None
    transformers: str | None = None
    """The installed transformers version (its Hub fallback's ``kernels`` range depends on it)."""
    transformers_constants: TransformersConstants | None = None
    """Constants read from that transformers' files (``index.hub.fallback_for`` prefers them)."""
    gfx: tuple[str, ...] = ()
    """gfx archs of the AMD GPUs (``gfx942``)."""
    torch_hip: str | None = None
    rocm: str | None = None
    """The system ROCm toolkit's release (``6.4.1``), if found."""
    executable: str = "python"
    """The interpreter of the environment planned for: shown commands run ``X -m pip``."""

    def pip(self, *args: str) -> str:
        """``X -m pip ARGS``, quoted for the machine's shell."""
        shell: Shell = "windows" if self.os == "windows" else "posix"
        return join_command([self.executable, "-m", "pip", *args], shell)

    @property
    def sys_platform(self) -> str:
        return {"linux": "linux", "windows": "win32", "darwin": "darwin"}.get(self.os, self.os)

    @property
    def platform_label(self) -> str:
        return f"{self.os}-{self.arch or 'unknown'}"

    @property
    def cuda_major(self) -> int | None:
        return Version(self.torch_cuda).major if self.torch_cuda else None


def machine_of(env: Environment) -> Machine:
    torch = env.torch
    glibc: Version | None = None
    if env.host.libc == "glibc" and env.host.libc_version:
        try:
            glibc = Version(env.host.libc_version)
        except InvalidVersion:
            glibc = None
    return Machine(
        os=env.host.os,
        arch=env.host.arch,
        python=python_minor(env.python.version),
        free_threaded=env.python.free_threaded,
        glibc=glibc,
        torch=torch.version if torch else None,
        torch_minor=torch_minor(torch.version) if torch else None,
        torch_build=torch.build if torch else None,
        torch_cuda=torch.cuda if torch else None,
        cxx11_abi=torch.cxx11_abi if torch else None,
        sms=tuple(g.sm for g in env.nvidia_gpus if g.sm is not None),
        gpu_names=tuple(g.name for g in env.nvidia_gpus if g.sm is not None),
        nvcc=env.cuda_toolkit.release,
        cpu_count=env.host.cpu_count,
        ram_bytes=env.host.ram_available_bytes or env.host.ram_total_bytes,
        transformers=tf.version if (tf := env.package("transformers")) is not None else None,
        transformers_constants=env.transformers_constants,
        gfx=tuple(g.gfx_arch for g in env.gpus if g.vendor == "amd" and g.gfx_arch),
        torch_hip=torch.hip if torch else None,
        rocm=env.cuda_toolkit.rocm_version,
        executable=env.python.executable or "python",
    )


def runs_on(built: Iterable[int], device_sm: int) -> bool:
    """SASS built for sm_XY runs on devices of the same major with minor >= Y (no PTX here)."""
    return any(b // 10 == device_sm // 10 and device_sm % 10 >= b % 10 for b in built)


# ------------------------------------------------------------------------ wheel tag matching


def platform_mismatch(tag: str, m: Machine) -> str | None:
    """Why a wheel platform tag does not install here, or None when it does."""
    arch = {"AMD64": "x86_64", "arm64": "aarch64"}.get(m.arch or "", m.arch)
    if tag == "any":
        return None
    if tag == "win_amd64":
        return None if m.os == "windows" and arch == "x86_64" else "a Windows x86_64 wheel"
    if tag.startswith(("linux_", "manylinux")):
        if m.os != "linux":
            return f"a Linux wheel ({tag})"
        # manylinux_2_28_x86_64 | manylinux2014_x86_64 | linux_x86_64
        parts = tag.split("_", 3) if tag.startswith("manylinux_") else tag.split("_", 1)
        wheel_arch = parts[-1]
        if wheel_arch != arch:
            return f"a Linux {wheel_arch} wheel, this CPU is {arch or 'unknown'}"
        if tag.startswith("manylinux_"):
            _, major, minor, _rest = tag.split("_", 3)
            need = Version(f"{major}.{minor}")
            if m.glibc is not None and m.glibc < need:
                return f"needs glibc >= {need}, this system has {m.glibc}"
        return None
    return f"a wheel for {tag}"


def python_mismatch(python_tag: str, abi_tag: str, m: Machine) -> str | None:
    """Why ``python_tag-abi_tag`` does not install on this interpreter, or None."""
    here = Version(m.python)
    if python_tag.startswith("py"):
        digits = python_tag[2:]
        if len(digits) <= 1:
            return None if digits in ("", str(here.major)) else f"Python {digits} wheel"
        need = Version(f"{digits[0]}.{digits[1:]}")
        return None if here >= need else f"needs Python >= {need}"
    if abi_tag == "abi3":
        if m.free_threaded:
            return "an abi3 wheel: free-threaded Python cannot load it"
        need = Version(f"{python_tag[2]}.{python_tag[3:]}")
        return None if here >= need else f"needs Python >= {need}"
    want = "cp" + m.python.replace(".", "")
    if m.free_threaded:
        want_abi = want + "t"
        if abi_tag != want_abi:
            return f"built for {python_tag}-{abi_tag}, this free-threaded Python needs {want_abi}"
        return None
    if python_tag != want:
        return f"built for Python {python_tag[2]}.{python_tag[3:]}, this is Python {m.python}"
    return None


# ------------------------------------------------------------------------------ preconditions


def cuda_torch_problem(m: Machine, what: str) -> str | None:
    if m.torch is None:
        return f"torch is not installed: {what} needs a CUDA build of torch first"
    if m.torch_build != "cuda" or not m.torch_cuda:
        extra = (
            " (ROCm builds of these kernels are source builds, not covered by this index)"
            if m.torch_build == "rocm"
            else ""
        )
        return (
            f"the installed torch {m.torch} is a {m.torch_build} build: {what} needs a CUDA "
            f"build{extra}"
        )
    return None


def gpu_problem(
    m: Machine, min_sm: int | None, allowed: Iterable[int] | None, what: str
) -> str | None:
    allowed_t = tuple(allowed) if allowed is not None else None
    for name, sm in zip(m.gpu_names, m.sms, strict=False):
        if min_sm is not None and sm < min_sm:
            need = f"{min_sm // 10}.{min_sm % 10}"
            have = sm_text(sm, form="both")
            return f"{what} needs compute capability >= {need}; {name} is {have}"
        if allowed_t is not None and sm not in allowed_t:
            return (
                f"{what} supports {', '.join(sm_text(s, form='both') for s in allowed_t)}; "
                f"{name} is {sm_text(sm, form='both')}"
            )
    return None


def fa_arch_family(device_sm: int, archs: Iterable[int]) -> int | None:
    """The flash-attn build arch whose SASS runs on this device (86 -> 80, 121 -> 120)."""
    fits = [a for a in archs if a // 10 == device_sm // 10 and a % 10 <= device_sm % 10]
    return max(fits) if fits else None


def torch_variant(m: Machine) -> str | None:
    """The PyTorch index variant of the installed torch: ``cu124``, ``rocm6.1``, or None.

    From the local label (``2.4.0+cu124``), else from torch's CUDA version (the package
    index's default torch has no label). A vendor label (``2.2.0a0+6a974be``) names none.
    """
    if m.torch is None:
        return None
    local = Version(m.torch).local or ""
    if re.fullmatch(r"cu\d{3}|rocm\d+(\.\d+)*", local):
        return local
    if m.torch_build == "cuda" and m.torch_cuda and not local:
        return "cu" + "".join(m.torch_cuda.split(".")[:2])
    return None


def variant_text(variant: str) -> str:
    if variant.startswith("rocm"):
        return f"ROCm {variant[4:]}"
    digits = variant[2:]
    return f"CUDA {digits[:-1]}.{digits[-1]}"


def vendor_torch(m: Machine) -> bool:
    """A torch that is not a PyTorch release: a vendor build (NGC containers, distributions: a
    pre-release or a local label that is not ``cuXYZ``/``rocmX``/``cpu``, e.g.
    ``2.2.0a0+6a974be``) or a nightly (``2.10.0.dev20250901+cu128``, a pre-release by PEP 440).
    No prebuilt extension wheel is built against it: prebuilt wheels pair with releases, and a
    nightly's C++ ABI moves daily (PyTorch's nightly index builds its own extensions)."""
    if m.torch is None:
        return False
    v = Version(m.torch)
    local = v.local or ""
    label_ok = not local or re.fullmatch(r"cu\d+|rocm[\d.]+|cpu|xpu", local) is not None
    return not label_ok or v.is_prerelease


def nightly_torch(m: Machine) -> bool:
    """A torch nightly or other ``.dev`` build (PEP 440 development release)."""
    return m.torch is not None and Version(m.torch).is_devrelease


# ------------------------------------------------------------------------------ the planners


class Planner(Protocol):
    """A backend's install planner: every way to get it onto ``m``, best first, and why not.

    Named by the backend's adapter (``BackendAdapter.planner``, ``module:function``) and
    called by ``plan_backend``. ``versions`` narrows the releases where the planner knows
    them; ``plan_backend`` filters the rest.
    """

    def __call__(
        self,
        m: Machine,
        index: Index,
        allow: frozenset[SourceKind],
        allow_torch_change: bool,
        versions: SpecifierSet | None = None,
        /,
    ) -> BackendPlan: ...


def rejected(backend: BackendName, source: SourceKind, what: str, reason: str) -> BackendPlan:
    """A plan with no candidate and the one reason (a planner's precondition failed)."""
    return BackendPlan(
        backend=backend,
        rejections=(Rejection(backend=backend, source=source, what=what, reason=reason),),
    )


def record_problem(m: Machine, record: BackendRule) -> str | None:
    """The preamble every package planner shares, from the backend's record: a CUDA build of
    torch, an OS the backend runs on, and GPUs within its compute-capability range."""
    what = record.title
    problem = cuda_torch_problem(m, what)
    if problem is None and m.os not in record.os:
        problem = f"{what} runs on {', '.join(record.os)}; this is {m.os}"
    if problem is None:
        problem = gpu_problem(m, record.min_sm or None, None, what)
    if problem is None and record.max_sm is not None:
        for name, sm in zip(m.gpu_names, m.sms, strict=False):
            if sm > record.max_sm:
                top = sm_text(record.max_sm, form="both")
                have = sm_text(sm, form="both")
                return f"{what} supports compute capability up to {top}; {name} is {have}"
    return problem
