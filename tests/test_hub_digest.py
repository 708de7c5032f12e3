"""Cached Hub kernel variants checked offline against the digest in their metadata.json, and
the readiness finding that shows the locked commit and the result."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from attn_doctor.diagnose import diagnose
from attn_doctor.facts import Environment
from attn_doctor.probe.hub_cache import probe_hub_kernels
from attn_doctor.probe.hub_digest import variant_digest, variant_files
from attn_doctor.rules_data import load_rules
from tests.conftest import SNAPSHOTS

REPO = "kernels-community/flash-attn2"
COMMIT = "c" * 40
VARIANT = "torch211-cxx11-cu130-x86_64-linux"


def _variant(root: Path) -> Path:
    """A variant folder like a Hub snapshot's: files, a link, __pycache__, a .pyc."""
    v = root / "snapshots" / COMMIT / "build" / VARIANT
    (v / "flash_attn2" / "__pycache__").mkdir(parents=True)
    (v / "flash_attn2" / "__init__.py").write_text("from ._ops import ops\n")
    (root / "blob").write_bytes(b"\x7fELF" + bytes(range(256)) * 64)
    (v / "flash_attn2" / "_flash.so").symlink_to(root / "blob")
    (v / "flash_attn2" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"pyc")
    (v / "flash_attn2" / "stale.pyc").write_bytes(b"pyc")
    (v / ".hidden").write_text("h")
    return v


def _write_digest(v: Path, files: dict[str, str]) -> None:
    meta = {
        "id": "x",
        "name": "flash-attn2",
        "version": 1,
        "license": "BSD-3-Clause",
        "python-depends": [],
        "backend": {"type": "cuda", "archs": ["9.0"]},
        "digest": {"algorithm": "sha256", "files": files},
    }
    (v / "metadata.json").write_text(json.dumps(meta))


def _our_files(v: Path) -> dict[str, str]:
    from attn_doctor.probe.hub_digest import _hash_file

    return {rel: _hash_file(p, "sha256") for rel, p in variant_files(v)}


def test_the_files_hashed_are_the_ones_kernels_hashes(tmp_path: Path) -> None:
    rust = pytest.importorskip("kernels._rust")
    v = _variant(tmp_path / "kernels--kernels-community--flash-attn2")
    _write_digest(v, {})
    theirs = rust.Digest.hash_variant(rust.DigestAlgorithm.SHA256, v).files
    assert _our_files(v) == dict(theirs)
    assert sorted(theirs) == [".hidden", "flash_attn2/__init__.py", "flash_attn2/_flash.so"]


def test_a_variant_matches_or_names_what_differs(tmp_path: Path) -> None:
    v = _variant(tmp_path / "repo")
    _write_digest(v, _our_files(v))
    assert variant_digest(v) == "ok sha256 3 files"
    (v / "flash_attn2" / "__init__.py").write_text("import os; os.system('x')\n")
    assert variant_digest(v) == "mismatch: differ: flash_attn2/__init__.py"
    _write_digest(v, {})
    assert variant_digest(v).startswith("mismatch: not in the digest: .hidden")
    (v / "metadata.json").write_text(json.dumps({"name": "flash-attn2"}))
    assert variant_digest(v) == "none"
    assert variant_digest(v, max_bytes=1) == "none"  # nothing to hash without a digest


def _project(tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    cache = tmp_path / "hub"
    repo = cache / "kernels--kernels-community--flash-attn2"
    v = _variant(repo)
    _write_digest(v, _our_files(v))
    (repo / "refs").mkdir()
    (repo / "refs" / "v4").write_text(COMMIT)
    cwd = tmp_path / "project"
    cwd.mkdir()
    lock = [{"dependency": {"repo-id": REPO, "version": 4}, "lock": {"commit": COMMIT}}]
    (cwd / "kernels.lock").write_text(json.dumps(lock))
    return cwd, {"HF_HUB_CACHE": str(cache)}, v


def _locked_finding(tmp_path: Path, cwd: Path, environ: dict[str, str]) -> tuple[str, str, str]:
    facts, _ = probe_hub_kernels(cwd, environ, tmp_path)
    env = Environment.from_json((SNAPSHOTS / "h200-real.json").read_text())
    env = dataclasses.replace(env, hub_kernels=facts)
    found = next(f for f in diagnose(env, load_rules()).findings if "locked" in f.title)
    return found.id, found.severity, found.title + " " + found.cause


def test_the_readiness_finding_shows_the_locked_commit_and_the_digest(tmp_path: Path) -> None:
    cwd, environ, _ = _project(tmp_path)
    rule, severity, text = _locked_finding(tmp_path, cwd, environ)
    assert (rule, severity) == ("hub-kernel-ready", "info")
    assert f"at the locked commit {COMMIT[:12]}" in text
    assert "its 3 files match the sha256 digest in its metadata.json" in text
    (tmp_path / "hub" / "kernels--kernels-community--flash-attn2" / "blob").write_bytes(b"x")
    rule, severity, text = _locked_finding(tmp_path, cwd, environ)
    assert (rule, severity) == ("hub-kernel-not-ready", "error")
    assert "cached files differ from their digest" in text
    assert "differ: flash_attn2/_flash.so" in text
