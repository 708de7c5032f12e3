"""The runtime's small contracts: a readable Choice, the loaded cuDNN in SDPA's answer, no
deprecated transformers attribute read, a clean ``dir(attn_doctor)``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

import attn_doctor
from attn_doctor.facts import GpuFacts
from attn_doctor.loadtime.decision import Candidate, Choice
from attn_doctor.loadtime.device import Target
from attn_doctor.loadtime.select import _sdpa_dispatch_here, cudnn_version_text


def test_print_of_a_choice_is_its_readable_lines() -> None:
    choice = Choice(
        value="sdpa",
        reason="LlamaForCausalLM on cpu in float32",
        device="cpu",
        dtype="float32",
        model="LlamaForCausalLM",
        training=False,
        candidates=(Candidate(value="sdpa", verdict="chosen", reason="built into torch"),),
    )
    assert str(choice) == choice.explain()
    assert str(choice).splitlines()[0].startswith("attn_implementation='sdpa'")
    assert "Choice(" not in str(choice)


def test_dir_shows_the_api_not_the_imports() -> None:
    names = dir(attn_doctor)
    assert {"best_attn_implementation", "explain_choice", "load_kwargs", "__version__"} <= set(
        names
    )
    assert not {"Any", "TYPE_CHECKING", "importlib"} & set(names)
    assert set(attn_doctor.__all__) <= set(names)
    assert not {"Any", "TYPE_CHECKING", "importlib"} & set(dir(attn_doctor.loadtime))


@pytest.mark.parametrize(
    ("number", "text"), [(91900, "9.19.0"), (90100, "9.1.0"), (8902, "8.9.2"), (100203, "10.2.3")]
)
def test_cudnn_numbers_as_torch_reports_them(number: int, text: str) -> None:
    assert cudnn_version_text(number) == text


def _site_with_cudnn(root: Path, version: str) -> Path:
    info = root / f"nvidia_cudnn_cu13-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: nvidia-cudnn-cu13\nVersion: {version}\n"
    )
    return root


H100 = GpuFacts(index=0, vendor="nvidia", name="NVIDIA H100", compute_capability="9.0")


def test_sdpa_answer_uses_the_cudnn_torch_would_load(tmp_path: Path) -> None:
    """torch >= 2.10 prefers cuDNN on Hopper above cuDNN 9.15.0: without the version the
    answer was flash, while torch ran cuDNN (an H200 with torch 2.11 and cuDNN 9.19 did)."""
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.cuda.is_available():  # pragma: no cover - a GPU machine asks torch itself
            pytest.skip("torch answers from its own dispatch here")
    target = Target(kind="cuda", gpu=H100, source="argument")
    new = _site_with_cudnn(tmp_path / "new", "9.19.0.56")
    kernel, source = _sdpa_dispatch_here(target, "bfloat16", "2.11.0", [str(new)])
    assert kernel == "sdpa_cudnn"
    assert "9.19.0.56" in source
    old = _site_with_cudnn(tmp_path / "old", "9.10.2.21")
    kernel, source = _sdpa_dispatch_here(target, "bfloat16", "2.11.0", [str(old)])
    assert kernel == "sdpa_flash"
    assert "9.10.2.21" in source
    kernel, source = _sdpa_dispatch_here(target, "bfloat16", "2.11.0", [str(tmp_path / "none")])
    assert "cuDNN version unknown" in source


def test_config_dtype_is_read_without_the_deprecated_alias(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transformers = pytest.importorskip("transformers")
    from transformers.utils import logging as tf_logging

    from attn_doctor.loadtime.model_config import _config_traits

    config = transformers.LlamaConfig(
        hidden_size=64, num_attention_heads=4, num_hidden_layers=1, dtype="bfloat16"
    )
    bare = transformers.LlamaConfig(hidden_size=64, num_attention_heads=4, num_hidden_layers=1)
    once = getattr(tf_logging, "warning_once", None)
    if once is not None and hasattr(once, "cache_clear"):
        once.cache_clear()  # a warning logged earlier in this process would hide this one
    tf_logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            assert _config_traits(config)["config_dtype"] == "bfloat16"
            assert _config_traits(bare)["config_dtype"] is None
            _ = bare.num_hidden_layers  # any read works; only torch_dtype warns
    finally:
        tf_logging.disable_propagation()
    assert "torch_dtype" not in caplog.text


def test_the_runtime_asks_torch_with_the_models_heads_and_mask() -> None:
    """With torch imported (a CPU build here), the in-process question carries the model's
    head dim, heads and, for a sliding-window config, a mask; the reason names them."""
    import types

    pytest.importorskip("torch")
    from attn_doctor.loadtime.model_config import ModelTraits, _config_traits

    config = types.SimpleNamespace(
        hidden_size=2048, num_attention_heads=32, sliding_window=4096, dtype=None
    )
    facts = _config_traits(config)
    assert (facts["heads"], facts["head_dim"], facts["sliding_window"]) == (32, 64, True)
    traits = ModelTraits(
        name="m",
        known=True,
        supports_sdpa=True,
        supports_flash_attn=True,
        supports_flex_attn=True,
        supports_attention_backend=True,
        source="test",
        **facts,
    )
    target = Target(kind="cpu", gpu=None, source="argument")
    kernel, source = _sdpa_dispatch_here(target, "float32", "2.13.0", [], traits)
    assert kernel.startswith("sdpa_")
    assert source == (
        "torch._fused_sdp_choice in this process, for float32, head dim 64, 32 heads, "
        "a boolean mask (sliding window)"
    )
