"""The recommendation drawn from measurements."""

from __future__ import annotations

import pytest

from attn_doctor.bench.recommend import format_rate, recommend
from tests.bench_data import sweep


def test_fastest_passing_backend_wins() -> None:
    rec = recommend(
        [
            sweep("sdpa_flash", {1024: 1.0, 4096: 10.0}),
            sweep("flash_attn_2", {1024: 0.8, 4096: 9.0}),
            sweep("eager", {1024: 4.0, 4096: 60.0}),
        ]
    )
    assert rec is not None
    assert rec.backend == "flash_attn_2"
    assert rec.attn_implementation == "flash_attention_2"
    assert (rec.wins, rec.shapes, rec.runner_up) == (2, 2, "sdpa_flash")
    # Geometric mean of eager/fa2 time ratios: sqrt(5 · 6.667) = 5.77.
    assert rec.speedup_vs_eager == pytest.approx((4.0 / 0.8 * 60.0 / 9.0) ** 0.5)
    assert "flash_attn_2" not in rec.reason  # the reason names the runner-up, not itself
    assert "sdpa_flash" in rec.reason


def test_failed_check_or_crash_is_never_recommended() -> None:
    rec = recommend(
        [
            sweep("flash_attn_2", {1024: 0.1}, passed=False, status="failed-check"),
            sweep("xformers", {1024: 0.2}, status="crashed"),
            sweep("sdpa_flash", {1024: 1.0}),
        ]
    )
    assert rec is not None
    assert rec.backend == "sdpa_flash"


def test_backend_that_ran_out_of_memory_is_compared_on_fewer_shapes_only_if_all_did() -> None:
    # eager OOMs at 16k; sdpa completes everything, so eager is not eligible.
    rec = recommend(
        [
            sweep("eager", {1024: 0.5, 16384: None}),
            sweep("sdpa_mem_efficient", {1024: 1.0, 16384: 100.0}),
        ]
    )
    assert rec is not None
    assert rec.backend == "sdpa_mem_efficient"
    assert "not compared: eager" in rec.reason


def test_nothing_measured() -> None:
    assert recommend([]) is None
    assert recommend([sweep("sdpa_flash", {1024: None})]) is None


def test_format_rate() -> None:
    assert format_rate(312.44) == "312 TFLOP/s"
    assert format_rate(0.0123) == "12.3 GFLOP/s"


def test_ranking_lists_every_compared_backend_fastest_first() -> None:
    rec = recommend(
        [
            sweep("eager", {1024: 4.0}),
            sweep("sdpa_flash", {1024: 1.0}),
            sweep("sdpa_math", {1024: 2.0}),
        ]
    )
    assert rec is not None
    assert [name for name, _ in rec.ranking] == ["sdpa_flash", "sdpa_math", "eager"]
    rates = [rate for _, rate in rec.ranking]
    assert rates[0] == rec.geomean_tflops
    assert rates[0] == pytest.approx(2 * rates[1])
    assert rates[0] == pytest.approx(4 * rates[2])
