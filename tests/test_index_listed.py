"""Wheels listed by release pages and find-links / PEP 503 pages (``index update``) become
``listed_wheels.toml`` entries, validated by the loaders and used by the flash-attn 2 planner.

Pure: the pages are served by a fake fetch from the handmade responses in
tests/data/index_update/handmade (the same files the functional test serves over 127.0.0.1).
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

import pytest

from attn_doctor.datafiles import bundled_index_dir
from attn_doctor.errors import IndexDataError
from attn_doctor.facts import Environment
from attn_doctor.index import load_index
from attn_doctor.index.update_listed import (
    index_page_wheels,
    listed_toml,
    page_entries,
    release_entries,
    torch_requirement,
)
from attn_doctor.planner.integrity import integrity_note, pinned_requirement
from attn_doctor.resolve import plan_backend

DATA = Path(__file__).parent / "data" / "index_update" / "handmade"
SNAPSHOT = Path(__file__).parent / "snapshots" / "h200-real.json"
BASE = "http://127.0.0.1:1"
WHEN = "2026-12-07T00:00:00Z"


def _fetch(url: str, headers: Mapping[str, str]) -> bytes:
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    if path == "/links":
        return (DATA / "find-links.html").read_bytes()
    if path == "/root/":
        return b'<a href="/idx/flash-attn/">flash-attn</a><a href="/idx/numpy/">numpy</a>'
    if path == "/idx/flash-attn/":
        return (DATA / "find-links.html").read_bytes().replace(b"files/", b"/files/")
    file = DATA / "files" / path.rsplit("/", 1)[-1]
    if path.startswith("/files/") and file.is_file():
        return file.read_bytes()
    raise urllib.error.HTTPError(url, 404, "not found", None, None)  # type: ignore[arg-type]


def _env(torch: str) -> Environment:
    data = json.loads(SNAPSHOT.read_text())
    data["torch"]["version"] = torch
    return Environment.from_json(json.dumps(data))


def _overlay(tmp_path: Path, entries: list[dict[str, object]]) -> Path:
    target = tmp_path / "index"
    shutil.copytree(bundled_index_dir(), target)
    (target / "listed_wheels.toml").write_text(listed_toml(entries, WHEN), encoding="utf-8")
    return target


def test_torch_requirement_is_read_from_metadata_only() -> None:
    meta = "Name: x\nRequires-Dist: torch ==2.11.*\nRequires-Dist: einops\n\nbody\n"
    assert torch_requirement(meta) == "==2.11.*"
    assert torch_requirement("Requires-Dist: torch (>=2.4)\n") == ">=2.4"
    assert torch_requirement("Requires-Dist: torchvision ==0.1\n") == ""
    assert torch_requirement('Requires-Dist: torch; extra == "test"\n') == ""


def test_a_find_links_page_and_a_pep_503_root_list_the_same_wheels() -> None:
    flat = [f["filename"] for f in index_page_wheels(f"{BASE}/links", _fetch)]
    root = [f["filename"] for f in index_page_wheels(f"{BASE}/root/", _fetch)]
    assert flat == root
    assert "numpy-2.0.0-cp312-cp312-linux_x86_64.whl" not in flat
    assert len(flat) == 4


def test_page_entries_keep_only_wheels_whose_metadata_declares_torch() -> None:
    entries, note = page_entries(f"{BASE}/links", "third-party index", _fetch, WHEN)
    got = {e["filename"]: e["requires_torch"] for e in entries}
    assert got == {
        "flash_attn-2.8.2+cu130torch2.14-cp312-cp312-linux_x86_64.whl": "==2.13.*",
        "flash_attn-2.8.3+cu128torch2.11-cp312-cp312-linux_x86_64.whl": "==2.11.*",
        "flash_attn-2.8.3+cu130-cp312-cp312-linux_x86_64.whl": "==2.14.*",
    }
    assert note == "1 wheel(s) without readable METADATA left out"
    assert all(e["torch_from"] == "metadata" for e in entries)


def test_torch_2_14_plans_the_listed_wheel_that_declares_it(tmp_path: Path) -> None:
    env = _env("2.14.0")
    assert all(
        c.source == "source-build"
        for c in plan_backend(env, load_index(), "flash_attn_2").candidates
    )
    entries, _ = page_entries(f"{BASE}/links", "third-party index", _fetch, WHEN)
    index = load_index(_overlay(tmp_path, entries))
    plan = plan_backend(env, index, "flash_attn_2")
    best = plan.candidates[0]
    assert best.filename == "flash_attn-2.8.3+cu130-cp312-cp312-linux_x86_64.whl"
    assert (best.source, best.trust, best.version) == ("community", "third-party index", "2.8.3")
    assert f"listed by {BASE}/links (trust: third-party index" in best.reason
    assert pinned_requirement(best).endswith("#sha256=" + "3" * 64)
    assert "pinned" in str(integrity_note(best))
    # The wheel named torch2.14 declares torch 2.13: never planned for 2.14.
    assert all("cu130torch2.14" not in (c.filename or "") for c in plan.candidates)
    # torch 2.13 gets that one too, after the newer bundled community build for 2.13.
    plan13 = plan_backend(_env("2.13.0"), index, "flash_attn_2")
    names = [c.filename for c in plan13.candidates]
    assert "flash_attn-2.8.2+cu130torch2.14-cp312-cp312-linux_x86_64.whl" in names
    assert names[0] == "flash_attn-2.8.3+cu130torch2.13-cp312-cp312-linux_x86_64.whl"


def test_release_assets_lend_their_digest_and_add_releases(tmp_path: Path) -> None:
    rels = json.loads((DATA / "github-releases.json").read_text())
    listing = [
        {
            "tag": r["tag_name"],
            "assets": [
                {"name": a["name"], "sha256": (a["digest"] or "")[7:] or None, "url": ""}
                for a in r["assets"]
            ],
        }
        for r in rels
    ]
    template = "https://example.invalid/{tag}/{filename}"
    entries = release_entries("Dao-AILab/flash-attention", "official", listing, template, WHEN)
    assert [e["torch_from"] for e in entries] == ["filename"]
    index = load_index(_overlay(tmp_path, entries))
    plan = plan_backend(_env("2.10.0"), index, "flash_attn_2")
    best = plan.candidates[0]
    assert best.version == "2.8.3.post2"
    assert (best.source, best.trust, best.sha256) == ("upstream-release", "official", "1" * 64)
    assert "named for torch==2.10.* by the project's naming rule" in best.reason


def test_a_bad_listed_entry_is_refused_by_the_loader(tmp_path: Path) -> None:
    entries, _ = page_entries(f"{BASE}/links", "third-party index", _fetch, WHEN)
    entries[0]["trust"] = "friendly"
    with pytest.raises(IndexDataError) as info:
        load_index(_overlay(tmp_path, entries))
    assert "listed_wheels.toml: wheel[0]" in info.value.message


def _fetch_index(url: str, headers: Mapping[str, str]) -> bytes:
    """The handmade JSON simple API pages (xformers 0.0.36, sageattention 1.0.7)."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    parts = [p for p in path.split("/") if p]
    if len(parts) == 2 and parts[0] == "simple":
        page = DATA / "simple" / f"{parts[1]}.json"
        if page.is_file():
            return page.read_bytes()
    return _fetch(url, headers)


