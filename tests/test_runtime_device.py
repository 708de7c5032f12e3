"""Device parsing and the NVML-to-CUDA mapping (NVML's list is given: no GPU here)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from attn_doctor.errors import UsageError
from attn_doctor.facts import GpuFacts
from attn_doctor.loadtime.device import parse_device, resolve_target, target_from_nvml
from tests.conftest import REPO_ROOT


def _gpu(index: int, cc: str, name: str) -> GpuFacts:
    return GpuFacts(
        index=index,
        vendor="nvidia",
        name=name,
        compute_capability=cc,
        uuid=f"GPU-{index}{index}{index}-abc",
        source="nvml",
    )


TWO_SAME = [_gpu(0, "8.0", "A100"), _gpu(1, "8.0", "A100")]
MIXED = [_gpu(0, "7.5", "T4"), _gpu(1, "9.0", "H100")]


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        (None, None),
        ("auto", None),
        ("cpu", ("cpu", None)),
        ("cuda", ("cuda", None)),
        ("CUDA:1", ("cuda", 1)),
        (2, ("cuda", 2)),
        ("mps", ("mps", None)),
    ],
)
def test_parse_device(device: object, expected: object) -> None:
    assert parse_device(device) == expected


def test_parse_torch_device() -> None:
    torch = pytest.importorskip("torch")
    assert parse_device(torch.device("cuda", 3)) == ("cuda", 3)
    assert parse_device(torch.device("cpu")) == ("cpu", None)


@pytest.mark.parametrize("device", ["gpu please", True, 1.5])
def test_parse_device_rejects(device: object) -> None:
    with pytest.raises(UsageError):
        parse_device(device)


def test_same_gpus_map_by_index() -> None:
    target = target_from_nvml(TWO_SAME, 1, {})
    assert target is not None
    assert target.gpu is not None
    assert (target.kind, target.gpu.index, target.gpu.compute_capability) == ("cuda", 1, "8.0")
    assert target.note is None


def test_mixed_gpus_without_pci_order_take_the_oldest() -> None:
    target = target_from_nvml(MIXED, 0, {})
    assert target is not None
    assert target.gpu is not None
    assert target.gpu.compute_capability == "7.5"
    assert target.note is not None
    assert "CUDA_DEVICE_ORDER=PCI_BUS_ID" in target.note


def test_mixed_gpus_with_pci_order_are_exact() -> None:
    env = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "1"}
    target = target_from_nvml(MIXED, 0, env)
    assert target is not None
    assert target.gpu is not None
    assert (target.gpu.name, target.gpu.index) == ("H100", 0)


def test_visible_devices_by_uuid() -> None:
    target = target_from_nvml(MIXED, 0, {"CUDA_VISIBLE_DEVICES": "GPU-111"})
    assert target is not None
    assert target.gpu is not None
    assert target.gpu.name == "H100"


@pytest.mark.parametrize("visible", ["", "-1", "NoDevFiles"])
def test_hidden_gpus(visible: str) -> None:
    target = target_from_nvml(MIXED, 0, {"CUDA_VISIBLE_DEVICES": visible})
    assert target is not None
    assert target.kind == "cpu"


def test_index_out_of_range() -> None:
    with pytest.raises(UsageError, match="cuda:2"):
        target_from_nvml(TWO_SAME, 2, {})


def test_gpu_facts_as_device_plans_for_that_gpu() -> None:
    gpu = _gpu(0, "12.0", "RTX 5090")
    target = resolve_target(gpu, {})
    assert (target.kind, target.sm, target.source) == ("cuda", 120, "argument")


def test_this_machine_without_a_gpu_is_cpu() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert resolve_target(None, {}).kind == "cpu"


@pytest.mark.functional
def test_import_attn_doctor_stays_light() -> None:
    code = (
        "import sys, attn_doctor\n"
        "assert callable(attn_doctor.best_attn_implementation)\n"
        "assert callable(attn_doctor.load_kwargs)\n"
        "assert callable(attn_doctor.register_xformers_attention)\n"
        "heavy = [m for m in ('torch', 'transformers', 'pynvml', 'xformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True, timeout=120)
