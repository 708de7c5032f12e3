"""Classes and facts added for batches ZG-ZI's misses, each from text in other words than the
batches', with a near miss."""

from __future__ import annotations

from attn_doctor.explain import explain_text
from attn_doctor.explain.evidence import extract_facts
from attn_doctor.explain.evidence_build import read_build


def _answers(text: str) -> list[str]:
    return [e.match.symptom_id for e in explain_text(text, None).explanations]


def test_msvc_type_names_in_sdpa_dtype_mismatch() -> None:
    text = (
        "RuntimeError: Expected query, key, and value to have the same dtype, but got "
        "query.dtype: class c10::BFloat16 key.dtype: float and value.dtype: float instead."
    )
    assert extract_facts(text).runtime.qkv_mismatch == ("dtype", "c10::BFloat16", "float", "float")
    assert _answers(text)[0] == "sdpa-qkv-dtype-mismatch"


def test_the_error_the_program_stopped_on_comes_before_a_warning() -> None:
    text = (
        "WARNING 08-27 13:59:59 _custom_ops.py:15] Failed to import from vllm._C with "
        "ImportError('libcudart.so.12: cannot open shared object file: No such file')\n"
        "ValueError: bfloat16 is only supported on gpus with compute capability of at least 8.0. "
        "Your Quadro RTX 8000 GPU has compute capability 7.5."
    )
    answers = _answers(text)
    assert answers[0] == "bf16-needs-ampere"
    assert "extension-built-for-other-torch" in answers  # still listed, after it
    # the warning alone is still answered
    assert _answers(text.split("\n", maxsplit=1)[0])[0] == "extension-built-for-other-torch"


def test_a_c_compiler_that_does_not_run_for_triton() -> None:
    text = (
        r"Failed to compile. cc_cmd: ['C:\\VS\\bin\\Hostx64\\x64\\cl.exe', 'C:\\Temp\\main.c']"
        "\nsubprocess.CalledProcessError: returned non-zero exit status 2."
    )
    assert _answers(text)[0] in {"triton-windows-needs-msvc-compiler", "triton-needs-c-compiler"}
    # the compiler ran and failed on Python.h: the embedded Python's missing headers instead
    header = (
        "D:\\ComfyUI_windows_portable\\python_embeded\\python.exe main.py\n"
        "main.c(3): fatal error C1083: Cannot open include file: 'Python.h': No such file\n" + text
    )
    assert _answers(header)[0] == "triton-embedded-python-missing-include-libs"


def test_a_backend_named_with_attention_refusing_a_feature() -> None:
    f = extract_facts(
        "ValueError: MistralFlashAttention2 attention does not support output_attentions"
    )
    assert f.features_refused == (("output_attentions", "MistralFlashAttention2"),)
    assert _answers("MistralFlashAttention2 attention does not support output_attentions")[0] == (
        "backend-feature-unsupported"
    )


def test_an_attention_switch_the_model_class_does_not_take() -> None:
    text = (
        "TypeError: Phi3VForCausalLM.__init__() got an unexpected keyword argument "
        "'use_flash_attention_2'"
    )
    assert _answers(text)[0] == "caller-written-for-other-api"
    # attn_implementation refused is transformers too old for it, its own answer
    old = (
        "TypeError: MistralForCausalLM.__init__() got an unexpected keyword argument "
        "'attn_implementation'"
    )
    assert _answers(old)[0] != "caller-written-for-other-api"
    # a keyword with nothing of attention in it is not this class
    assert _answers("TypeError: Foo.__init__() got an unexpected keyword argument 'bar'") == []


def test_headers_missing_in_any_language_and_from_tcc() -> None:
    assert read_build(
        "fatal error: cutlass/cutlass.h: Datei oder Verzeichnis nicht gefunden"
    ).missing_headers == (("cutlass/cutlass.h", "gcc"),)
    assert read_build("Compilation error - include file 'Python.h' not found").missing_headers == (
        ("Python.h", "tcc"),
    )


def test_a_head_dim_list_asserted() -> None:
    assert read_build(
        'assert head_dim in [64, 128], "only support head_dim [64, 128]."'
    ).head_allowed == (
        64,
        128,
    )
    assert (
        _answers("AssertionError: varlen only support head_dim [64, 128].")[0]
        == "head-dim-unsupported"
    )
    # a list of something else
    assert read_build("assert block_size in [16, 32]").head_allowed == ()


def test_torch_library_custom_op_dates_torch() -> None:
    answers = _answers("AttributeError: module 'torch.library' has no attribute 'custom_op'")
    assert answers[0] == "torch-too-old-for-api"
    explanation = explain_text(
        "AttributeError: module 'torch.library' has no attribute 'custom_op'", None
    ).explanations[0]
    assert "2.4" in explanation.cause + " ".join(f.command for f in explanation.fix)


def test_vllm_sampler_notice_is_harmless() -> None:
    text = (
        "WARNING 05-09 22:20:21 [topk_topp_sampler.py:69] FlashInfer is not available. Falling "
        "back to the PyTorch-native implementation of top-p & top-k sampling. For the best "
        "performance, please install FlashInfer."
    )
    (answer,) = explain_text(text, None).explanations
    assert answer.harmless


def test_glibc_said_in_words_feeds_the_same_check() -> None:
    # the words pattern captures `needed` like the loader's wording, so glibc_below:{needed}
    # compares it with the machine's glibc instead of going unfilled
    (answer,) = [
        e
        for e in explain_text(
            "the wheel requires GLIBC_2.32 (Ubuntu 20.04 has 2.31)", None
        ).explanations
        if e.match.symptom_id == "flash-attn-glibc-too-old"
    ]
    assert answer.match.captured() == {"needed": "2.32"}
