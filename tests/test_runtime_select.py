"""best_attn_implementation / explain_choice / load_kwargs with real transformers models.

The CPU path runs as it will for users (real device detection, real model classes). The GPU
is the one thing this machine cannot give: GPU cases pass the GPU's facts as ``device=``
(the same argument that plans for a snapshot of another machine). Backend packages are real
packages planted on the child's PYTHONPATH, imported only by real child processes.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from attn_doctor.errors import UsageError
from attn_doctor.facts import GpuFacts, ImportResult
from attn_doctor.loadtime.device import Target
from attn_doctor.loadtime.model_config import ANY_MODEL, ModelTraits
from attn_doctor.loadtime.requirements import Requirement
from attn_doctor.loadtime.select import (
    Settings,
    best_attn_implementation,
    clear_caches,
    decide,
    explain_choice,
    load_kwargs,
    read_settings,
)
from tests.runtime_helpers import SEGFAULT, clean_environ, plant


def plant_fa2(site: Path, body: str = "") -> None:
    """flash-attn 2.8.3: the package and its compiled extension's module name."""
    plant(site, "flash_attn", dist="flash-attn", version="2.8.3", body=body)
    (site / "flash_attn_2_cuda.py").write_text("")


transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

H100 = GpuFacts(index=0, vendor="nvidia", name="NVIDIA H100", compute_capability="9.0")
A100 = GpuFacts(index=0, vendor="nvidia", name="NVIDIA A100", compute_capability="8.0")
T4 = GpuFacts(index=0, vendor="nvidia", name="Tesla T4", compute_capability="7.5")
B200 = GpuFacts(index=0, vendor="nvidia", name="NVIDIA B200", compute_capability="10.0")


