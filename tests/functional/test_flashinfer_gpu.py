"""FlashInfer on a real GPU: verify's prefill against the reference, and a bench row.

``gpu``-marked (skipped without a CUDA device) and skipped where flashinfer-python is not
installed; scripts/gpu_check.sh runs this file as its ``flashinfer`` step.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from attn_doctor.bench.results import BenchResult
from attn_doctor.verify.kernels import check_kernels

pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _needs_flashinfer() -> None:
    try:
        importlib.metadata.distribution("flashinfer-python")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("flashinfer-python is not installed (attn-doctor install flashinfer)")


def test_verify_prefill_matches_the_reference() -> None:
    report = check_kernels("flashinfer", device="cuda", timeout=600)
    assert report.status == "passed", report.reason
    ran = [c for c in report.cases if c.outcome != "unsupported"]
    assert ran, "every case was unsupported"


def test_bench_measures_a_flashinfer_row(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    args = ["bench", "flashinfer", "--json", "--device", "cuda", "--seqlen", "1024",
            "--head-dim", "128", "--dtype", "bf16", "--causal", "--reps", "3",
            "--fwd", "--no-save"]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "attn_doctor", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = BenchResult.from_dict(json.loads(proc.stdout)["result"])
    sweep = next(s for s in result.sweeps if s.backend == "flashinfer")
    assert sweep.status == "ok", sweep.detail
    assert all(p.time is not None for p in sweep.points if p.status == "ok")
