"""`attn-doctor fleet --ray` on a local multi-node Ray cluster (Ray's own test utilities).

Three nodes in this one machine: a plain one (the head), one whose PATH holds an
`nvidia-smi` that reports an H100 (a GPU this CPU machine cannot give; torch here is a CPU
build, so that node is not ready), and one whose `attn-doctor check` hangs. Skipped, with the
reason, where Ray does not install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from attn_doctor.errors import ExitCode
from attn_doctor.fleet.ray_gather import check_on_this_node, node_from_answer

from .conftest import REPO_ROOT

SCHEMA = json.loads((REPO_ROOT / "attn_doctor" / "schemas" / "fleet.schema.json").read_text())

FAKE_SMI = """#!/bin/sh
case "$*" in
  *--query-gpu*)
    echo "0, NVIDIA H100 80GB HBM3, 9.0, 81559, GPU-0000, 00000000:01:00.0, 570.86.15";;
  *) echo "| NVIDIA-SMI 570.86.15   Driver Version: 570.86.15   CUDA Version: 12.8 |";;
esac
"""
# Loaded by every Python on the hanging node; only `attn-doctor check` hangs (Ray's own
# worker starts normally, so the per-node timeout is what ends it).
HANG = """import sys, time
if "attn_doctor" in sys.orig_argv and "check" in sys.orig_argv:
    time.sleep(600)
"""


def test_task_answer_without_a_document_is_a_failed_node() -> None:
    hung = node_from_answer({"timeout": True}, name="n1", source="ray:1", timeout=5)
    assert hung.environment is None
    assert hung.failure == "check took more than 5 s (hung?)"
    broken = node_from_answer(
        {"returncode": 1, "stdout": "", "stderr": "Traceback...\nModuleNotFoundError: attn_doctor"},
        name="n2",
        source="ray:2",
        timeout=5,
    )
    assert broken.failure is not None
    assert "ModuleNotFoundError: attn_doctor" in broken.failure


@pytest.mark.functional
def test_the_task_runs_check_here() -> None:
    answer = check_on_this_node([], 120)
    assert answer["timeout"] is False
    node = node_from_answer(answer, name="here", source="local", timeout=120)
    assert node.environment is not None, answer["stderr"]
    assert node.diagnosis is not None


def _fleet_ray(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    full.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "attn_doctor", "fleet", "--ray", *args],
        capture_output=True, text=True, cwd=REPO_ROOT, env=full, check=False, timeout=300,
    )  # fmt: skip


@pytest.mark.functional
def test_without_ray_installed_the_error_says_how(tmp_path: Path) -> None:
    fake = tmp_path / "ray"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('No module named ray (test)')\n")
    proc = _fleet_ray(env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO_ROOT}"})
    assert proc.returncode == ExitCode.USAGE
    assert "fleet --ray needs Ray" in proc.stderr
    assert "attn-doctor[fleet]" in proc.stderr


@pytest.mark.functional
def test_no_cluster_is_a_usage_error() -> None:
    pytest.importorskip("ray", reason="Ray is not installed here")
    proc = _fleet_ray("--json")  # runs before the test cluster below exists
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    doc = json.loads(proc.stdout)
    assert "cannot connect to a Ray cluster" in doc["error"]["message"]


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    try:
        from ray.cluster_utils import Cluster
    except Exception as exc:  # not installable here: say why
        pytest.skip(f"Ray is not importable here ({type(exc).__name__}: {exc})")
    base = tmp_path_factory.mktemp("ray-nodes")
    gpu_bin = base / "gpu-bin"
    gpu_bin.mkdir()
    (gpu_bin / "nvidia-smi").write_text(FAKE_SMI)
    (gpu_bin / "nvidia-smi").chmod(0o755)
    hang_site = base / "hang-site"
    hang_site.mkdir()
    (hang_site / "sitecustomize.py").write_text(HANG)

    saved = dict(os.environ)
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), saved.get("PYTHONPATH")]))
    cluster = None
    try:
        # A raylet, and every worker it starts, inherits the environment at add_node time.
        os.environ["PYTHONPATH"] = pythonpath
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        os.environ["PATH"] = f"{gpu_bin}{os.pathsep}{saved.get('PATH', '')}"
        gpu_node = cluster.add_node(num_cpus=1, resources={"fake_h100": 1})
        os.environ["PATH"] = saved.get("PATH", "")
        os.environ["PYTHONPATH"] = f"{hang_site}{os.pathsep}{pythonpath}"
        hang_node = cluster.add_node(num_cpus=1, resources={"hangs": 1})
        os.environ.clear()
        os.environ.update(saved)
        cluster.wait_for_nodes()
        yield {
            "address": cluster.address,
            "head": cluster.head_node.node_id,
            "gpu": gpu_node.node_id,
            "hang": hang_node.node_id,
        }
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if cluster is not None:
            cluster.shutdown()


@pytest.mark.functional
@pytest.mark.slow
def test_fleet_ray_checks_every_node(ray_cluster: dict[str, Any], tmp_path: Path) -> None:
    saved = tmp_path / "snaps"
    proc = _fleet_ray("--json", "--ray-address", ray_cluster["address"], "--timeout", "10",
                      "--save-snapshots", str(saved))  # fmt: skip
    doc = json.loads(proc.stdout)  # Ray's logging stays off stdout
    jsonschema.validate(doc, SCHEMA)
    assert proc.returncode == doc["exit_code"] == ExitCode.PROBLEMS, proc.stderr
    result = doc["result"]
    assert result["nodes"] == 3

    (failure,) = result["failures"]
    assert failure["source"] == f"ray:{ray_cluster['hang']}"
    assert "more than 10 s" in failure["reason"]

    groups = result["groups"]
    assert len(groups) == 2
    head_name = next(n for g in groups for n in g["nodes"] if ray_cluster["head"][:8] in n)
    assert groups[0]["nodes"] == [head_name]  # ready beats not-ready among equal sizes
    assert groups[0]["state"] == "ready"
    (outlier,) = result["outliers"]
    assert ray_cluster["gpu"][:8] in outlier["node"]
    assert outlier["state"] == "not-ready"
    diffs = {d["name"]: d for d in outlier["differences"]}
    assert diffs["gpus"]["value"] == "1x NVIDIA H100 80GB HBM3 (sm90)"
    assert diffs["gpus"]["reference"] == "none"
    assert diffs["driver"]["value"] == "570.86.15 (CUDA 12.8)"
    assert "cpu-torch-on-nvidia-gpu" in {f["id"] for f in outlier["findings"]}
    # What was gathered can be planned for later: one snapshot per checked node.
    assert sorted(p.stem for p in saved.iterdir()) == sorted([head_name, outlier["node"]])
