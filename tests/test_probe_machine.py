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
    }
    env = probe_environment(environ=environ)
    assert env.cuda_toolkit.cuda_home == str(fake_home)
    assert env.cuda_toolkit.nvcc_path is None  # none in CUDA_HOME/bin, none on this PATH
    assert env.env("CUDA_VISIBLE_DEVICES") == "1"
    assert env.env("MAX_JOBS") == "4"
    assert env.python.conda_env == "ml"


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
