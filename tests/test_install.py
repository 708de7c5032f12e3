"""Unit tests of the installer's pure parts, its lock and journal, and the import check."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from attn_doctor.backends import BackendName
from attn_doctor.errors import Locked, UsageError
from attn_doctor.install.build import (
    flash_attn_arch_for,
    max_jobs_for,
    source_build_settings,
)
from attn_doctor.install.execute import (
    display_commands,
    explain_refusal,
    install_args,
    merge_constraints,
    parse_report,
    parse_uv_dry_run,
)
from attn_doctor.install.journal import (
    Journal,
    journal_path,
    read_journal,
    remove_journal,
    write_journal,
)
from attn_doctor.install.lock import env_lock
from attn_doctor.install.pip import protected_constraints
from attn_doctor.install.state import EnvState, InstalledDist, diff_state, parse_state
from attn_doctor.planner.pip_command import build_argv
from attn_doctor.planner.plans import InstallPlan, WheelCandidate
from attn_doctor.probe.imports import import_in_child

GB = 1024**3

# pip 23.2.1, `pip install --dry-run xformers==0.0.33 -c constraints.txt` (torch pinned).
PIP_CONFLICT_STDOUT = """\
Looking in links: /wheelhouse
Processing /wheelhouse/xformers-0.0.33-py3-none-any.whl
INFO: pip is looking at multiple versions of xformers to determine which version is \
compatible with other requirements. This could take a while.

The conflict is caused by:
    xformers 0.0.33 depends on torch==2.9.0
    The user requested (constraint) torch==2.8.0+cu128

