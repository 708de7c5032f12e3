"""The runtime selector's data (runtime.toml) and the diagnosis' rules (backends.toml) describe
the same backends for different purposes; they must never contradict each other."""

from __future__ import annotations

import pytest

from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.rules import load_rules
from attn_doctor.runtime.requirements import load_requirements

_BY_VALUE: dict[str, BackendName] = {
    "flash_attention_2": "flash_attn_2",
    "flash_attention_3": "flash_attn_3",
    "flash_attention_4": "flash_attn_4",
}


@pytest.mark.parametrize("value", sorted(_BY_VALUE))
def test_runtime_choice_is_inside_what_the_diagnosis_calls_compatible(value: str) -> None:
    rule = load_rules().backend(_BY_VALUE[value])
    req = next(r for r in load_requirements() if r.value == value)
    assert BACKENDS[rule.name].attn_implementation == value
    # The selector picks a backend only where the diagnosis says it can run ...
    assert req.min_sm is not None
    assert req.min_sm >= rule.min_sm
    if rule.max_sm is not None:
        assert req.max_sm is not None
        assert req.max_sm <= rule.max_sm
    # ... and, for the flash kernels, only on generations upstream states as supported.
    if rule.sm_majors:
        assert req.min_sm // 10 in rule.sm_majors
