"""wheels_index/runtime.toml: loads, is ordered, and bad entries are named."""

from __future__ import annotations

from typing import Any

import pytest

from attn_doctor.errors import IndexDataError
from attn_doctor.runtime.requirements import load_requirements, parse_requirements
from attn_doctor.runtime.select import KNOWN_VALUES


def test_shipped_file_loads_in_preference_order() -> None:
    values = [r.value for r in load_requirements()]
    assert values[:3] == ["flash_attention_3", "flash_attention_4", "flash_attention_2"]
    assert values[-1] == "eager"
    assert set(values) <= set(KNOWN_VALUES)
    assert all(r.source for r in load_requirements())


def _entry(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "value": "eager",
        "devices": ["cpu"],
        "dtypes": ["float32"],
        "source": "test",
        "verified": True,
    }
    base.update(fields)
    return base


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (_entry(source=""), "source is required"),
        (_entry(verified="yes"), "verified must be true or false"),
        (_entry(devices=["tpu"]), "devices must be"),
        (_entry(dtypes=["int8"]), "dtypes must be"),
        (_entry(min_sm=-1), "min_sm must be a positive integer"),
        (_entry(model_flags=["supports_magic"]), "model_flags must be among"),
        (_entry(colour="blue"), "unknown key 'colour'"),
    ],
)
def test_bad_entry_is_named(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(IndexDataError, match=message) as info:
        parse_requirements({"schema": 1, "implementation": [entry]})
    assert "implementation[0] ('eager')" in info.value.message


def test_last_entry_must_be_eager() -> None:
    with pytest.raises(IndexDataError, match="last entry must be 'eager'"):
        parse_requirements({"schema": 1, "implementation": [_entry(value="sdpa")]})


def test_schema_checked() -> None:
    with pytest.raises(IndexDataError, match="schema"):
        parse_requirements({"schema": 2, "implementation": [_entry()]})
