"""The probe's pure parsers, on recorded tool outputs (tests/data/probe/README.md says which)."""

from __future__ import annotations

from pathlib import Path

import pytest

from attn_doctor.probe import (
    amd,
    cuda_toolkit,
    env_vars,
    host,
    imports,
    nvidia,
    packages,
    python_env,
    torch_meta,
)

DATA = Path(__file__).parent / "data" / "probe"


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


# --- nvidia-smi -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "driver", "cuda"),
    [
        ("smi_header_h100_550.txt", "550.54.15", "12.4"),
        ("smi_header_b200_610_umd.txt", "610.43.02", "13.3"),
        # WSL: the Windows driver's version, not NVIDIA-SMI's own
        ("smi_header_wsl_rtx5090.txt", "572.70", "12.8"),
        ("smi_header_t4_470.txt", "470.182.03", "11.4"),
        ("smi_q_450.txt", "450.66", "11.0"),
        ("smi_failed.txt", None, None),
    ],
    ids=["h100-550", "b200-610-umd", "wsl-5090", "t4-470", "smi-q-450", "failed"],
)
def test_parse_smi_header(name: str, driver: str | None, cuda: str | None) -> None:
    assert nvidia.parse_smi_header(read(name)) == (driver, cuda)


def test_parse_smi_header_cuda_driver_version_label() -> None:
    assert nvidia.parse_smi_header("CUDA Driver Version : 13.1\n") == (None, "13.1")


def test_parse_smi_csv_h100() -> None:
    gpus, driver = nvidia.parse_smi_csv(read("smi_csv_h100x2.txt"))
    assert driver == "550.54.15"
    assert [g.index for g in gpus] == [0, 1]
    first = gpus[0]
    assert first.vendor == "nvidia"
    assert first.name == "NVIDIA H100 80GB HBM3"
    assert first.compute_capability == "9.0"
    assert first.sm == 90
    assert first.memory_total_bytes == 81559 * 1024 * 1024
    assert first.uuid == "GPU-5c3b5e2a-7f0e-2b41-9d6c-0e8a4f1b2c3d"
    assert first.pci_bus_id == "00000000:18:00.0"
    assert first.source == "nvidia-smi"


def test_parse_smi_csv_not_available_values() -> None:
    gpus, _ = nvidia.parse_smi_csv(read("smi_csv_mixed.txt"))
    assert [g.compute_capability for g in gpus] == ["8.9", "6.1", None]
    mig = gpus[2]
    assert mig.memory_total_bytes is None
    assert mig.uuid is None
    assert mig.name == "NVIDIA A100-SXM4-40GB MIG 3g.20gb"


def test_parse_smi_csv_without_compute_cap() -> None:
    fields = tuple(f for f in nvidia.SMI_FIELDS if f != "compute_cap")
    gpus, driver = nvidia.parse_smi_csv(read("smi_csv_v100_470_no_cc.txt"), fields)
    assert driver == "470.182.03"
    assert len(gpus) == 1
    assert gpus[0].name == "Tesla V100-SXM2-16GB"
    assert gpus[0].compute_capability is None
    assert gpus[0].memory_total_bytes == 16160 * 1024 * 1024


def test_parse_smi_csv_ignores_error_text() -> None:
    assert nvidia.parse_smi_csv(read("smi_invalid_compute_cap.txt")) == ((), None)
    assert nvidia.parse_smi_csv(read("smi_failed.txt")) == ((), None)


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("proc_driver_version_proprietary.txt", "550.54.14"),
        ("proc_driver_version_open.txt", "570.133.20"),
    ],
    ids=["proprietary", "open"],
)
def test_parse_proc_driver_version(name: str, version: str) -> None:
    assert nvidia.parse_proc_driver_version(read(name)) == version


def test_parse_sys_module_version() -> None:
    assert nvidia.parse_sys_module_version("580.65.06\n") == "580.65.06"
    assert nvidia.parse_sys_module_version("garbage") is None


