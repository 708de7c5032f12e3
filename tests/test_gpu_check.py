"""The prepared GPU check (scripts/gpu_check.sh) on a CPU: its plumbing, not the GPU.

The summary is tested on the recorded H200 outputs; the script itself runs in ``--quick`` mode
(CPU, tiny shapes, a small time budget) and must leave one folder with every step accounted
for and a one-page summary.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu_check.sh"
RECORDED = ROOT / "docs" / "recorded"
STEPS = (
    "check",
    "check-deep",
    "snapshot",
    "runtime",
    "sdpa-restore",
    "verify",
    "pytest-gpu",
    "bench-fwd",
    "bench-fwd-bwd",
)

# Every test here starts processes: the functional lane (see tests/conftest.py).
pytestmark = [
    pytest.mark.functional,
    pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash"),
]


def _summary(out: Path) -> str:
    res = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check_summary.py"), str(out)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return res.stdout


def test_summary_of_the_recorded_h200_outputs(tmp_path: Path) -> None:
    shutil.copy(RECORDED / "verify-h200.json", tmp_path / "verify.out")
    shutil.copy(RECORDED / "bench-h200.json", tmp_path / "bench-fwd.out")
    (tmp_path / "steps.tsv").write_text(
        "verify\tok\t0\t151.2\t240\nbench-fwd\texit-1\t1\t99.0\t240\n"
    )
    (tmp_path / "env.txt").write_text("gpu: NVIDIA H200 cc 9.0\n")
    text = _summary(tmp_path)
    assert "| verify | ok | 151.2 | 240 |" in text
    assert "| bench-fwd | exit-1 | 99.0 | 240 |" in text
    # verify: six kernels passed 16 cases (flash, cuDNN and padded cases are unsupported).
    assert "| sdpa_cudnn | passed | 12/16 |" in text
    assert "| flash_attn_4 | not here | 0/0 | import flash_attn.cute failed" in text
    # bench: TFLOP/s with the share of the measured matmul rate (673 TFLOP/s on the H200).
    assert "matmul ceiling 673 TFLOP/s" in text
    assert "| sdpa_cudnn | 435 (65 %) | 566 (84 %) | 541 (80 %) |" in text
    assert "| xformers | unavailable |" in text
    assert "fastest: `sdpa_cudnn`" in text
    # Steps that did not run say so instead of breaking the page.
    assert "bench-fwd-bwd: no output" in text
    assert "install: not run" in text
    assert len(text.splitlines()) < 80  # one page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "name an OUT folder"),
        (["OUT", "--budget", "soon"], "--budget soon is not a number of seconds"),
        (
            ["OUT", "--wheelhouse", "/nonexistent-wheelhouse", "--wheel", "xformers"],
            "is not a folder",
        ),
        (["OUT", "--wheel", "xformers"], "--wheelhouse and --wheel go together"),
        (["OUT", "--frobnicate"], "unknown option --frobnicate"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    argv = [str(tmp_path / a) if a == "OUT" else a for a in args]
    res = subprocess.run(
        ["bash", str(SCRIPT), *argv], check=False, capture_output=True, text=True, timeout=30
    )
    assert res.returncode == 2
    assert message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "OUT").exists()  # nothing half-made


@pytest.mark.slow
def test_quick_run_on_cpu_leaves_one_folder_with_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "gpu-check"
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()  # empty: the install must fail cleanly and change nothing
    res = subprocess.run(
        [
            "bash",
            str(SCRIPT),
            str(out),
            "--python",
            sys.executable,
            "--quick",
            "--budget",
            "420",
            "--bench-backends",
            "eager",
            "--wheelhouse",
            str(wheelhouse),
            "--wheel",
            "xformers",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [line.split("\t") for line in (out / "steps.tsv").read_text().splitlines()]
    names = [r[0] for r in rows]
    assert names == [*STEPS[:6], "install-plan", "install", *STEPS[6:]]
    status = {r[0]: r[1] for r in rows}
    for name in ("check", "check-deep", "snapshot"):
        assert status[name] == "ok", (out / f"{name}.err").read_text()[-1000:]
    assert all(s in ("ok", "timeout", "skipped") or s.startswith("exit-") for s in status.values())
    # Each step that ran left its output in the folder.
    for name, st in status.items():
        if st != "skipped":
            assert (out / f"{name}.out").is_file()
    snapshot = json.loads((out / "machine.snapshot.json").read_text())
    assert snapshot["python"]["version"]
    deep = json.loads((out / "check-deep.out").read_text())
    assert deep["command"] == "check"
    # The install from an empty wheelhouse fails and pip freeze is unchanged.
    assert status["install"].startswith("exit-")
    assert (out / "freeze.diff").read_text() == ""
    summary = (out / "summary.md").read_text()
    for name in names:
        assert f"| {name} | {status[name]} |" in summary
    assert "## bench, forward + backward" in summary
    if status["verify"] == "ok":
        assert "| eager | passed |" in summary
    if status["bench-fwd"] == "ok":
        assert "| eager | " in summary.split("## bench, forward (")[1]
