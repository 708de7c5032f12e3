"""Hugging Face Hub kernel build variants: names and the ``kernels`` package's matching rules.

The rules restate huggingface/kernels ``variants.py`` (recorded in ``hub_kernels.toml``):
``torch{X}{Y}[-cxx11|-cxx98]-cu{X}{Y}-{cpu}-{os}`` matches when torch's major.minor is equal,
the ABI tag (if any) equals torch's C++11 ABI, the CUDA major is equal and the variant's CUDA
minor is not above torch's, and the CPU and OS are equal; ``torch-stable-abi{X}{Y}-…`` matches
any torch at or above that version. Pure functions: the caller supplies the facts.
"""

from __future__ import annotations

import re

from packaging.version import Version

_TORCH = re.compile(r"torch(\d)(\d+)(?:-(cxx11|cxx98))?")
_STABLE = re.compile(r"torch-stable-abi(\d)(\d+)")
_CUDA = re.compile(r"cu(\d{2})(\d+)")


def _cuda_str(cuda: str) -> str:
    v = Version(cuda)
    return f"cu{v.major}{v.minor}"


def expected_variants(
    *, torch: str, cxx11_abi: bool | None, cuda: str, cpu: str, os: str
) -> tuple[str, ...]:
    """The variant names a ``kernels`` install here would accept, most preferred first
    (ignoring stable-ABI variants, whose version set depends on the repository)."""
    v = Version(Version(torch).public)
    base = f"torch{v.major}{v.minor}"
    arch = f"{_cuda_str(cuda)}-{cpu}-{os}"
    names = [f"{base}-{arch}"]
    if cxx11_abi is not None and os == "linux":
        names.append(f"{base}-{'cxx11' if cxx11_abi else 'cxx98'}-{arch}")
    return tuple(names)


def variant_mismatch(
    variant: str, *, torch: str, cxx11_abi: bool | None, cuda: str, cpu: str, os: str
) -> str | None:
    """Why ``kernels`` would reject this build variant here, or None when it would accept it."""
    if variant.startswith("torch-stable-abi"):
        parts = variant.split("-")
        m = _STABLE.fullmatch("-".join(parts[:3]))
        rest = parts[3:]
        if not m:
            return f"not a variant name: {variant!r}"
        need = Version(f"{m.group(1)}.{m.group(2)}")
        if Version(Version(torch).public) < need:
            return f"stable ABI {need} is newer than torch {torch}"
    else:
        parts = variant.split("-")
        if len(parts) >= 2 and parts[1] in ("cxx11", "cxx98"):
            framework, rest = "-".join(parts[:2]), parts[2:]
        else:
            framework, rest = parts[0], parts[1:]
        m = _TORCH.fullmatch(framework)
        if not m:
            return f"not a variant name: {variant!r}"
        want = Version(Version(torch).public)
        if (int(m.group(1)), int(m.group(2))) != (want.major, want.minor):
            return (
                f"built for torch {m.group(1)}.{m.group(2)}, "
                f"torch here is {want.major}.{want.minor}"
            )
        if m.group(3) is not None and (m.group(3) == "cxx11") != cxx11_abi:
            return f"C++ ABI tag {m.group(3)} does not match torch's C++11 ABI ({cxx11_abi})"
    if len(rest) != 3:
        return f"not a variant name: {variant!r}"
    backend, vcpu, vos = rest
    if vcpu != cpu:
        return f"CPU {vcpu} does not match {cpu}"
    if vos != os:
        return f"OS {vos} does not match {os}"
    cm = _CUDA.fullmatch(backend)
    if not cm:
        return f"backend {backend} is not CUDA"
    have = Version(cuda)
    major, minor = int(cm.group(1)), int(cm.group(2))
    if major != have.major or minor > have.minor:
        return f"CUDA {major}.{minor} is not compatible with torch's CUDA {cuda}"
    return None
