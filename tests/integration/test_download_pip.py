"""``attn-doctor download`` with real pip against a local directory (no network)."""

from __future__ import annotations

import json
from pathlib import Path

from attn_doctor.facts import Environment, HostFacts, PythonFacts, TorchFacts
from tests.integration.conftest import run_cli
from tests.integration.wheels import build_wheel


def _snapshot(path: Path, *, os_name: str, arch: str) -> Path:
    env = Environment(
        host=HostFacts(
            os="linux" if os_name == "linux" else "windows",
            libc="glibc" if os_name == "linux" else None,
            libc_version="2.35" if os_name == "linux" else None,
            arch=arch,
        ),
        python=PythonFacts(version="3.11.9", implementation="cpython", abi_tag="cp311"),
        torch=TorchFacts(version="2.8.0+cu128", build="cuda", cuda="12.8"),
    )
    path.write_text(env.to_json(), encoding="utf-8")
    return path


def test_download_follows_dependencies_but_never_torch(wheelhouse: Path, tmp_path: Path) -> None:
    snap = _snapshot(tmp_path / "target.json", os_name="linux", arch="x86_64")
    dest = tmp_path / "out"
    proc = run_cli(
        [
            "download",
            "flash-attn",
            "--requirement",
            "flash-attn==2.8.3",
            "--snapshot",
            str(snap),
            "--dest",
            str(dest),
            "--find-links",
            str(wheelhouse),
            "--json",
        ]
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)["result"]["download"]
    assert result["files"] == [
        "einops-0.8.1-py3-none-any.whl",
        "flash_attn-2.8.3-py3-none-any.whl",
    ]
    assert result["skipped"] == ["torch: protected, the target keeps its own"]
    assert "--platform manylinux_2_35_x86_64" in result["commands"][0]


def test_download_picks_the_targets_platform(tmp_path: Path) -> None:
    house = tmp_path / "house"
    for tag in ("cp311-cp311-linux_x86_64", "cp311-cp311-win_amd64", "cp312-cp312-win_amd64"):
        build_wheel(house, "xformers", "0.0.32.post2", {"xformers/__init__.py": ""}, tag=tag)
    snap = _snapshot(tmp_path / "win.json", os_name="windows", arch="AMD64")
    dest = tmp_path / "out"
    proc = run_cli(
        [
            "download",
            "xformers",
            "--requirement",
            "xformers==0.0.32.post2",
            "--snapshot",
            str(snap),
            "--dest",
            str(dest),
            "--find-links",
            str(house),
        ]
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in dest.iterdir()) == [
        "xformers-0.0.32.post2-cp311-cp311-win_amd64.whl"
    ]
