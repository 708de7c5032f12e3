"""Replay upstream flash-attn's setup.py naming per tag, and compare with what was published.

``tests/data/flash_attn_setup_names.json`` is what ``get_wheel_url()`` from each tag's own
setup.py returned over a grid of machines (recorded by ``scripts/refresh_index.py
--record-naming``, which runs upstream's function against stub torch/sys/platform modules).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from attn_doctor.index import load_index
from attn_doctor.index.naming import published_wheels, setup_py_wheel_name
from attn_doctor.index.records import FlashAttnRelease

RECORDED = json.loads(
    (Path(__file__).parent / "data" / "flash_attn_setup_names.json").read_text(encoding="utf-8")
)
RELEASES = {r.tag: r for r in load_index().flash_attn}


def _point(key: str) -> dict[str, Any]:
    torch_part, abi, py, plat = key.split("|")
    torch_version, torch_cuda = torch_part.removeprefix("torch").split("+cu")
    sys_platform, machine = plat.split("-")
    return {
        "torch_version": torch_version,
        "torch_cuda": torch_cuda,
        "cxx11_abi": abi == "abi1",
        "python": py.removeprefix("py"),
        "sys_platform": sys_platform,
        "machine": machine,
    }


def _requested(release: FlashAttnRelease, key: str) -> str:
    return setup_py_wheel_name(release, **_point(key))


def test_every_tag_in_the_index_was_recorded() -> None:
    assert set(RECORDED["tags"]) == set(RELEASES)


@pytest.mark.parametrize("tag", sorted(RELEASES))
def test_naming_rule_replays_upstream_setup_py(tag: str) -> None:
    release = RELEASES[tag]
    entry = RECORDED["tags"][tag]
    assert entry["version"] == release.version
    names = RECORDED["variants"][entry["names"]]
    assert len(names) > 500
    for key, recorded in names.items():
        assert _requested(release, key) == recorded.replace("{version}", release.version), key


def _published(tag: str) -> set[str]:
    return {w.filename for w in published_wheels(RELEASES[tag])}


@pytest.mark.parametrize(
    ("tag", "key", "published"),
    [
        ("v2.8.3", "torch2.8.0+cu12.8|abi1|py3.12|linux-x86_64", True),
        ("v2.8.3", "torch2.8.0+cu12.6|abi0|py3.10|linux-x86_64", True),
        # setup.py asks for a torch 2.9 wheel the 2.8.3 workflow never built.
        ("v2.8.3", "torch2.9.1+cu12.8|abi1|py3.12|linux-x86_64", False),
        # 2.8.3.post1's setup.py knows cu13, its workflow still builds CUDA 12.9 for torch <= 2.8.
        ("v2.8.3.post1", "torch2.9.1+cu13.0|abi1|py3.12|linux-x86_64", False),
        # Windows and aarch64 are asked for (platform from uname) but never published.
        ("v2.8.3", "torch2.8.0+cu12.8|abi1|py3.12|win32-AMD64", False),
        ("v2.8.3", "torch2.8.0+cu12.8|abi1|py3.12|linux-aarch64", False),
        # CUDA 11 dropped in 2.7.4: setup.py still asks for cu11.
        ("v2.7.4", "torch2.5.1+cu11.8|abi0|py3.10|linux-x86_64", False),
        ("v2.7.3", "torch2.5.1+cu11.8|abi0|py3.10|linux-x86_64", True),
        # Python 3.13 wheels only for torch >= 2.5 in 2.7.1.
        ("v2.7.1", "torch2.4.1+cu12.4|abi0|py3.13|linux-x86_64", False),
        ("v2.7.1", "torch2.5.1+cu12.4|abi0|py3.13|linux-x86_64", True),
        # 2.5.x: CUDA part is major+minor, and 12.x always maps to 122.
        ("v2.5.8", "torch2.3.1+cu12.1|abi0|py3.10|linux-x86_64", True),
        # 2.5.0-2.5.6 hard-code linux_x86_64: on aarch64 setup.py asks for an x86_64 wheel that
        # exists but cannot run there (the resolver rejects it by platform).
        ("v2.5.6", "torch2.2.2+cu12.1|abi0|py3.10|linux-aarch64", True),
    ],
)
def test_requested_name_vs_published(tag: str, key: str, published: bool) -> None:
    assert (_requested(RELEASES[tag], key) in _published(tag)) is published


def test_newest_torch_gets_no_upstream_wheel_from_any_release() -> None:
    key = "torch2.10.0+cu12.8|abi1|py3.12|linux-x86_64"
    assert not any(_requested(r, key) in _published(t) for t, r in RELEASES.items())


@pytest.mark.parametrize("tag", sorted(RELEASES))
def test_setup_py_and_the_workflow_agree_somewhere_on_the_grid(tag: str) -> None:
    # If the CUDA-part style or the platform were encoded wrongly for a tag, no name setup.py
    # asks for would ever be published. Every release has hits, and every hit is Linux x86_64.
    published = _published(tag)
    names = RECORDED["variants"][RECORDED["tags"][tag]["names"]]
    hits = [key for key in names if _requested(RELEASES[tag], key) in published]
    assert hits, tag
    # Up to 2.5.6 setup.py hard-coded linux_x86_64, so an aarch64 machine also "hits".
    hard_coded = Version(RELEASES[tag].version) <= Version("2.5.6")
    assert all(key.endswith("linux-x86_64") or hard_coded for key in hits)
