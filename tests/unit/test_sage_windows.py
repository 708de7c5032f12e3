"""SageAttention on Windows: the maintained community builds as an install source (unverified)."""

from __future__ import annotations

import pytest

from attn_doctor.index import load_index
from attn_doctor.planner.integrity import UNPINNED_WARNING, integrity_note
from attn_doctor.resolve import plan_backend
from tests.index_envs import make_env


def _plan(torch: str, cuda: str, python: str = "3.12.7") -> list[str]:
    env = make_env(
        torch=torch, torch_cuda=cuda, os="windows", arch="AMD64", gpu="RTX4090", python=python,
        packages=(),
    )  # fmt: skip
    plan = plan_backend(env, load_index(), "sageattention")
    for cand in plan.candidates:
        assert cand.source == "community"
        assert cand.url is not None
        assert "%2B" in cand.url
        assert (integrity_note(cand) or "").startswith(UNPINNED_WARNING)
        assert not cand.verified
    return [c.filename or "" for c in plan.candidates]


@pytest.mark.parametrize(
    ("torch", "cuda", "python", "wheel"),
    [
        ("2.10.0+cu130", "13.0", "3.12.7", "+cu130torch2.10.0andhigher.post6-cp310-abi3"),
        ("2.11.0+cu128", "12.8", "3.13.1", "+cu128torch2.10.0andhigher.post6-cp310-abi3"),
        ("2.9.1+cu129", "12.9", "3.11.9", "+cu128torch2.9.0andhigher.post4-cp39-abi3"),
        ("2.8.0+cu128", "12.8", "3.12.7", "+cu128torch2.8.0.post3-cp39-abi3"),
        ("2.6.0+cu126", "12.6", "3.10.11", "+cu126torch2.6.0-cp310-cp310"),
    ],
)
def test_windows_gets_the_community_wheel_for_its_torch(
    torch: str, cuda: str, python: str, wheel: str
) -> None:
    (found,) = _plan(torch, cuda, python)
    assert wheel in found


def test_no_wheel_for_another_cuda_major_or_python() -> None:
    assert _plan("2.10.0+cu126", "12.6") == []
    assert _plan("2.6.0+cu126", "12.6", "3.12.7") == []
