"""FlashInfer through its record: the record, the adapter (CPU: a stand-in for the GPU
kernel), the planner, check's row and the CLI names."""

from __future__ import annotations

import dataclasses
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet

from attn_doctor.adapters import UnsupportedCaseError, adapter_for, eager_attention
from attn_doctor.backends import BACKENDS, parse_backend
from attn_doctor.index import load_index
from attn_doctor.resolve.common import ALL_SOURCES, Machine
from attn_doctor.resolve.flashinfer import plan_flashinfer

SNAPSHOT = Path(__file__).parent.parent / "snapshots" / "h200-real.json"

H200 = Machine(
    os="linux",
    arch="x86_64",
    python="3.12",
    free_threaded=False,
    glibc=None,
    torch="2.11.0+cu130",
    torch_minor="2.11",
    torch_build="cuda",
    torch_cuda="13.0",
    cxx11_abi=True,
    sms=(90,),
    gpu_names=("NVIDIA H200",),
    nvcc=None,
    cpu_count=16,
    ram_bytes=None,
)


def test_the_record() -> None:
    record = BACKENDS["flashinfer"]
    assert record.distribution == "flashinfer-python"
    assert record.companions == ("flashinfer-cubin", "flashinfer-jit-cache")
    assert record.module == "flashinfer"
    assert record.attn_implementation is None  # vLLM and SGLang choose it by their own knobs
    assert record.min_sm == 75
    assert record.verify.cpu is False
    assert "prefill.py" in record.source


@pytest.mark.parametrize("name", ["flashinfer", "flash-infer", "FlashInfer"])
def test_cli_names(name: str) -> None:
    assert parse_backend(name) == "flashinfer"


@pytest.mark.parametrize(
    ("device", "cc", "reason"),
    [
        ("cpu", None, "needs a CUDA device"),
        ("cuda", (7, 0), "FlashInfer (prefill) needs compute capability 7.5+, GPU is 7.0"),
        ("cuda", (7, 5), None),
        ("cuda", (12, 0), None),
    ],
    ids=["cpu", "v100", "t4", "rtx5090"],
)
def test_unavailable_here_from_the_record(
    device: str, cc: tuple[int, int] | None, reason: str | None
) -> None:
    assert adapter_for("flashinfer").unavailable_here(device, cc) == reason


def test_verify_on_cpu_is_unavailable_without_a_child(monkeypatch: pytest.MonkeyPatch) -> None:
    from attn_doctor.verify import kernels, subproc

    def no_child(*args: object, **kwargs: object) -> object:
        raise AssertionError("started a child")

    monkeypatch.setattr(subproc, "run_child", no_child)
    report = kernels.check_kernels("flashinfer", device="cpu", timeout=1)
    assert report.status == "unavailable"
    assert report.reason == "needs a CUDA device"


torch = pytest.importorskip("torch")


def _stand_in_prefill(
    q: Any, k: Any, v: Any, *, causal: bool, kv_layout: str, sm_scale: float | None
) -> Any:
    """flashinfer.single_prefill_with_kv_cache's contract on one request (NHD), in plain
    PyTorch: what the GPU kernel computes, so the adapter's batching can be checked here."""
    assert kv_layout == "NHD"
    assert q.dim() == 3
    return eager_attention(q[None], k[None], v[None], causal=causal, softmax_scale=sm_scale)[0]


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("flashinfer")
    module.single_prefill_with_kv_cache = _stand_in_prefill  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "flashinfer", module)


def _inputs(head_dim: int = 64) -> tuple[Any, Any, Any]:
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(2, 16, 4, head_dim, generator=gen, dtype=torch.float64)
    k = torch.randn(2, 16, 2, head_dim, generator=gen, dtype=torch.float64)
    v = torch.randn(2, 16, 2, head_dim, generator=gen, dtype=torch.float64)
    return q, k, v


@pytest.mark.usefixtures("stand_in")
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("seqlens", [None, (16, 9)], ids=["full", "padded"])
def test_adapter_runs_each_request_on_its_real_tokens(
    causal: bool, seqlens: tuple[int, ...] | None
) -> None:
    q, k, v = _inputs()
    out = adapter_for("flashinfer").call(q, k, v, causal=causal, seqlens=seqlens)
    want = eager_attention(q, k, v, causal=causal, seqlens=seqlens)
    assert out.shape == q.shape
    torch.testing.assert_close(out, want)


@pytest.mark.usefixtures("stand_in")
def test_adapter_refuses_what_flashinfer_does_not_do() -> None:
    q, k, v = _inputs(head_dim=96)
    with pytest.raises(UnsupportedCaseError, match="head dims 64, 128 and 256"):
        adapter_for("flashinfer").call(q, k, v, causal=True)
    q, k, v = (t.requires_grad_(True) for t in _inputs())
    with pytest.raises(NotImplementedError, match="inference-only"):
        adapter_for("flashinfer").call(q, k, v, causal=True)


