"""torch SDPA's default dispatch per release: one test per confirmed row of the reading
(sdpa_dispatch.toml, from each release's compiled code; see its header)."""

from __future__ import annotations

import pytest

from attn_doctor.errors import IndexDataError
from attn_doctor.planner.sdpa_rule import SdpaAnswer, SdpaInputs, sdpa_dispatch
from attn_doctor.rules_data import load_rules
from attn_doctor.sdpa_data import SdpaRelease, parse_sdpa_releases

TABLE: tuple[SdpaRelease, ...] = load_rules().sdpa_releases


def run(torch: str, sm: int, **kw: object) -> SdpaAnswer:
    return sdpa_dispatch(TABLE, SdpaInputs(torch_version=torch, sm=sm, **kw))  # type: ignore[arg-type]


FP = {"dtype": "bfloat16", "head_dim": 128, "mask": "causal", "decode": False, "training": False}

# (torch, CUDA build, sm, inputs, cuDNN loaded, env, expected kernel)
CASES: list[tuple[str, str | None, int, dict[str, object], str | None, dict[str, str], str]] = [
    # 2.2.0: flash -> efficient -> math; no cuDNN; caps sm90
    ("2.2.0", "12.1", 80, FP, "8.9.2", {}, "sdpa_flash"),
    ("2.2.0", "12.1", 90, FP, "8.9.2", {}, "sdpa_flash"),
    ("2.2.0", "12.1", 75, {**FP, "dtype": "float16"}, "8.9.2", {}, "sdpa_mem_efficient"),
    ("2.2.0", "12.1", 80, {**FP, "mask": "mask"}, "8.9.2", {}, "sdpa_mem_efficient"),
    ("2.2.0", "12.1", 80, {**FP, "dtype": "float32"}, "8.9.2", {}, "sdpa_mem_efficient"),
    ("2.2.0", "12.1", 80, {**FP, "head_dim": 512}, "8.9.2", {}, "sdpa_mem_efficient"),
    (
        "2.2.0",
        "12.1",
        86,
        {**FP, "head_dim": 256, "training": True},
        None,
        {},
        "sdpa_mem_efficient",
    ),
    ("2.2.0", "12.1", 80, {**FP, "decode": True}, None, {}, "sdpa_mem_efficient"),
    ("2.2.0", "12.1", 100, FP, None, {}, "sdpa_math"),
    # 2.3/2.4: cuDNN only with TORCH_CUDNN_SDPA_ENABLED=1
    ("2.4.1", "12.4", 90, FP, "9.1.0", {}, "sdpa_flash"),
    ("2.3.1", "12.1", 90, FP, "8.9.2", {"TORCH_CUDNN_SDPA_ENABLED": "1"}, "sdpa_cudnn"),
    # 2.5.0: order by the GPU's major; cuDNN accepts masks; every kernel capped at sm90
    ("2.5.0", "12.4", 90, FP, None, {}, "sdpa_cudnn"),
    ("2.5.0", "12.4", 80, FP, None, {}, "sdpa_flash"),
    ("2.5.0", "12.4", 80, {**FP, "mask": "mask"}, None, {}, "sdpa_cudnn"),
    ("2.5.0", "12.4", 90, {**FP, "head_dim": 256}, None, {}, "sdpa_flash"),
    ("2.5.0", "12.4", 120, FP, None, {}, "sdpa_math"),
    # 2.5.1 and 2.6: flash, efficient, math, cudnn: cuDNN never by default; caps sm90
    ("2.5.1", "12.4", 90, FP, "9.1.0", {}, "sdpa_flash"),
    ("2.6.0", "12.6", 90, {**FP, "mask": "mask"}, "9.5.1", {}, "sdpa_mem_efficient"),
    ("2.6.0", "12.6", 100, FP, None, {}, "sdpa_math"),
    ("2.6.0", "12.6", 120, FP, None, {}, "sdpa_math"),
    # 2.7: caps sm120
    ("2.7.1", "12.8", 120, FP, "9.5.1", {}, "sdpa_flash"),
    ("2.7.1", "12.8", 100, FP, "9.5.1", {}, "sdpa_flash"),
    ("2.7.1", "12.8", 121, FP, "9.5.1", {}, "sdpa_math"),
    # 2.8: caps sm121
    ("2.8.0", "12.8", 121, FP, "9.10.2", {}, "sdpa_flash"),
    ("2.8.0", "12.8", 90, FP, "9.10.2", {}, "sdpa_flash"),
    # 2.9 cu128: the cuDNN preference compiles out, TORCH_CUDNN_SDPA_PREFERRED changes nothing
    ("2.9.1", "12.8", 90, FP, "9.10.2", {"TORCH_CUDNN_SDPA_PREFERRED": "1"}, "sdpa_flash"),
    # 2.10: the loaded cuDNN must be > 9.15.0: the bundled 9.10.2 fails
    ("2.10.0", "12.8", 90, FP, None, {}, "sdpa_flash"),
    ("2.10.0", "12.8", 90, FP, "9.16.0", {}, "sdpa_cudnn"),
    ("2.10.0", "12.8", 103, FP, "9.16.0", {}, "sdpa_cudnn"),
    ("2.10.0", "12.8", 120, FP, "9.16.0", {}, "sdpa_flash"),
    ("2.10.0", "12.8", 90, FP, "9.16.0", {"TORCH_CUDNN_SDPA_DEPRIORITIZED": "1"}, "sdpa_flash"),
    # 2.11/2.12: the rule fires with the bundled cuDNN on sm90/sm100/sm103
    ("2.11.0", "13.0", 90, FP, None, {}, "sdpa_cudnn"),
    ("2.11.0", "13.0", 100, FP, None, {}, "sdpa_cudnn"),
    ("2.11.0", "13.0", 103, FP, None, {}, "sdpa_cudnn"),
    ("2.11.0", "13.0", 89, FP, None, {}, "sdpa_flash"),
    ("2.11.0", "13.0", 89, {**FP, "mask": "mask"}, None, {}, "sdpa_mem_efficient"),
    ("2.11.0", "13.0", 90, {**FP, "head_dim": 256}, None, {}, "sdpa_cudnn"),
    ("2.11.0", "13.0", 100, {**FP, "head_dim": 256}, None, {}, "sdpa_flash"),
    ("2.11.0", "13.0", 90, {**FP, "dtype": "float32"}, None, {}, "sdpa_mem_efficient"),
    ("2.11.0", "13.0", 90, FP, None, {"TORCH_CUDNN_SDPA_DEPRIORITIZED": "true"}, "sdpa_flash"),
    ("2.12.0", "13.0", 100, FP, None, {}, "sdpa_cudnn"),
    ("2.12.0", "13.0", 110, FP, None, {}, "sdpa_flash"),
    # 2.13 CUDA 13: any 10.x minor prefers cuDNN; head dim 256 on sm100 still not cuDNN
    ("2.13.0", "13.0", 101, FP, None, {}, "sdpa_cudnn"),
    ("2.13.0", "13.0", 100, {**FP, "head_dim": 256}, None, {}, "sdpa_flash"),
    # 2.14: head dim 256 on 10.x with cuDNN > 9.22; decode off on 10.x with the bundled 9.24.0
    ("2.14.0", "13.0", 100, {**FP, "head_dim": 256}, None, {}, "sdpa_cudnn"),
    ("2.14.0", "13.0", 100, {**FP, "mask": "none", "decode": True}, None, {}, "sdpa_flash"),
    ("2.14.0", "13.0", 100, {**FP, "mask": "none", "decode": True}, "9.24.1", {}, "sdpa_cudnn"),
    ("2.14.0", "13.0", 90, {**FP, "mask": "none", "decode": True}, None, {}, "sdpa_cudnn"),
    # 2.15: the backward gate for cuDNN < 9.26
    ("2.15.0", "13.2", 90, {**FP, "training": True}, "9.25.0", {}, "sdpa_flash"),
    ("2.15.0", "13.2", 90, {**FP, "training": True}, None, {}, "sdpa_cudnn"),
]


