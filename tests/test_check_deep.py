"""``check --deep``: one finding per broken package, fixes that work here, progress on a
terminal only, imports in parallel each with its own timeout."""

from __future__ import annotations

import dataclasses
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attn_doctor.diagnose import diagnose
from attn_doctor.facts import Environment, ImportResult, PackageFacts
from attn_doctor.index import load_index
from attn_doctor.probe.imports import ImportBoard, probe_deep
from attn_doctor.rules_data import load_rules

from .conftest import REPO_ROOT, SNAPSHOTS
from .test_probe_imports import plant, plant_distribution

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and ptys")

UNDEFINED = (
    "ImportError: /venv/lib/flash_attn_2_cuda.cpython-311-x86_64-linux-gnu.so: "
    "undefined symbol: _ZN3c104cuda9SetDeviceEi"
)
TIMEOUT = "no result within 60 s; the process was killed"


def _with_broken_packages(name: str) -> Environment:
    """A recorded machine plus four broken packages, as ``--deep`` records them."""
    env = Environment.from_json((SNAPSHOTS / f"{name}.json").read_text())
    packages = (
        PackageFacts(name="flash-attn", version="2.8.3"),
        PackageFacts(name="xformers", version="0.0.34"),
        PackageFacts(name="unsloth", version="2025.11.1"),
        PackageFacts(name="kernels", version="0.10.0"),
    )
    imports = (
        ImportResult(module="torch", status="ok"),
        ImportResult(module="flash_attn", status="error", detail=UNDEFINED),
        ImportResult(module="flash_attn_2_cuda", status="timeout", detail=TIMEOUT),
        ImportResult(module="xformers", status="crashed", detail="SIGSEGV"),
        ImportResult(module="xformers.ops", status="crashed", detail="SIGSEGV"),
        ImportResult(module="xformers._cpp_lib", status="timeout", detail=TIMEOUT),
        ImportResult(module="unsloth", status="timeout", detail=TIMEOUT),
        ImportResult(module="kernels", status="error", detail="RuntimeError: broken"),
    )
    keep = tuple(p for p in env.packages if p.name not in {q.name for q in packages})
    return dataclasses.replace(env, packages=keep + packages, imports=imports, deep=True)


def test_one_finding_per_broken_package_with_its_own_evidence() -> None:
    env = _with_broken_packages("cpu-only-laptop")
    diag = diagnose(env, load_rules())
    ids = ("backend-import-failed", "flash-attn-abi-mismatch")
    failed = [f for f in diag.findings if f.id in ids]
    per_backend = [f.backends for f in failed]
    assert sorted(per_backend) == sorted(set(per_backend))  # no package twice
    assert {b for f in failed for b in f.backends} == {
        "flash_attn_2", "xformers", "unsloth", "hub_kernels",
    }  # fmt: skip
    for f in failed:
        facts = [e.fact for e in f.evidence]
        modules = [fact.removeprefix("import:") for fact in facts if fact.startswith("import:")]
        top = {m.split(".")[0].removesuffix("_2_cuda") for m in modules}
        assert len(top) == 1, (f.id, modules)  # a segfault's evidence names its own package
    xformers = next(f for f in failed if f.backends == ("xformers",))
    assert "`import xformers` crashed" in xformers.cause
    assert "SIGSEGV" in xformers.cause
    abi = next(f for f in failed if f.backends == ("flash_attn_2",))
    assert abi.id == "flash-attn-abi-mismatch"  # the cause, not the timeout that followed it


def test_fixes_offered_only_when_install_works_here() -> None:
    cpu = diagnose(_with_broken_packages("cpu-only-laptop"), load_rules())
    for f in cpu.findings:
        if f.id in ("backend-import-failed", "flash-attn-abi-mismatch"):
            assert f.fix is not None
            assert "attn-doctor install" not in f.fix, f.fix  # install refuses on this machine
            assert f.fix.startswith("/home/user/venv/bin/python -m pip uninstall -y ")
            assert f.fix_note is not None
            assert "cannot reinstall" in f.fix_note
    h100 = _with_broken_packages("h100-linux-recent-torch")
    gpu = diagnose(h100, load_rules(), index=load_index())
    xformers = next(f for f in gpu.findings if f.backends == ("xformers",))
    py = "/home/user/venv/bin/python"  # every command names the environment it is for
    assert xformers.fix == (
        f"{py} -m pip uninstall -y xformers && attn-doctor install xformers --python {py}"
    )


def test_board_says_which_import_how_long_and_the_timeout() -> None:
    now = [100.0]
    board = ImportBoard(timeout=60, clock=lambda: now[0])
    board.expect(3)
    board.started("torch")
    now[0] = 103.0
    board.started("xformers")
    now[0] = 112.4
    board.finished("torch")
    text = board.describe()
    assert "importing xformers (9 s)" in text
    assert "timeout 60 s each" in text
    assert "1/3 done" in text
    board.finished("xformers")
    assert "importing" not in board.describe()


@pytest.mark.functional
@posix_only
def test_imports_run_in_parallel_each_with_its_own_timeout(tmp_path: Path) -> None:
    names = ("unsloth", "kernels", "triton")  # distributions --deep imports, all hanging
    for name in names:
        plant(tmp_path, name, "import time\ntime.sleep(600)\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    board = ImportBoard(timeout=4)
    start = time.monotonic()
    results, runtime = probe_deep(names, timeout=4, environ=env, board=board)
    elapsed = time.monotonic() - start
    assert runtime is None  # torch is not among them
    assert sorted((r.module, r.status) for r in results) == sorted((n, "timeout") for n in names)
    assert elapsed < 3 * 4  # one after another would take 12 s at least
    assert board.describe() == "--deep: 3/3 imports done"


def _run_deep(root: Path, *, stderr_tty: bool) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(root), str(REPO_ROOT)))}
    env.pop("FORCE_COLOR", None)
    env["NO_COLOR"] = "1"
    argv = [sys.executable, "-m", "attn_doctor", "check", "--deep", "--timeout", "3", "--json"]
    if not stderr_tty:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False,
                              timeout=300)  # fmt: skip
        json.loads(proc.stdout)
        return proc.returncode, proc.stderr
    import pty

    master, slave = pty.openpty()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            out += chunk
        elif child.poll() is not None:
            break
    stdout, _ = child.communicate(timeout=300)
    os.close(master)
    json.loads(stdout)  # stdout stays the envelope alone
    return child.returncode, out.decode("utf-8", "replace")


@pytest.mark.functional
@pytest.mark.slow
@posix_only
def test_progress_on_a_terminal_only(tmp_path: Path) -> None:
    (tmp_path / "unsloth").mkdir()
    (tmp_path / "unsloth" / "__init__.py").write_text("import time\ntime.sleep(600)\n")
    plant_distribution(tmp_path, "unsloth", "2025.11.1")
    code, stderr = _run_deep(tmp_path, stderr_tty=True)
    assert code == 1  # unsloth timed out: an error finding
    assert "importing" in stderr
    assert "unsloth (" in stderr
    assert "timeout 3 s each" in stderr
    code, stderr = _run_deep(tmp_path, stderr_tty=False)
    assert code == 1
    assert stderr == ""


def test_one_explanation_per_broken_package() -> None:
    from attn_doctor.commands.check import _explain_failed_imports

    explained = _explain_failed_imports(_with_broken_packages("cpu-only-laptop"))
    assert [e.module for e in explained] == ["flash_attn", "xformers", "unsloth", "kernels"]
