"""The backend record (wheels_index/backends.toml): one record per backend, validated on load,
and every code table derived from it."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from attn_doctor.backends import BACKEND_NAMES, BACKENDS, parse_backend, parse_backend_records
from attn_doctor.datafiles import read_toml
from attn_doctor.errors import IndexDataError, UsageError
from attn_doctor.loadtime.requirements import load_requirements
from attn_doctor.loadtime.select import KNOWN_VALUES


def _doc() -> dict[str, Any]:
    return copy.deepcopy(read_toml("backends.toml"))


def test_every_backend_has_one_record_in_name_order() -> None:
    assert tuple(BACKENDS) == BACKEND_NAMES
    for name in BACKEND_NAMES:
        record = BACKENDS[name]
        assert record.name == name
        assert record.title
        assert record.install
        assert record.builtin == (not record.distributions)


def test_runtime_requirements_come_from_the_records() -> None:
    reqs = {r.value: r for r in load_requirements()}
    assert reqs["flash_attention_2"].modules == ("flash_attn", "flash_attn_2_cuda")
    assert reqs["flash_attention_2"].distributions == ("flash-attn",)
    assert reqs["flash_attention_2"].dtypes == ("float16", "bfloat16")
    assert reqs["sdpa"].backend == "sdpa"
    assert "float64" in reqs["sdpa"].dtypes
    assert reqs["xformers"].needs_registration
    assert not reqs["flex_attention"].auto
    assert not reqs["kernels-community/flash-attn2"].auto
    assert set(reqs) <= set(KNOWN_VALUES) | {"kernels-community/flash-attn2"}
    # A GPU-only backend inherits the record's compute-capability range.
    assert reqs["flash_attention_4"].max_sm == BACKENDS["flash_attn_4"].max_sm


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("fa2", "flash_attn_2"),
        ("flash-attn", "flash_attn_2"),
        ("sdpa", "sdpa"),
        ("cudnn", "sdpa_cudnn"),
        ("sage", "sageattention"),
        ("SageAttention", "sageattention"),
        ("flex", "flex_attention"),
    ],
)
def test_aliases_come_from_the_records(text: str, name: str) -> None:
    assert parse_backend(text) == name


def test_unknown_backend_gets_did_you_mean_or_the_names() -> None:
    with pytest.raises(UsageError) as info:
        parse_backend("flashy")
    assert (info.value.hint or "").startswith("did you mean")
    with pytest.raises(UsageError) as info:
        parse_backend("zzz")
    assert "fa2" in (info.value.hint or "")
    assert "sageattention" in (info.value.hint or "")


def _mutated(index: int, **changes: Any) -> dict[str, Any]:
    doc = _doc()
    doc["backend"][index].update(changes)
    return doc


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"colour": "blue"}, "colour: unknown key"),
        ({"install": ["teleport"]}, "install: 'teleport' is not one of"),
        ({"install": []}, "install: name where"),
        ({"distributions": []}, "distributions: a package backend"),
        ({"verify": {"kind": "kernel", "cpu": False}}, "verify.accuracy: missing"),
        ({"verify": {"kind": "magic", "cpu": False, "accuracy": "flash-attn-ratio"}}, "kind"),
        ({"prior": {"gpu": -1.0, "source": "x", "verified": True}}, "non-negative speed"),
        ({"runtime": {"devices": ["tpu"], "source": "x"}}, "devices: 'tpu'"),
        ({"source": ""}, "source: must name"),
    ],
)
def test_a_bad_record_is_named(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(IndexDataError, match=message) as info:
        parse_backend_records(_mutated(0, **changes))
    assert "backend[0] (flash_attn_2)" in info.value.message


def test_an_alias_may_name_one_backend_only() -> None:
    with pytest.raises(
        IndexDataError,
        match=re.escape("backend[1] (flash_attn_3).aliases: 'fa2' already names flash_attn_2"),
    ):
        parse_backend_records(_mutated(1, aliases=["fa2"]))


def test_published_error_needs_its_figures() -> None:
    sage = BACKEND_NAMES.index("sageattention")
    doc = _doc()
    doc["backend"][sage]["verify"].pop("min_cosine")
    with pytest.raises(IndexDataError, match="published-error needs"):
        parse_backend_records(doc)


def test_a_missing_record_is_named() -> None:
    doc = _doc()
    doc["backend"] = [b for b in doc["backend"] if b["name"] != "eager"]
    with pytest.raises(IndexDataError, match="no \\[\\[backend\\]\\] entry for eager"):
        parse_backend_records(doc)
