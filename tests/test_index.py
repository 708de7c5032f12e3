"""The shipped wheels_index/ loads, validates, and says what upstream says."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from packaging.version import Version

from attn_doctor.errors import IndexDataError
from attn_doctor.index import load_index
from attn_doctor.index.load import FILES
from attn_doctor.index.naming import published_wheels

REPO = Path(__file__).resolve().parent.parent


def test_shipped_index_loads_and_every_fact_has_provenance() -> None:
    index = load_index()
    assert index.flash_attn[0].version == "2.5.0"
    assert [r.version for r in index.flash_attn] == sorted(
        (r.version for r in index.flash_attn), key=Version
    )
    for release in index.flash_attn:
        assert release.source.startswith("Dao-AILab/flash-attention@" + release.tag)
        assert published_wheels(release), release.tag
    for wheel in index.xformers:
        assert wheel.source
        # Read from the wheel's METADATA, or named after a wheel of the same build that was.
        assert wheel.verified or "wheel read; this file's name and pin" in wheel.source
    assert index.community.wheels
    assert index.community.source
    assert all(w.url.startswith("https://github.com/") for w in index.community.wheels)
    assert index.hub.kernels
    assert index.unsloth.extras
    assert index.flash_attn_4
    assert index.requirement("flash_attn_3") is not None
    assert index.requirement("flash_attn_4") is not None


def test_flash_attn_releases_cover_every_tag_from_2_5_0() -> None:
    tags = [r.tag for r in load_index().flash_attn]
    for tag in ("v2.5.0", "v2.5.9.post1", "v2.6.3", "v2.7.0.post2", "v2.7.4.post1", "v2.8.3"):
        assert tag in tags
    assert len(tags) == len(set(tags))


def test_cuda_11_dropped_in_2_7_4_and_blackwell_arrives_with_cuda_12_9() -> None:
    by_tag = {r.tag: r for r in load_index().flash_attn}
    assert "11.8.0" in by_tag["v2.7.3"].cuda
    assert all(not c.startswith("11.") for c in by_tag["v2.7.4"].cuda)
    # 2.7.3 introduced sm_100/sm_120 in setup.py, but its wheels were built with CUDA 11.8/12.3.
    assert by_tag["v2.7.3"].archs_for("12.3.2") == (80, 90)
    assert by_tag["v2.8.0"].archs_for("12.9.0") == (80, 90, 100, 120)
    assert by_tag["v2.6.3"].archs_for("12.3.2") == (80, 90)


def test_matrix_exclude_semantics_v2_5_0() -> None:
    # 5 Pythons x 5 torch x 2 CUDA x 2 ABI = 100 cells; the excludes remove 42 (worked by hand:
    # torch 1.12.1: 12, 1.13.1: 10, 2.0.1: 12, 2.1.1: 4, 2.2.0.dev: 4).
    release = next(r for r in load_index().flash_attn if r.tag == "v2.5.0")
    wheels = published_wheels(release)
    assert len(wheels) == 58
    assert "flash_attn-2.5.0+cu122torch2.1cxx11abiFALSE-cp310-cp310-linux_x86_64.whl" in {
        w.filename for w in wheels
    }


def test_xformers_torch_pins_come_from_wheel_metadata() -> None:
    pins = {(w.version, w.platform_tag): w.requires_torch for w in load_index().xformers}
    assert pins[("0.0.32.post2", "manylinux_2_28_x86_64")] == "torch==2.8.0"
    # Post releases moved the pin.
    assert pins[("0.0.28.post1", "manylinux_2_28_x86_64")] == "torch==2.4.1"
    assert pins[("0.0.28.post2", "manylinux_2_28_x86_64")] == "torch==2.5.0"
    assert pins[("0.0.33.post2", "win_amd64")] == "torch==2.9.1"


def test_community_wheels_are_labelled_and_parsed() -> None:
    community = load_index().community
    assert community.trust == "community"
    w = next(
        w
        for w in community.wheels
        if w.filename == "flash_attn-2.8.3+cu128torch2.9-cp312-cp312-linux_x86_64.whl"
    )
    assert (w.package, w.version, w.cuda, w.torch_minor) == ("flash_attn", "2.8.3", "12.8", "2.9")
    assert "%2B" in w.url
    assert any(w.package == "flash_attn_3" and w.abi_tag == "abi3" for w in community.wheels)
    assert any("win_amd64" in w.platform_tags for w in community.wheels)
    assert any(t.endswith("aarch64") for w in community.wheels for t in w.platform_tags)


def _copy_index(tmp_path: Path) -> Path:
    dest = tmp_path / "wheels_index"
    shutil.copytree(REPO / "wheels_index", dest)
    return dest


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        pytest.param(
            "flash_attn.toml",
            'python = ["3.7", "3.8", "3.9", "3.10", "3.11"]',
            'python = "3.10"',
            "flash_attn.toml: release[0] (v2.5.0).python: expected a list of strings",
            id="flash-attn-python-not-a-list",
        ),
        pytest.param(
            "flash_attn.toml",
            'tag = "v2.5.1"',
            'tag = "v2.5.1-bad"',
            "flash_attn.toml: release[1] (v2.5.1-bad).tag",
            id="flash-attn-bad-tag",
        ),
        pytest.param(
            "xformers.toml",
            'requires_torch = "torch==2.8.0"',
            'requires_torch = "torch=2.8.0"',
            "is not a requirement",
            id="xformers-bad-pin",
        ),
        pytest.param(
            "flash_attn_community.toml",
            'trust = "community"',
            'trust = "official"',
            "community builds must be labelled 'community'",
            id="community-relabelled",
        ),
        pytest.param(
            "hub_kernels.toml", "schema = 1", "schema = 9", "schema 9", id="schema-from-future"
        ),
    ],
)
def test_bad_entries_are_named(tmp_path: Path, file: str, old: str, new: str, message: str) -> None:
    directory = _copy_index(tmp_path)
    path = directory / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(IndexDataError) as info:
        load_index(directory)
    assert message in info.value.message


def test_every_declared_file_is_shipped() -> None:
    for name in FILES:
        assert (REPO / "wheels_index" / name).is_file(), name


def test_package_index_torch_cuda_is_one_of_the_release_matrix_variants() -> None:
    # torch_pypi.toml is read from wheel METADATA (verified); torch.toml is hand-kept from a copy
    # of RELEASE.md (unverified): they must agree wherever both speak.
    index = load_index()
    matrix = {r.minor: r.cuda_variants for r in index.torch_releases}
    checked = 0
    for wheel in index.torch_pypi:
        v = Version(wheel.version)
        minor = f"{v.major}.{v.minor}"
        if wheel.platform != "linux_x86_64" or minor not in matrix:
            continue
        assert wheel.cuda in matrix[minor], (wheel.version, wheel.cuda)
        checked += 1
    assert checked >= 10


def test_windows_and_linux_aarch64_package_index_torch_before_2_11_is_cpu_only() -> None:
    cuda = {(w.version, w.platform): w.cuda for w in load_index().torch_pypi}
    assert cuda[("2.8.0", "win_amd64")] == "cpu"
    assert cuda[("2.8.0", "linux_aarch64")] == "cpu"
    assert cuda[("2.8.0", "linux_x86_64")] == "12.8"
    assert cuda[("2.11.0", "linux_aarch64")] == "13.0"
