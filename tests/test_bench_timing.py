"""The timing loop itself, on CPU (torch is a test dependency; a GPU is not)."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("torch", reason="torch is needed to run the timing loop")

from attn_doctor.bench.timing import time_calls


def test_rotates_inputs_and_times_each_call() -> None:
    used: list[int] = []

    def make(i: int):  # type: ignore[no-untyped-def]
        def call() -> object:
            used.append(i)
            time.sleep(0.002)
            return None

        return call

    samples = time_calls([make(0), make(1), make(2)], device="cpu", reps=9)
    assert len(samples) == 9
    assert all(s >= 2.0 for s in samples)  # milliseconds, each call sleeps 2 ms
    timed = used[-9:]
    assert timed == [0, 1, 2] * 3  # consecutive calls never reuse one input set


@pytest.mark.slow
def test_repetitions_are_capped_by_the_time_budget() -> None:
    def slow() -> object:
        time.sleep(0.3)
        return None

    samples = time_calls([slow], device="cpu", reps=100)
    # ~2 s budget / 0.3 s per call -> 6 reps, never fewer than 3.
    assert 3 <= len(samples) <= 7


@pytest.mark.slow
def test_a_slow_first_call_does_not_cut_the_repetitions() -> None:
    # The first call stands for compilation (flex_attention, Triton autotuning).
    calls = {"n": 0}

    def call() -> object:
        calls["n"] += 1
        time.sleep(1.0 if calls["n"] == 1 else 0.001)
        return None

    samples = time_calls([call, call], device="cpu", reps=20)
    assert len(samples) == 20
