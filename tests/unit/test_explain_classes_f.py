"""The classes and evidence added for batch F's gaps, from facts alone: each rule is fed a
``TextFacts`` built by hand (no message text for a phrase to match), with a near miss that it
must not answer; the extractor is tested separately on short texts."""

from __future__ import annotations

from attn_doctor.explain.evidence import TextFacts, extract_facts
from attn_doctor.explain.evidence_more import Advice
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_api import (
    backend_feature_unsupported,
    backend_function_import_path,
    backend_import_left_none,
    build_arch_list_wrong_mix,
    extension_pins_other_torch,
    framework_advises_other_backend,
    pip_egg_name_out_of_date,
    torch_built_without_sdpa_kernel,
    torch_too_old_for_api,
)
from attn_doctor.explain.rules_backend import backend_dependency_missing, gpu_outside_backend_range
from attn_doctor.explain.rules_toolchain import compiler_too_old_for_arch

KNOW = load_knowledge()


# --- torch built without an SDPA kernel ---------------------------------------------------


def test_a_rocm_torch_without_the_mem_efficient_kernel_is_named_with_a_rocm_fix() -> None:
    f = TextFacts(torch_missing_kernels=("mem_efficient",), torch_build="rocm")
    (a,) = torch_built_without_sdpa_kernel(f, KNOW)
    assert a.class_id == "torch-built-without-sdpa-kernel"
    assert "ROCm" in a.cause
    assert "AOTriton" in a.cause
    assert any("ROCm" in c for c in a.fix)
    windows = TextFacts(
        torch_missing_kernels=("mem_efficient",), torch_build="rocm", platforms=("windows",)
    )
    assert any("aotriton" in c for c in torch_built_without_sdpa_kernel(windows, KNOW)[0].fix)


def test_a_cuda_torch_without_flash_is_not_this_class_nor_is_a_failing_run() -> None:
    # The Windows CUDA wheels' missing flash kernel is a harmless warning, not this class.
    assert (
        torch_built_without_sdpa_kernel(
            TextFacts(torch_missing_kernels=("flash",), torch_build="cuda"), KNOW
        )
        == []
    )
    failing = TextFacts(
        torch_missing_kernels=("mem_efficient",), torch_build="rocm", error_classes=("HIPError",)
    )
    assert torch_built_without_sdpa_kernel(failing, KNOW) == []


# --- torch older than an attribute a library reads ----------------------------------------


def test_a_missing_torch_attribute_gets_the_first_release_from_the_table() -> None:
    f = TextFacts(missing_attrs=(("torch.version", "xpu"),), packages=(("torch", "2.5.1"),))
    (a,) = torch_too_old_for_api(f, KNOW)
    api = next(x for x in KNOW.torch_api if x.name == "torch.version.xpu")
    assert a.class_id == "torch-too-old-for-api"
    assert f"torch>={api.first}" in a.fix[0]
    assert "XPU" in a.fix[0]
    assert a.checks == (f"torch_below:{api.first}",)


def test_a_torch_that_has_the_attribute_or_an_unknown_attribute_is_not_this_class() -> None:
    new = TextFacts(missing_attrs=(("torch.version", "xpu"),), packages=(("torch", "2.8.0"),))
    assert torch_too_old_for_api(new, KNOW) == []
    assert torch_too_old_for_api(TextFacts(missing_attrs=(("torch.version", "nope"),)), KNOW) == []


# --- a backend function looked up in the wrong module --------------------------------------


def test_a_function_missing_from_the_package_top_level_is_first_a_release_before_it() -> None:
    # flash-attn re-exports its functions at the top level since 2.0.0 (1.x's __init__ holds
    # only __version__): a failed top-level lookup is first an older release, then an import
    # path (or a shadowing folder), both shown.
    f = TextFacts(missing_attrs=(("flash_attn", "flash_attn_varlen_qkvpacked_func"),))
    older, path = backend_function_import_path(f, KNOW)
    assert older.class_id == "flash-attn-too-old-for-caller"
    assert "'flash-attn>=2.0.0'" in older.fix[-1]
    assert path.class_id == "backend-function-import-path"
    assert path.fix == (
        "from flash_attn.flash_attn_interface import flash_attn_varlen_qkvpacked_func",
    )
    assert "shadows the package" in path.cause