@pytest.mark.parametrize(
    ("value", "text"), [(12080, "12.8"), (13000, "13.0"), (11040, "11.4"), (0, None)]
)
def test_format_cuda_driver_version(value: int, text: str | None) -> None:
    assert nvidia.format_cuda_driver_version(value) == text


# --- nvcc -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "release", "version"),
    [
        ("nvcc_11_8.txt", "11.8", "11.8.89"),
        ("nvcc_12_4.txt", "12.4", "12.4.131"),
        ("nvcc_13_0.txt", "13.0", "13.0.88"),
    ],
    ids=["11.8", "12.4", "13.0"],
)
def test_parse_nvcc_version(name: str, release: str, version: str) -> None:
    assert cuda_toolkit.parse_nvcc_version(read(name)) == (release, version)


def test_parse_nvcc_version_garbage() -> None:
    assert cuda_toolkit.parse_nvcc_version("nvcc: command not found") is None


# --- host -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "distro_id", "version", "pretty"),
    [
        ("os_release_ubuntu_2204.txt", "ubuntu", "22.04", "Ubuntu 22.04.4 LTS"),
        ("os_release_debian_12.txt", "debian", "12", "Debian GNU/Linux 12 (bookworm)"),
        ("os_release_alpine.txt", "alpine", "3.20.3", "Alpine Linux v3.20"),
        ("os_release_rocky_9.txt", "rocky", "9.4", "Rocky Linux 9.4 (Blue Onyx)"),
    ],
    ids=["ubuntu", "debian", "alpine", "rocky-with-bad-line"],
)
def test_parse_os_release(name: str, distro_id: str, version: str, pretty: str) -> None:
    data = host.parse_os_release(read(name))
    assert (data["ID"], data["VERSION_ID"], data["PRETTY_NAME"]) == (distro_id, version, pretty)


@pytest.mark.parametrize(
    ("proc_version", "osrelease", "wsl"),
    [
        ("proc_version_wsl1.txt", "osrelease_wsl1.txt", 1),
        ("proc_version_wsl2.txt", "osrelease_wsl2.txt", 2),
        ("proc_version_wsl2_4_19.txt", None, 2),
        ("proc_version_ubuntu.txt", None, 0),
        (None, None, None),
    ],
    ids=["wsl1", "wsl2", "wsl2-4.19", "native", "unreadable"],
)
def test_parse_wsl(proc_version: str | None, osrelease: str | None, wsl: int | None) -> None:
    assert (
        host.parse_wsl(
            read(proc_version) if proc_version else None, read(osrelease) if osrelease else None
        )
        == wsl
    )


def test_parse_ldd_version() -> None:
    assert host.parse_ldd_version(read("ldd_glibc.txt")) == ("glibc", "2.35")
    assert host.parse_ldd_version(read("ldd_musl.txt")) == ("musl", "1.2.5")
    assert host.parse_ldd_version("nothing") is None


def test_parse_cgroup_container() -> None:
    assert host.parse_cgroup_container("12:pids:/docker/3f2a1b\n0::/docker/3f2a1b\n")
    assert host.parse_cgroup_container("11:cpu:/kubepods/besteffort/pod1234/abcd\n")
    assert not host.parse_cgroup_container("0::/\n")
    assert not host.parse_cgroup_container("0::/user.slice/user-1000.slice/session-2.scope\n")


@pytest.mark.parametrize(
    ("machine", "system", "arch"),
    [
        ("x86_64", "linux", "x86_64"),
        ("AMD64", "windows", "x86_64"),
        ("aarch64", "linux", "aarch64"),
        ("arm64", "darwin", "arm64"),
        ("ARM64", "windows", "arm64"),
        ("ppc64le", "linux", "ppc64le"),
        ("", "linux", None),
    ],
)
def test_normalise_arch(machine: str, system: str, arch: str | None) -> None:
    assert host.normalise_arch(machine, system) == arch


# --- python ---------------------------------------------------------------------------------