To fix this you could try to:
1. loosen the range of package versions you've specified
"""
PIP_CONFLICT_STDERR = """\
ERROR: Cannot install xformers==0.0.33 because these package versions have conflicting \
dependencies.
ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/\
dependency-resolution/#dealing-with-dependency-conflicts
"""


def _dist(name: str, version: str, direct_url: str | None = None) -> InstalledDist:
    return InstalledDist(name=name, version=version, display_name=name, direct_url=direct_url)


def _state(*dists: InstalledDist) -> EnvState:
    return EnvState(
        python="/venv/bin/python", prefix="/venv", purelib="/venv/lib", distributions=dists
    )


def _plan(**candidate: object) -> InstallPlan:
    fields: dict[str, object] = {
        "backend": "flash_attn_2",
        "source": "upstream-release",
        "trust": "official",
        "requirement": "flash-attn==2.8.3",
    }
    fields.update(candidate)
    return InstallPlan(
        backend="flash_attn_2",
        candidate=WheelCandidate(**fields),  # type: ignore[arg-type]
        protected=("torch==2.8.0+cu128",),
        commands=(),
    )


# --- constraints ----------------------------------------------------------------------------


def test_protected_constraints_pin_the_full_local_version() -> None:
    installed = {
        "torch": "2.8.0+cu128",
        "triton": "3.4.0",
        "einops": "0.8.1",
        "torchvision": "0.23.0+cu128",
    }
    assert protected_constraints(installed) == (
        "torch==2.8.0+cu128",
        "torchvision==0.23.0+cu128",
        "triton==3.4.0",
    )


def test_protected_constraints_cover_pytorch_triton_builds() -> None:
    assert protected_constraints({"pytorch-triton-rocm": "3.4.0+gitf7888497"}) == (
        "pytorch-triton-rocm==3.4.0+gitf7888497",
    )


@pytest.mark.parametrize(
    ("spec", "candidate", "allowed"),
    [
        ("==2.8.0", "2.8.0+cu128", True),
        ("==2.8.0", "2.8.0+cpu", True),  # why a pin without the label is not enough
        ("==2.8.0+cu128", "2.8.0+cu128", True),
        ("==2.8.0+cu128", "2.8.0+cpu", False),
        ("==2.8.0+cu128", "2.8.0", False),
    ],
    ids=["public-cuda", "public-cpu", "exact", "exact-vs-cpu", "exact-vs-plain"],
)
def test_pep440_local_label_semantics(spec: str, candidate: str, allowed: bool) -> None:
    assert SpecifierSet(spec).contains(candidate) is allowed


def test_merge_constraints_prefers_what_is_installed() -> None:
    merged = merge_constraints(("torch==2.8.0+cu128",), ("torch==2.8.0", "numpy<3"))
    assert merged == ("torch==2.8.0+cu128", "numpy<3")


def test_merge_constraints_rejects_a_bad_plan_line() -> None:
    with pytest.raises(UsageError, match="bad constraint"):
        merge_constraints((), ("torch >= = 2",))


# --- the pip command line -------------------------------------------------------------------


def test_pip_argv_runs_the_target_interpreter_without_prompts() -> None:
    argv = build_argv(
        ["install", "flash-attn"], python="/venv/bin/python", constraints_file="/tmp/c.txt"
    )
    assert argv == [
        "/venv/bin/python", "-m", "pip", "install", "--no-input",
        "--disable-pip-version-check", "flash-attn", "-c", "/tmp/c.txt",
    ]  # fmt: skip


def test_uv_argv_targets_the_interpreter_and_drops_yes() -> None:
    argv = build_argv(
        ["uninstall", "-y", "flash-attn"],
        python="/venv/bin/python",
        installer="uv",
        constraints_file="/tmp/c.txt",
        uv="/usr/bin/uv",
    )
    assert argv == [
        "/usr/bin/uv", "pip", "uninstall", "--python", "/venv/bin/python", "flash-attn",
        "--constraint", "/tmp/c.txt",
    ]  # fmt: skip


def test_build_argv_needs_a_subcommand() -> None:
    with pytest.raises(UsageError):
        build_argv([], python="python")


def test_install_args_drop_the_candidate_index_when_offline() -> None:
    plan = _plan(index_url="https://index.example/whl/cu128")
    assert install_args(plan, ("--no-index", "--find-links", "/w")) == [
        "install", "--no-index", "--find-links", "/w", "flash-attn==2.8.3",
    ]  # fmt: skip
    assert install_args(plan, ()) == [
        "install", "--index-url", "https://index.example/whl/cu128",
        "flash-attn==2.8.3",
    ]  # fmt: skip


def test_source_build_commands_disable_build_isolation_and_show_the_env() -> None:
    plan = _plan(source="source-build", requirement="flash-attn==2.8.3", pip_args=("-v",))
    cmds = display_commands(
        plan,
        python="/venv/bin/python",
        installer="pip",
        index_args=(),
        build_env=(("MAX_JOBS", "4"), ("FLASH_ATTN_CUDA_ARCHS", "90")),
        pre_requirements=("ninja", "psutil"),
        constraints_file="/plans/constraints-1.txt",
    )
    assert cmds[0].endswith("ninja psutil -c /plans/constraints-1.txt")
    assert cmds[1].startswith("MAX_JOBS=4 FLASH_ATTN_CUDA_ARCHS=90 /venv/bin/python -m pip install")
    assert "-v --no-build-isolation flash-attn==2.8.3 -c /plans/constraints-1.txt" in cmds[1]


# --- reading pip's answers ------------------------------------------------------------------


def test_explain_refusal_names_the_pin_and_the_cause() -> None:
    msg = explain_refusal(
        PIP_CONFLICT_STDOUT + PIP_CONFLICT_STDERR, ("torch==2.8.0+cu128", "triton==3.4.0")
    )
    assert msg is not None
    assert "torch==2.8.0+cu128" in msg
    assert "xformers 0.0.33 depends on torch==2.9.0" in msg
    assert "triton" not in msg


def test_explain_refusal_reads_uvs_cause_too() -> None:
    msg = explain_refusal(UV_CONFLICT, ("torch==2.8.0+cu128",))
    assert msg is not None
    assert "Because xformers>=0.0.33 depends on torch==2.9.0" in msg


def test_explain_refusal_ignores_other_failures() -> None:
    out = "ERROR: Could not find a version that satisfies the requirement flash-attn==9.9"
    assert explain_refusal(out, ("torch==2.8.0+cu128",)) is None


def test_parse_report_reads_pips_install_list() -> None:
    report = {
        "version": "1",
        "install": [
            {"metadata": {"name": "Flash_Attn", "version": "2.8.3"}, "requested": True},
            {"metadata": {"name": "einops", "version": "0.8.1"}, "requested": False},
        ],
    }
    assert parse_report(json.dumps(report)).install == (
        ("einops", "0.8.1"),
        ("flash-attn", "2.8.3"),
    )


# uv 0.13.9, `uv pip install --dry-run ... flash-attn==2.7.4.post1` (stderr, recorded).
UV_DRY_RUN = """\
Using Python 3.11.7 environment at: nopip
Resolved 4 packages in 14ms
Would uninstall 1 package
Would install 2 packages
 - einops==0.7.0
 + einops==0.8.1
 + flash-attn==2.7.4.post1
