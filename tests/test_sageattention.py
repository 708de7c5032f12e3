"""SageAttention through its record: verify's adapter and published-error rule, the runtime's
registration, the install planner and check's table.

SageAttention's kernels need CUDA, so a stand-in module implements its documented
``sageattn(q, k, v, tensor_layout, is_causal, sm_scale)`` with torch's math attention plus
INT8-style rounding of Q and K (what the real kernel does to them); what is tested is
attn-doctor's side. The real kernel is checked by the gpu-marked verify tests.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from attn_doctor.diagnose import diagnose
from attn_doctor.facts import Environment
from attn_doctor.index import load_index
from attn_doctor.resolve import plan_backend
from attn_doctor.rules_data import load_rules
from attn_doctor.verify.kernels import compare_published
from attn_doctor.verify.ops import UnsupportedCaseError, attention_call, eager_attention
from tests.conftest import SNAPSHOTS

torch = pytest.importorskip("torch")


def _int8(x: Any) -> Any:
    """Per-tensor symmetric INT8 quantise/dequantise (SageAttention's Q/K treatment, coarser)."""
    scale = x.abs().amax().clamp_min(1e-8) / 127.0
    return (x / scale).round().clamp(-127, 127) * scale


def _stand_in(*, garbage: bool = False, mutate_k: bool = False) -> types.ModuleType:
    mod = types.ModuleType("sageattention")
    calls: list[dict[str, Any]] = []

    def sageattn(
        q: Any,
        k: Any,
        v: Any,
        tensor_layout: str = "HND",
        is_causal: bool = False,
        sm_scale: Any = None,
    ) -> Any:
        calls.append({"layout": tensor_layout, "causal": is_causal, "shape": tuple(q.shape)})
        if mutate_k:
            k -= k.mean(dim=1 if tensor_layout == "NHD" else 2, keepdim=True)
        if tensor_layout == "NHD":
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        groups = q.shape[1] // k.shape[1]
        k = k.repeat_interleave(groups, dim=1)
        v = v.repeat_interleave(groups, dim=1)
        out = torch.nn.functional.scaled_dot_product_attention(
            _int8(q), _int8(k), v, is_causal=is_causal, scale=sm_scale
        )
        if garbage:
            out = torch.randn_like(out)
        return out.transpose(1, 2) if tensor_layout == "NHD" else out

    mod.sageattn = sageattn  # type: ignore[attr-defined]
    mod.calls = calls  # type: ignore[attr-defined]
    return mod


@pytest.fixture
def sage(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    mod = _stand_in(mutate_k=True)
    monkeypatch.setitem(sys.modules, "sageattention", mod)
    return mod


def _qkv(dim: int = 64, heads_kv: int = 2) -> tuple[Any, Any, Any]:
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, 32, 4, dim, generator=gen)
    k = torch.randn(2, 32, heads_kv, dim, generator=gen)
    v = torch.randn(2, 32, heads_kv, dim, generator=gen)
    return q, k, v


def test_adapter_calls_sageattn_in_nhd_and_passes_the_published_rule(
    sage: types.ModuleType,
) -> None:
    q, k, v = _qkv()
    k_before = k.clone()
    out = attention_call("sageattention", q, k, v, causal=True)
    assert sage.calls[-1]["layout"] == "NHD"  # type: ignore[attr-defined]
    assert sage.calls[-1]["causal"] is True  # type: ignore[attr-defined]
    assert torch.equal(k, k_before), "the adapter must not let sageattn change the caller's k"
    ref = eager_attention(*(t.double() for t in (q, k, v)), causal=True)
    check = compare_published("out", out, ref, max_rel_l1=0.05, min_cosine=0.99)
    assert check.passed, check
    assert check.max_error is not None
    assert 0 < check.max_error < 0.05


def test_published_rule_fails_a_wrong_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sageattention", _stand_in(garbage=True))
    q, k, v = _qkv()
    out = attention_call("sageattention", q, k, v, causal=False)
    ref = eager_attention(*(t.double() for t in (q, k, v)), causal=False)
    check = compare_published("out", out, ref, max_rel_l1=0.05, min_cosine=0.99)
    assert not check.passed
    assert "cosine similarity" in (check.problem or "")


def test_published_rule_refuses_nan() -> None:
    ref = torch.ones(2, 3)
    bad = torch.full((2, 3), float("nan"))
    check = compare_published("out", bad, ref, max_rel_l1=0.05, min_cosine=0.99)
    assert not check.passed
    assert check.problem == "NaN or Inf in the kernel's result"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"dim": 256}, "head dims 64, 96 and 128"),
        ({"seqlens": (32, 20)}, "no attention mask"),
    ],
)
def test_adapter_refuses_what_sageattn_cannot_do(
    sage: types.ModuleType, kwargs: dict[str, Any], error: str
) -> None:
    q, k, v = _qkv(dim=kwargs.get("dim", 64))
    with pytest.raises(UnsupportedCaseError, match=error):
        attention_call("sageattention", q, k, v, causal=True, seqlens=kwargs.get("seqlens"))