def test_abi_tag() -> None:
    assert (
        python_env.abi_tag(
            implementation="cpython", version=(3, 11), free_threaded=False, soabi=None
        )
        == "cp311"
    )
    assert (
        python_env.abi_tag(
            implementation="cpython", version=(3, 13), free_threaded=True, soabi=None
        )
        == "cp313t"
    )
    assert (
        python_env.abi_tag(
            implementation="pypy",
            version=(3, 10),
            free_threaded=False,
            soabi="pypy310-pp73-x86_64-linux-gnu",
        )
        == "pypy310_pp73"
    )


def test_parse_uv_version() -> None:
    assert python_env.parse_uv_version("uv 0.9.5 (d5f39331a 2025-10-21)\n") == "0.9.5"
    assert python_env.parse_uv_version("error") is None


# --- torch ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "build", "cuda", "hip"),
    [
        ("torch_version_cu128.txt", "cuda", "12.8", None),
        ("torch_version_rocm63.txt", "rocm", None, "6.3.42131-fa1d09cbd"),
        ("torch_version_cpu_2.13.txt", "cpu", None, None),
        ("torch_version_xpu.txt", "xpu", None, None),
    ],
    ids=["cu128", "rocm6.3", "cpu-2.13", "xpu"],
)
def test_version_py_build(name: str, build: str, cuda: str | None, hip: str | None) -> None:
    fields = torch_meta.parse_version_py(read(name))
    version = fields["__version__"]
    assert isinstance(version, str)
    assert torch_meta.torch_build(version, fields)[0] == build
    assert fields.get("cuda") == cuda
    assert fields.get("hip") == hip


def test_version_py_is_parsed_not_executed() -> None:
    text = "import os\nos.system('false')\n__version__ = '2.5.0'\ncuda = compute()\n"
    assert torch_meta.parse_version_py(text) == {"__version__": "2.5.0"}
    assert torch_meta.parse_version_py("def (:") == {}


@pytest.mark.parametrize(
    ("version", "build"),
    [
        ("2.8.0+cu128", "cuda"),
        ("2.7.1+rocm6.3", "rocm"),
        ("2.13.0+cpu", "cpu"),
        ("2.7.1+xpu", "xpu"),
        ("2.5.1", "unknown"),
    ],
)
def test_build_from_local_label_alone(version: str, build: str) -> None:
    assert torch_meta.torch_build(version, {})[0] == build


@pytest.mark.parametrize(
    ("name", "abi"),
    [
        ("TorchConfig_abi0.cmake", False),
        ("TorchConfig_abi1.cmake", True),
        ("TorchConfig_2.13_noflag.cmake", None),
    ],
    ids=["abi0", "abi1", "2.13-no-flag"],
)
def test_parse_torchconfig_abi(name: str, abi: bool | None) -> None:
    assert torch_meta.parse_torchconfig_abi(read(name)) is abi


def test_scan_cxx11_symbols(tmp_path: Path) -> None:
    new = tmp_path / "new.so"
    # The marker straddles the 16-byte read boundary used below.
    new.write_bytes(b"\0" * 13 + b"_ZN3c105ErrorC2ENS_14SourceLocationENSt7__cxx1112basic_string")
    old = tmp_path / "old.so"
    old.write_bytes(b"\0" * 64 + b"_ZN3c105ErrorC2ENS_14SourceLocationESs" + b"\0" * 64)
    assert torch_meta.scan_cxx11_symbols(new, chunk=16) is True
    assert torch_meta.scan_cxx11_symbols(old, chunk=16) is False
    assert torch_meta.scan_cxx11_symbols(tmp_path / "missing.so") is None


def test_local_label() -> None:
    assert torch_meta.local_label("2.8.0+cu128") == "cu128"
    assert torch_meta.local_label("2.8.3") is None


# --- packages -------------------------------------------------------------------------------


