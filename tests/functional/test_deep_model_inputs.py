"""The ``--deep`` torch child asks ``torch._fused_sdp_choice`` with the model's inputs (a real
child with the torch installed here, when there is one)."""

from __future__ import annotations

import pytest

from attn_doctor.probe.imports import torch_runtime_and_import
from attn_doctor.probe.model_config import SdpaProbeInputs


def test_the_torch_child_uses_the_given_inputs_and_says_so() -> None:
    pytest.importorskip("torch")
    inputs = SdpaProbeInputs(
        dtype="float32", head_dim=64, heads=8, mask=True, source="from tiny's config.json"
    )
    result, rt = torch_runtime_and_import(timeout=120, sdpa_inputs=inputs)
    assert result.status == "ok", result.detail
    assert rt.sdpa_default_kernel is not None
    assert rt.sdpa_default_inputs == (
        "float32, head dim 64, 8 heads, a boolean mask (from tiny's config.json)"
    )
    _, plain = torch_runtime_and_import(timeout=120)
    assert plain.sdpa_default_inputs is not None
    assert plain.sdpa_default_inputs.endswith(
        "head dim 128, 16 heads, causal, no mask (assumed: no model given)"
    )
