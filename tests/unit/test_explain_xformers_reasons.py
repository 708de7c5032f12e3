"""xformers' "No operator found": the reason every operator shares names the class; reasons
that differ leave the general answer."""

from __future__ import annotations

from attn_doctor.explain import explain_text

HEAD = (
    "NotImplementedError: No operator found for `memory_efficient_attention_forward` with "
    "inputs:\n     query       : shape=(1, 4096, 8, 64) (torch.float16)\n"
)


def _first(text: str) -> str | None:
    found = explain_text(text, None).explanations
    return found[0].match.symptom_id if found else None


def test_every_operator_refusing_the_gpu() -> None:
    too_old = (
        "    requires device with capability >= (8, 0) but your GPU has capability (7, 0) "
        "(too old)\n"
    )
    text = (
        HEAD
        + "`fa2F@2.8.3` is not supported because:\n"
        + too_old
        + "`cutlassF-pt` is not supported because:\n"
        + too_old
    )
    assert _first(text) == "gpu-outside-backend-range"


def test_every_operator_refusing_the_dtype_even_when_the_lines_are_joined() -> None:
    text = HEAD + (
        "`fa2F@2.8.3` is not supported because: dtype=torch.float32 (supported: "
        "{torch.bfloat16, torch.float16}) `fa3F@2.7.2` is not supported because: "
        "dtype=torch.float32 (supported: {torch.bfloat16, torch.float16})"
    )
    assert _first(text) == "dtype-unsupported"


def test_operators_not_built_come_before_the_inputs_reasons() -> None:
    text = HEAD + (
        "`fa2F@0.0.0` is not supported because:\n"
        "    operator wasn't built - see `python -m xformers.info` for more info\n"
        "    dtype=torch.float32 (supported: {torch.bfloat16, torch.float16})\n"
        "`cutlassF-pt` is not supported because:\n"
        "    operator wasn't built - see `python -m xformers.info` for more info\n"
    )
    assert _first(text) == "xformers-operator-not-built"


def test_reasons_that_differ_keep_the_general_answer() -> None:
    text = HEAD + (
        "`fa2F@2.8.3` is not supported because:\n"
        "    dtype=torch.float32 (supported: {torch.bfloat16, torch.float16})\n"
        "`cutlassF-pt` is not supported because:\n"
        "    attn_bias type is <class 'torch.Tensor'>\n"
    )
    assert _first(text) == "xformers-no-operator"


def test_xformers_built_for_another_torch_says_why() -> None:
    text = (
        (
            "WARNING[XFORMERS]: xFormers can't load C++/CUDA extensions. xFormers was built for:\n"
            "    PyTorch 2.6.0+cu124 with CUDA 1204 (you have 2.5.1+cu124)\n"
        )
        + HEAD
        + ("`fa2F@0.0.0` is not supported because:\n    xFormers wasn't build with CUDA support\n")
    )
    assert _first(text) == "xformers-built-for-other-torch"