def test_parse_xformers_cpp_lib_cuda() -> None:
    info = dict(packages.parse_xformers_cpp_lib(read("xformers_cpp_lib_0.0.34_cu128.json")) or ())
    assert info["torch"] == "2.10.0+cu128"
    assert info["cuda"] == "1208"
    assert info["python"] == "3.10.11"
    assert info["env.XFORMERS_PACKAGE_FROM"] == "wheel-v0.0.34"
    assert info["env.TORCH_CUDA_ARCH_LIST"] == "7.5 8.0+PTX 9.0a 10.0a 12.0"
    assert "hip" not in info  # null values are left out
    assert "env.PYTORCH_ROCM_ARCH" not in info


def test_parse_xformers_cpp_lib_rocm() -> None:
    info = dict(packages.parse_xformers_cpp_lib(read("xformers_cpp_lib_rocm.json")) or ())
    assert info["hip"] == "6.2.41133-dd7f95766"
    assert info["use_torch_flash"] == "false"
    assert info["env.PYTORCH_ROCM_ARCH"] == "gfx90a;gfx942"
    assert "cuda" not in info


def test_parse_xformers_cpp_lib_bad() -> None:
    assert packages.parse_xformers_cpp_lib("not json") is None
    assert packages.parse_xformers_cpp_lib("[1, 2]") is None


def test_direct_url_and_wheel_label() -> None:
    url = (
        "https://github.com/Dao-AILab/flash-attention/releases/download/v2.8.3/"
        "flash_attn-2.8.3%2Bcu12torch2.8cxx11abiTRUE-cp311-cp311-linux_x86_64.whl"
    )
    text = f'{{"url": "{url}", "archive_info": {{"hash": "sha256=00"}}}}'
    assert packages.parse_direct_url(text) == (False, url)
    assert packages.wheel_local_label(url) == "cu12torch2.8cxx11abiTRUE"
    editable = '{"url": "file:///src/flash-attention", "dir_info": {"editable": true}}'
    assert packages.parse_direct_url(editable) == (True, None)
    assert packages.wheel_local_label("https://x/y/flash_attn-2.8.3.tar.gz") is None


def test_watched_names() -> None:
    assert packages.is_watched("flash-attn-3")
    assert packages.is_watched("nvidia-cudnn-cu12")
    assert not packages.is_watched("numpy")
    assert not packages.is_watched("torch")  # torch has its own facts


# --- AMD ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "gfx"),
    [(90402, "gfx942"), (90010, "gfx90a"), (110000, "gfx1100"), (100300, "gfx1030"), (0, None)],
)
def test_gfx_from_target_version(value: int, gfx: str | None) -> None:
    assert amd.gfx_from_target_version(value) == gfx


def test_probe_amd_gpus_on_recorded_topology(tmp_path: Path) -> None:
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "properties").write_text(read("kfd_node_cpu.txt"))
    gpu = tmp_path / "1"
    (gpu / "mem_banks" / "0").mkdir(parents=True)
    (gpu / "properties").write_text(read("kfd_node_mi300x.txt"))
    (gpu / "mem_banks" / "0" / "properties").write_text(read("kfd_mem_bank_mi300x.txt"))
    gpus, unknowns = amd.probe_amd_gpus(tmp_path)
    assert unknowns == []
    assert len(gpus) == 1
    assert gpus[0].vendor == "amd"
    assert gpus[0].gfx_arch == "gfx942"
    assert gpus[0].memory_total_bytes == 206141652992
    assert gpus[0].source == "sysfs"
    assert amd.probe_amd_gpus(tmp_path / "absent") == ((), [])


def test_parse_rocm_version() -> None:
    assert amd.parse_rocm_version("6.3.1-48\n") == "6.3.1"
    assert amd.parse_rocm_version("") is None


# --- env vars, exits, torch runtime payload -------------------------------------------------


