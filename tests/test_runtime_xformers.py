"""attn_implementation="xformers" through transformers' real model code, on CPU.

xformers' kernels need CUDA, so ``memory_efficient_attention`` is replaced by a stand-in that
enforces xformers' input contract (BMHK layout, bias shape, dtype and stride alignment, from
xformers/ops/fmha/common.py and cutlass.py) and computes with torch's SDPA math kernel. Every
other part — the registration, transformers' mask building, GQA, the model code — is real.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from attn_doctor.integrations.xformers_attention import (  # noqa: E402
    XFORMERS_KEY,
    is_xformers_registered,
    make_bias_tensor,
    make_xformers_attention,
    register_xformers_attention,
)

# Each test runs a tiny model forward (and backward) in-process: out of the fast lane.
pytestmark = pytest.mark.slow


class FakeLowerTriangularMask:
    """Stands for xformers.ops.fmha.attn_bias.LowerTriangularMask (top-left causal)."""


class FakeMemoryEfficientAttention:
    """xformers' memory_efficient_attention contract, computed with SDPA math."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(
        self,
        query: Any,
        key: Any,
        value: Any,
        attn_bias: object = None,
        p: float = 0.0,
        scale: float | None = None,
    ) -> Any:
        assert query.ndim == key.ndim == value.ndim == 4, "BMHK inputs"
        b, mq, h, k = query.shape
        assert (key.shape[0], key.shape[2], key.shape[3]) == (b, h, k)
        assert value.shape[:3] == key.shape[:3]
        assert all(t.stride(-1) == 1 for t in (query, key, value))
        assert query.dtype == key.dtype == value.dtype
        is_causal = False
        mask = None
        if isinstance(attn_bias, torch.Tensor):
            assert tuple(attn_bias.shape) == (b, h, mq, key.shape[1])
            assert attn_bias.dtype == query.dtype
            assert attn_bias.stride(-1) == 1
            alignment = 128 // torch.finfo(attn_bias.dtype).bits
            assert all(attn_bias.stride(d) % alignment == 0 for d in range(3)), attn_bias.stride()
            mask = attn_bias
            self.calls.append("tensor")
        elif isinstance(attn_bias, FakeLowerTriangularMask):
            assert mq == key.shape[1]
            is_causal = True
            self.calls.append("causal")
        else:
            assert attn_bias is None
            self.calls.append("none")
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel(SDPBackend.MATH):
            out = torch.nn.functional.scaled_dot_product_attention(
                query.transpose(1, 2),
                key.transpose(1, 2),
                value.transpose(1, 2),
                attn_mask=mask,
                dropout_p=p,
                is_causal=is_causal,
                scale=scale,
            )
        return out.transpose(1, 2)


@pytest.fixture
def fake_mea() -> Iterator[FakeMemoryEfficientAttention]:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    fake = FakeMemoryEfficientAttention()
    register_xformers_attention(make_xformers_attention(fake, FakeLowerTriangularMask))
    yield fake
    AttentionInterface._global_mapping.pop(XFORMERS_KEY, None)
    AttentionMaskInterface._global_mapping.pop(XFORMERS_KEY, None)


def _llama() -> Any:
    return transformers.LlamaConfig(
        vocab_size=97,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )


def _qwen2() -> Any:
    return transformers.Qwen2Config(
        vocab_size=97,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        max_position_embeddings=64,
    )


def _pair(config: Any) -> tuple[Any, Any]:
    # Each model gets its own config: from_config records the implementation on the config.
    torch.manual_seed(0)
    eager = transformers.AutoModelForCausalLM.from_config(
        copy.deepcopy(config), attn_implementation="eager"
    )
    xf = transformers.AutoModelForCausalLM.from_config(
        copy.deepcopy(config), attn_implementation="xformers"
    )
    xf.load_state_dict(eager.state_dict())
    assert xf.config._attn_implementation == "xformers"
    assert eager.config._attn_implementation == "eager"
    return eager.eval(), xf.eval()