def test_planner_keeps_torch_and_names_the_companions() -> None:
    plan = plan_flashinfer(H200, load_index(), ALL_SOURCES, False)
    (cand,) = plan.candidates
    assert cand.requirement == "flashinfer-python[cu13]==0.7.4"
    assert cand.source == "pypi"
    assert cand.torch_requirement is None
    assert "flashinfer-cubin" in cand.reason
    assert "flashinfer-jit-cache" in cand.reason


def test_planner_on_cuda_12_takes_no_extra() -> None:
    m = dataclasses.replace(H200, torch="2.9.1+cu128", torch_cuda="12.8")
    (cand,) = plan_flashinfer(m, load_index(), ALL_SOURCES, False).candidates
    assert cand.requirement == "flashinfer-python==0.7.4"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"torch": "2.11.0+cpu", "torch_build": "cpu", "torch_cuda": None}, "needs a CUDA build"),
        ({"sms": (70,), "gpu_names": ("Tesla V100",)}, "compute capability >= 7.5"),
        ({"os": "darwin"}, "runs on linux"),
        ({"python": "3.9"}, "needs Python >=3.10,<4.0"),
        ({"torch": "2.7.1+cu118", "torch_cuda": "11.8"}, "needs CUDA >= 12.0"),
    ],
    ids=["cpu-torch", "v100", "macos", "python-3.9", "cuda-11.8"],
)
def test_planner_refusals(change: dict[str, Any], reason: str) -> None:
    plan = plan_flashinfer(dataclasses.replace(H200, **change), load_index(), ALL_SOURCES, False)
    assert not plan.candidates
    assert reason in plan.rejections[0].reason


def test_planner_honours_the_source_policy_and_versions() -> None:
    plan = plan_flashinfer(H200, load_index(), frozenset({"source-build"}), False)
    assert "not an allowed source" in plan.rejections[0].reason
    plan = plan_flashinfer(H200, load_index(), ALL_SOURCES, False, SpecifierSet("<0.7"))
    assert not plan.candidates


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    from attn_doctor.cli import main

    with pytest.raises(SystemExit) as info:
        main(args)
    code = info.value.code
    assert isinstance(code, int)
    return code, json.loads(capsys.readouterr().out)


def test_install_dry_run_plans_flashinfer_python(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["install", "flashinfer", "--snapshot", str(SNAPSHOT), "--dry-run", "--json"]
    code, out = _cli(args, capsys)
    assert code == 0
    assert out["result"]["plan"]["candidate"]["requirement"].startswith("flashinfer-python")
    assert any(line.startswith("torch==") for line in out["result"]["constraints"])


def test_install_an_unknown_release_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["install", "flashinfer==0.0.1", "--snapshot", str(SNAPSHOT), "--dry-run", "--json"]
    code, out = _cli(args, capsys)
    assert code == 2
    assert "no such release" in out["error"]["message"]


def test_check_has_a_flashinfer_row(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _cli(["check", "--snapshot", str(SNAPSHOT), "--json"], capsys)
    assert code in (0, 1)
    rows = {row["backend"]: row for row in out["result"]["diagnosis"]["backends"]}
    assert "flashinfer" in rows


def test_the_plan_shows_the_extra_in_text(capsys: pytest.CaptureFixture[str]) -> None:
    from attn_doctor.cli import main

    with pytest.raises(SystemExit) as info:
        main(["install", "flashinfer", "--snapshot", str(SNAPSHOT), "--dry-run"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "install  flashinfer-python[cu13]==0.7.4" in out  # not eaten as rich markup


def test_bench_measures_flashinfer_but_never_recommends_it_to_transformers() -> None:
    from attn_doctor.bench.recommend import recommend
    from tests.bench_data import sweep

    rec = recommend(
        [
            sweep("flashinfer", {1024: 0.5, 4096: 5.0}),
            sweep("flash_attn_2", {1024: 0.8, 4096: 9.0}),
            sweep("eager", {1024: 4.0, 4096: 60.0}),
        ]
    )
    assert rec is not None
    assert rec.backend == "flash_attn_2"  # FlashInfer has no attn_implementation


def test_the_runtime_says_flashinfer_is_not_a_transformers_backend() -> None:
    from attn_doctor.errors import UsageError
    from attn_doctor.loadtime.select import normalize_value

    with pytest.raises(UsageError, match="is not a transformers attn_implementation"):
        normalize_value("flashinfer", variable="ATTN_DOCTOR_BACKEND")