def test_the_top_level_floor_is_per_function_and_read_against_the_shown_release() -> None:
    kv = (("flash_attn", "flash_attn_with_kvcache"),)
    (older, _) = backend_function_import_path(
        TextFacts(missing_attrs=kv, packages=(("flash-attn", "2.1.1"),)), KNOW
    )
    assert older.class_id == "flash-attn-too-old-for-caller"
    assert "2.2.0" in older.title
    assert "2.1.1" in older.title
    # a release that exports it: not too old; the import-path answer (a shadowing folder) stays
    (only,) = backend_function_import_path(
        TextFacts(missing_attrs=kv, packages=(("flash-attn", "2.7.4"),)), KNOW
    )
    assert only.class_id == "backend-function-import-path"


def test_a_turing_gpu_beside_the_old_release_says_the_needed_release_will_not_run_there() -> None:
    f = TextFacts(missing_attrs=(("flash_attn", "flash_attn_func"),), sms=(75,))
    older = backend_function_import_path(f, KNOW)[0]
    assert older.class_id == "flash-attn-too-old-for-caller"
    assert "sm_75" in older.fix[0]
    assert "sdpa" in older.fix[0]


def test_a_pre_rename_name_is_a_caller_written_for_the_older_api() -> None:
    f = TextFacts(missing_attrs=(("flash_attn.flash_attn_interface", "flash_attn_unpadded_func"),))
    # The defining module itself lacks it: only the rename explains that.
    (a,) = backend_function_import_path(f, KNOW)
    assert a.class_id == "caller-written-for-other-api"
    assert "flash_attn_varlen_func" in a.fix[0]


def test_an_unknown_function_or_another_package_is_not_this_class() -> None:
    for attrs in (
        (("flash_attn", "no_such_func"),),
        (("flash_attn.flash_attn_interface", "flash_attn_func"),),
        (("numpy", "flash_attn_func"),),
    ):
        assert backend_function_import_path(TextFacts(missing_attrs=attrs), KNOW) == []


# --- pip's #egg= name out of date ------------------------------------------------------


def test_an_egg_name_the_metadata_no_longer_has_gets_the_current_name_and_url() -> None:
    url = "git+https://example.org/r.git#egg=old-name&subdirectory=sub"
    (a,) = pip_egg_name_out_of_date(
        TextFacts(pip_name_mismatch=("old-name", "new-name", url)), KNOW
    )
    assert a.class_id == "pip-egg-name-out-of-date"
    assert a.fix[0].startswith(
        "pip install 'new-name @ git+https://example.org/r.git#subdirectory=sub'"
    )
    assert "old-name" in a.fix[1]


def test_no_name_mismatch_is_not_this_class() -> None:
    assert pip_egg_name_out_of_date(TextFacts(error_classes=("ERROR",)), KNOW) == []


# --- an arch list that compiles one architecture's instructions for another ----------------


def test_sm90a_instructions_on_sm120_ask_for_only_this_gpus_arch() -> None:
    (a,) = build_arch_list_wrong_mix(TextFacts(arch_instructions=(("wgmma", 120),)), KNOW)
    assert a.class_id == "build-arch-list-wrong-mix"
    assert a.fix[0].startswith('TORCH_CUDA_ARCH_LIST="12.0"')
    assert "sm_90a" in a.cause


def test_an_instruction_on_its_own_architecture_or_an_unknown_one_is_not_this_class() -> None:
    assert build_arch_list_wrong_mix(TextFacts(arch_instructions=(("wgmma", 90),)), KNOW) == []
    assert build_arch_list_wrong_mix(TextFacts(arch_instructions=(("mma", 120),)), KNOW) == []


# --- a framework advising another backend --------------------------------------------------


def test_a_framework_advice_gets_the_setting_it_names() -> None:
    adv = Advice(subject="Gemma-2", backend="flash attention 2", setting="flash_attn", value="fa2")
    (a,) = framework_advises_other_backend(TextFacts(advice=(adv,)), KNOW)
    assert a.class_id == "framework-advises-other-backend"
    assert a.fix[0] == "set `flash_attn: fa2` in the config"
    assert "attn-doctor install flash_attn_2" in a.fix[1]


def test_advice_next_to_an_error_is_not_the_answer() -> None:
    adv = Advice(subject="Gemma-2", backend="flash attention 2")
    f = TextFacts(advice=(adv,), error_classes=("RuntimeError",))
    assert framework_advises_other_backend(f, KNOW) == []


# --- a backend's guarded import left None -----------------------------------------------


def test_a_none_called_in_a_frameworks_backend_module_is_that_backend_not_installed() -> None:
    (a,) = backend_import_left_none(TextFacts(none_called_in=(("vllm", "flashinfer"),)), KNOW)
    assert a.class_id == "backend-not-installed"
    assert a.fix[0] == "attn-doctor install flashinfer"
    assert a.checks == ("package_missing:flashinfer-python",)


