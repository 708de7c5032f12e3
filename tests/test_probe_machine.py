"""The real probe on the machine running the tests: types, and agreement with ground truth
read independently (torch imported in a child process, ``nvcc`` run directly)."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from attn_doctor.facts import Environment, GpuFacts, PackageFacts
from attn_doctor.probe import probe_environment
from tests.conftest import isolated_home_env

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def env() -> Environment:
    return probe_environment()


def _torch_installed() -> bool:
    try:
        importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_types_and_round_trip(env: Environment) -> None:
    assert env.deep is False
    assert env.imports == ()
    assert env.torch_runtime is None
    assert env.created_at.endswith("Z")
    assert env.python.version == platform.python_version()
    assert env.python.executable == sys.executable
    assert env.host.cpu_count is not None
    assert env.host.cpu_count >= 1
    assert env.host.ram_total_bytes is not None
    assert env.host.ram_total_bytes > 0
    assert all(isinstance(g, GpuFacts) for g in env.gpus)
    assert all(isinstance(p, PackageFacts) for p in env.packages)
    assert [p.name for p in env.packages] == sorted(p.name for p in env.packages)
    assert all(u.field and u.reason for u in env.unknowns)
    assert Environment.from_json(env.to_json()) == env


def test_host_matches_platform(env: Environment) -> None:
    if sys.platform.startswith("linux"):
        assert env.host.os == "linux"
        assert env.host.libc == "glibc" or env.host.libc == "musl"
        assert env.host.wsl in (0, 1, 2)
        if Path("/etc/os-release").exists():
            assert env.host.distro_id
    assert env.host.arch is not None


@pytest.mark.functional
@pytest.mark.skipif(not _torch_installed(), reason="torch is not installed")
def test_torch_facts_match_the_imported_torch(env: Environment) -> None:
    # Ground truth from torch itself, imported in a child (never in this process).
    code = (
        "import json, torch; print(json.dumps([torch.__version__, torch.version.cuda, "
        "torch.version.hip, torch._C._GLIBCXX_USE_CXX11_ABI]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    ).stdout
    version, cuda, hip, abi = json.loads(out.strip().splitlines()[-1])
    assert env.torch is not None
    assert env.torch.version == version
    assert env.torch.cuda == cuda
    assert env.torch.hip == hip
    if sys.platform.startswith("linux"):
        assert env.torch.cxx11_abi is abi
        assert env.torch.cxx11_abi_source in {"TorchConfig.cmake", "libc10 symbols"}
    if version.endswith("+cpu"):
        assert env.torch.build == "cpu"
        assert env.torch.cuda is None


@pytest.mark.functional
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="no nvcc on PATH")
def test_nvcc_matches_its_own_output(env: Environment) -> None:
    out = subprocess.run(
        ["nvcc", "--version"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert env.cuda_toolkit.nvcc_path is not None
    assert env.cuda_toolkit.release is not None
    assert f"release {env.cuda_toolkit.release}, V{env.cuda_toolkit.nvcc_version}" in out


def test_no_driver_is_explained(env: Environment) -> None:
    if env.driver.version is not None:
        pytest.skip("this machine has an NVIDIA driver")
    assert env.unknown_reason("driver.version") is not None


def test_environ_is_a_parameter(tmp_path: Path) -> None:
    fake_home = tmp_path / "cuda-12.4"
    (fake_home / "bin").mkdir(parents=True)
    environ = {
        "PATH": os.defpath,
        "CUDA_HOME": str(fake_home),
        "CUDA_VISIBLE_DEVICES": "1",
        "MAX_JOBS": "4",
        "CONDA_DEFAULT_ENV": "ml",
        **isolated_home_env(),
    }
    env = probe_environment(environ=environ)
    assert env.cuda_toolkit.cuda_home == str(fake_home)
    assert env.cuda_toolkit.nvcc_path is None  # none in CUDA_HOME/bin, none on this PATH
    assert env.env("CUDA_VISIBLE_DEVICES") == "1"
    assert env.env("MAX_JOBS") == "4"
    assert env.python.conda_env == "ml"


@pytest.mark.functional
def test_check_without_deep_never_imports_torch() -> None:
    code = (
        "import sys, time, json\n"
        "t = time.perf_counter()\n"
        "from attn_doctor.probe import probe_environment\n"
        "env = probe_environment()\n"
        "print(json.dumps({'seconds': time.perf_counter() - t,\n"
        "  'heavy': sorted(m for m in ('torch', 'transformers', 'xformers', 'flash_attn')\n"
        "                  if m in sys.modules)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=REPO,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["seconds"] < 10  # measured ~0.3-0.5 s on a 2-core CPU-only machine


def test_frozen(env: Environment) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        env.deep = True  # type: ignore[misc]


DATA = Path(__file__).parent / "data" / "probe"


def _dist(root: Path, name: str, version: str, *extra: str) -> Path:
    d = root / f"{name.replace('-', '_')}-{version}.dist-info"
    d.mkdir()
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *extra]
    (d / "METADATA").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return d


def test_planted_cuda_torch_and_packages_are_read_from_files(tmp_path: Path) -> None:
    """A CUDA torch, a flash-attn release wheel, an xformers wheel and a broken dist-info,
    planted on PYTHONPATH: read from metadata and files only (nothing is imported)."""
    site = tmp_path / "site"
    site.mkdir()
    # torch 2.8.0+cu128 with the pre-2.10 TorchConfig.cmake (old ABI flag) and cuDNN wheel.
    _dist(site, "torch", "2.8.0+cu128", "Requires-Dist: nvidia-cudnn-cu12==9.10.2.21")
    torch_dir = site / "torch"
    (torch_dir / "share" / "cmake" / "Torch").mkdir(parents=True)
    (torch_dir / "version.py").write_text((DATA / "torch_version_cu128.txt").read_text())
    (torch_dir / "share" / "cmake" / "Torch" / "TorchConfig.cmake").write_text(
        (DATA / "TorchConfig_abi0.cmake").read_text()
    )
    _dist(site, "nvidia-cudnn-cu12", "9.10.2.21")
    # flash-attn installed from a GitHub release wheel URL.
    fa = _dist(site, "flash_attn", "2.8.3", "Requires-Dist: torch", "Requires-Dist: einops")
    url = (
        "https://github.com/Dao-AILab/flash-attention/releases/download/v2.8.3/"
        "flash_attn-2.8.3+cu12torch2.8cxx11abiFALSE-cp311-cp311-linux_x86_64.whl"
    )
    (fa / "direct_url.json").write_text(json.dumps({"url": url, "archive_info": {}}))
    (fa / "INSTALLER").write_text("uv\n")
    # xformers with its build metadata.
    _dist(site, "xformers", "0.0.34")
    (site / "xformers").mkdir()
    (site / "xformers" / "cpp_lib.json").write_text(
        (DATA / "xformers_cpp_lib_0.0.34_cu128.json").read_text()
    )
    # A dist-info with no name: skipped, not fatal.
    (site / "broken-1.0.dist-info").mkdir()
    (site / "broken-1.0.dist-info" / "METADATA").write_text("")

    env = probe_environment(environ={**os.environ, "PYTHONPATH": str(site)})

    assert env.torch is not None
    assert env.torch.version == "2.8.0+cu128"  # the planted one shadows the real one
    assert env.torch.build == "cuda"
    assert env.torch.build_source == "version.py"
    assert env.torch.cuda == "12.8"
    assert env.torch.git_version == "ba56102387ef21a3b04b357e5b183d48f0afefc7"
    if sys.platform.startswith("linux"):
        assert env.torch.cxx11_abi is False
        assert env.torch.cxx11_abi_source == "TorchConfig.cmake"
    assert env.torch.cudnn_version == "9.10.2.21"
    assert env.torch.location == str(site.resolve())

    flash = env.package("flash-attn")
    assert flash is not None
    assert flash.installer == "uv"
    assert flash.requires == ("torch", "einops")
    assert dict(flash.build_info)["wheel_local"] == "cu12torch2.8cxx11abiFALSE"
    xformers = env.package("xformers")
    assert xformers is not None
    info = dict(xformers.build_info)
    assert (info["torch"], info["cuda"]) == ("2.10.0+cu128", "1208")
    assert env.package("nvidia-cudnn-cu12") is not None
    assert env.package("broken") is None
    assert env.unknown_reason("packages.xformers.build_info") is None
