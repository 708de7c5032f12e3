"""The parent side: child processes that crash, hang or fail a check; partial results kept."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from attn_doctor.bench.results import Ceiling
from attn_doctor.bench.runner import WorkerOutcome, ceiling_rates, run_worker, sweep_from_outcome
from attn_doctor.facts import encode
from tests.bench_data import point, shape


def _record(kind: str, **fields: object) -> dict[str, object]:
    return {"type": kind, **fields}


def _point_record(seqlen: int, ms: float) -> dict[str, object]:
    data = encode(point(shape(seqlen), ms))
    assert isinstance(data, dict)
    return _record("point", **data)


CHECK_OK = _record("check", passed=True, method="verify: kernel check")
CEILINGS = ceiling_rates("cuda", (Ceiling(dtype="fp16", size=8192, status="ok", tflops=500.0),))


def _fake_python(tmp_path: Path, body: str) -> str:
    """A stand-in interpreter: the runner runs ``<python> -m attn_doctor.bench.worker``."""
    script = tmp_path / "python"
    script.write_text("#!/bin/sh\ncat > /dev/null\n" + body, encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def _echo(rec: dict[str, object]) -> str:
    return "echo '" + json.dumps(rec) + "'\n"


@pytest.mark.functional
def test_crash_keeps_the_points_measured_before_it(tmp_path: Path) -> None:
    python = _fake_python(
        tmp_path,
        _echo(CHECK_OK) + _echo(_point_record(1024, 2.0)) + "echo 'Fatal Python error' >&2\n"
        "kill -SEGV $$\n",
    )
    outcome = run_worker({"kind": "sweep"}, timeout=30, python=python)
    assert outcome.status == "crashed"
    assert outcome.detail == "killed by SIGSEGV"
    assert outcome.stderr_tail is not None
    assert "Fatal Python error" in outcome.stderr_tail
    sweep = sweep_from_outcome("xformers", outcome, CEILINGS)
    assert sweep.status == "crashed"
    assert [p.shape.seqlen for p in sweep.points] == [1024]
    assert sweep.points[0].ceiling_fraction is not None


@pytest.mark.functional
def test_hang_is_killed_at_the_timeout(tmp_path: Path) -> None:
    python = _fake_python(tmp_path, _echo(CHECK_OK) + "sleep 30\n")
    outcome = run_worker({"kind": "sweep"}, timeout=1, python=python)
    assert outcome.status == "timeout"
    assert outcome.seconds < 20
    assert len(outcome.records) == 1


@pytest.mark.functional
def test_exit_without_done_is_an_error(tmp_path: Path) -> None:
    python = _fake_python(
        tmp_path, _echo(_record("fatal", detail="ImportError: no torch")) + "exit 1\n"
    )
    outcome = run_worker({"kind": "info"}, timeout=30, python=python)
    assert (outcome.status, outcome.detail) == ("error", "ImportError: no torch")


@pytest.mark.functional
def test_clean_run(tmp_path: Path) -> None:
    python = _fake_python(
        tmp_path, _echo(CHECK_OK) + _echo(_point_record(512, 1.0)) + _echo(_record("done"))
    )
    outcome = run_worker({"kind": "sweep"}, timeout=30, python=python)
    assert outcome.status == "ok"
    sweep = sweep_from_outcome("sdpa_flash", outcome, CEILINGS)
    assert sweep.status == "ok"
    (p,) = sweep.points
    assert p.tflops is not None
    assert p.ceiling_fraction == p.tflops / 500.0


def _outcome(*records: dict[str, object]) -> WorkerOutcome:
    return WorkerOutcome(status="ok", records=records, detail=None, stderr_tail=None, seconds=1.0)


def test_failed_check_and_unavailable() -> None:
    failed = sweep_from_outcome(
        "sdpa_cudnn",
        _outcome(
            CHECK_OK,
            _record(
                "check",
                passed=False,
                method="bench: forward",
                detail="max |error| 0.5 > tolerance 0.01",
                shape=encode(shape(128)),
            ),
            _record("done"),
        ),
        CEILINGS,
    )
    assert failed.status == "failed-check"
    assert failed.detail is not None
    assert "S128" in failed.detail
    assert "0.5" in failed.detail
    unavailable = sweep_from_outcome(
        "flash_attn_3",
        _outcome(
            _record(
                "check",
                passed=False,
                status="unavailable",
                method="verify",
                detail="flash-attn 3 needs a Hopper GPU",
            ),
            _record("done"),
        ),
        CEILINGS,
    )
    assert (unavailable.status, unavailable.detail) == (
        "unavailable",
        "flash-attn 3 needs a Hopper GPU",
    )


def test_garbage_point_is_dropped_not_fatal() -> None:
    sweep = sweep_from_outcome(
        "eager",
        _outcome(CHECK_OK, _record("point", shape={"nonsense": 1}), _record("done")),
        CEILINGS,
    )
    assert (sweep.status, sweep.points) == ("ok", ())


def test_worker_output_is_strict_json() -> None:
    from attn_doctor.bench.worker import _finite

    assert _finite({"a": float("nan"), "b": [1.0, float("inf")], "c": "x"}) == {
        "a": None,
        "b": [1.0, None],
        "c": "x",
    }


def test_cpu_points_are_set_against_the_fp32_rate() -> None:
    ceilings = (
        Ceiling(dtype="fp32", size=1024, status="ok", tflops=0.02),
        Ceiling(dtype="bf16", size=512, status="ok", tflops=0.0004),
    )
    assert ceiling_rates("cpu", ceilings) == {"fp32": 0.02, "bf16": 0.02, "fp16": 0.02}
    assert ceiling_rates("cuda", ceilings) == {"fp32": 0.02, "bf16": 0.0004}
    assert ceiling_rates("cpu", ()) == {}


def test_unsupported_case_is_not_a_failed_check() -> None:
    sweep = sweep_from_outcome(
        "sdpa_flash",
        _outcome(
            CHECK_OK,
            _record(
                "check",
                passed=False,
                unsupported=True,
                method="bench: forward",
                detail="RuntimeError: No available kernel. Aborting execution.",
                shape=encode(shape(128, dtype="fp32")),
            ),
            _record(
                "point",
                shape=encode(shape(1024, dtype="fp32")),
                status="unsupported",
                flops=1.0,
                detail="RuntimeError: No available kernel. Aborting execution.",
            ),
            _record("done"),
        ),
        CEILINGS,
    )
    assert sweep.status == "ok"
    assert sweep.checks[1].unsupported
    assert [p.status for p in sweep.points] == ["unsupported"]


@pytest.mark.functional
def test_interrupt_ends_the_child(tmp_path: Path) -> None:
    import os
    import signal
    import time

    import pytest

    pid_file = tmp_path / "pid"
    python = _fake_python(tmp_path, f"echo $$ > {pid_file}\nsleep 30\n")

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(1)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_worker({"kind": "sweep"}, timeout=60, python=python)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    pid = int(pid_file.read_text(encoding="utf-8"))
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: the child (and its sleep) are gone


@pytest.mark.functional
def test_torch_that_does_not_import_is_a_usage_error(tmp_path: Path) -> None:
    import pytest

    from attn_doctor.bench.runner import probe_device
    from attn_doctor.errors import UsageError

    python = _fake_python(
        tmp_path,
        "echo \"ModuleNotFoundError: No module named 'torch'\" >&2\n"
        + _echo(_record("fatal", detail="ModuleNotFoundError: No module named 'torch'"))
        + "exit 1\n",
    )
    with pytest.raises(UsageError, match="importing torch in a child process failed") as info:
        probe_device(None, python=python)
    assert info.value.hint is not None
    assert "No module named 'torch'" in info.value.hint