def test_select_env_vars() -> None:
    environ = {
        "CUDA_VISIBLE_DEVICES": "1,0",
        "FLASH_ATTENTION_FORCE_BUILD": "TRUE",
        "XFORMERS_MORE_DETAILS": "1",
        "MAX_JOBS": "4",
        "HF_TOKEN": "hf_secret",
        "UNSLOTH_API_KEY": "secret",
        "HOME": "/root",
        "LD_LIBRARY_PATH": "/x" * 400,
    }
    selected = dict(env_vars.select_env_vars(environ))
    assert selected["CUDA_VISIBLE_DEVICES"] == "1,0"
    assert selected["FLASH_ATTENTION_FORCE_BUILD"] == "TRUE"
    assert selected["XFORMERS_MORE_DETAILS"] == "1"
    assert selected["MAX_JOBS"] == "4"
    assert "HF_TOKEN" not in selected
    assert "UNSLOTH_API_KEY" not in selected
    assert "HOME" not in selected
    assert selected["LD_LIBRARY_PATH"].endswith("…(+500 chars)")
    assert list(selected) == sorted(selected)


@pytest.mark.parametrize(
    ("code", "windows", "text"),
    [
        (-11, False, "SIGSEGV"),
        (-6, False, "SIGABRT"),
        (3, False, "exit status 3"),
        (3221225477, True, "0xC0000005 STATUS_ACCESS_VIOLATION"),
        (-1073741819, True, "0xC0000005 STATUS_ACCESS_VIOLATION"),
        (0xC0000999, True, "NTSTATUS 0xC0000999"),
    ],
)
def test_describe_exit(code: int, windows: bool, text: str) -> None:
    assert imports.describe_exit(code, windows=windows) == text


def test_torch_runtime_from_recorded_payload() -> None:
    payload = {
        "status": "ok",
        "torch_version": "2.8.0+cu128",
        "torch_cuda": "12.8",
        "cuda_available": True,
        "device_count": 2,
        "arch_list": ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"],
        "device_capabilities": ["9.0", "9.0"],
        "device_names": ["NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"],
        "cudnn_version": 91002,
        "cxx11_abi": True,
        "flash_sdp_available": True,
        "mps_available": False,
    }
    rt = imports.torch_runtime_from_payload(payload, 2.5)
    assert rt.cuda_available is True
    assert rt.device_count == 2
    assert rt.arch_list[-1] == "sm_120"
    assert rt.device_capabilities == ("9.0", "9.0")
    assert rt.cudnn_version == 91002
    assert rt.cxx11_abi is True
    assert rt.error is None
    assert rt.seconds == 2.5
    broken = imports.torch_runtime_from_payload({"device_count": True, "errors": ["x: y"]}, None)
    assert broken.device_count is None  # a bool is not a count
    assert broken.error == "x: y"


def test_modules_to_import() -> None:
    mods = imports.modules_to_import({"torch", "flash-attn", "xformers", "sageattention", "numpy"})
    # torch first, then each installed backend's modules from its record in backends.toml.
    assert mods == (
        "torch",
        "flash_attn",
        "flash_attn_2_cuda",
        "xformers.ops",
        "xformers._cpp_lib",
        "sageattention",
    )
    assert imports.modules_to_import({"pytorch-triton", "triton"}) == ("triton",)


def test_parse_meminfo() -> None:
    from attn_doctor.probe.host import parse_meminfo

    text = "MemTotal:       24593152 kB\nMemFree:         1000 kB\nMemAvailable:   23000000 kB\n"
    assert parse_meminfo(text) == (24593152 * 1024, 23000000 * 1024)
    assert parse_meminfo("garbage") == (None, None)


def test_no_nvidia_device_nodes(tmp_path: Path) -> None:
    from attn_doctor.probe.nvidia import _no_nvidia_device_nodes

    (tmp_path / "proc").mkdir()
    (tmp_path / "dev").mkdir()
    reason = _no_nvidia_device_nodes(tmp_path)
    assert reason is not None
    assert "no NVIDIA kernel module" in reason
    (tmp_path / "dev" / "dxg").touch()  # WSL's GPU bridge: NVML must be tried
    assert _no_nvidia_device_nodes(tmp_path) is None
