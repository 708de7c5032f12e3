"""``--deep`` imports in child processes: packages planted in a throw-away directory that
crash, hang or fail the way broken attention extensions do. The doctor must survive each and
report exactly what happened."""

from __future__ import annotations

import importlib.metadata
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from attn_doctor.probe import import_in_child, probe_environment
from attn_doctor.probe.imports import import_many

# Every test here starts processes: the functional lane (see tests/conftest.py).
pytestmark = pytest.mark.functional

UNDEFINED = "{path}: undefined symbol: _ZN3c105ErrorC2ENS_14SourceLocationESs"
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _torch_installed() -> bool:
    try:
        importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def plant(root: Path, name: str, body: str) -> Path:
    path = root / f"{name}.py"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def child_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    return env


@posix_only
def test_segfault_is_reported_as_crashed_with_the_signal(tmp_path: Path) -> None:
    plant(tmp_path, "segv_ext", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    res = import_in_child("segv_ext", timeout=30, environ=child_env(tmp_path))
    assert res.status == "crashed"
    assert res.detail == "SIGSEGV"
    # faulthandler names the module that crashed
    assert res.traceback_tail is not None
    assert "segv_ext.py" in res.traceback_tail


@posix_only
def test_null_pointer_read_is_a_crash(tmp_path: Path) -> None:
    plant(tmp_path, "nullptr_ext", "import ctypes\nctypes.string_at(0)\n")
    res = import_in_child("nullptr_ext", timeout=30, environ=child_env(tmp_path))
    assert res.status == "crashed"
    assert res.detail in {"SIGSEGV", "SIGBUS"}


@posix_only
def test_abort_is_a_crash(tmp_path: Path) -> None:
    plant(tmp_path, "abort_ext", "import os\nos.abort()\n")
    res = import_in_child("abort_ext", timeout=30, environ=child_env(tmp_path))
    assert (res.status, res.detail) == ("crashed", "SIGABRT")


def test_exit_without_result_is_a_crash(tmp_path: Path) -> None:
    plant(tmp_path, "exit_ext", "import os\nos._exit(3)\n")
    res = import_in_child("exit_ext", timeout=30, environ=child_env(tmp_path))
    assert (res.status, res.detail) == ("crashed", "exit status 3")


def test_hang_is_cut_off_quickly(tmp_path: Path) -> None:
    plant(tmp_path, "hang_ext", "import time\nwhile True:\n    time.sleep(1)\n")
    start = time.monotonic()
    res = import_in_child("hang_ext", timeout=2, environ=child_env(tmp_path))
    elapsed = time.monotonic() - start
    assert res.status == "timeout"
    assert res.detail == "no result within 2 s; the process was killed"
    assert elapsed < 10


@posix_only
def test_hang_kills_the_processes_the_import_started(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    plant(
        tmp_path,
        "spawner_ext",
        f"""
        import subprocess, sys, time
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        open({str(pidfile)!r}, "w").write(str(p.pid))
        time.sleep(120)
        """,
    )
    res = import_in_child("spawner_ext", timeout=3, environ=child_env(tmp_path))
    assert res.status == "timeout"
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        # A killed process stays a zombie until its parent (init here) reaps it.
        stat = Path(f"/proc/{grandchild}/stat")
        if stat.exists() and stat.read_text().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        os.kill(grandchild, signal.SIGKILL)
        pytest.fail("the grandchild of a hung import survived the timeout")


def test_undefined_symbol_error_text_is_exact(tmp_path: Path) -> None:
    so = tmp_path / "flash_attn_2_cuda.cpython-311-x86_64-linux-gnu.so"
    message = UNDEFINED.format(path=so)
    plant(tmp_path, "undefined_ext", f"raise ImportError({message!r})\n")
    res = import_in_child("undefined_ext", timeout=30, environ=child_env(tmp_path))
    assert res.status == "error"
    assert res.detail == f"ImportError: {message}"
    assert res.traceback_tail is not None
    assert res.traceback_tail.startswith("Traceback")


def test_package_exception_class_is_qualified(tmp_path: Path) -> None:
    plant(
        tmp_path,
        "custom_exc_ext",
        "class xFormersInvalidLibException(Exception):\n    pass\n"
        "raise xFormersInvalidLibException('xFormers was built for: PyTorch 2.10.0+cu128')\n",
    )
    res = import_in_child("custom_exc_ext", timeout=30, environ=child_env(tmp_path))
    assert res.detail == (
        "custom_exc_ext.xFormersInvalidLibException: xFormers was built for: PyTorch 2.10.0+cu128"
    )


def test_output_before_the_result_does_not_confuse_it(tmp_path: Path) -> None:
    plant(tmp_path, "chatty_ext", "print('🦥 Unsloth: Will patch your computer')\nprint('{}')\n")
    res = import_in_child("chatty_ext", timeout=30, environ=child_env(tmp_path))
    assert res.status == "ok"
    assert res.seconds is not None


def test_missing_module(tmp_path: Path) -> None:
    res = import_in_child("attn_doctor_no_such_module", timeout=30)
    assert res.status == "error"
    assert res.detail == "ModuleNotFoundError: No module named 'attn_doctor_no_such_module'"


def test_working_directory_does_not_shadow_installed_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plant(tmp_path, "only_in_cwd", "X = 1\n")
    monkeypatch.chdir(tmp_path)
    res = import_in_child("only_in_cwd", timeout=30)
    assert res.status == "error"
    assert "No module named 'only_in_cwd'" in (res.detail or "")


@posix_only
def test_many_broken_imports_in_parallel(tmp_path: Path) -> None:
    plant(tmp_path, "p_segv", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    plant(tmp_path, "p_hang", "import time\ntime.sleep(600)\n")
    plant(tmp_path, "p_err", "raise ImportError('boom')\n")
    plant(tmp_path, "p_ok", "\n")
    start = time.monotonic()
    results = import_many(
        ["p_segv", "p_hang", "p_err", "p_ok"], timeout=3, environ=child_env(tmp_path)
    )
    elapsed = time.monotonic() - start
    assert [(r.module, r.status) for r in results] == [
        ("p_segv", "crashed"),
        ("p_hang", "timeout"),
        ("p_err", "error"),
        ("p_ok", "ok"),
    ]
    assert elapsed < 12  # in parallel: bounded by the one timeout, not the sum


# --- end to end: probe_environment(deep=True) over planted distributions --------------------


def plant_distribution(root: Path, name: str, version: str) -> None:
    dist_info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Dist: torch\n",
        encoding="utf-8",
    )
    (dist_info / "INSTALLER").write_text("pip\n", encoding="utf-8")


@pytest.mark.slow
@posix_only
def test_deep_probe_records_planted_failures_and_survives(tmp_path: Path) -> None:
    # flash-attn 2.8.3 built against another torch: its extension has an undefined symbol.
    so = tmp_path / "flash_attn_2_cuda.cpython-311-x86_64-linux-gnu.so"
    message = UNDEFINED.format(path=so)
    plant(tmp_path, "flash_attn_2_cuda", f"raise ImportError({message!r})\n")
    (tmp_path / "flash_attn").mkdir()
    (tmp_path / "flash_attn" / "__init__.py").write_text(
        "__version__ = '2.8.3'\nimport flash_attn_2_cuda\n", encoding="utf-8"
    )
    plant_distribution(tmp_path, "flash-attn", "2.8.3")
    # xformers whose import segfaults.
    (tmp_path / "xformers").mkdir()
    (tmp_path / "xformers" / "__init__.py").write_text(
        "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", encoding="utf-8"
    )
    plant_distribution(tmp_path, "xformers", "0.0.34")

    start = time.monotonic()
    env = probe_environment(deep=True, timeout=120, environ=child_env(tmp_path))
    elapsed = time.monotonic() - start

    assert env.deep is True
    fa = env.package("flash-attn")
    assert fa is not None
    assert fa.version == "2.8.3"
    assert fa.installer == "pip"
    for module in ("flash_attn", "flash_attn_2_cuda"):
        res = env.import_result(module)
        assert res is not None, module
        assert res.status == "error"
        assert res.detail == f"ImportError: {message}"
    for module in ("xformers.ops", "xformers._cpp_lib"):  # its record's modules
        res = env.import_result(module)
        assert res is not None, module
        assert (res.status, res.detail) == ("crashed", "SIGSEGV")
    xf = env.package("xformers")
    assert xf is not None
    assert env.unknown_reason("packages.xformers.build_info") is not None
    torch_res = env.import_result("torch")
    if torch_res is not None:  # torch installed here: it imports, and reports itself
        assert torch_res.status == "ok"
        assert env.torch_runtime is not None
        assert env.torch_runtime.error is None
        assert env.torch is not None
        assert env.torch_runtime.torch_version == env.torch.version
        assert env.torch_runtime.cxx11_abi == env.torch.cxx11_abi
        # What SDPA's default dispatch runs here, as torch itself answers (not its priority list).
        assert env.torch_runtime.sdpa_default_kernel == "sdpa_cpu_fused"
    assert elapsed < 120


def test_xformers_swallowed_cpp_failure_is_surfaced(tmp_path: Path) -> None:
    # xformers/_cpp_lib.py logs a warning and keeps the exception in
    # `_cpp_library_load_exception` when its C++ library does not load; `import xformers`
    # succeeds. The "xformers._cpp_lib" check re-raises what xformers kept.
    if not _torch_installed():
        pytest.skip("the check imports torch first, as xformers does")
    pkg = tmp_path / "xformers"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from . import _cpp_lib\n", encoding="utf-8")
    (pkg / "_cpp_lib.py").write_text(
        textwrap.dedent(
            """
            class xFormersInvalidLibException(Exception):
                pass
            _cpp_library_load_exception = xFormersInvalidLibException(
                "xFormers can't load C++/CUDA extensions. xFormers was built for:\\n"
                "    PyTorch 2.10.0+cu128 with CUDA 1208 (you have 2.13.0+cpu)"
            )
            """
        ),
        encoding="utf-8",
    )
    env = child_env(tmp_path)
    assert import_in_child("xformers", timeout=120, environ=env).status == "ok"
    res = import_in_child("xformers._cpp_lib", timeout=120, environ=env)
    assert res.status == "error"
    assert res.detail is not None
    assert res.detail.startswith(
        "xformers._cpp_lib.xFormersInvalidLibException: xFormers can't load C++/CUDA extensions."
    )
    assert "PyTorch 2.10.0+cu128 with CUDA 1208" in res.detail
