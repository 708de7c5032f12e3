"""Upstream's own wordings: every attention check a user can hit in the sources the sweeps read
(transformers, diffusers, flash-attention, SageAttention, ComfyUI, vLLM, SGLang, FlashInfer,
xformers, TransformerEngine, torch SDPA and FlexAttention, unsloth, kernels, Triton),
written as a user sees it, with the answers that name its cause and where it was read
(repository, path, ref, line). The count explain names must not drop (docs/explain.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attn_doctor.explain import explain_text

SWEEP = Path(__file__).resolve().parents[1] / "data" / "explain" / "upstream_sweep.jsonl"
NAMED_AT_LEAST = 261
"""Messages whose first answer is one of their expected ids, when the sweep's fixes landed."""


def _rows() -> list[dict[str, object]]:
    return [json.loads(line) for line in SWEEP.read_text(encoding="utf-8").splitlines() if line]


def test_every_row_names_where_it_was_read() -> None:
    rows = _rows()
    assert len(rows) >= 360
    for r in rows:
        assert str(r["repo"]).count("/") == 1
        assert r["path"]
        assert r["ref"]
        assert isinstance(r["line"], int)
        assert r["message"]
        assert r["expected"]


@pytest.mark.slow
def test_the_count_named_does_not_drop() -> None:
    named = 0
    for r in _rows():
        found = explain_text(str(r["message"]), None).explanations
        named += bool(found) and found[0].match.symptom_id in r["expected"]  # type: ignore[operator]
    assert named >= NAMED_AT_LEAST, named
