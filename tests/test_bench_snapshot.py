"""The recorded CPU run (docs/bench-cpu.md) still decodes, and its recommendation follows."""

from __future__ import annotations

import dataclasses
import json

from attn_doctor.bench.recommend import recommend
from attn_doctor.bench.results import BenchResult
from tests.conftest import REPO_ROOT


def test_recorded_cpu_run() -> None:
    recorded = REPO_ROOT / "tests" / "data" / "bench" / "bench-cpu-result.json"
    data = json.loads(recorded.read_text(encoding="utf-8"))
    result = BenchResult.from_dict(data)
    assert result.device == "cpu"
    assert [s.backend for s in result.sweeps] == [
        "sdpa_math",
        "sdpa_cpu_fused",
        "flex_attention",
        "eager",
    ]
    assert all(s.status == "ok" for s in result.sweeps)
    assert sum(len(s.points) for s in result.sweeps) == 4 * 16
    assert result.recommendation is not None
    again_rec = recommend(result.sweeps)
    assert again_rec is not None
    # The same choice and figures; the reason now also gives the geometric mean's spread.
    assert dataclasses.replace(again_rec, reason=result.recommendation.reason) == (
        result.recommendation
    )
    assert "(middle half " in again_rec.reason
    assert result.recommendation.backend == "sdpa_cpu_fused"
    # The round trip keeps every recorded field; fields added since (sdpa_kernel) read as
    # unknown, never guessed.
    again = result.to_dict()
    # The quality gate's fields (schema 2) are added to every figure with their defaults.
    for item in list(again["ceilings"]) + [p for s in again["sweeps"] for p in s["points"]]:
        assert item.pop("problem") is None
        assert item.pop("attempts") == 1
    assert {k: v for k, v in again.items() if k in data} == data
    assert set(again) - set(data) == {"sdpa_kernel"}
    assert result.sdpa_kernel is None
