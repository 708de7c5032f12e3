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


# --- J's second round: build CUDA floors, swallowed imports, removed attention classes ----


def test_build_cuda_floor_read_in_its_wordings() -> None:
    from attn_doctor.explain.evidence_build import read_build

    assert read_build("RuntimeError: CUDA 12.0 or higher is required to build").cuda_floor == "12.0"
    said = "FlashAttention is only supported on CUDA 11.7 and above."
    assert read_build(said).cuda_floor == "11.7"
    assert read_build("error: this build requires CUDA >= 12.4").cuda_floor == "12.4"
    # an architecture's own floor is another fact; a CUDA version alone is no floor
    assert read_build("SM 12.x requires CUDA >= 12.9").cuda_floor is None
    assert read_build("Using CUDA 12.4 with torch 2.6").cuda_floor is None


def test_build_needs_newer_cuda_from_facts() -> None:
    from attn_doctor.explain.evidence_build import BuildFacts
    from attn_doctor.explain.rules_toolchain import build_needs_newer_cuda

    old = TextFacts(build=BuildFacts(cuda_floor="12.0"), tools=(("nvcc", "11.8"),))
    (ans,) = build_needs_newer_cuda(old, KNOW)
    assert ans.class_id == "compiler-too-old-for-arch"
    assert "12.0 or newer" in ans.fix[0]
    assert "CUDA 11.8" in ans.cause
    # near miss: the toolkit shown meets the floor, so something else refused the build
    new = TextFacts(build=BuildFacts(cuda_floor="12.0"), tools=(("nvcc", "12.4"),))
    assert build_needs_newer_cuda(new, KNOW) == []
    assert build_needs_newer_cuda(TextFacts(), KNOW) == []


def test_availability_assert_read_and_answered() -> None:
    from attn_doctor.explain.evidence import extract_facts
    from attn_doctor.explain.rules_messages import app_wrapper

    f = extract_facts("    assert XFORMERS_IS_AVAILABLE, 'x'\nAssertionError: x")
    assert f.availability_asserts == ("XFORMERS_IS_AVAILABLE",)
    (ans,) = app_wrapper(TextFacts(availability_asserts=("XFORMERS_IS_AVAILABLE",)), KNOW)
    # a flag that names a backend: that backend did not import (most often: not installed)
    assert ans.class_id == "backend-not-installed"
    assert 'python -c "import xformers"' in ans.fix[0]
    # a flag that names no backend: the application hid an import error
    (other,) = app_wrapper(TextFacts(availability_asserts=("FAST_KERNELS_AVAILABLE",)), KNOW)
    assert other.class_id == "app-wrapper-message"
    # near misses: an assertion about something else, and the flag without an AssertionError
    assert extract_facts("assert seq_len > 0\nAssertionError").availability_asserts == ()
    assert extract_facts("if not FLASH_ATTN_AVAILABLE:\n    pass").availability_asserts == ()


def test_removed_attention_class_from_facts() -> None:
    from attn_doctor.explain.rules_build import remote_code_imports_removed_transformers_helper

    gone = TextFacts(
        missing_attrs=(("transformers.models.mistral.modeling_mistral", "MistralSdpaAttention"),)
    )
    (ans,) = remote_code_imports_removed_transformers_helper(gone, KNOW)
    assert ans.class_id == "remote-code-imports-removed-transformers-helper"
    assert "MistralAttention" in ans.cause
    assert "transformers<4.48" in ans.fix[1]
    # near miss: a model class missing from the top-level package is a transformers too old
    top = TextFacts(missing_attrs=(("transformers", "Qwen3ForCausalLM"),))
    assert remote_code_imports_removed_transformers_helper(top, KNOW) == []


def test_recorded_messages_answer_as_their_class() -> None:
    from attn_doctor.explain.rules_messages import framework_message

    ranged = TextFacts(
        lines=(
            "ValueError: `kernels` is either not installed or uses an incompatible version. "
            "Please install a compatible version (0.19.1 <= version < 0.20.0), e.g. `pip install "
            "kernels==0.19.1`",
        )
    )
    (ans,) = framework_message(ranged, KNOW)
    assert ans.class_id == "backend-dependency-missing"
    assert ans.fix[0] == "pip install 'kernels>=0.19.1,<0.20.0'"
    npu = TextFacts(lines=("AttributeError: module 'torch_npu' has no attribute 'npu_fused_attn'",))
    assert _ids(framework_message(npu, KNOW)) == ["backend-dependency-missing"]
    assert (
        framework_message(TextFacts(lines=("module 'torch' has no attribute 'npu'",)), KNOW) == []
    )


def test_fallback_to_unfused_attention_is_harmless() -> None:
    from attn_doctor.explain.rules_messages import harmless_warning

    warn = TextFacts(
        lines=(
            "[TensorRT-LLM][WARNING] Fall back to unfused MHA because of unsupported head size 96",
        )
    )
    assert _ids(harmless_warning(warn, KNOW)) == ["harmless-warning"]
    # near miss: the same words with an error of its own are not answered as harmless
    err = TextFacts(lines=warn.lines, error_classes=("RuntimeError",))
    assert harmless_warning(err, KNOW) == []
