"""The ROCm toolkit against torch's HIP, as nvcc is compared with torch's CUDA (no snapshot)."""

from __future__ import annotations

import pytest

from attn_doctor.diagnose import diagnose, rocm_release
from attn_doctor.facts import (
    CudaToolkitFacts,
    Environment,
    GpuFacts,
    HostFacts,
    PythonFacts,
    TorchFacts,
)
from attn_doctor.rules_data import load_rules

RULE = "rocm-toolkit-torch-hip-mismatch"


def _env(toolkit: str | None, hip: str | None, *, amd: bool = True) -> Environment:
    gpus = (GpuFacts(index=0, vendor="amd", name="AMD Instinct MI300X"),) if amd else ()
    return Environment(
        host=HostFacts(os="linux", arch="x86_64"),
        python=PythonFacts(version="3.12.8", implementation="cpython"),
        gpus=gpus,
        cuda_toolkit=CudaToolkitFacts(rocm_version=toolkit),
        torch=TorchFacts(version="2.5.1+rocm6.1", build="rocm", hip=hip),
    )


def test_rocm_6_2_toolkit_with_torch_for_rocm_6_1_is_flagged() -> None:
    (f,) = [x for x in diagnose(_env("6.2.4", "6.1.40091"), load_rules()).findings if x.id == RULE]
    assert f.severity == "warning"
    assert "6.2.4" in f.title
    assert "6.1.40091" in f.title
    assert "ROCm 6.1" in (f.fix or "")
    assert f.sources  # from backends.toml [rule_sources]


def test_without_an_amd_gpu_it_is_only_information() -> None:
    found = diagnose(_env("6.2.4", "6.1.40091", amd=False), load_rules()).findings
    assert [x.severity for x in found if x.id == RULE] == ["info"]


@pytest.mark.parametrize(
    ("toolkit", "hip"),
    [("6.1.3", "6.1.40091"), (None, "6.1.40091"), ("6.2", None), ("garbage", "6.1.1")],
)
def test_same_release_or_unknown_is_not_flagged(toolkit: str | None, hip: str | None) -> None:
    found = diagnose(_env(toolkit, hip), load_rules()).findings
    assert all(x.id != RULE for x in found)


def test_rocm_release() -> None:
    assert rocm_release("6.4.43482") == (6, 4)
    assert rocm_release("6.2") == (6, 2)
    assert rocm_release("6") is None
    assert rocm_release(None) is None