@pytest.mark.parametrize("make_config", [_llama, _qwen2], ids=["llama", "qwen2"])
def test_logits_match_eager_causal(
    make_config: Any, fake_mea: FakeMemoryEfficientAttention
) -> None:
    eager, xf = _pair(make_config())
    ids = torch.randint(0, 97, (2, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = eager(input_ids=ids).logits
        got = xf(input_ids=ids).logits
    assert fake_mea.calls == ["causal", "causal"]  # one per layer, no bias tensor
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make_config", [_llama, _qwen2], ids=["llama", "qwen2"])
def test_logits_match_eager_left_padded(
    make_config: Any, fake_mea: FakeMemoryEfficientAttention
) -> None:
    eager, xf = _pair(make_config())
    ids = torch.randint(0, 97, (3, 13), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    mask[0, :4] = 0  # left padding; 13 keys is not a multiple of 8: the bias must be aligned
    mask[2, :1] = 0
    with torch.no_grad():
        ref = eager(input_ids=ids, attention_mask=mask).logits
        got = xf(input_ids=ids, attention_mask=mask).logits
    assert fake_mea.calls == ["tensor", "tensor"]
    keep = mask.bool()
    torch.testing.assert_close(got[keep], ref[keep], rtol=1e-5, atol=1e-5)


def test_gradients_match_eager(fake_mea: FakeMemoryEfficientAttention) -> None:
    eager, xf = _pair(_llama())
    eager.train()
    xf.train()
    ids = torch.randint(0, 97, (2, 9), generator=torch.Generator().manual_seed(3))
    for model in (eager, xf):
        model(input_ids=ids, labels=ids).loss.backward()
    for (name, p_ref), (_, p_got) in zip(
        eager.named_parameters(), xf.named_parameters(), strict=True
    ):
        assert p_ref.grad is not None, name
        assert p_got.grad is not None, name
        torch.testing.assert_close(p_got.grad, p_ref.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_generate_with_cache_matches_eager(fake_mea: FakeMemoryEfficientAttention) -> None:
    eager, xf = _pair(_llama())
    ids = torch.randint(0, 97, (1, 5), generator=torch.Generator().manual_seed(4))
    kwargs: dict[str, Any] = {"max_new_tokens": 4, "do_sample": False, "pad_token_id": 0}
    with torch.no_grad():
        ref = eager.generate(ids, **kwargs)
        got = xf.generate(ids, **kwargs)
    assert torch.equal(got, ref)
    assert "none" in fake_mea.calls  # single-token decode steps: no causal bias


def test_generate_left_padded_batch_matches_eager(fake_mea: FakeMemoryEfficientAttention) -> None:
    eager, xf = _pair(_qwen2())
    ids = torch.randint(1, 97, (2, 6), generator=torch.Generator().manual_seed(5))
    mask = torch.ones_like(ids)
    mask[1, :2] = 0
    kwargs: dict[str, Any] = {"max_new_tokens": 4, "do_sample": False, "pad_token_id": 0}
    with torch.no_grad():
        ref = eager.generate(ids, attention_mask=mask, **kwargs)
        got = xf.generate(ids, attention_mask=mask, **kwargs)
    assert torch.equal(got, ref)
    assert set(fake_mea.calls) == {"tensor"}  # padding: a bias tensor at every step


def test_sliding_window_mask_is_materialised(fake_mea: FakeMemoryEfficientAttention) -> None:
    config = transformers.MistralConfig(
        vocab_size=97,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        sliding_window=4,
    )
    eager, xf = _pair(config)
    ids = torch.randint(0, 97, (1, 11), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        ref = eager(input_ids=ids).logits
        got = xf(input_ids=ids).logits
    assert fake_mea.calls == ["tensor", "tensor"]  # a window is not plain causal attention
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_registration_is_visible_and_idempotent(fake_mea: FakeMemoryEfficientAttention) -> None:
    assert is_xformers_registered()
    register_xformers_attention(make_xformers_attention(fake_mea, FakeLowerTriangularMask))
    assert transformers.AttentionInterface._global_mapping[XFORMERS_KEY] is not None


def test_unregistered_value_is_refused_by_transformers() -> None:
    assert not is_xformers_registered()
    with pytest.raises(ValueError, match="xformers"):
        transformers.AutoModelForCausalLM.from_config(_llama(), attn_implementation="xformers")


def test_real_function_without_xformers_says_what_to_do() -> None:
    import importlib.util

    if importlib.util.find_spec("xformers") is not None:
        pytest.skip("xformers is installed here")
    from attn_doctor.integrations.xformers_attention import xformers_attention_forward

    q = torch.randn(1, 2, 3, 8)
    with pytest.raises(ImportError, match="attn-doctor check"):
        xformers_attention_forward(torch.nn.Module(), q, q, q, None)


@pytest.mark.parametrize(("dtype", "kv_len"), [("float32", 5), ("float16", 13), ("bfloat16", 16)])
def test_bias_tensor_alignment(dtype: str, kv_len: int) -> None:
    torch_dtype = getattr(torch, dtype)
    mask = torch.ones((2, 1, 3, kv_len), dtype=torch.bool)
    mask[0, :, :, 0] = False
    bias = make_bias_tensor(mask, batch=2, heads=4, q_len=3, kv_len=kv_len, dtype=torch_dtype)
    assert tuple(bias.shape) == (2, 4, 3, kv_len)
    assert bias.dtype == torch_dtype
    assert bias.stride(-1) == 1
    assert all(s % 8 == 0 for s in bias.stride()[:-1])
    assert bias[0, 0, 0, 0] == torch.finfo(torch_dtype).min
    assert bias[1, 3, 2, kv_len - 1] == 0


@pytest.mark.gpu
def test_real_xformers_on_gpu_matches_sdpa() -> None:
    pytest.importorskip("xformers.ops")
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    register_xformers_attention()
    try:
        config = _llama()
        torch.manual_seed(0)
        ref_model = (
            transformers.AutoModelForCausalLM.from_config(
                copy.deepcopy(config), attn_implementation="sdpa", dtype=torch.float16
            )
            .cuda()
            .eval()
        )
        xf = (
            transformers.AutoModelForCausalLM.from_config(
                config, attn_implementation="xformers", dtype=torch.float16
            )
            .cuda()
            .eval()
        )
        xf.load_state_dict(ref_model.state_dict())
        ids = torch.randint(0, 97, (2, 13), device="cuda")
        mask = torch.ones_like(ids)
        mask[0, :3] = 0
        with torch.no_grad():
            for kwargs in ({}, {"attention_mask": mask}):
                ref = ref_model(input_ids=ids, **kwargs).logits.float()
                got = xf(input_ids=ids, **kwargs).logits.float()
                keep = kwargs.get("attention_mask", torch.ones_like(ids)).bool()
                torch.testing.assert_close(got[keep], ref[keep], rtol=2e-2, atol=2e-2)
    finally:
        AttentionInterface._global_mapping.pop(XFORMERS_KEY, None)
        AttentionMaskInterface._global_mapping.pop(XFORMERS_KEY, None)
