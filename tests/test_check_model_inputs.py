"""``check --deep --model``: the model's SDPA inputs (from its config.json, no network) go to the
``--deep`` child's ``torch._fused_sdp_choice``, and the answer says which inputs it used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from attn_doctor.cli import cli
from attn_doctor.errors import UsageError
from attn_doctor.probe.imports import torch_runtime_from_payload
from attn_doctor.probe.model_config import read_model_inputs

LLAMA = {"hidden_size": 4096, "num_attention_heads": 32, "torch_dtype": "bfloat16"}
MISTRAL = {**LLAMA, "sliding_window": 4096, "dtype": "float16"}


def _model(tmp_path: Path, name: str, config: dict[str, object]) -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_a_folder_gives_dtype_head_dim_heads_and_no_mask(tmp_path: Path) -> None:
    got = read_model_inputs(str(_model(tmp_path, "llama", LLAMA)), {})
    assert (got.dtype, got.head_dim, got.heads, got.mask) == ("bfloat16", 128, 32, False)
    assert "llama's config.json" in got.source


def test_a_sliding_window_model_is_asked_with_a_mask(tmp_path: Path) -> None:
    got = read_model_inputs(str(_model(tmp_path, "mistral", MISTRAL)), {})
    assert (got.dtype, got.mask) == ("float16", True)
    assert "sliding window" in got.source
    off = read_model_inputs(
        str(_model(tmp_path, "qwen", {**MISTRAL, "use_sliding_window": False})), {}
    )
    assert not off.mask


def test_a_hub_id_is_read_from_the_local_cache_only(tmp_path: Path) -> None:
    snap = tmp_path / "hub" / "models--org--tiny" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps({**LLAMA, "head_dim": 64}))
    got = read_model_inputs("org/tiny", {"HF_HUB_CACHE": str(tmp_path / "hub")})
    assert got.head_dim == 64
    with pytest.raises(UsageError, match="not in the local Hugging Face cache"):
        read_model_inputs("org/absent", {"HF_HUB_CACHE": str(tmp_path / "hub")})


def test_the_answer_names_the_inputs_it_used() -> None:
    payload = {
        "sdpa_default_kernel": "sdpa_mem_efficient",
        "sdpa_inputs_used": {"dtype": "float16", "head_dim": 128, "heads": 32, "mask": True},
    }
    rt = torch_runtime_from_payload(payload, 1.0, "from mistral's config.json")
    assert rt.sdpa_default_inputs == (
        "float16, head dim 128, 32 heads, a boolean mask (from mistral's config.json)"
    )
    assumed = torch_runtime_from_payload(
        {
            **payload,
            "sdpa_inputs_used": {"dtype": "bfloat16", "head_dim": 128, "heads": 16, "mask": False},
        },
        1.0,
    )
    assert assumed.sdpa_default_inputs == (
        "bfloat16, head dim 128, 16 heads, causal, no mask (assumed: no model given)"
    )


def test_check_says_which_inputs_torch_answered_for() -> None:
    import dataclasses

    from attn_doctor.decide import sdpa_default_kernel
    from attn_doctor.facts import Environment, TorchRuntimeFacts
    from attn_doctor.rules_data import load_rules
    from tests.conftest import SNAPSHOTS

    env = Environment.from_json((SNAPSHOTS / "h200-real.json").read_text())
    runtime = TorchRuntimeFacts(
        sdpa_default_kernel="sdpa_flash",
        sdpa_default_inputs="bfloat16, head dim 64, 32 heads, causal, no mask (from m)",
    )
    env = dataclasses.replace(env, torch_runtime=runtime)
    kernel, why = sdpa_default_kernel(env, load_rules(), env.gpus[0])
    assert kernel == "sdpa_flash"
    assert why == (
        "torch's own answer (check --deep; for bfloat16, head dim 64, 32 heads, causal, "
        "no mask (from m))"
    )


def test_check_model_without_deep_uses_the_rule_with_the_models_dtype_and_head_dim(
    tmp_path: Path,
) -> None:
    folder = _model(tmp_path, "m", {**LLAMA, "head_dim": 256, "torch_dtype": "float16"})
    snap = str(Path(__file__).parent / "snapshots" / "h200-real.json")
    res = CliRunner().invoke(cli, ["check", "--snapshot", snap, "--model", str(folder), "--json"])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    text = res.output
    assert "for the model's float16, head dim 256: torch's dispatch rules" in text
    assert "assumed bf16" not in text


def test_a_missing_model_is_a_usage_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["check", "--model", str(tmp_path / "absent")])
    assert isinstance(res.exception, UsageError)
    assert "no config.json" in res.exception.message
