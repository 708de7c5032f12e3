"""The classes and evidence added for batch J's gaps, from facts alone: each rule is fed a
``TextFacts`` built by hand, with a near miss that it must not answer; the readers are tested
on short texts in other words than the batch's."""

from __future__ import annotations

from attn_doctor.explain.classes import contradictions
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.evidence_calls import CallFacts, read_calls, read_other_device
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_api import torch_too_old_for_api
from attn_doctor.explain.rules_calls import caller_written_for_other_api

KNOW = load_knowledge()


def _ids(answers: list) -> list[str]:  # type: ignore[type-arg]
    return [a.class_id for a in answers]


# --- a caller written for another release's API ------------------------------------------


def test_call_mismatches_read_in_their_wordings() -> None:
    c = read_calls(
        "TypeError: flash_attn_func() got an unexpected keyword argument \u2018window_size\u2019\n"
        "TypeError: sage_fwd() takes from 3 to 4 positional arguments but 6 were given\n"
        "TypeError: xformers_attn() missing 1 required positional argument: 'bias'\n"
        "AttributeError: 'LlamaSdpaAttention' object has no attribute 'rope_theta'"
    )
    assert c.bad_kwargs == (("flash_attn_func", "window_size"),)
    assert [fn for fn, _ in c.bad_arity] == ["sage_fwd", "xformers_attn"]
    assert c.object_attrs == (("LlamaSdpaAttention", "rope_theta"),)
    assert read_calls("TypeError: unsupported operand type(s)") == CallFacts()


def test_caller_written_for_other_api_from_facts() -> None:
    kw = TextFacts(calls=CallFacts(bad_kwargs=(("attention_sage", "transformer_options"),)))
    assert _ids(caller_written_for_other_api(kw, KNOW)) == ["caller-written-for-other-api"]
    arity = TextFacts(calls=CallFacts(bad_arity=(("apply_flashattn", "takes 2 ..."),)))
    assert _ids(caller_written_for_other_api(arity, KNOW)) == ["caller-written-for-other-api"]
    obj = TextFacts(calls=CallFacts(object_attrs=(("MistralFlashAttention2", "_old"),)))
    assert _ids(caller_written_for_other_api(obj, KNOW)) == ["caller-written-for-other-api"]
    mod = TextFacts(missing_attrs=(("xformers.ops", "SomeRemovedOp"),))
    assert _ids(caller_written_for_other_api(mod, KNOW)) == ["caller-written-for-other-api"]


def test_caller_written_for_other_api_near_misses() -> None:
    # a call outside the attention path, and a name missing from a non-backend module
    kw = TextFacts(calls=CallFacts(bad_kwargs=(("LlamaRotaryEmbedding.__init__", "config"),)))
    assert caller_written_for_other_api(kw, KNOW) == []
    hub = TextFacts(missing_attrs=(("huggingface_hub", "cached_download"),))
    assert caller_written_for_other_api(hub, KNOW) == []


# --- a non-CUDA device contradicts "torch without CUDA" ----------------------------------


def test_other_device_read_in_its_wordings() -> None:
    assert read_other_device("torch==2.2.0 and torch-npu==2.2.0 on a 910B1") == "npu"
    assert read_other_device("x = x.to('npu:0')") == "npu"
    assert read_other_device("tensor on xpu:0") == "xpu"
    assert read_other_device("RuntimeError: MPS backend out of memory") == "mps"
    assert read_other_device("AssertionError: Torch not compiled with CUDA enabled") is None


def test_other_device_contradicts_torch_cpu_only() -> None:
    npu = TextFacts(other_device="npu")
    assert contradictions(npu, ("torch_cpu_only",), know=KNOW)
    assert not contradictions(TextFacts(), ("torch_cpu_only",), know=KNOW)  # near miss


# --- a torch submodule only newer torch has ------------------------------------------------


def test_torch_too_old_for_a_submodule_from_facts() -> None:
    old = TextFacts(missing_modules=("torch.nn.attention.varlen",), packages=(("torch", "2.9.1"),))
    assert _ids(torch_too_old_for_api(old, KNOW)) == ["torch-too-old-for-api"]
    # near misses: a torch that has it, and a submodule the table does not name
    new = TextFacts(missing_modules=("torch.nn.attention.varlen",), packages=(("torch", "2.10.0"),))
    assert torch_too_old_for_api(new, KNOW) == []
    other = TextFacts(missing_modules=("torch.nn.attention.nothing",))
    assert torch_too_old_for_api(other, KNOW) == []