def test_a_none_called_in_an_unknown_module_is_not_this_class() -> None:
    assert backend_import_left_none(TextFacts(none_called_in=(("vllm", "other"),)), KNOW) == []


# --- changed classes -------------------------------------------------------------------


def test_a_single_backend_dependency_lacking_a_name_is_that_backend_dependency() -> None:
    f = TextFacts(
        missing_attrs=(("cutlass.cute.core", "ThrMma"),), error_classes=("AttributeError",)
    )
    (a,) = backend_dependency_missing(f, KNOW)
    assert a.class_id == "backend-dependency-missing"
    assert "flash_attn_4" in a.cause
    assert "nvidia-cutlass-dsl" in a.fix[0]
    other = TextFacts(missing_attrs=(("numpy", "ThrMma"),), error_classes=("AttributeError",))
    assert backend_dependency_missing(other, KNOW) == []


def test_llvm_refusing_an_arch_is_tritons_compiler_too_old() -> None:
    (a,) = compiler_too_old_for_arch(
        TextFacts(tool_rejects_arch=(("llvm", 120),), sms=(120,)), KNOW
    )
    arch = KNOW.arch(120)
    assert arch is not None
    assert arch.first_release("triton")
    assert f"triton>={arch.first_release('triton')}" in " ".join(a.fix)


def test_a_refusal_is_the_backend_its_line_names() -> None:
    f = TextFacts(
        refused_sms=(70, 75),
        sms=(70, 75),
        error_classes=("AssertionError",),
        lines=(
            "Cannot use FlashAttention-2 backend for Volta and Turing GPUs.",
            "Using XFormers backend.",
        ),
    )
    (a,) = gpu_outside_backend_range(f, KNOW)
    assert a.title.startswith("flash_attn_2 refuses")
    assert "sm_70" in a.cause
    assert "sm_75" in a.cause


# --- the extractor ---------------------------------------------------------------------


def test_the_extractor_reads_the_new_facts() -> None:
    f = extract_facts(
        "AttributeError: module 'torch.version' has no attribute 'xpu'\n"
        "ptxas error: Instruction 'wgmma.fence' not supported on .target 'sm_120'\n"
        "'sm_100' is not a recognized processor for this target (ignoring processor)\n"
    )
    assert ("torch.version", "xpu") in f.missing_attrs
    assert f.arch_instructions == (("wgmma", 120),)
    assert ("llvm", 100) in f.tool_rejects_arch
    rocm = extract_facts(
        "UserWarning: Torch was not compiled with memory efficient attention. (Triggered "
        "internally at ../aten/src/ATen/native/transformers/hip/sdp_utils.cpp:505.)"
    )
    assert rocm.torch_missing_kernels == ("mem_efficient",)
    assert rocm.torch_build == "rocm"
    pip = extract_facts(
        "Requested x from git+https://h/r.git#egg=a-b&subdirectory=s has inconsistent name: "
        "expected 'a-b', but metadata has 'c'"
    )
    assert pip.pip_name_mismatch == ("a-b", "c", "git+https://h/r.git#egg=a-b&subdirectory=s")
    adv = extract_facts(
        "- WARNING - Gemma-2 should use flash attention 2, change `flash_attn` to fa2."
    )
    assert adv.advice
    assert adv.advice[0].setting == "flash_attn"
    assert adv.advice[0].value == "fa2"


def test_the_extractor_reads_families_sm8x_and_a_none_in_a_backend_frame() -> None:
    f = extract_facts("INFO Cannot use FlashAttention-2 backend for Volta and Turing GPUs.")
    assert f.refused_sms == (70, 75)
    assert extract_facts("Ampere GPUs are fine").refused_sms == ()
    req = extract_facts("Expected is_sm90 || is_sm8x || is_sm75 to be true, but got false.")
    assert req.required_sm == (75, 90)
    assert 86 in req.required_exact
    none = extract_facts(
        '  File "/x/vllm/attention/backends/flashinfer.py", line 121, in _get_prefill_wrapper\n'
        "TypeError: 'NoneType' object is not callable"
    )
    assert none.none_called_in == (("vllm", "flashinfer"),)
    no_none = extract_facts('  File "/x/vllm/attention/backends/flashinfer.py", line 1, in f\n')
    assert no_none.none_called_in == ()


def test_the_new_facts_are_shown_for_an_unknown_message() -> None:
    f = TextFacts(
        missing_attrs=(("torch.version", "foo"),),
        arch_instructions=(("wgmma", 120),),
        torch_missing_kernels=("mem_efficient",),
        none_called_in=(("vllm", "flashinfer"),),
    )
    shown = dict(f.summary())
    assert shown["missing attribute"] == "torch.version.foo"
    assert shown["instruction refused"] == "wgmma on sm_120"
    assert shown["torch built without"] == "SDPA mem_efficient kernel"
    assert shown["None called in"] == "vllm flashinfer backend"


