"""The classes and evidence added for batch P's gaps, from facts alone: each rule is fed a
``TextFacts`` built by hand, with a near miss that it must not answer; the readers are tested
on short texts in other words than the batch's."""

from __future__ import annotations

from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.evidence_build import BuildFacts, read_build
from attn_doctor.explain.evidence_upstream import UpstreamFacts
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_api import torch_too_old_for_api
from attn_doctor.explain.rules_calls import caller_written_for_other_api
from attn_doctor.explain.rules_messages import harmless_warning
from attn_doctor.explain.rules_toolchain import jit_arch_check_misfires, triton_too_old_for_cuda

KNOW = load_knowledge()


def test_a_jits_gpu_check_misfiring_for_want_of_cuda() -> None:
    f = TextFacts(
        sms=(120,),
        upstream=UpstreamFacts(projects=("flashinfer",), required=(75, None), refusal=True),
        build=BuildFacts(cuda_mentioned=("12.8",)),
    )
    (a,) = jit_arch_check_misfires(f, KNOW)
    assert a.class_id == "compiler-too-old-for-arch"
    assert "12.9" in a.fix[0]
    # near misses: a GPU the check rightly refuses, and a CUDA that meets the floor
    old_gpu = TextFacts(sms=(70,), upstream=f.upstream, build=f.build)
    assert jit_arch_check_misfires(old_gpu, KNOW) == []
    new_cuda = TextFacts(
        sms=(120,), upstream=f.upstream, build=BuildFacts(cuda_mentioned=("13.0",))
    )
    assert jit_arch_check_misfires(new_cuda, KNOW) == []


def test_cuda_releases_mentioned_in_any_role_are_read() -> None:
    assert read_build("PyTorch version : 2.9.1+cu128\ncuda 12.8").cuda_mentioned == ("12.8",)
    assert read_build("nothing about the toolkit").cuda_mentioned == ()


def test_triton_that_cannot_map_a_cuda_release_is_older_than_it() -> None:
    said = "RuntimeError: Triton only supports CUDA 10.0 or higher, but got CUDA version: 12.8"
    f = TextFacts(sms=(120,), build=read_build(said), lines=(said,))
    (a,) = triton_too_old_for_cuda(f, KNOW)
    assert a.class_id == "compiler-too-old-for-arch"
    assert a.fix[0].startswith("pip install --upgrade 'triton>=")
    assert triton_too_old_for_cuda(TextFacts(build=read_build("Triton 3.3 is fine")), KNOW) == []


def test_a_post_rename_name_missing_from_its_own_module_is_the_release_too_old() -> None:
    f = TextFacts(
        missing_attrs=(("flash_attn.flash_attn_interface", "flash_attn_varlen_kvpacked_func"),),
        packages=(("flash-attn", "0.2.8"),),
    )
    (a,) = caller_written_for_other_api(f, KNOW)
    assert a.class_id == "flash-attn-too-old-for-caller"
    assert "0.2.8" in a.cause


def test_torch_library_triton_helpers_date_from_26() -> None:
    f = TextFacts(missing_attrs=(("torch.library", "wrap_triton"),), packages=(("torch", "2.5.1"),))
    (a,) = torch_too_old_for_api(f, KNOW)
    assert a.class_id == "torch-too-old-for-api"
    assert "2.6" in a.cause


def test_an_apps_list_of_optional_backends_not_installed_is_harmless() -> None:
    f = TextFacts(lines=("Xformers is not installed!", "Sage Attn is not installed!"))
    assert [a.class_id for a in harmless_warning(f, KNOW)] == ["harmless-warning"]