@pytest.fixture(autouse=True)
def _fresh_decisions() -> Iterator[None]:
    clear_caches()
    yield
    clear_caches()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def fa2_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A working flash-attn 2.8.3 planted once, with one import cache for the module's tests
    (each child import loads torch: checking it once keeps the suite fast)."""
    root = tmp_path_factory.mktemp("fa2")
    plant_fa2(root / "site")
    return clean_environ(root / "cache", root / "site")


def _env(tmp_path: Path, site: Path, **extra: str) -> dict[str, str]:
    return clean_environ(tmp_path / "cache", site, **extra)


def _llama_config() -> Any:
    return transformers.LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )


# --- the CPU path, as users get it -------------------------------------------------------------


def test_cpu_selects_sdpa_with_a_reason(tmp_path: Path, site: Path) -> None:
    env = _env(tmp_path, site)
    choice = explain_choice(transformers.LlamaForCausalLM, environ=env)
    assert choice.value == "sdpa"
    assert best_attn_implementation(transformers.LlamaForCausalLM, environ=env) == "sdpa"
    assert choice.device.startswith("cpu")
    assert "LlamaForCausalLM on cpu" in choice.reason
    assert "flash_attention_2" in choice.reason  # passed over, and why
    assert choice.fallbacks == ("eager",)
    verdicts = {c.value: c.verdict for c in choice.candidates}
    assert verdicts["flash_attention_2"] == "rejected"
    assert verdicts["sdpa"] == "chosen"


def test_decision_is_cached_per_process(tmp_path: Path, site: Path) -> None:
    env = _env(tmp_path, site)
    first = explain_choice(transformers.LlamaForCausalLM, environ=env)
    assert explain_choice(transformers.LlamaForCausalLM, environ=env) is first
    clear_caches()
    assert explain_choice(transformers.LlamaForCausalLM, environ=env) is not first


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (transformers.BloomConfig(vocab_size=64, hidden_size=32, n_layer=1, n_head=4), "eager"),
        (
            transformers.Gemma2Config(
                vocab_size=64,
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=1,
                num_attention_heads=4,
                num_key_value_heads=2,
                head_dim=8,
            ),
            "eager",
        ),
        (transformers.GPT2Config(n_layer=1, n_embd=32, n_head=4, vocab_size=64), "sdpa"),
    ],
    ids=["bloom-no-sdpa", "gemma2-no-sdpa-softcap", "gpt2-sdpa"],
)
def test_declared_support_decides_and_really_loads(
    config: Any, expected: str, tmp_path: Path, site: Path
) -> None:
    env = _env(tmp_path, site)
    kwargs = load_kwargs(config, device="cpu", environ=env)
    assert kwargs == {"attn_implementation": expected}
    model = transformers.AutoModelForCausalLM.from_config(copy.deepcopy(config), **kwargs)
    assert model.config._attn_implementation == expected
    with torch.no_grad():
        model(input_ids=torch.tensor([[1, 2, 3]]))


def test_model_without_sdpa_reason_names_the_class(tmp_path: Path, site: Path) -> None:
    env = _env(tmp_path, site)
    choice = explain_choice(transformers.BloomForCausalLM, environ=env)
    assert choice.value == "eager"
    assert "BloomForCausalLM does not declare _supports_sdpa" in choice.reason


def test_load_kwargs_feed_from_config_and_from_pretrained(tmp_path: Path, site: Path) -> None:
    env = _env(tmp_path, site)
    kwargs = load_kwargs(transformers.LlamaForCausalLM, device="cpu", dtype="bf16", environ=env)
    assert kwargs == {"attn_implementation": "sdpa", "dtype": torch.bfloat16}
    model = transformers.AutoModelForCausalLM.from_config(_llama_config(), **kwargs)
    assert model.config._attn_implementation == "sdpa"
    assert model.dtype == torch.bfloat16

    saved = tmp_path / "tiny-llama"
    model.save_pretrained(saved)
    assert best_attn_implementation(str(saved), environ=env) == "sdpa"
    choice = explain_choice(str(saved), environ=env)
    assert choice.model == "LlamaForCausalLM"
    assert choice.dtype == "bfloat16"  # read from the saved config
    loaded = transformers.AutoModelForCausalLM.from_pretrained(
        saved, **load_kwargs(str(saved), environ=env)
    )
    assert loaded.config._attn_implementation == "sdpa"


def test_instance_dtype_is_used(tmp_path: Path, site: Path) -> None:
    env = _env(tmp_path, site)
    model = transformers.AutoModelForCausalLM.from_config(_llama_config(), dtype=torch.float16)
    choice = explain_choice(model, device=A100, environ=env)
    assert choice.dtype == "float16"


def test_unknown_model_id_is_a_usage_error(tmp_path: Path, site: Path) -> None:
    env = _env(tmp_path, site, HF_HUB_OFFLINE="1")
    with pytest.raises(UsageError, match="cannot read the config"):
        best_attn_implementation(str(tmp_path / "no-such-model"), environ=env)


def test_explicit_cuda_without_a_gpu_is_a_usage_error(tmp_path: Path, site: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(UsageError, match="cuda"):
        best_attn_implementation(device="cuda", environ=_env(tmp_path, site))


# --- GPU facts given, backends planted ---------------------------------------------------------


@pytest.mark.functional
def test_fp32_never_picks_flash(fa2_env: dict[str, str]) -> None:
    env = fa2_env
    fp32 = explain_choice(transformers.LlamaForCausalLM, device=A100, dtype="fp32", environ=env)
    assert fp32.value == "sdpa"
    assert "needs float16 or bfloat16; the model runs in float32" in fp32.reason
    unspecified = explain_choice(transformers.LlamaForCausalLM, device=A100, environ=env)
    assert unspecified.value == "sdpa"
    assert "assumed" in unspecified.reason
    bf16 = explain_choice(transformers.LlamaForCausalLM, device=A100, dtype="bf16", environ=env)
    assert bf16.value == "flash_attention_2"
    assert (
        "flash_attn and flash_attn_2_cuda import in a child process (flash-attn 2.8.3)"
        in bf16.reason
    )


@pytest.mark.functional
def test_segfaulting_backend_is_excluded_never_imported(tmp_path: Path, site: Path) -> None:
    plant_fa2(site, body=SEGFAULT)
    env = _env(tmp_path, site)
    choice = explain_choice(transformers.LlamaForCausalLM, device=H100, dtype="bf16", environ=env)
    assert choice.value == "sdpa"
    assert "`import flash_attn` crashed: SIGSEGV" in choice.reason
    assert "flash_attn" not in sys.modules
    # A second process would read the verdict from disk instead of crashing a child again.
    cache = tmp_path / "cache" / "attn-doctor" / "imports.json"
    assert "crashed" in cache.read_text()


@pytest.mark.functional
def test_load_kwargs_default_dtype_on_a_gpu(fa2_env: dict[str, str]) -> None:
    env = fa2_env
    assert load_kwargs(device=A100, environ=env) == {
        "attn_implementation": "flash_attention_2",
        "dtype": torch.bfloat16,
    }
    assert load_kwargs(device=T4, environ=env) == {
        "attn_implementation": "sdpa",
        "dtype": torch.float16,
    }
    assert load_kwargs(device=T4, training=True, environ=env) == {"attn_implementation": "sdpa"}


@pytest.mark.functional
def test_hopper_prefers_fa3_blackwell_fa4(tmp_path: Path, site: Path) -> None:
    plant(site, "flash_attn_interface", dist="flash-attn-3", version="3.0.0")
    plant(site, "flash_attn.cute", dist="flash-attn-4", version="4.0.0b27")
    env = _env(tmp_path, site)
    assert best_attn_implementation(device=H100, dtype="bf16", environ=env) == "flash_attention_3"
    blackwell = explain_choice(device=B200, dtype="bf16", environ=env)
    assert blackwell.value == "flash_attention_4"
    fa3 = next(c for c in blackwell.candidates if c.value == "flash_attention_3")
    assert fa3.verdict == "rejected"
    assert "built for compute capability <= 9.0" in fa3.reason


@pytest.mark.functional
def test_xformers_only_once_registered(tmp_path: Path, site: Path) -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    from attn_doctor.integrations.xformers_attention import register_xformers_attention

    plant(site, "xformers.ops", dist="xformers", version="0.0.32")
    (site / "xformers" / "_cpp_lib.py").write_text("_cpp_library_load_exception = None\n")
    env = _env(tmp_path, site)
    before = explain_choice(transformers.LlamaForCausalLM, device=T4, dtype="fp16", environ=env)
    assert before.value == "sdpa"
    register_xformers_attention()
    try:
        after = explain_choice(transformers.LlamaForCausalLM, device=T4, dtype="fp16", environ=env)
        assert after.value == "xformers"
        bf16_on_t4 = explain_choice(device=T4, dtype="bf16", environ=env)
        assert bf16_on_t4.value == "sdpa"
        assert "bfloat16 needs compute capability >= 8.0" in bf16_on_t4.reason
        for variable in ("XFORMERS_DISABLED", "USE_XFORMERS"):
            value = "1" if variable == "XFORMERS_DISABLED" else "0"
            disabled = explain_choice(device=T4, dtype="fp16", environ={**env, variable: value})
            assert disabled.value == "sdpa"
            assert f"disabled by {variable}={value}" in disabled.reason
        gemma2 = explain_choice(transformers.Gemma2Config(), device=T4, dtype="fp16", environ=env)
        assert gemma2.value == "eager"  # xformers has no soft-capping, sdpa is not declared
    finally:
        AttentionInterface._global_mapping.pop("xformers", None)
        AttentionMaskInterface._global_mapping.pop("xformers", None)


# --- overrides --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "forced"),
    [
        ("flash_attention_2", "flash_attention_2"),
        ("fa2", "flash_attention_2"),
        ("flash-attn", "flash_attention_2"),
        ("FA3", "flash_attention_3"),
        ("eager", "eager"),
        ("flex", "flex_attention"),
        ("sdpa_math", "sdpa"),
        ("kernels-community/flash-attn2", "kernels-community/flash-attn2"),
    ],
)
def test_forced_backend(raw: str, forced: str, tmp_path: Path, site: Path) -> None:
    env = _env(tmp_path, site, ATTN_DOCTOR_BACKEND=raw)
    choice = explain_choice(transformers.LlamaForCausalLM, environ=env)
    assert choice.value == forced
    assert choice.forced
    assert "forced by ATTN_DOCTOR_BACKEND" in choice.reason


def test_forced_backend_that_cannot_work_says_so(tmp_path: Path, site: Path) -> None:
    env = _env(tmp_path, site, ATTN_DOCTOR_BACKEND="flash_attention_2")
    choice = explain_choice(transformers.LlamaForCausalLM, device="cpu", environ=env)
    assert choice.value == "flash_attention_2"
    assert "warning: runs on cuda" in choice.reason


@pytest.mark.parametrize(
    ("raw", "guess"),
    [("flash_attention_5", "'flash_attention_4'"), ("xformer", "'xformers'"), ("fast", None)],
)
def test_invalid_forced_backend_lists_valid_values(
    raw: str, guess: str | None, tmp_path: Path, site: Path
) -> None:
    """A near miss gets "did you mean"; anything else the valid values."""
    env = _env(tmp_path, site, ATTN_DOCTOR_BACKEND=raw)
    with pytest.raises(UsageError) as info:
        best_attn_implementation(environ=env)
    assert raw in info.value.message
    assert info.value.hint is not None
    if guess is not None:
        assert info.value.hint.startswith("did you mean")
        assert guess in info.value.hint
    else:
        assert "flash_attention_2" in info.value.hint
        assert "sdpa" in info.value.hint


def test_forcing_unregistered_xformers_is_refused(tmp_path: Path, site: Path) -> None:
    env = _env(tmp_path, site, ATTN_DOCTOR_BACKEND="xformers")
    with pytest.raises(UsageError, match="register_xformers_attention"):
        best_attn_implementation(environ=env)


def test_forcing_unsloth_explains(tmp_path: Path, site: Path) -> None:
    env = _env(tmp_path, site, ATTN_DOCTOR_BACKEND="unsloth")
    with pytest.raises(UsageError, match="not an attn_implementation"):
        best_attn_implementation(environ=env)


@pytest.mark.functional
def test_disable_list(fa2_env: dict[str, str]) -> None:
    env = fa2_env
    assert best_attn_implementation(device=A100, dtype="bf16", environ=env) == "flash_attention_2"
    for raw in ("flash_attention_2", "flash", "fa2, xformers"):
        disabled = explain_choice(
            device=A100, dtype="bf16", environ={**env, "ATTN_DOCTOR_DISABLE": raw}
        )
        assert disabled.value == "sdpa"
        assert f"disabled by ATTN_DOCTOR_DISABLE={raw}" in disabled.reason
    no_sdpa = explain_choice(device="cpu", environ={**env, "ATTN_DOCTOR_DISABLE": "sdpa"})
    assert no_sdpa.value == "eager"
    with pytest.raises(UsageError, match="eager cannot be disabled"):
        best_attn_implementation(environ={**env, "ATTN_DOCTOR_DISABLE": "eager"})
    with pytest.raises(UsageError, match="not a known attention implementation"):
        best_attn_implementation(environ={**env, "ATTN_DOCTOR_DISABLE": "sdpa,nope"})


@pytest.mark.parametrize(
    ("variable", "value", "disables"),
    [
        ("DISABLE_FLASH_ATTN", "1", True),
        ("DISABLE_FLASH_ATTN", "0", False),
        ("USE_FLASH_ATTENTION", "false", True),
        ("USE_FLASH_ATTENTION", "true", False),
    ],
)
@pytest.mark.functional
def test_legacy_flash_variables(
    variable: str, value: str, disables: bool, fa2_env: dict[str, str]
) -> None:
    env = {**fa2_env, variable: value}
    choice = explain_choice(device=A100, dtype="bf16", environ=env)
    assert choice.value == ("sdpa" if disables else "flash_attention_2")
    assert (f"disabled by {variable}={value}" in choice.reason) is disables


# --- the rules, as a pure function ------------------------------------------------------------


def _decide(
    gpu: GpuFacts | None,
    *,
    installed: tuple[str, ...],
    dtype: str = "bfloat16",
    training: bool = False,
    traits: ModelTraits = ANY_MODEL,
    imports_ok: bool = True,
) -> str:
    target = (
        Target(kind="cuda", gpu=gpu, source="argument")
        if gpu
        else Target(kind="cpu", source="argument")
    )

    def is_installed(req: Requirement) -> str | None:
        return "99.0" if req.value in installed else None

    def imports(module: str) -> ImportResult:
        return ImportResult(module=module, status="ok" if imports_ok else "error")

    return decide(
        traits=traits,
        target=target,
        dtype=dtype,
        training=training,
        settings=Settings(),
        registered=False,
        installed=is_installed,
        imports=imports,
    ).value


ALL_FLASH = ("flash_attention_2", "flash_attention_3", "flash_attention_4")


@pytest.mark.parametrize(
    ("gpu", "dtype", "training", "expected"),
    [
        (H100, "bfloat16", False, "flash_attention_3"),
        (H100, "float16", True, "flash_attention_3"),
        (B200, "bfloat16", True, "flash_attention_4"),
        (A100, "bfloat16", True, "flash_attention_2"),
        (T4, "float16", False, "sdpa"),
        (A100, "float32", False, "sdpa"),
        (None, "bfloat16", False, "sdpa"),
    ],
    ids=["h100", "h100-train", "b200-train", "a100", "t4", "a100-fp32", "cpu"],
)
def test_preference_by_architecture(
    gpu: GpuFacts | None, dtype: str, training: bool, expected: str
) -> None:
    assert _decide(gpu, installed=ALL_FLASH, dtype=dtype, training=training) == expected


def test_training_with_attention_dropout_skips_fa3_and_fa4() -> None:
    traits = ModelTraits(
        name="M",
        known=True,
        supports_sdpa=True,
        supports_flash_attn=True,
        supports_flex_attn=True,
        supports_attention_backend=True,
        attention_dropout=0.1,
        source="test",
    )
    assert _decide(H100, installed=ALL_FLASH, training=True, traits=traits) == "flash_attention_2"
    assert _decide(H100, installed=ALL_FLASH, training=False, traits=traits) == (
        "flash_attention_3"
    )


def test_head_dim_over_256_skips_fa2() -> None:
    traits = ModelTraits(
        name="M",
        known=True,
        supports_sdpa=True,
        supports_flash_attn=True,
        supports_flex_attn=True,
        supports_attention_backend=True,
        head_dim=512,
        source="test",
    )
    assert _decide(A100, installed=ALL_FLASH, traits=traits) == "sdpa"


def test_compatible_flash_implementations_are_honoured() -> None:
    from attn_doctor.loadtime.model_config import resolve_model

    traits = resolve_model(transformers.GptOssForCausalLM)
    assert traits.compatible_flash is not None
    assert "flash_attention_4" in traits.compatible_flash
    assert not traits.supports_sdpa  # attention sinks
    assert _decide(H100, installed=ALL_FLASH, traits=traits) == "flash_attention_4"
    assert _decide(A100, installed=ALL_FLASH, traits=traits) == "eager"


def test_old_flash_attn_is_not_counted(tmp_path: Path, site: Path) -> None:
    plant(site, "flash_attn", dist="flash-attn", version="2.3.2")
    choice = explain_choice(device=A100, dtype="bf16", environ=_env(tmp_path, site))
    assert choice.value == "sdpa"
    assert "flash-attn 2.3.2 is older than 2.3.3" in choice.reason


def test_broken_imports_fall_through_to_sdpa() -> None:
    assert _decide(H100, installed=ALL_FLASH, imports_ok=False) == "sdpa"


def test_unknown_model_class_gets_eager(tmp_path: Path) -> None:
    config = transformers.PretrainedConfig()
    config.model_type = "custom-remote-code"
    choice = explain_choice(config, device="cpu", environ=clean_environ(tmp_path))
    assert choice.value == "eager"
    assert "no transformers model class is registered" in choice.reason


def test_settings_parse_timeout() -> None:
    assert read_settings({"ATTN_DOCTOR_IMPORT_TIMEOUT": "5"}).timeout == 5.0
    with pytest.raises(UsageError):
        read_settings({"ATTN_DOCTOR_IMPORT_TIMEOUT": "soon"})


# --- on a real GPU ----------------------------------------------------------------------------


@pytest.mark.gpu
def test_real_gpu_choice_loads_and_runs(tmp_path: Path) -> None:
    import os

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ATTN_DOCTOR")}}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    choice = explain_choice(transformers.LlamaForCausalLM, device="cuda", dtype="bf16", environ=env)
    print(choice.explain())
    kwargs = load_kwargs(transformers.LlamaForCausalLM, device="cuda", environ=env)
    model = transformers.AutoModelForCausalLM.from_config(_llama_config(), **kwargs).cuda()
    assert model.config._attn_implementation == choice.value
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[1, 2, 3, 4]], device="cuda")).logits
    assert torch.isfinite(logits).all()
