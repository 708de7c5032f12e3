"""The rules data in wheels_index/ loads, is consistent, and bad entries are named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from attn_doctor.backends import BACKEND_NAMES
from attn_doctor.errors import IndexDataError
from attn_doctor.rules_data import (
    BACKENDS_FILE,
    DRIVER_FILE,
    TRANSFORMERS_FILE,
    Rules,
    cuda_key,
    driver_key,
    load_rules,
)
from tests.conftest import REPO_ROOT

INDEX = REPO_ROOT / "wheels_index"


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules()


def test_every_backend_has_a_rule(rules: Rules) -> None:
    assert sorted(r.name for r in rules.backends) == sorted(BACKEND_NAMES)


def test_every_entry_names_its_source(rules: Rules) -> None:
    groups: list[tuple[object, ...]] = [
        rules.releases,
        rules.minor_compat,
        rules.arch_min_cuda,
        rules.torch_variants,
        rules.backends,
        rules.attn_implementations,
        rules.invalid_attn_implementations,
        (rules.source_build, rules.prebuilt_flash_attn),
    ]
    for group in groups:
        for entry in group:
            source = getattr(entry, "source", "")
            assert isinstance(source, str)
            assert source.strip(), entry
            assert isinstance(getattr(entry, "verified", None), bool), entry


def test_driver_minimums_grow_with_cuda(rules: Rules) -> None:
    rows = sorted(rules.releases, key=lambda r: cuda_key(r.cuda))
    linux = [driver_key(r.linux) for r in rows]
    assert linux == sorted(linux)
    windows = [driver_key(r.windows) for r in rows if r.windows]
    assert windows == sorted(windows)


@pytest.mark.parametrize(
    ("cuda", "linux", "windows"),
    [
        ("11.8", "520.61.05", "520.06"),
        ("12.0", "525.60.13", "527.41"),
        ("12.4", "550.54.14", "551.61"),
        ("12.6", "560.28.03", "560.76"),
        ("12.8", "570.26", "570.65"),
        ("12.9", "575.51.03", "576.02"),
        ("13.0", "580.65.06", None),
    ],
    ids=str,
)
def test_nvidia_table_rows(rules: Rules, cuda: str, linux: str, windows: str | None) -> None:
    row = rules.release(cuda)
    assert row is not None
    assert (row.linux, row.windows) == (linux, windows)


def test_minor_version_compatibility(rules: Rules) -> None:
    compat = {r.cuda_major: (r.linux, r.windows) for r in rules.minor_compat}
    assert compat[12] == ("525.60.13", "528.33")
    assert compat[11] == ("450.80.02", "452.39")
    assert compat[13][0] == "580"


def test_torch_variants_are_known_cuda_releases(rules: Rules) -> None:
    for row in rules.torch_variants:
        for cuda in row.cuda:
            assert rules.release(cuda) is not None, (row.torch, cuda)


def test_torch_variants_sample(rules: Rules) -> None:
    row = rules.variants("2.8")
    assert row is not None
    assert row.cuda == ("12.6", "12.8", "12.9")


def test_every_candidate_has_a_prior_with_its_source(rules: Rules) -> None:
    """The one decision ranks by each record's prior where nothing was measured; there is no
    separate ranking table."""
    for rule in rules.backends:
        if rule.runtime is None or rule.name == "sdpa":  # sdpa: its kernel's prior
            continue
        assert rule.prior is not None, rule.name
        assert rule.prior.source.strip(), rule.name
        assert rule.prior.speeds, rule.name
    assert set(BACKEND_NAMES) == {r.name for r in rules.backends}


def test_flash_attn_2_needs_ampere(rules: Rules) -> None:
    fa2 = rules.backend("flash_attn_2")
    assert fa2.min_sm == 80
    assert fa2.max_head_dim == 256
    assert fa2.official_wheels_os == ("linux",)


def test_sdpa_flash_windows_floor(rules: Rules) -> None:
    sdpa = rules.backend("sdpa_flash")
    assert sdpa.min_torch_for("windows") == "2.5"
    assert sdpa.min_torch_for("linux") == "2.2"


def test_attn_implementations(rules: Rules) -> None:
    firsts = {e.value: e.first for e in rules.attn_implementations}
    assert firsts["sdpa"] == "4.36.0"
    assert firsts["flash_attention_3"] == "4.53.0"
    assert firsts["flash_attention_4"] == "5.4.0"
    hub = next(e for e in rules.attn_implementations if e.backend == "hub_kernels")
    assert hub.matches("kernels-community/flash-attn2")
    assert hub.matches("kernels-community/flash-attn3:flash_attention")
    assert not hub.matches("sdpa")
    (xf,) = rules.invalid_attn_implementations
    assert xf.value == "xformers"
    assert 'attn_implementation="xformers"' in xf.error


def test_every_rule_id_has_sources(rules: Rules) -> None:
    for rule_id, sources in rules.rule_sources:
        assert sources, rule_id


@pytest.mark.parametrize(
    ("text", "key"),
    [("570.124.06", (570, 124, 6)), ("576.02", (576, 2, 0)), ("580", (580, 0, 0))],
    ids=["linux", "windows", "major-only"],
)
def test_driver_key(text: str, key: tuple[int, ...]) -> None:
    assert driver_key(text) == key


def test_driver_key_refuses_text() -> None:
    with pytest.raises(ValueError, match="not a driver version"):
        driver_key("N/A")


# --- malformed data is refused with the entry named -----------------------------------------


def _copy_index(tmp_path: Path) -> Path:
    target = tmp_path / "wheels_index"
    shutil.copytree(INDEX, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (DRIVER_FILE, 'linux = "570.26"', 'linux = "570.2x"', r"release\[4\] \(12\.8\)\.linux"),
        (DRIVER_FILE, "schema = 1", "schema = 9", "schema 9"),
        (
            BACKENDS_FILE,
            'name = "xformers"',
            'name = "xformer"',
            r"backend\[3\] \(xformer\)\.name: 'xformer' is not a known backend",
        ),
        (BACKENDS_FILE, "min_sm = 80\nmax_sm = 90", "min_sm = 80\nmax_sm = 75", "max_sm: 75"),
        (
            BACKENDS_FILE,
            'os = ["linux", "windows"]',
            'os = ["linux", "beos"]',
            r"flash_attn_2\)\.os: 'beos'",
        ),
        (
            TRANSFORMERS_FILE,
            'first = "4.53.0"',
            'first = "four"',
            r"attn_implementation\[4\] \(flash_attention_3\)\.first",
        ),
        (
            TRANSFORMERS_FILE,
            "verified = true",
            'verified = "yes"',
            r"\.verified: expected true/false",
        ),
    ],
    ids=[
        "bad-driver-version",
        "future-schema",
        "unknown-backend",
        "max-below-min",
        "unknown-os",
        "bad-version",
        "verified-not-bool",
    ],
)
def test_malformed_entry_is_named(
    tmp_path: Path, file: str, old: str, new: str, message: str
) -> None:
    index = _copy_index(tmp_path)
    _edit(index / file, old, new)
    with pytest.raises(IndexDataError, match=message):
        load_rules(index)


def test_missing_source_is_refused(tmp_path: Path) -> None:
    index = _copy_index(tmp_path)
    path = index / DRIVER_FILE
    text = path.read_text()
    start = text.index('source = "CUDA Toolkit 13.2 Release Notes, Table 3')
    end = text.index("\n", start)
    path.write_text(text[:start] + 'source = ""' + text[end:])
    with pytest.raises(IndexDataError, match=r"release\[0\] \(13\.2\)\.source"):
        load_rules(index)


def test_missing_backend_entry_is_refused(tmp_path: Path) -> None:
    index = _copy_index(tmp_path)
    path = index / BACKENDS_FILE
    text = path.read_text()
    start = text.index('[[backend]]\nname = "eager"')
    end = text.index("# --- Priors")
    path.write_text(text[:start] + text[end:])
    with pytest.raises(IndexDataError, match="no \\[\\[backend\\]\\] entry for eager"):
        load_rules(index)
