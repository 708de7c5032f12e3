"""Classes and facts added for batches U-W's misses, each from one extracted fact or
hand-built facts, with a near miss (no phrase of the batches is matched here)."""

from __future__ import annotations

from attn_doctor.explain.evidence import TextFacts, extract_facts
from attn_doctor.explain.evidence_calls import read_calls
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_api import backend_feature_unsupported
from attn_doctor.explain.rules_calls import caller_written_for_other_api
from attn_doctor.explain.rules_toolchain import libcuda_not_found

KNOW = load_knowledge()


def test_a_system_without_ldconfig_is_tritons_libcuda_search_failing() -> None:
    f = extract_facts("FileNotFoundError: [Errno 2] No such file or directory: '/sbin/ldconfig'")
    (a,) = libcuda_not_found(f, KNOW)
    assert a.class_id == "libcuda-not-found"
    assert "TRITON_LIBCUDA_PATH" in a.fix[0]
    assert a.checks == ()  # the driver is there; only the search failed
    assert libcuda_not_found(extract_facts("No such file or directory: '/usr/bin/gcc'"), KNOW) == []


def test_an_attention_kernel_without_a_deterministic_backward_is_a_missing_feature() -> None:
    said = (
        "RuntimeError: mem_efficient_attention_backward_cutlass does not have a deterministic "
        "implementation, but you set 'torch.use_deterministic_algorithms(True)'. (xformers 0.0.20)"
    )
    (a,) = backend_feature_unsupported(extract_facts(said), KNOW)
    assert a.class_id == "backend-feature-unsupported"
    assert a.title == "xformers does not support deterministic backward"
    assert "flash_attn_2" in a.fix[0]
    # another kernel's alert (not attention) is not this fact
    other = extract_facts(
        "RuntimeError: scatter_add_cuda_kernel does not have a deterministic implementation"
    )
    assert other.features_refused == ()


def test_a_custom_ops_schema_refusing_the_call_is_a_caller_for_another_release() -> None:
    for said, op in (
        (
            "[WARNING] Flash Attention failed, using default SDPA: flash_attention::flash_attn() "
            "expected at most 5 argument(s) but received 6 argument(s). Declaration: …",
            "flash_attention::flash_attn",
        ),
        (
            "RuntimeError: wanvideo::sageattn_varlen() is missing value for argument 'q_lens'. "
            "Declaration: wanvideo::sageattn_varlen",
            "wanvideo::sageattn_varlen",
        ),
    ):
        calls = read_calls(said)
        assert calls.bad_arity[0][0] == op
        (a,) = caller_written_for_other_api(TextFacts(lines=(said,), calls=calls), KNOW)
        assert a.class_id == "caller-written-for-other-api"
    # an op outside the attention path: not this class
    conv = "aten::conv2d() is missing value for argument 'weight'. Declaration: aten::conv2d"
    assert (
        caller_written_for_other_api(TextFacts(lines=(conv,), calls=read_calls(conv)), KNOW) == []
    )
