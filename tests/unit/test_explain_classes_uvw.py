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


def test_a_triton_kernel_passing_a_removed_language_keyword_was_written_for_an_older_triton() -> (
    None
):
    said = "TypeError: dot() got an unexpected keyword argument 'trans_b'"
    f = TextFacts(lines=(said,), calls=read_calls(said))
    (a,) = caller_written_for_other_api(f, KNOW)
    assert a.class_id == "triton-version-mismatch"
    assert "'triton<2.0.0'" in a.fix[0]
    # another keyword on dot (not one Triton dropped) is not this class
    other = "TypeError: dot() got an unexpected keyword argument 'out_dtype'"
    g = TextFacts(lines=(other,), calls=read_calls(other))
    assert all(
        x.class_id != "triton-version-mismatch" for x in caller_written_for_other_api(g, KNOW)
    )


def test_a_bare_no_module_line_of_a_backend_is_the_backend_not_installed() -> None:
    from attn_doctor.explain.rules_backend import backend_not_installed

    f = extract_facts("No module named 'xformers'\nWARNING- Traceback (most recent call last):")
    (a,) = backend_not_installed(f, KNOW)
    assert a.class_id == "backend-not-installed"
    assert backend_not_installed(extract_facts("No module named 'wandb'"), KNOW) == []


def test_xformers_setup_saying_its_submodule_is_missing_is_the_source_checkout() -> None:
    from attn_doctor.explain.rules_build import cutlass_submodule_missing

    said = (
        "RuntimeError: CUTLASS submodule not found. Did you forget to run `git submodule update "
        "--init --recursive` ?"
    )
    (a,) = cutlass_submodule_missing(extract_facts(said), KNOW)
    assert a.class_id == "flash-attn-source-missing-cutlass-submodule"
    assert "xformers" in a.cause
    assert cutlass_submodule_missing(extract_facts("RuntimeError: CUTLASS error"), KNOW) == []


def test_a_triton_out_of_resources_without_numbers_is_still_the_shared_memory_class() -> None:
    from attn_doctor.explain.rules_build import triton_kernel_out_of_shared_memory

    for said in (
        "triton.runtime.autotuner.OutOfResources",
        "triton.runtime.autotuner.OutOfResources: out of resource: shared memory. Reducing block "
        "sizes or `num_stages` may help.",
    ):
        (a,) = triton_kernel_out_of_shared_memory(extract_facts(said), KNOW)
        assert a.class_id == "triton-attention-kernel-out-of-shared-memory"
        assert "does not give the numbers" in a.cause
        # the resource is said to be inferred only when the message does not name it
        assert ("does not name the resource" in a.cause) == ("shared memory" not in said)
    # not Triton's: another library's OutOfResources
    assert triton_kernel_out_of_shared_memory(extract_facts("ray OutOfResources"), KNOW) == []


def test_a_mamba_kernel_out_of_shared_memory_is_outside_explains_scope() -> None:
    from attn_doctor.explain.scope import outside_scope

    said = (
        "mamba2 triton.runtime.autotuner.outofresources: out of resource: shared memory, "
        "required: 294912, hardware limit: 49152."
    )
    why = outside_scope(extract_facts(said), "triton-attention-kernel-out-of-shared-memory")
    assert why is not None
    assert "state-space" in why
    # an attention kernel in the same words stays in scope
    attn = said.replace("mamba2", "flash_attn_triton")
    assert (
        outside_scope(extract_facts(attn), "triton-attention-kernel-out-of-shared-memory") is None
    )


def test_a_user_warning_that_falls_back_to_sdpa_is_a_notice() -> None:
    from attn_doctor.explain.rules_messages import fallback_notice

    said = (
        "UserWarning: No Flash Attention backend available. Will use PyTorch SDPA as fallback. "
        "For better performance, install one of: fa3-fwd, flash-attention, or flash-attn"
    )
    (a,) = fallback_notice(extract_facts(said), KNOW)
    assert a.class_id == "harmless-warning"
    # the same words inside an error are not a notice
    assert fallback_notice(extract_facts("RuntimeError: boom\n" + said), KNOW) == []


def test_a_run_told_to_be_on_the_cpu_puts_xformers_tensors_on_the_cpu() -> None:
    from attn_doctor.explain.rules_device import backend_on_other_device

    f = extract_facts('CPU training "No operator found for this attention: {self}"')
    assert f.runtime.tensor_device == "cpu"
    (a,) = backend_on_other_device(f, KNOW)
    assert a.class_id == "backend-needs-other-device"
    assert a.title.startswith("xformers got tensors on the CPU")
    # the CPU named for something else (a CPU count) is not a CPU run
    assert extract_facts("running with 8 CPU threads").runtime.tensor_device is None