# --- an extension pinned to another torch --------------------------------------------------


def test_a_pin_conflict_with_torch_kept_is_the_extension_built_for_other_torch() -> None:
    pins = (("xformers", "0.0.26.post1", "2.3.0", "2.2.1+cu121"),)
    (a,) = extension_pins_other_torch(TextFacts(pin_conflicts=pins), KNOW)
    assert a.class_id == "xformers-built-for-other-torch"  # xformers' own id for this cause
    built_for_221 = [v for d, v, req in KNOW.torch_pins if d == "xformers" and req == "==2.2.1"]
    assert built_for_221
    assert a.fix[0].startswith(f"pip install 'xformers=={max(built_for_221)}'")
    assert (
        a.fix[1]
        == "or pip install 'torch==2.3.0'   # the torch xformers 0.0.26.post1 was built for"
    )


def test_a_pin_conflict_where_pip_replaced_torch_or_of_another_package_is_not_this_class() -> None:
    pins = (("xformers", "0.0.26.post1", "2.3.0", "2.2.1"),)
    assert (
        extension_pins_other_torch(TextFacts(pin_conflicts=pins, uninstalled=("torch",)), KNOW)
        == []
    )
    other = (("torchvision", "0.18.0", "2.3.0", "2.2.1"),)
    assert extension_pins_other_torch(TextFacts(pin_conflicts=other), KNOW) == []


# --- a backend without a feature the caller uses -----------------------------------------


def test_a_backend_without_masks_gets_the_backends_that_have_them() -> None:
    f = TextFacts(features_refused=(("attn_mask", "flash-attn 2"),))
    (a,) = backend_feature_unsupported(f, KNOW)
    feat = next(x for x in KNOW.features if x.name == "attention mask")
    assert a.class_id == "backend-feature-unsupported"
    assert a.title == "flash_attn_2 does not support attention mask"
    assert a.fix[0].startswith(f"use {feat.backends[0]} instead")


def test_soft_capping_on_a_turing_gpu_offers_only_backends_that_run_there() -> None:
    f = TextFacts(features_refused=(("attention logits soft capping", "XFormers"),), sms=(75,))
    (a,) = backend_feature_unsupported(f, KNOW)
    assert "flash_attn_2" not in " ".join(a.fix)  # it needs sm_80


def test_a_backend_that_has_the_feature_is_not_this_class_and_an_unlisted_one_is_generic() -> None:
    has = TextFacts(features_refused=(("attn_mask", "xformers"),))
    assert backend_feature_unsupported(has, KNOW) == []
    # an attention feature the table does not list: the message is the evidence, no alternatives
    unknown = TextFacts(features_refused=(("paged KV", "flash-attn 2"),))
    (a,) = backend_feature_unsupported(unknown, KNOW)
    assert "not in attn-doctor's feature table" in a.cause
    other = TextFacts(features_refused=(("beam search", "flash-attn 2"),))
    assert backend_feature_unsupported(other, KNOW) == []
    nobody = TextFacts(features_refused=(("attn_mask", "this op"),))
    assert backend_feature_unsupported(nobody, KNOW) == []


def test_the_extractor_reads_pin_conflicts_uninstalls_and_refused_features() -> None:
    f = extract_facts(
        "xformers 0.0.26.post1 requires torch==2.3.0, but you have torch 2.2.1+cu121 which is "
        "incompatible.\n  Attempting uninstall: torch\n"
        'ValueError("`attn_mask` is not supported for flash-attn 2.")\n'
        "ValueError: XFormers does not support attention logits soft capping"
    )
    assert f.pin_conflicts == (("xformers", "0.0.26.post1", "2.3.0", "2.2.1+cu121"),)
    assert f.uninstalled == ("torch",)
    assert ("attn_mask", "flash-attn 2") in f.features_refused
    assert ("attention logits soft capping", "XFormers") in f.features_refused


def test_a_top_level_table_without_release_numbers_is_refused_naming_the_entry() -> None:
    import pytest

    from attn_doctor.errors import IndexDataError
    from attn_doctor.explain.knowledge import parse_explain_classes

    entry = {
        "backend": "flash_attn_2",
        "module": "flash_attn.flash_attn_interface",
        "names": ["flash_attn_func"],
        "top_level": {"flash_attn_func": "two"},
        "source": "s",
    }
    with pytest.raises(IndexDataError, match=r"backend_api #1\.top_level"):
        parse_explain_classes({"schema_version": 1, "backend_api": [entry]})
