"""The NVIDIA readers: NVML with a fake ``pynvml`` (this machine has no GPU; the only mock in
the probe tests), and ``nvidia-smi`` as a planted program printing recorded output."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from attn_doctor.probe import nvidia

DATA = Path(__file__).parent / "data" / "probe"


class FakeNVMLError(Exception):
    pass


class FakeNvml:
    """The subset of pynvml the probe calls, answering like an 2×H100 machine."""

    def __init__(self, *, as_bytes: bool = False, fail_init: str | None = None) -> None:
        self.as_bytes = as_bytes
        self.fail_init = fail_init
        self.shutdown_called = False
        self.devices = [
            ("NVIDIA H100 80GB HBM3", (9, 0), 85520809984, "GPU-aaaa", "00000000:18:00.0"),
            ("NVIDIA A100-SXM4-80GB", (8, 0), 85899345920, "GPU-bbbb", "00000000:2A:00.0"),
        ]

    def _s(self, text: str) -> str | bytes:
        return text.encode() if self.as_bytes else text

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise FakeNVMLError(self.fail_init)

    def nvmlShutdown(self) -> None:
        self.shutdown_called = True

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        return self._s("580.65.06")

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return 13000

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, h: int) -> str | bytes:
        return self._s(self.devices[h][0])

    def nvmlDeviceGetCudaComputeCapability(self, h: int) -> tuple[int, int]:
        return self.devices[h][1]

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Any:
        return SimpleNamespace(total=self.devices[h][2], free=0, used=0)

    def nvmlDeviceGetUUID(self, h: int) -> str | bytes:
        return self._s(self.devices[h][3])

    def nvmlDeviceGetPciInfo(self, h: int) -> Any:
        return SimpleNamespace(busId=self._s(self.devices[h][4]))


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str-returns", "bytes-returns"])
def test_nvml_two_gpus(as_bytes: bool) -> None:
    fake = FakeNvml(as_bytes=as_bytes)
    result = nvidia.probe_nvml(fake)
    assert isinstance(result, nvidia.NvidiaFacts)
    assert result.driver.version == "580.65.06"
    assert result.driver.cuda_version == "13.0"
    assert result.driver.source == "nvml"
    assert [g.name for g in result.gpus] == ["NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"]
    assert [g.compute_capability for g in result.gpus] == ["9.0", "8.0"]
    assert result.gpus[0].memory_total_bytes == 85520809984
    assert result.gpus[1].uuid == "GPU-bbbb"
    assert result.gpus[0].pci_bus_id == "00000000:18:00.0"
    assert all(g.source == "nvml" for g in result.gpus)
    assert result.unknowns == ()
    assert fake.shutdown_called


def test_nvml_per_device_failure_is_an_unknown_not_a_crash() -> None:
    fake = FakeNvml()

    def broken(h: int) -> tuple[int, int]:
        raise FakeNVMLError("Not Supported")

    fake.nvmlDeviceGetCudaComputeCapability = broken  # type: ignore[method-assign]
    result = nvidia.probe_nvml(fake)
    assert isinstance(result, nvidia.NvidiaFacts)
    assert [g.compute_capability for g in result.gpus] == [None, None]
    assert {u.field for u in result.unknowns} == {
        "gpus[0].compute_capability",
        "gpus[1].compute_capability",
    }
    assert all("Not Supported" in u.reason for u in result.unknowns)


class OldFakeNvml(FakeNvml):
    """An older pynvml: no ``_v2`` call for the CUDA driver version."""

    nvmlSystemGetCudaDriverVersion_v2 = None  # type: ignore[assignment]  # noqa: N815 - pynvml spelling

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12040


def test_nvml_old_binding_without_v2_call() -> None:
    result = nvidia.probe_nvml(OldFakeNvml())
    assert isinstance(result, nvidia.NvidiaFacts)
    assert result.driver.cuda_version == "12.4"


def test_nvml_init_failure_returns_the_reason() -> None:
    reason = nvidia.probe_nvml(FakeNvml(fail_init="Driver/library version mismatch"))
    assert reason == "NVML: Driver/library version mismatch"


def test_real_nvml_on_this_machine_reports_why_not() -> None:
    # No NVIDIA driver here: the real pynvml must fail to load, and say so.
    if Path("/proc/driver/nvidia/version").exists():
        pytest.skip("this machine has an NVIDIA driver")
    result = nvidia.probe_nvml()
    assert isinstance(result, str)
    assert result.startswith("NVML: ")


# --- nvidia-smi as a planted program --------------------------------------------------------

needs_posix = pytest.mark.skipif(sys.platform == "win32", reason="planted tool is a sh script")


def plant_smi(bin_dir: Path, *, csv: str, header: str, invalid_cc: bool = False) -> None:
    """A ``nvidia-smi`` that prints recorded output: the CSV for --query-gpu, the banner
    otherwise; with ``invalid_cc`` it rejects the compute_cap field like drivers < 510."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "nvidia-smi"
    reject = (
        f'case "$1" in *compute_cap*) cat "{DATA / "smi_invalid_compute_cap.txt"}"; exit 2;; esac\n'
        if invalid_cc
        else ""
    )
    script.write_text(
        "#!/bin/sh\n"
        + reject
        + f'case "$1" in --query-gpu=*) cat "{DATA / csv}"; exit 0;; esac\n'
        + f'cat "{DATA / header}"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


@pytest.mark.functional
@needs_posix
def test_smi_fallback_with_compute_cap(tmp_path: Path) -> None:
    plant_smi(tmp_path, csv="smi_csv_h100x2.txt", header="smi_header_h100_550.txt")
    result = nvidia.probe_nvidia_smi({"PATH": f"{tmp_path}:/usr/bin:/bin"}, timeout=10)
    assert isinstance(result, nvidia.NvidiaFacts)
    assert result.driver.version == "550.54.15"
    assert result.driver.cuda_version == "12.4"
    assert result.driver.source == "nvidia-smi"
    assert [g.compute_capability for g in result.gpus] == ["9.0", "9.0"]


@pytest.mark.functional
@needs_posix
def test_smi_fallback_old_driver_without_compute_cap(tmp_path: Path) -> None:
    plant_smi(
        tmp_path,
        csv="smi_csv_v100_470_no_cc.txt",
        header="smi_header_t4_470.txt",
        invalid_cc=True,
    )
    result = nvidia.probe_nvidia_smi({"PATH": f"{tmp_path}:/usr/bin:/bin"}, timeout=10)
    assert isinstance(result, nvidia.NvidiaFacts)
    assert [g.name for g in result.gpus] == ["Tesla V100-SXM2-16GB"]
    assert result.gpus[0].compute_capability is None
    assert result.driver.cuda_version == "11.4"
    assert [u.field for u in result.unknowns] == ["gpus[0].compute_capability"]


@pytest.mark.functional
@needs_posix
def test_probe_nvidia_falls_back_from_nvml_to_smi(tmp_path: Path) -> None:
    plant_smi(tmp_path, csv="smi_csv_mixed.txt", header="smi_header_b200_610_umd.txt")
    facts = nvidia.probe_nvidia(
        {"PATH": f"{tmp_path}:/usr/bin:/bin"},
        timeout=10,
        nvml=FakeNvml(fail_init="NVML Shared Library Not Found"),
    )
    assert facts.driver.source == "nvidia-smi"
    assert facts.driver.cuda_version == "13.3"
    assert len(facts.gpus) == 3
    assert any("NVML Shared Library Not Found" in u.reason for u in facts.unknowns)


@pytest.mark.functional
@needs_posix
def test_smi_that_fails_gives_its_message(tmp_path: Path) -> None:
    script = tmp_path / "nvidia-smi"
    script.write_text(f'#!/bin/sh\ncat "{DATA / "smi_failed.txt"}"\nexit 9\n')
    script.chmod(0o755)
    result = nvidia.probe_nvidia_smi({"PATH": f"{tmp_path}:/usr/bin:/bin"}, timeout=10)
    assert isinstance(result, str)
    assert result.startswith("nvidia-smi failed (exit 9): NVIDIA-SMI has failed")


@pytest.mark.functional
@needs_posix
def test_smi_that_hangs_is_cut_off(tmp_path: Path) -> None:
    script = tmp_path / "nvidia-smi"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    result = nvidia.probe_nvidia_smi({"PATH": f"{tmp_path}:/usr/bin:/bin"}, timeout=1)
    assert isinstance(result, str)
    assert "did not finish within 1 s" in result


def test_no_driver_at_all_names_every_reason(tmp_path: Path) -> None:
    if Path("/proc/driver/nvidia/version").exists() or Path("/sys/module/nvidia").exists():
        pytest.skip("this machine has an NVIDIA driver")
    facts = nvidia.probe_nvidia(
        {"PATH": f"{tmp_path}:/usr/bin:/bin"},
        timeout=5,
        nvml=FakeNvml(fail_init="NVML Shared Library Not Found"),
        pci_root=tmp_path / "no-pci",
    )
    assert facts.gpus == ()
    assert facts.driver.version is None
    (unk,) = facts.unknowns
    assert unk.field == "driver.version"
    assert "NVML Shared Library Not Found" in unk.reason
    assert "nvidia-smi is not on PATH" in unk.reason
    assert "no NVIDIA kernel module" in unk.reason


def test_cuda_visible_devices_does_not_filter_gpus() -> None:
    # NVML ignores CUDA_VISIBLE_DEVICES; so does the probe (the variable is recorded apart).
    env = {"CUDA_VISIBLE_DEVICES": "1", "PATH": os.defpath}
    facts = nvidia.probe_nvidia(env, timeout=5, nvml=FakeNvml())
    assert len(facts.gpus) == 2


def fake_pci_tree(root: Path) -> Path:
    """A recorded-shape /sys/bus/pci/devices: a host bridge, an H100 (3D controller), an
    NVIDIA audio function (class 0x0403, not a GPU) and an AMD MI300X (class 0x0380)."""
    devices = {
        "0000:00:00.0": ("0x8086", "0x060000", "0x09a2"),
        "0000:2a:00.0": ("0x10de", "0x030200", "0x2330"),
        "0000:2a:00.1": ("0x10de", "0x040300", "0x22bb"),
        "0000:c1:00.0": ("0x1002", "0x038000", "0x74a1"),
    }
    for name, (vendor, cls, device) in devices.items():
        d = root / name
        d.mkdir(parents=True)
        (d / "vendor").write_text(vendor + "\n")
        (d / "class").write_text(cls + "\n")
        (d / "device").write_text(device + "\n")
    return root


def test_pci_scan_finds_nvidia_gpus_only(tmp_path: Path) -> None:
    gpus = nvidia.probe_pci_nvidia(fake_pci_tree(tmp_path / "pci"))
    assert [(g.name, g.pci_bus_id, g.source) for g in gpus] == [
        ("NVIDIA PCI device 10de:2330", "00000000:2A:00.0", "sysfs")
    ]
    assert nvidia.probe_pci_nvidia(tmp_path / "absent") == ()


def test_gpu_without_driver_is_reported(tmp_path: Path) -> None:
    if Path("/proc/driver/nvidia/version").exists() or Path("/sys/module/nvidia").exists():
        pytest.skip("this machine has an NVIDIA driver")
    facts = nvidia.probe_nvidia(
        {"PATH": str(tmp_path)},
        timeout=5,
        nvml=FakeNvml(fail_init="Driver Not Loaded"),
        pci_root=fake_pci_tree(tmp_path / "pci"),
    )
    assert facts.driver.version is None
    assert [g.name for g in facts.gpus] == ["NVIDIA PCI device 10de:2330"]
    reasons = {u.field: u.reason for u in facts.unknowns}
    assert "no NVIDIA driver found" in reasons["driver.version"]
    assert reasons["gpus"].startswith("1 NVIDIA GPU(s) on the PCI bus but no driver answers")


def test_probe_environment_with_fake_nvml_round_trips() -> None:
    from attn_doctor.facts import Environment
    from attn_doctor.probe import probe_environment

    env = probe_environment(nvml=FakeNvml(), environ={"PATH": os.defpath})
    assert env.driver.version == "580.65.06"
    assert env.driver.cuda_version == "13.0"
    assert [g.sm for g in env.nvidia_gpus] == [90, 80]
    assert env.unknown_reason("driver.version") is None
    assert Environment.from_json(env.to_json()) == env


def test_nvml_garbage_answers_become_unknowns() -> None:
    fake: Any = FakeNvml()
    fake.nvmlDeviceGetCount = lambda: "lots"
    result = nvidia.probe_nvml(fake)
    assert isinstance(result, nvidia.NvidiaFacts)
    assert result.gpus == ()
    assert [u.field for u in result.unknowns] == ["gpus"]