def test_sageattentions_top_level_names_are_dated_by_release() -> None:
    from attn_doctor.explain.rules_api import backend_function_import_path

    # a title keeping only the quoted name and module is still the failed import
    f = extract_facts("'sageattn_qk_int8_pv_fp16_triton' from 'sageattention' err")
    assert f.missing_attrs == (("sageattention", "sageattn_qk_int8_pv_fp16_triton"),)
    older = backend_function_import_path(f, KNOW)[0]
    assert older.class_id == "sageattention-too-old-for-caller"
    assert "'sageattention>=2.0.1'" in older.fix[-1]
    assert "flash-attn 1.x" not in older.cause
    varlen = extract_facts("cannot import name 'sageattn_varlen' from 'sageattention'")
    assert "1.0.5" in backend_function_import_path(varlen, KNOW)[0].title
    # a release that has it: not too old
    shown = extract_facts(
        "cannot import name 'sageattn_varlen' from 'sageattention'\nsageattention==1.0.6"
    )
    assert all(
        a.class_id != "sageattention-too-old-for-caller"
        for a in backend_function_import_path(shown, KNOW)
    )


def test_diffusers_own_error_for_missing_xformers_is_a_missing_module() -> None:
    said = (
        "ModuleNotFoundError: Refer to https://github.com/facebookresearch/xformers for more "
        "information on how to install \nxformers"
    )
    assert "xformers" in extract_facts(said).missing_modules
    assert extract_facts("Refer to the xformers docs").missing_modules == ()


def test_an_old_tritons_refused_launch_in_an_attention_kernel_is_the_shared_memory_class() -> None:
    from attn_doctor.explain.rules_build import triton_kernel_out_of_shared_memory

    said = "Flash Triton Error [CUDA]: invalid argument\nflash-triton with bias on a T4"
    (a,) = triton_kernel_out_of_shared_memory(extract_facts(said), KNOW)
    assert "refused to launch" in a.cause
    assert "Unverified" in a.cause
    # the bare launch error is any Triton kernel's (Inductor's too): not answered
    bare = extract_facts("RuntimeError: Triton Error [CUDA]: invalid argument")
    assert triton_kernel_out_of_shared_memory(bare, KNOW) == []


def test_a_moe_kernels_shared_memory_error_is_outside_scope_for_both_answers() -> None:
    from attn_doctor.explain.scope import outside_scope

    said = (
        "triton.runtime.errors.OutOfResources: out of resource: shared memory, Required: "
        '263168, Hardware limit: 232448.\n  File "vllm/model_executor/layers/fused_moe/'
        'fused_moe.py", line 1485, in fused_experts_impl'
    )
    f = extract_facts(said)
    for answer in (
        "triton-attention-kernel-out-of-shared-memory",
        "flex-attention-out-of-shared-memory",
    ):
        assert outside_scope(f, answer) is not None


def test_a_source_build_without_torch_in_its_isolated_environment_names_the_package() -> None:
    from attn_doctor.explain.rules_build import build_without_torch

    uv = extract_facts(
        "hint: This error likely indicates that `flash-attn@2.8.3` depends on `torch`, but "
        "doesn't declare it as a build dependency."
    )
    (a,) = build_without_torch(uv, KNOW)
    assert a.class_id == "flash-attn-build-no-torch"
    assert "--no-build-isolation flash-attn" in a.fix[1]
    pip = extract_facts(
        "git clone https://github.com/thu-ml/SageAttention && pip install -e SageAttention\n"
        "ModuleNotFoundError: No module named 'torch'\n"
        "ERROR: Failed to build 'SageAttention' when getting requirements to build editable"
    )
    assert build_without_torch(pip, KNOW)[0].class_id == "sageattention-build-no-torch"
    # torch missing at run time (no build step), or a build of something else: not this class
    assert (
        build_without_torch(extract_facts("ModuleNotFoundError: No module named 'torch'"), KNOW)
        == []
    )
    other = extract_facts("No module named 'torch'\nGetting requirements to build wheel for mmcv")
    assert build_without_torch(other, KNOW) == []


def test_a_model_class_lacking_transformers_sdpa_flag_is_a_caller_for_another_release() -> None:
    said = "'Florence2ForConditionalGeneration' object has no attribute '_supports_sdpa'"
    (a,) = caller_written_for_other_api(TextFacts(lines=(said,), calls=read_calls(said)), KNOW)
    assert a.class_id == "caller-written-for-other-api"


def test_a_models_own_assert_that_it_needs_flash_attn_is_its_remote_code() -> None:
    from attn_doctor.explain.rules_runtime import model_code_requires_flash_attn

    said = "AssertionError: Flash Attention is not available, but is needed for dense attention"
    (a,) = model_code_requires_flash_attn(extract_facts(said), KNOW)
    assert a.class_id == "transformers-remote-code-needs-flash-attn"
    # the same words logged as a warning, with no assert and no model code: not answered
    warn = "WARNING: Flash Attention is not available, but is needed for dense attention"
    assert model_code_requires_flash_attn(extract_facts(warn), KNOW) == []