def test_newer_xformers_and_sageattention_releases_are_planned_from_the_overlay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from attn_doctor.index.update import update_index
    from attn_doctor.resolve.sage import load_sage_releases

    environ = {"XDG_CACHE_HOME": str(tmp_path)}
    result = update_index(
        index_url=f"{BASE}/simple",
        environ=environ,
        bundled=bundled_index_dir(),
        fetch=_fetch_index,
        projects=("xformers", "sageattention"),
    )
    assert result.files == ("sageattention.toml", "xformers.toml"), result
    directory = Path(str(result.directory))
    index = load_index(directory)
    new = [w for w in index.xformers if w.version == "0.0.36"]
    assert {w.requires_torch for w in new} == {"torch>=2.12"}
    assert {w.sha256 for w in new} == {"5" * 64, "6" * 64}
    # torch 2.14 with CUDA 12.8: the recorded 0.0.35 (verified) first, then 0.0.36 (unverified).
    data = json.loads(SNAPSHOT.read_text())
    data["torch"].update(version="2.14.0", cuda="12.8")
    env = Environment.from_json(json.dumps(data))
    plan = plan_backend(env, index, "xformers")
    versions = [c.version for c in plan.candidates]
    assert versions[:2] == ["0.0.35", "0.0.36"], versions
    newest = plan.candidates[1]
    assert not newest.verified
    assert "METADATA requires torch>=2.12" in newest.reason
    assert "taken as cu128" in newest.reason
    # torch 2.11 is below 0.0.36's requirement; CUDA 13 is not 0.0.35's cu128 major.
    assert any(
        "requires torch>=2.12" in r.reason
        for r in plan_backend(_env("2.11.0"), index, "xformers").rejections
    )
    # sageattention 1.0.7 from its METADATA (torch>=2.4.0), unverified kernels, before 1.0.6.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    load_sage_releases.cache_clear()
    try:
        releases = load_sage_releases()
    finally:
        load_sage_releases.cache_clear()
    assert [r.version for r in releases] == ["1.0.7", "1.0.6", "2.2.0"]
    assert (releases[0].min_torch, releases[0].kind, releases[0].verified) == (
        "2.4.0",
        "pypi",
        False,
    )