def test_adapter_has_no_backward(sage: types.ModuleType) -> None:
    q, k, v = (t.requires_grad_(True) for t in _qkv())
    with pytest.raises(NotImplementedError, match="inference-only"):
        attention_call("sageattention", q, k, v, causal=True)


def test_runtime_registration_makes_it_a_forced_choice_only(sage: types.ModuleType) -> None:
    transformers = pytest.importorskip("transformers")
    from attn_doctor.integrations.sage_attention import SAGE_KEY, make_sage_attention

    forward = make_sage_attention(sage.sageattn)  # type: ignore[attr-defined]
    module = types.SimpleNamespace(is_causal=True)
    q, k, v = (t.transpose(1, 2) for t in _qkv(heads_kv=4))  # (B, H, S, D), as transformers
    out, weights = forward(module, q, k, v, None)
    assert weights is None
    assert out.shape == (2, 32, 4, 64)
    ref = eager_attention(*(t.transpose(1, 2) for t in (q, k, v)), causal=True)
    assert compare_published("out", out, ref.double(), max_rel_l1=0.05, min_cosine=0.99).passed
    padding = torch.ones(2, 1, 32, 32, dtype=torch.bool).tril()
    padding[1, :, :, 20:] = False
    with pytest.raises(ValueError, match="no padding mask"):
        forward(module, q, k, v, padding)
    with pytest.raises(ValueError, match="inference-only"):
        forward(module, q.requires_grad_(True), k, v, None)
    assert SAGE_KEY == "sageattention"
    assert transformers is not None


def _env(name: str) -> Environment:
    return Environment.from_json((SNAPSHOTS / f"{name}.json").read_text())


def test_install_plans_the_index_wheel_on_ampere_and_refuses_turing() -> None:
    index = load_index()
    a100 = plan_backend(_env("a100-linux"), index, "sageattention")
    assert a100.candidates
    best = a100.candidates[0]
    assert (best.source, best.requirement) == ("pypi", "sageattention==1.0.6")
    t4 = plan_backend(_env("t4-colab"), index, "sageattention")
    assert not t4.candidates
    assert "needs compute capability >= 8.0; Tesla T4" in t4.rejections[0].reason
    cpu = plan_backend(_env("cpu-only-laptop"), index, "sageattention")
    assert not cpu.candidates


def test_check_lists_it_and_never_recommends_it_automatically() -> None:
    env = _env("a100-linux")
    diag = diagnose(env, load_rules(), index=load_index())
    row = next(b for b in diag.backends if b.backend == "sageattention")
    assert row.installed == "no"
    sage = [r for r in diag.recommendations if r.backend == "sageattention"]
    assert sage
    assert not sage[0].auto
    assert all(r.auto for r in diag.recommendations[: diag.recommendations.index(sage[0])])
