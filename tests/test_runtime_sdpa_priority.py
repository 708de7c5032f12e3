"""SDPA's priority: set (and restored) only when a verified kernel was measured faster than the
default dispatch here; otherwise left alone. Real torch on CPU, a bench cache planted in the
test's own cache directory (the verify and bench record is made up; the priority calls are
torch's real ones)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from attn_doctor.bench.cache import cache_key, save_bench_result
from attn_doctor.bench.results import BenchResult
from attn_doctor.loadtime import sdpa_priority
from attn_doctor.loadtime.select import clear_caches, explain_choice, load_kwargs
from tests.runtime_helpers import clean_environ

torch = pytest.importorskip("torch")
if not hasattr(torch._C, "_get_sdp_priority_order"):  # torch < 2.6
    pytest.skip("this torch has no SDPA priority order", allow_module_level=True)

RECORDED = Path(__file__).parent / "data" / "bench" / "bench-cpu-result.json"


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    before = sdpa_priority.current_order()
    clear_caches()
    yield
    sdpa_priority.restore()
    clear_caches()
    assert sdpa_priority.current_order() == before


def _plant_run(cache: Path, speeds: dict[str, float], *, kernel: str) -> None:
    """A CPU bench run for this torch where each backend's points run at ``speeds``."""
    raw = json.loads(RECORDED.read_text())
    result = BenchResult.from_dict(raw)
    version = str(torch.__version__)
    key = cache_key(device="cpu", device_name="", torch_version=version)
    sweeps = []
    template = result.sweeps[0]
    for backend, rate in speeds.items():
        points = tuple(
            p.__class__(**{**p.__dict__, "tflops": rate}) for p in template.points if p.tflops
        )
        sweeps.append(
            template.__class__(**{**template.__dict__, "backend": backend, "points": points})
        )
    planted = result.__class__(
        **{
            **result.__dict__,
            "torch_version": version,
            "cache_key": key,
            "mode": "fwd",
            "sweeps": tuple(sweeps),
            "recommendation": None,
            "sdpa_kernel": kernel,
        }
    )
    save_bench_result(planted, cache / "attn-doctor" / "bench.json")


def test_faster_verified_kernel_is_set_first_and_restored(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    # The default dispatch (the CPU fused kernel) measured slower than a verified kernel.
    _plant_run(
        cache, {"sdpa_cpu_fused": 0.02, "sdpa_cudnn": 0.05, "eager": 0.01}, kernel="sdpa_cpu_fused"
    )
    env = clean_environ(cache)
    before = sdpa_priority.current_order()
    assert before is not None
    choice = explain_choice(device="cpu", dtype="float32", environ=env)
    assert choice.value == "sdpa"
    assert choice.activate == "sdpa_cudnn"
    assert "measured faster here" in choice.explain()
    load_kwargs(device="cpu", dtype="float32", environ=env)
    change = sdpa_priority.last_change()
    assert change is not None
    assert change.applied
    cudnn = int(torch.nn.attention.SDPBackend.CUDNN_ATTENTION)
    assert sdpa_priority.current_order()[0] == cudnn  # type: ignore[index]
    assert sdpa_priority.restore()
    assert sdpa_priority.current_order() == before


def test_context_manager_restores_even_on_error() -> None:
    before = sdpa_priority.current_order()
    seen: list[object] = []

    def model_step() -> None:
        with sdpa_priority.prefer_sdpa_kernel("sdpa_cudnn") as change:
            seen.append((change.applied, sdpa_priority.current_order()))
            raise RuntimeError("model code failed")

    with pytest.raises(RuntimeError, match="model code failed"):
        model_step()
    applied, inside = seen[0]  # type: ignore[misc]
    assert applied
    assert inside != before
    assert sdpa_priority.current_order() == before


def test_default_already_fastest_changes_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _plant_run(cache, {"sdpa_cpu_fused": 0.05, "sdpa_cudnn": 0.02}, kernel="sdpa_cpu_fused")
    env = clean_environ(cache)
    before = sdpa_priority.current_order()
    choice = explain_choice(device="cpu", dtype="float32", environ=env)
    assert choice.activate is None
    load_kwargs(device="cpu", dtype="float32", environ=env)
    assert sdpa_priority.last_change() is None
    assert sdpa_priority.current_order() == before


def test_variable_turns_it_off(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _plant_run(cache, {"sdpa_cpu_fused": 0.02, "sdpa_cudnn": 0.05}, kernel="sdpa_cpu_fused")
    env = clean_environ(cache, ATTN_DOCTOR_SDPA_PRIORITY="0")
    before = sdpa_priority.current_order()
    load_kwargs(device="cpu", dtype="float32", environ=env)
    assert sdpa_priority.current_order() == before


def test_corrupt_cache_never_breaks_model_loading(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "attn-doctor").mkdir(parents=True)
    (cache / "attn-doctor" / "bench.json").write_bytes(b"\x00\xff{not json")
    kwargs = load_kwargs(device="cpu", dtype="float32", environ=clean_environ(cache))
    assert kwargs["attn_implementation"] == "sdpa"


@pytest.mark.gpu
def test_on_a_gpu_the_dispatch_choice_is_named_and_the_order_restored() -> None:
    """On a real GPU: torch names the kernel its default dispatch picks, putting another kernel
    first changes what it picks where that kernel accepts the inputs, and leaving restores both
    the order and the choice."""
    from attn_doctor.verify.ops import sdpa_dispatch_choice

    before_order = sdpa_priority.current_order()
    before = sdpa_dispatch_choice("cuda")
    assert before in {"sdpa_flash", "sdpa_cudnn", "sdpa_mem_efficient", "sdpa_math"}
    assert before != "sdpa_math"  # a fused kernel runs bf16 head-dim-128 inputs on any GPU
    # The math kernel accepts every input: first in the order, the dispatch must pick it.
    with sdpa_priority.prefer_sdpa_kernel("sdpa_math") as change:
        assert change.applied
        assert sdpa_dispatch_choice("cuda") == "sdpa_math"
    assert sdpa_priority.current_order() == before_order
    assert sdpa_dispatch_choice("cuda") == before


@pytest.mark.gpu
def test_torch_sdpa_kernel_restores_after_a_first_dispatch() -> None:
    """torch's own ``sdpa_kernel(..., set_priority=True)``: read the order after a first
    default dispatch (torch >= 2.10 may put cuDNN first lazily on that call), then enter and
    leave the block. The H200 record that was read as "it does not restore" is also explained
    by that lazy write; this test settles it on a real GPU."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    get_order = getattr(torch._C, "_get_sdp_priority_order", None)
    if get_order is None:
        pytest.skip("this torch has no _get_sdp_priority_order")
    q = torch.randn(1, 2, 64, 64, device="cuda", dtype=torch.bfloat16)
    torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
    torch.cuda.synchronize()
    after_first = list(get_order())
    try:
        block = sdpa_kernel([SDPBackend.MATH, SDPBackend.FLASH_ATTENTION], set_priority=True)
    except TypeError:
        pytest.skip("this torch's sdpa_kernel has no set_priority")
    with block:
        inside = list(get_order())
        torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
    after_block = list(get_order())
    print(f"order after the first dispatch {after_first}, inside {inside}, after {after_block}")
    assert after_block == after_first
