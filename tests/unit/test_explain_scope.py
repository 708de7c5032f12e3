"""A generic extension answer is left out when the message names only other libraries'
extensions: explain covers attention backends, and a near-miss must not be taken for one."""

from __future__ import annotations

from attn_doctor.explain.engine import explain_text
from attn_doctor.explain.evidence import TextFacts, extract_facts
from attn_doctor.explain.scope import outside_scope


def test_extension_owners_are_read_from_paths_and_imports() -> None:
    f = extract_facts(
        "ImportError: /env/site-packages/sgl_kernel/common_ops.abi3.so: undefined symbol: _ZN5x\n"
        "ImportError: C:\\py\\Lib\\site-packages\\flash_attn_2_cuda.cp311-win_amd64.pyd\n"
        "from pytorch3d import _C"
    )
    assert f.extension_owners == ("sgl_kernel", "flash_attn_2_cuda", "pytorch3d")
    # a shared library of CUDA or torch is no Python extension
    assert (
        extract_facts("/usr/local/cuda/lib64/libcudart.so.12: cannot open").extension_owners == ()
    )


def test_generic_extension_answers_stay_in_scope_for_attention_stacks_only() -> None:
    other = TextFacts(extension_owners=("pytorch3d",))
    assert outside_scope(other, "extension-built-for-other-torch") is not None
    assert outside_scope(other, "flash-attn-built-for-other-torch") is None  # not generic
    for owner in ("flash_attn_2_cuda", "sgl_kernel", "xformers", "torch"):
        assert (
            outside_scope(TextFacts(extension_owners=(owner,)), "torch-extension-abi-mismatch")
            is None
        )
    assert outside_scope(TextFacts(), "extension-built-for-other-torch") is None


def test_a_non_attention_extension_gets_the_facts_not_an_answer() -> None:
    res = explain_text(
        "ImportError: /env/lib/python3.10/site-packages/pytorch3d/_C.cpython-310-x86_64-linux-gnu"
        ".so: undefined symbol: _ZNK3c1010TensorImpl18compute_contiguousEv",
        None,
    )
    assert res.explanations == ()
    assert any("pytorch3d" in r for rej in res.rejected for r in rej.reasons)
    assert any(e.fact == "undefined symbol" for e in res.message_facts)


def test_a_class_answer_left_out_for_scope_is_listed_as_rejected_with_its_reason() -> None:
    res = explain_text(
        "torch 2.8.0+cu128, and I installed sageattention-2.2.0+cu128torch2.9.0.post3\n"
        "ImportError: /env/site-packages/pytorch3d/_C.cpython-310-x86_64-linux-gnu.so: undefined "
        "symbol: _ZNK3c1010TensorImpl18compute_contiguousEv",
        None,
    )
    rejected = {r.id: r.reasons for r in res.rejected}
    assert "extension-built-for-other-torch" in rejected
    assert "pytorch3d" in rejected["extension-built-for-other-torch"][0]
    assert all(e.match.symptom_id != "extension-built-for-other-torch" for e in res.explanations)