def test_a_listed_flash_attn_3_wheel_is_planned_for_hopper(tmp_path: Path) -> None:
    name = "flash_attn_3-3.0.0b1+cu130-cp39-abi3-linux_x86_64.whl"
    entry = {
        "package": "flash_attn_3",
        "version": "3.0.0b1+cu130",
        "filename": name,
        "url": f"{BASE}/files/{name}",
        "requires_torch": "==2.11.*",
        "torch_from": "metadata",
        "listed_by": f"{BASE}/links",
        "trust": "third-party index",
        "source": f"{BASE}/links ({WHEN[:10]}): the wheel's METADATA Requires-Dist",
        "sha256": "9" * 64,
        "verified": True,
    }
    index = load_index(_overlay(tmp_path, [entry]))
    plan = plan_backend(_env("2.11.0"), index, "flash_attn_3")
    listed = [c for c in plan.candidates if c.filename == name]
    assert listed, plan
    assert listed[0].requirement == f"flash-attn-3 @ {BASE}/files/{name}"
    assert listed[0].trust == "third-party index"
    # torch 2.12: its METADATA says 2.11 only.
    other = plan_backend(_env("2.12.0"), index, "flash_attn_3")
    assert all(c.filename != name for c in other.candidates)


def test_a_bundled_release_wheel_listed_on_its_page_gets_the_page_digest(tmp_path: Path) -> None:
    data = json.loads(SNAPSHOT.read_text())
    data["torch"].update(version="2.7.0", cuda="12.8")
    env = Environment.from_json(json.dumps(data))
    bundled = plan_backend(env, load_index(), "flash_attn_2").candidates[0]
    assert bundled.source == "upstream-release"
    assert bundled.sha256 is None
    assert bundled.filename is not None
    listing = [
        {
            "tag": f"v{bundled.version}",
            "assets": [{"name": bundled.filename, "sha256": "a" * 64, "url": bundled.url}],
        }
    ]
    entries = release_entries("Dao-AILab/flash-attention", "official", listing, "{tag}", WHEN)
    index = load_index(_overlay(tmp_path, entries))
    best = plan_backend(env, index, "flash_attn_2").candidates[0]
    assert (best.filename, best.sha256, best.verified) == (bundled.filename, "a" * 64, True)
    assert "listed by Dao-AILab/flash-attention" in best.reason
    assert "(upload not confirmed offline)" not in best.reason