"""
# uv 0.13.9, `uv pip install xformers==0.0.33 --constraint c.txt` (torch pinned; recorded).
UV_CONFLICT = """\
Using Python 3.11.7 environment at: nopip
error: No solution found when resolving dependencies
  cause: Because xformers>=0.0.33 depends on torch==2.9.0 and torch==2.8.0+cu128, we can \
conclude that xformers>=0.0.33 cannot be used.
         And because you require xformers==0.0.33, we can conclude that your requirements \
are unsatisfiable.
"""


def test_parse_uv_dry_run_reads_the_plus_lines() -> None:
    assert parse_uv_dry_run(UV_DRY_RUN).install == (
        ("einops", "0.8.1"),
        ("flash-attn", "2.7.4.post1"),
    )


def test_parse_state_and_diff() -> None:
    before = parse_state(
        "/venv/bin/python",
        json.dumps(
            {
                "prefix": "/venv",
                "purelib": "/venv/lib",
                "distributions": [
                    {"name": "einops", "version": "0.7.0"},
                    {"name": "torch", "version": "2.8.0+cu128"},
                    {"name": "gone", "version": "1"},
                ],
            }
        ),
    )
    after = _state(
        _dist("einops", "0.8.1"),
        _dist("flash-attn", "2.8.3"),
        _dist("torch", "2.8.0+cu128", direct_url='{"url": "file:///w/torch.whl"}'),
    )
    diff = diff_state(before, after)
    assert [d.name for d in diff.added] == ["flash-attn"]
    assert [d.name for d in diff.removed] == ["gone"]
    assert [(a.name, b.name) for a, b in diff.changed] == [("einops", "einops"), ("torch", "torch")]
    assert diff.lines() == (
        "+ flash-attn 2.8.3",
        "- gone 1",
        "~ einops 0.7.0 -> 0.8.1",
        "~ torch 2.8.0+cu128 -> 2.8.0+cu128 (reinstalled from another origin)",
    )
    assert diff_state(after, after).empty


# --- journal and lock -----------------------------------------------------------------------


def test_journal_round_trip_and_removal(tmp_path: Path) -> None:
    journal = Journal(
        pid=123,
        started_at="2026-11-23T14:00:00+00:00",
        step="installing",
        backend="flash_attn_2",
        requirement="flash-attn==2.8.3",
        prior=_state(_dist("torch", "2.8.0+cu128")),
        index_args=("--no-index", "--find-links", "/w"),
        plan={"backend": "flash_attn_2"},
    )
    write_journal(tmp_path, journal)
    assert read_journal(tmp_path) == journal
    assert [p.name for p in tmp_path.iterdir()] == [".attn-doctor-journal.json"]
    remove_journal(tmp_path)
    assert read_journal(tmp_path) is None


def test_a_corrupt_journal_is_reported(tmp_path: Path) -> None:
    journal_path(tmp_path).write_text('{"schema": "something-else"}')
    with pytest.raises(UsageError, match="unreadable"):
        read_journal(tmp_path)


def test_lock_refuses_a_second_holder_and_names_the_first(tmp_path: Path) -> None:
    import os

    with (
        env_lock(tmp_path),
        pytest.raises(Locked, match=f"process {os.getpid()}"),
        env_lock(tmp_path),
    ):
        pass
    with env_lock(tmp_path):  # released: can be taken again
        pass


# --- the import check -----------------------------------------------------------------------


def _module_dir(tmp_path: Path, name: str, body: str) -> dict[str, str]:
    import os

    (tmp_path / f"{name}.py").write_text(body)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tmp_path)
    return env


@pytest.mark.functional
def test_check_import_ok_and_error(tmp_path: Path) -> None:
    assert import_in_child("json", timeout=60, python=sys.executable).status == "ok"
    env = _module_dir(tmp_path, "broken_ext", "raise ImportError('undefined symbol: _ZN3c10')\n")
    res = import_in_child("broken_ext", timeout=60, python=sys.executable, environ=env)
    assert res.status == "error"
    assert res.detail == "ImportError: undefined symbol: _ZN3c10"


@pytest.mark.functional
def test_check_import_survives_a_crash_and_a_hang(tmp_path: Path) -> None:
    env = _module_dir(
        tmp_path, "crashes", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"
    )
    crashed = import_in_child("crashes", timeout=60, python=sys.executable, environ=env)
    assert crashed.status == "crashed"
    assert "SIGSEGV" in str(crashed.detail)
    env = _module_dir(tmp_path, "hangs", "import time\ntime.sleep(60)\n")
    hung = import_in_child("hangs", timeout=1, python=sys.executable, environ=env)
    assert hung.status == "timeout"


# --- source builds --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cores", "ram_gb", "jobs"),
    # flash-attn setup.py's rule, min(cores // 2, free GiB / (5 GiB x NVCC_THREADS)), at the
    # NVCC_THREADS=2 attn-doctor sets
    [(2, 23, 1), (64, 256, 25), (32, 100, 10), (16, None, 8), (8, 4, 1)],
    ids=["this-ci", "big-node", "ram-bound", "ram-unknown", "tiny-ram"],
)
def test_max_jobs_follows_flash_attns_rule(cores: int, ram_gb: int | None, jobs: int) -> None:
    assert max_jobs_for(cores, None if ram_gb is None else ram_gb * GB) == jobs


@pytest.mark.parametrize(
    ("cc", "arch"),
    [
        ("8.0", "80"),
        ("8.6", "80"),
        ("8.9", "80"),
        ("9.0", "90"),
        ("10.0", "100"),
        ("10.3", "100"),
        ("12.0", "120"),
        ("7.5", None),
    ],
)
def test_flash_attn_arch_for_compute_capability(cc: str, arch: str | None) -> None:
    assert flash_attn_arch_for(cc) == arch


def test_source_build_settings_restrict_to_this_gpu() -> None:
    s = source_build_settings(
        cpu_count=32, ram_available_bytes=100 * GB, compute_capabilities=["9.0"]
    )
    env = dict(s.env)
    assert env["MAX_JOBS"] == "10"  # min(32 // 2, 100 GiB / 10 GiB)
    assert env["NVCC_THREADS"] == "2"
    assert env["FLASH_ATTN_CUDA_ARCHS"] == "90"
    assert env["TORCH_CUDA_ARCH_LIST"] == "9.0"
    assert env["FLASH_ATTENTION_FORCE_BUILD"] == "TRUE"
    assert any("only this machine's GPU arch" in r for r in s.reasons)


# --- URL confirmation (a local HTTP server; no network) -------------------------------------


def test_confirm_url_against_a_local_server() -> None:
    import http.server
    import threading

    from attn_doctor.install.urlcheck import confirm_url

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(200 if self.path.endswith("ok.whl") else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        assert confirm_url(f"{base}/ok.whl").exists is True
        missing = confirm_url(f"{base}/missing.whl")
        assert missing.exists is False
        assert missing.detail == "HTTP 404"
    finally:
        server.shutdown()
        server.server_close()
    unreachable = confirm_url(f"{base}/ok.whl", timeout=2)
    assert unreachable.exists is None
    assert confirm_url("file:///x.whl").exists is None


def _bare_plan(backend: BackendName) -> InstallPlan:
    cand = WheelCandidate(backend=backend, source="pypi", trust="official", requirement="x")
    return InstallPlan(backend=backend, candidate=cand, protected=(), commands=())


@pytest.mark.functional
def test_kernel_verification_after_install_is_honest_without_a_gpu() -> None:
    from attn_doctor.install.execute import verify_installed_kernels

    # flash-attn cannot launch on a CPU-only machine: unverified, said so, not a failure.
    verdict, failed = verify_installed_kernels(
        _bare_plan("flash_attn_2"), sys.executable, timeout=300
    )
    assert not failed
    assert verdict.startswith("not run here")
    # Another interpreter: attn-doctor does not verify across environments, it says how to.
    verdict, failed = verify_installed_kernels(
        _bare_plan("xformers"), "/usr/bin/python3", timeout=30
    )
    assert not failed
    assert "-m attn_doctor verify xformers" in verdict
