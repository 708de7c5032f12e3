"""Plan once for many nodes: ``download``/``install --snapshot`` over a folder of snapshots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from attn_doctor.facts import Environment, HostFacts, PythonFacts, TorchFacts
from tests.conftest import SNAPSHOTS
from tests.integration.conftest import run_cli
from tests.integration.wheels import build_wheel


def _node(path: Path, *, os_name: str, created: str) -> None:
    env = Environment(
        created_at=created,
        host=HostFacts(
            os="linux" if os_name == "linux" else "windows",
            libc="glibc" if os_name == "linux" else None,
            libc_version="2.35" if os_name == "linux" else None,
            arch="x86_64" if os_name == "linux" else "AMD64",
        ),
        python=PythonFacts(version="3.11.9", implementation="cpython", abi_tag="cp311"),
        torch=TorchFacts(version="2.8.0+cu128", build="cuda", cuda="12.8"),
    )
    path.write_text(env.to_json(), encoding="utf-8")


def test_one_wheelhouse_for_every_group(tmp_path: Path) -> None:
    house = tmp_path / "house"
    for tag in ("cp311-cp311-linux_x86_64", "cp311-cp311-win_amd64", "cp312-cp312-win_amd64"):
        build_wheel(house, "xformers", "0.0.32.post2", {"xformers/__init__.py": ""}, tag=tag)
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    for n in range(3):
        _node(nodes / f"lin{n}.json", os_name="linux", created=f"2026-11-29T00:00:0{n}Z")
    _node(nodes / "win0.json", os_name="windows", created="2026-11-29T00:00:00Z")
    dest = tmp_path / "out"
    proc = run_cli(
        ["download", "xformers", "--requirement", "xformers==0.0.32.post2",
         "--snapshot", str(nodes), "--dest", str(dest), "--find-links", str(house), "--json"]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    groups = json.loads(proc.stdout)["result"]["groups"]
    assert [g["nodes"] for g in groups] == [["lin0", "lin1", "lin2"], ["win0"]]
    assert sorted(p.name for p in dest.iterdir()) == [
        "xformers-0.0.32.post2-cp311-cp311-linux_x86_64.whl",
        "xformers-0.0.32.post2-cp311-cp311-win_amd64.whl",
    ]


def test_install_plans_one_per_group(tmp_path: Path) -> None:
    for name in ("a", "b"):
        shutil.copy(SNAPSHOTS / "h100-linux-recent-torch.json", tmp_path / f"{name}.json")
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(SNAPSHOTS / "cpu-only-laptop.json", other / "laptop.json")
    proc = run_cli(
        ["install", "--auto", "--snapshot", str(tmp_path / "a.json"),
         "--snapshot", str(tmp_path / "b.json"), "--snapshot", str(other), "--json"]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    groups = doc["result"]["groups"]
    assert [g["nodes"] for g in groups] == [["a", "b"], ["laptop"]]
    assert groups[0]["plan"]["candidate"]["requirement"]  # the H100s get a wheel to install
    assert groups[0]["commands"]
    assert "built into torch" in groups[1]["note"]
    assert doc["result"]["dry_run"] is True
