"""Snapshot-like ``Environment`` profiles for the resolver tests (one per source / "no" reason)."""

from __future__ import annotations

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

GIB = 2**30

GPUS = {
    "H100": ("NVIDIA H100 80GB HBM3", "9.0"),
    "A100": ("NVIDIA A100-SXM4-80GB", "8.0"),
    "RTX4090": ("NVIDIA GeForce RTX 4090", "8.9"),
    "RTX5090": ("NVIDIA GeForce RTX 5090", "12.0"),
    "T4": ("Tesla T4", "7.5"),
    "GH200": ("NVIDIA GH200 480GB", "9.0"),
    "K80": ("Tesla K80", "3.7"),
}


def make_env(
    *,
    torch: str | None = "2.8.0+cu128",
    torch_cuda: str | None = "12.8",
    build: str = "cuda",
    abi: bool | None = True,
    python: str = "3.12.7",
    free_threaded: bool = False,
    os: str = "linux",
    arch: str = "x86_64",
    gpu: str | None = "H100",
    nvcc: str | None = None,
    ram_gib: int = 64,
    cpus: int = 16,
    glibc: str = "2.35",
    packages: tuple[tuple[str, str], ...] = (
        ("torchvision", "0.23.0+cu128"),
        ("triton", "3.4.0"),
    ),
) -> Environment:
    gpus: tuple[GpuFacts, ...] = ()
    if gpu is not None:
        name, cc = GPUS[gpu]
        gpus = (GpuFacts(index=0, vendor="nvidia", name=name, compute_capability=cc),)
    return Environment(
        host=HostFacts(
            os=os,  # type: ignore[arg-type]
            arch=arch,
            cpu_count=cpus,
            ram_total_bytes=ram_gib * GIB,
            libc="glibc" if os == "linux" else None,
            libc_version=glibc if os == "linux" else None,
        ),
        python=PythonFacts(
            version=python,
            implementation="cpython",
            executable="/venv/bin/python",
            free_threaded=free_threaded,
            abi_tag="cp" + "".join(python.split(".")[:2]) + ("t" if free_threaded else ""),
        ),
        driver=DriverFacts(version="580.65.06", cuda_version="13.0"),
        gpus=gpus,
        cuda_toolkit=CudaToolkitFacts(release=nvcc, nvcc_version=f"{nvcc}.88" if nvcc else None),
        torch=(
            TorchFacts(version=torch, build=build, cuda=torch_cuda, cxx11_abi=abi)  # type: ignore[arg-type]
            if torch
            else None
        ),
        packages=tuple(PackageFacts(name=n, version=v) for n, v in packages),
    )
