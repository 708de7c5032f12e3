"""The classes and evidence added for batch M's gaps, from facts alone: each rule is fed a
``TextFacts`` built by hand, with a near miss that it must not answer; the readers are tested
on short texts in other words than the batch's."""

from __future__ import annotations

from attn_doctor.explain.answer import backends_in_text, has_error
from attn_doctor.explain.evidence import TextFacts, extract_facts, unwrap
from attn_doctor.explain.evidence_calls import CallFacts
from attn_doctor.explain.evidence_runtime import read_runtime
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_calls import caller_written_for_other_api
from attn_doctor.explain.rules_device import backend_on_other_device

KNOW = load_knowledge()


def test_an_sdpa_keyword_newer_than_the_torch_is_torch_too_old_for_the_api() -> None:
    f = TextFacts(
        calls=CallFacts(bad_kwargs=(("scaled_dot_product_attention", "enable_gqa"),)),
        packages=(("torch", "2.3.1+cu121"),),
    )
    (a,) = caller_written_for_other_api(f, KNOW)
    assert a.class_id == "torch-too-old-for-api"
    assert a.fix[0].startswith("pip install --upgrade 'torch>=2.5.0'")
    # near miss: a torch that takes the keyword refused it for another reason
    new = TextFacts(
        calls=CallFacts(bad_kwargs=(("scaled_dot_product_attention", "enable_gqa"),)),
        packages=(("torch", "2.6.0"),),
    )
    assert [x.class_id for x in caller_written_for_other_api(new, KNOW)] != [
        "torch-too-old-for-api"
    ]


def test_ptxas_target_floor_is_the_kernels_range() -> None:
    f = extract_facts("ptxas error   : Feature '.bf16' requires .target sm_80 or higher (T4)")
    assert f.required_sm == (80, None)
    assert has_error(f)
    assert extract_facts("compiled for .target sm_80").required_sm is None


def test_sdpa_mask_dtype_in_its_older_wording_wrapped_at_a_comma() -> None:
    rt = read_runtime(
        "RuntimeError: Expected attn mask dtype to be bool or float or to match query dtype, "
        "but got attn_mask.dtype: long int and query.dtype: Half instead"
    )
    assert rt.mask_dtype == ("long int", "Half")
    joined = unwrap(
        [
            "RuntimeError: Expected attn mask dtype to be bool or float or to match query dtype, ",
            "but got attn_mask.dtype: long int and query.dtype: Half instead",
        ]
    )
    assert len(joined) == 1
    # a comma that ends a list item is not joined to a new sentence
    assert len(unwrap(["Collected packages: torch, triton, numpy, xformers, einops,", "Done"])) == 2


def test_repeated_log_lines_of_one_width_are_not_joined_as_a_terminal_wrap() -> None:
    line = "Error running sage attention: headdim should be in [64, 96, 128]., using pytorch."
    assert unwrap(["spam:", line, line, line, line]) == ["spam:", line, line, line, line]


def test_a_head_dim_list_and_an_apps_error_report() -> None:
    f = extract_facts(
        "Error running sage attention: headdim should be in [64, 96, 128]., using pytorch "
        "attention instead."
    )
    assert f.head_dim_rule == "only 64, 96, 128"
    assert has_error(f)
    assert backends_in_text("Error running sage attention") == ["sageattention"]


def test_a_build_asking_for_nvcc_under_a_rocm_torch_needs_the_rocm_path() -> None:
    f = TextFacts(
        torch_build="rocm",
        tools_missing=("nvcc",),
        packages=(("torch", "2.1.0+rocm5.6"),),
        lines=("RuntimeError: flash_attn was requested, but nvcc was not found.",),
    )
    (a,) = backend_on_other_device(f, KNOW)
    assert a.class_id == "backend-needs-other-device"
    assert "ROCm >= 6.0" in a.fix[0]
    # near miss: the same message under a CUDA torch is a missing toolkit, not another device
    cuda = TextFacts(torch_build="cuda", tools_missing=("nvcc",), lines=f.lines)
    assert backend_on_other_device(cuda, KNOW) == []