@pytest.mark.parametrize(
    ("torch", "cuda", "sm", "inputs", "cudnn", "env", "expected"),
    CASES,
    ids=[f"{c[0]}-sm{c[2]}-{i}" for i, c in enumerate(CASES)],
)
def test_release_row(
    torch: str,
    cuda: str | None,
    sm: int,
    inputs: dict[str, object],
    cudnn: str | None,
    env: dict[str, str],
    expected: str,
) -> None:
    answer = run(torch, sm, torch_cuda=cuda, cudnn_loaded=cudnn, env=env, **inputs)
    assert answer.kernel == expected, answer.describe()
    assert answer.source


def test_every_unknown_input_is_named() -> None:
    answer = run("2.11.0+cu130", 90, torch_cuda="13.0")
    text = answer.describe()
    for word in ("bf16", "head dim 128", "causal", "prefill", "without dropout", "bundled cuDNN"):
        assert word in text
    known = run("2.11.0", 90, torch_cuda="13.0", cudnn_loaded="9.19.0", **FP)
    assert known.assumed == ()


def test_the_pip_package_cudnn_is_named_as_a_stand_in() -> None:
    answer = run("2.11.0", 90, torch_cuda="13.0", cudnn_loaded="9.19.0", cudnn_from="the pip pkg")
    assert any("the pip pkg" in a for a in answer.assumed)


