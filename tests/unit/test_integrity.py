"""Wheel integrity: the recorded sha256, how the plan pins it, and the refresh that adds it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from attn_doctor.errors import IndexDataError
from attn_doctor.index import load_index
from attn_doctor.planner.integrity import UNPINNED_WARNING, integrity_note, pinned_requirement
from attn_doctor.planner.pip_command import candidate_install_args
from attn_doctor.planner.plans import WheelCandidate

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "refresh_index.py"
DIGEST = "a" * 64


@pytest.fixture(scope="module")
def refresh() -> ModuleType:
    spec = importlib.util.spec_from_file_location("refresh_index", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["refresh_index"] = module
    spec.loader.exec_module(module)
    return module


def _cand(requirement: str, sha256: str | None, source: str) -> WheelCandidate:
    return WheelCandidate(
        backend="flash_attn_2",
        source=source,  # type: ignore[arg-type]
        trust="community" if source == "community" else "official",
        requirement=requirement,
        sha256=sha256,
    )


def test_every_package_index_wheel_carries_its_sha256() -> None:
    index = load_index()
    assert index.xformers
    assert all(w.sha256 and len(w.sha256) == 64 for w in index.xformers)
    assert all(r.sha256 and len(r.sha256) == 64 for r in index.flash_attn_4)


def test_a_url_install_is_pinned_and_a_name_install_is_left_to_the_index() -> None:
    url = _cand("flash-attn @ https://example.invalid/f.whl", DIGEST, "upstream-release")
    assert pinned_requirement(url) == f"flash-attn @ https://example.invalid/f.whl#sha256={DIGEST}"
    assert candidate_install_args(url)[-1].endswith(f"#sha256={DIGEST}")
    named = _cand("xformers==0.0.32.post2", DIGEST, "pypi")
    assert pinned_requirement(named) == "xformers==0.0.32.post2"
    assert "recorded" in (integrity_note(named) or "")


def test_a_community_build_without_a_hash_is_called_unpinned() -> None:
    cand = _cand("flash-attn @ https://example.invalid/f.whl", None, "community")
    assert (integrity_note(cand) or "").startswith(UNPINNED_WARNING)
    assert pinned_requirement(cand) == cand.requirement


def test_refresh_adds_hashes_only_where_the_index_publishes_them(refresh: ModuleType) -> None:
    text = 'a = 1\n\n[[wheel]]\nfilename = "x.whl"\nv = 1\n\n[[wheel]]\nfilename = "y.whl"\n'
    out = refresh.add_hashes(text, {"x.whl": DIGEST})
    assert f'filename = "x.whl"\nsha256 = "{DIGEST}"\nv = 1' in out
    assert 'filename = "y.whl"\n' in out
    assert out.count("sha256") == 1
    assert refresh.add_hashes(out, {"x.whl": "b" * 64}).count("sha256") == 1


def test_a_malformed_sha256_is_refused(tmp_path: Path) -> None:
    import shutil

    from attn_doctor.datafiles import index_dir

    copy = tmp_path / "index"
    shutil.copytree(index_dir(), copy)
    path = copy / "flash_attn_4.toml"
    path.write_text(path.read_text().replace('sha256 = "', 'sha256 = "zz', 1))
    with pytest.raises(IndexDataError, match="sha256"):
        load_index(copy)
