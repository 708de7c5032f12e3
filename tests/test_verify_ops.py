"""Backend call adapters: every CPU backend against a float64 reference, padded batches, GQA."""

from __future__ import annotations

from pathlib import Path

import pytest

from attn_doctor.verify.ops import (
    KERNEL_BACKENDS,
    UnsupportedCaseError,
    attention_call,
    available_ops,
    eager_attention,
    padding_mask,
)

torch = pytest.importorskip("torch")


def _inputs(dtype: object = None) -> tuple[object, object, object]:
    gen = torch.Generator().manual_seed(1)
    shape_q, shape_kv = (2, 32, 4, 64), (2, 32, 2, 64)
    q = torch.randn(shape_q, generator=gen, dtype=torch.float64)
    k = torch.randn(shape_kv, generator=gen, dtype=torch.float64)
    v = torch.randn(shape_kv, generator=gen, dtype=torch.float64)
    return q, k, v


def test_available_ops_on_cpu_names_every_kernel_backend() -> None:
    ops = available_ops("cpu")
    assert set(ops) == set(KERNEL_BACKENDS)
    for backend in ("sdpa_math", "sdpa_cpu_fused", "eager", "flex_attention"):
        assert ops[backend] is None
    for backend in ("flash_attn_2", "flash_attn_3", "flash_attn_4", "xformers", "sdpa_flash"):
        assert ops[backend] == "needs a CUDA device"


def test_eager_matches_a_hand_computed_attention() -> None:
    q, k, v = _inputs()
    out = eager_attention(q, k, v, causal=True)
    # Query head 3 reads kv head 1 (grouped-query: h // (4 // 2)); position 0 sees key 0 only.
    assert torch.allclose(out[:, 0, 3], v[:, 0, 1])
    b, t, h = 1, 5, 2
    scores = (q[b, t, h] @ k[b, : t + 1, 1].T) / 8.0
    expected = torch.softmax(scores, dim=-1) @ v[b, : t + 1, 1]
    assert torch.allclose(out[b, t, h], expected)


@pytest.mark.parametrize("backend", ["sdpa_math", "sdpa_cpu_fused"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("seqlens", [None, (32, 19)])
def test_sdpa_cpu_kernels_match_the_reference(
    backend: str, causal: bool, seqlens: tuple[int, ...] | None
) -> None:
    q, k, v = _inputs()
    ref = eager_attention(q, k, v, causal=causal, seqlens=seqlens)
    out = attention_call(backend, q.float(), k.float(), v.float(), causal=causal, seqlens=seqlens)  # type: ignore[arg-type]
    assert out.dtype == torch.float32
    assert out.shape == ref.shape
    assert (out.double() - ref).abs().max().item() < 1e-5
    if seqlens is not None:
        assert out[1, 19:].abs().max().item() == 0.0  # padded queries are zero


def test_padding_changes_the_result_of_real_rows() -> None:
    # The mask really reaches the kernel: row 1 without its last keys differs from unpadded.
    q, k, v = _inputs()
    full = attention_call("sdpa_math", q, k, v, causal=False)
    padded = attention_call("sdpa_math", q, k, v, causal=False, seqlens=(32, 19))
    assert torch.allclose(full[0], padded[0])
    assert not torch.allclose(full[1, :19], padded[1, :19])


def test_padding_mask() -> None:
    mask = padding_mask((3, 1), 4, "cpu")
    assert mask.tolist() == [[True, True, True, False], [True, False, False, False]]


def test_backends_without_a_kernel_are_refused() -> None:
    q, k, v = _inputs()
    with pytest.raises(ValueError, match="no attention kernel"):
        attention_call("unsloth", q, k, v, causal=False)


def test_unsupported_case_is_its_own_exception() -> None:
    assert not issubclass(UnsupportedCaseError, RuntimeError)


@pytest.mark.slow
def test_flex_that_did_not_compile_is_not_counted_as_the_kernel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What dynamo does when it gives up: flex_attention runs unfused (and warns). verify must
    # not report that as the fused kernel passing.
    from attn_doctor.adapters import torch_kernels

    monkeypatch.setattr(torch_kernels, "_compiled_flex", lambda fn: fn)
    q, k, v = _inputs()
    with pytest.raises(UnsupportedCaseError, match="unfused"):
        attention_call("flex_attention", q.float(), k.float(), v.float(), causal=True)


def test_presence_is_decided_by_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """flash-attn-4 alone: `import flash_attn` succeeds (namespace package), yet flash-attn 2
    is not installed (the H200 case: the adapter said "failed" instead)."""
    import importlib

    from attn_doctor.adapters.base import distribution_reason
    from attn_doctor.backends import BACKENDS
    from tests.runtime_helpers import plant

    plant(tmp_path, "flash_attn.cute", dist="flash-attn-4", version="4.0.0b36")
    (tmp_path / "flash_attn" / "__init__.py").unlink()  # FA4 ships no flash_attn/__init__.py
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert importlib.util.find_spec("flash_attn") is not None
    reason = distribution_reason(BACKENDS["flash_attn_2"])
    assert reason == "not installed (no flash-attn distribution)"
    assert distribution_reason(BACKENDS["flash_attn_4"]) is None
    assert distribution_reason(BACKENDS["sdpa"]) is None