def test_unverified_rows_say_so() -> None:
    answer = run("2.13.0", 101, torch_cuda="12.9", **FP)
    assert not answer.verified
    assert answer.kernel == "sdpa_flash"  # the minor 0/3 check kept under CUDA 12 (assumed)
    assert "(unverified)" in answer.describe()


def test_releases_outside_the_reading_are_assumed_aloud() -> None:
    assert "newer than the reading" in run("2.20.0", 90, **FP).describe()
    assert "not read" in run("2.1.2", 90, **FP).describe()
    nightly = run("2.15.0.dev20260101+cu132", 90, torch_cuda="13.2", **FP)
    assert nightly.kernel == "sdpa_cudnn"


def test_unknown_gpu_is_math_and_says_why() -> None:
    answer = sdpa_dispatch(TABLE, SdpaInputs(torch_version="2.11.0", sm=None))
    assert answer.kernel == "sdpa_math"
    assert "not known" in answer.reason


def test_an_absent_kernel_is_skipped() -> None:
    answer = run("2.4.0", 80, absent=("flash",), **FP)
    assert answer.kernel == "sdpa_mem_efficient"


def test_every_row_names_its_source() -> None:
    assert all(row.source and row.torch for row in TABLE)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"torch": ">=2.2", "order": ["flash"], "cudnn_gate": "none"}, "math"),
        ({"torch": ">=2.2", "order": ["math"], "cudnn_gate": "lazy"}, "preferred_order"),
        ({"torch": "x", "order": ["math"], "cudnn_gate": "none"}, "specifier"),
        ({"torch": ">=2.2", "order": ["math"], "cudnn_gate": "bogus"}, "cudnn_gate"),
        ({"torch": ">=2.2", "order": ["math"], "cudnn_gate": "none", "typo": 1}, "unknown key"),
    ],
)
def test_bad_rows_are_refused(row: dict[str, object], message: str) -> None:
    full = {"flash_sm": [80, 90], "efficient_sm": [50, 90], "source": "s", "verified": True}
    with pytest.raises(IndexDataError, match=message):
        parse_sdpa_releases({"schema": 1, "release": [{**full, **row}]})
