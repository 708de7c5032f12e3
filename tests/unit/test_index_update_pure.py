"""The pure parts of ``attn-doctor index update`` (no server)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from attn_doctor._version import __version__
from attn_doctor.index.registry import default_index_url, version_of
from attn_doctor.index.update import find_links_wheels, newest_version
from attn_doctor.overlay import OVERLAY_FILE, knowledge_line, read_overlay


def test_version_of_wheels_and_sdists() -> None:
    assert version_of("flash_attn_4-4.0.0b40-py3-none-any.whl") == "4.0.0b40"
    assert version_of("flash_attn-2.8.3.post2.tar.gz") == "2.8.3.post2"


def test_newest_skips_yanked_and_dev() -> None:
    page = {
        "files": [
            {"filename": "x-1.0.0-py3-none-any.whl", "yanked": False},
            {"filename": "x-2.0.0-py3-none-any.whl", "yanked": "broken"},
            {"filename": "x-1.1.0.dev1-py3-none-any.whl", "yanked": False},
            {"filename": "x-1.1.0b1.tar.gz", "yanked": False},
        ]
    }
    assert newest_version(page) == "1.1.0b1"


def test_mirror_from_the_environment() -> None:
    assert default_index_url({"ATTN_DOCTOR_INDEX_URL": "http://mirror/simple"}) == (
        "http://mirror/simple"
    )
    assert default_index_url({"PIP_INDEX_URL": "http://pip/simple"}) == "http://pip/simple"


def test_find_links_keeps_attention_wheels() -> None:
    page = b'<a href="a/flash_attn-2.8.3%2Bcu128-cp312-cp312-linux_x86_64.whl#sha256=ab">x</a>'
    page += b'<a href="numpy-2.0-cp312-cp312-linux_x86_64.whl">y</a>'
    got = find_links_wheels("http://h/", lambda url, headers: page)
    assert got == ["flash_attn-2.8.3+cu128-cp312-cp312-linux_x86_64.whl"]


def _write(tmp_path: Path, version: str) -> dict[str, str]:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    index = tmp_path / "attn-doctor" / "index"
    index.mkdir(parents=True)
    (index / OVERLAY_FILE).write_text(
        json.dumps(
            {
                "schema": 1,
                "attn_doctor_version": version,
                "updated": "2026-12-01T00:00:00Z",
                "sources": [{"name": "the package index", "trust": "official", "status": "ok"}],
            }
        )
    )
    return env


def test_knowledge_line_says_age_and_source(tmp_path: Path) -> None:
    env = _write(tmp_path, __version__)
    line = knowledge_line(env, today=dt.date(2026, 12, 7))
    assert "6 days old" in line
    assert "the package index (official, ok)" in line


def test_an_overlay_of_another_version_is_ignored(tmp_path: Path) -> None:
    env = _write(tmp_path, "0.0.0-other")
    assert read_overlay(env) is None
    assert "bundled" in knowledge_line(env)
