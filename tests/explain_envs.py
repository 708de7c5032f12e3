"""Environments for explain tests, built from the facts dataclasses (no machine is read)."""

from __future__ import annotations

import dataclasses
from typing import Any

from attn_doctor.facts import (
    CudaToolkitFacts,
    DriverFacts,
    Environment,
    GpuFacts,
    HostFacts,
    PackageFacts,
    PythonFacts,
    TorchFacts,
)

GIB = 1024**3


def gpu(cc: str, name: str = "NVIDIA GPU", index: int = 0) -> GpuFacts:
    return GpuFacts(index=index, vendor="nvidia", name=name, compute_capability=cc, source="nvml")


def make_env(**changes: Any) -> Environment:
    """A Linux x86_64 box: Python 3.11, torch 2.7.1+cu126 (cxx11 ABI), driver CUDA 12.8, one
    RTX 4090 (sm_89), nvcc 12.6, 64 GiB free for 16 CPUs, glibc 2.35. Override any field."""
    base = Environment(
        host=HostFacts(
            os="linux",
            distro_id="ubuntu",
            distro_version="22.04",
            distro_name="Ubuntu 22.04.4 LTS",
            libc="glibc",
            libc_version="2.35",
            arch="x86_64",
            cpu_count=16,
            ram_total_bytes=128 * GIB,
            ram_available_bytes=64 * GIB,
        ),
        python=PythonFacts(version="3.11.7", implementation="cpython", abi_tag="cp311"),
        driver=DriverFacts(version="570.86.15", cuda_version="12.8", source="nvml"),
        gpus=(gpu("8.9", "NVIDIA GeForce RTX 4090"),),
        cuda_toolkit=CudaToolkitFacts(
            nvcc_path="/usr/local/cuda/bin/nvcc",
            nvcc_version="12.6.85",
            release="12.6",
            cuda_home="/usr/local/cuda",
        ),
        torch=TorchFacts(
            version="2.7.1+cu126",
            build="cuda",
            cuda="12.6",
            cxx11_abi=True,
            requires=("triton==3.3.1; platform_system == \"Linux\"",),
        ),
        packages=(PackageFacts(name="flash-attn", version="2.8.3"),),
    )
    return dataclasses.replace(base, **changes)


def with_host(env: Environment, **changes: Any) -> Environment:
    return dataclasses.replace(env, host=dataclasses.replace(env.host, **changes))


def with_torch(env: Environment, **changes: Any) -> Environment:
    assert env.torch is not None
    return dataclasses.replace(env, torch=dataclasses.replace(env.torch, **changes))
