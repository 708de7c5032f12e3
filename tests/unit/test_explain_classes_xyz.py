"""Classes and facts added for batches X-Z's misses, each from one extracted fact or hand-built
facts, with a near miss (no phrase of the batches is matched here)."""

from __future__ import annotations

from attn_doctor.explain.evidence import extract_facts
from attn_doctor.explain.evidence_upstream import read_upstream
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_backend import (
    backend_forced_package_missing,
)
from attn_doctor.explain.rules_device import backend_on_other_device
from attn_doctor.explain.rules_toolchain import triton_api_missing

KNOW = load_knowledge()


def test_a_name_the_installed_triton_lacks_is_triton_of_another_release() -> None:
    inductor_text = (
        "torch._inductor.exc.InductorError: AttributeError: type object 'CompiledKernel' has no "
        "attribute 'launch_enter_hook'"
    )
    inductor = extract_facts(inductor_text)
    (a,) = triton_api_missing(inductor, KNOW)
    assert a.class_id == "triton-version-mismatch"
    assert "torch's Inductor" in a.cause
    # no torch release in the message: where to read the pin
    assert a.fix == (
        "pip show torch   # its Requires-Dist names the Triton it pins; install that release",
    )
    # with torch's release shown, the pin comes from wheels_index/triton.toml
    shown = extract_facts(inductor_text + "\ntorch==2.2.1+cu121")
    (c,) = triton_api_missing(shown, KNOW)
    assert c.fix[0].startswith("pip install --force-reinstall 'triton==2.2.0'")
    assert "triton.toml" in c.source
    old_api = extract_facts("AttributeError: module 'triton' has no attribute 'kernel'")
    (b,) = triton_api_missing(old_api, KNOW)
    assert "triton.kernel" in b.title
    # another module's missing attribute, or another class's: not Triton's API
    assert triton_api_missing(extract_facts("module 'numpy' has no attribute 'kernel'"), KNOW) == []
    assert triton_api_missing(extract_facts("type object 'Foo' has no attribute 'bar'"), KNOW) == []


def test_a_head_dim_list_written_headdim_is_the_kernels_rule() -> None:
    f = extract_facts("RuntimeError: FlashAttentionForwardXPU only support headdim 64,96,128,192")
    assert f.head_dim_rule == "only 64,96,128,192"


def test_transformers_refusing_flash_attention_on_the_cpu_is_the_device_not_a_missing_package() -> (
    None
):
    said = (
        "FlashAttention2 has been toggled on, but it cannot be used due to the following error: "
        "Flash Attention 2 is not available on CPU. Please make sure torch can access a CUDA "
        "device."
    )
    f = extract_facts(said)
    assert f.runtime.tensor_device == "cpu"
    assert backend_forced_package_missing(f, KNOW) == []
    (a,) = backend_on_other_device(f, KNOW)
    assert a.class_id == "backend-needs-other-device"
    missing = extract_facts(
        "FlashAttention2 has been toggled on, but it cannot be used due to the following error: "
        "the package flash_attn seems to be not installed."
    )
    assert backend_forced_package_missing(missing, KNOW)[0].class_id == (
        "backend-forced-package-missing"
    )


def test_exllamav2s_paged_attention_floor_and_gemmas_training_advice_are_read() -> None:
    paged = read_upstream("AssertionError: Paged attention required Flash Attention 2.5.7 or later")
    assert ("flash-attn", "2.5.7") in paged.needs
    gemma = read_upstream(
        "It is strongly recommended to train Gemma3 models with the `eager` attention "
        "implementation instead of `sdpa`. Use `eager` with `AutoModelForCausalLM.from_pretrained"
    )
    assert gemma.harmless
    assert not read_upstream("Paged attention requires a GPU").needs


def test_a_torch_symbol_written_demangled_is_still_torchs() -> None:
    f = extract_facts(
        "importing sgl-kernel:\nundefined symbol:\nc10::cuda::c10_cuda_check_implementation(int, "
        "char const*, char const*, int, bool)"
    )
    (sym,) = f.symbols
    assert sym.owner == "torch"
    assert extract_facts("undefined symbol: my_helper").symbols == ()


def test_an_undefined_cuda_driver_api_function_is_a_driver_older_than_the_extension() -> None:
    from attn_doctor.explain.rules_toolchain import driver_api_symbol_missing

    f = extract_facts("common_ops.abi3.so: undefined symbol: cuGreenCtxStreamCreate")
    (sym,) = f.symbols
    assert sym.owner == "libcuda"
    (a,) = driver_api_symbol_missing(f, KNOW)
    assert a.class_id == "cuda-driver-insufficient"
    assert "common_ops" in a.title
    # the runtime API (cudaGetDevice…) is not the driver's library
    assert driver_api_symbol_missing(extract_facts("undefined symbol: cudaGetDevice"), KNOW) == []


def test_torch_ops_missing_an_operator_is_not_the_callers_api() -> None:
    from attn_doctor.explain.evidence_calls import read_calls
    from attn_doctor.explain.rules_calls import caller_written_for_other_api

    said = (
        "AttributeError: '_OpNamespace' 'xformers' object has no attribute "
        "'efficient_attention_forward_cutlass'"
    )
    f = extract_facts(said)
    assert f.runtime.ops_missing == ("xformers", "efficient_attention_forward_cutlass")
    assert caller_written_for_other_api(f, KNOW) == []
    other = "AttributeError: 'Qwen2FlashAttention2' object has no attribute 'rotary_emb'"
    g = extract_facts(other)
    assert g.calls == read_calls(other)
    assert caller_written_for_other_api(g, KNOW)[0].class_id == "caller-written-for-other-api"


def test_a_fused_sdpa_op_without_a_kernel_for_the_device_is_that_builds_gap() -> None:
    from attn_doctor.explain.rules_sdpa import sdpa_kernel_not_on_device

    xpu = extract_facts(
        "NotImplementedError: The operator 'aten::_scaled_dot_product_efficient_attention_backward'"
        " is not currently implemented for the XPU device."
    )
    (a,) = sdpa_kernel_not_on_device(xpu, KNOW)
    assert a.class_id == "torch-built-without-sdpa-kernel"
    assert a.title == "torch's XPU build has no SDPA memory-efficient backward kernel"
    mps = extract_facts(
        "The operator 'aten::_scaled_dot_product_flash_attention' is not currently implemented for "
        "the MPS device."
    )
    assert any(
        "PYTORCH_ENABLE_MPS_FALLBACK" in x for x in sdpa_kernel_not_on_device(mps, KNOW)[0].fix
    )
    other = extract_facts(
        "The operator 'aten::_fft_r2c' is not currently implemented for the MPS device."
    )
    assert sdpa_kernel_not_on_device(other, KNOW) == []


def test_names_a_framework_attention_module_lacks_are_a_caller_for_another_release() -> None:
    from attn_doctor.explain.rules_calls import caller_written_for_other_api

    comfy = extract_facts(
        "ImportError: cannot import name 'attention_basic' from 'comfy.ldm.modules.attention'"
    )
    assert caller_written_for_other_api(comfy, KNOW)[0].class_id == "caller-written-for-other-api"
    renamed = extract_facts("Name 'sageattn_blackwell' is not defined.")
    assert renamed.calls.undefined_names == ("sageattn_blackwell",)
    assert caller_written_for_other_api(renamed, KNOW)[0].class_id == (
        "caller-written-for-other-api"
    )
    # transformers' removed helpers have their own class; other modules are not attention's
    helper = extract_facts(
        "ImportError: cannot import name 'x' from 'transformers.modeling_flash_attention_utils'"
    )
    assert caller_written_for_other_api(helper, KNOW) == []
    assert (
        caller_written_for_other_api(
            extract_facts("cannot import name 'foo' from 'numpy.linalg'"), KNOW
        )
        == []
    )


def test_a_consumer_gpu_written_without_rtx_but_with_ti_is_named() -> None:
    names = KNOW.gpu_names()
    assert extract_facts("my graphics card is 2080ti", names).sms == (75,)
    assert extract_facts("a 4070 Ti Super here", names).sms == (89,)
    # a bare number is not a GPU (a pid, a port)
    assert extract_facts("pid=4090 port 3090", names).sms == ()


def test_ptxas_failing_in_quotes_is_an_error() -> None:
    from attn_doctor.explain.answer import has_error

    assert has_error(extract_facts("Error 'ptxas' failed with error code 4294967295"))


def test_torch_nn_attention_names_are_dated_from_the_wheels_not_read_as_a_callers_api() -> None:
    from attn_doctor.explain.rules_api import torch_too_old_for_api
    from attn_doctor.explain.rules_calls import caller_written_for_other_api

    f = extract_facts("ImportError: cannot import name 'sdpa_kernel' from 'torch.nn.attention'")
    (a,) = torch_too_old_for_api(f, KNOW)
    assert a.title == "torch has no torch.nn.attention.sdpa_kernel (added in 2.3)"
    assert caller_written_for_other_api(f, KNOW) == []


def test_sdpa_refusing_qkv_of_different_dtypes_or_devices_names_each() -> None:
    from attn_doctor.explain.rules_sdpa import sdpa_qkv_mismatch

    dt = extract_facts(
        "RuntimeError: Expected query, key, and value to have the same dtype, but got "
        "query.dtype: float key.dtype: c10::Half and value.dtype: c10::Half instead."
    )
    (a,) = sdpa_qkv_mismatch(dt, KNOW)
    assert a.class_id == "sdpa-qkv-dtype-mismatch"
    assert ("query", "float32") in a.evidence
    assert ("key", "float16") in a.evidence
    dev = extract_facts(
        "RuntimeError: Expected query, key, and value to have the same device type, but got "
        "query.device: cpu key.device: cuda:0 and value.device: cuda:0 instead."
    )
    assert sdpa_qkv_mismatch(dev, KNOW)[0].class_id == "sdpa-qkv-device-mismatch"
    # the mask check is its own class
    mask = extract_facts(
        "Expected attn_mask dtype to be bool or float or to match query dtype, but got "
        "attn_mask.dtype: float and query.dtype: c10::Half instead."
    )
    assert sdpa_qkv_mismatch(mask, KNOW) == []


def test_sdpa_refusing_grouped_query_head_counts_says_how_to_pass_them() -> None:
    from attn_doctor.explain.rules_sdpa import sdpa_gqa_heads_differ

    reason = (
        "UserWarning: For dense input, both fused kernels require query, key and value to have "
        "the same num_heads. Query.sizes(): [1, 32, 128, 64], Key sizes(): [1, 8, 128, 64], "
        "Value sizes(): [1, 8, 128, 64] instead."
    )
    f = extract_facts(reason + "\nRuntimeError: No available kernel. Aborting execution.")
    assert f.runtime.sdpa_heads == (32, 8)
    (a,) = sdpa_gqa_heads_differ(f, KNOW)
    assert "repeat_interleave(4, dim=1)" in a.fix[0]
    assert "enable_gqa=True" in a.fix[1]
    # the reason alone (SDPA ran the math kernel) is not a failure
    assert sdpa_gqa_heads_differ(extract_facts(reason), KNOW) == []


def test_gqa_heads_that_do_not_divide_and_an_assert_naming_a_missing_backend() -> None:
    from attn_doctor.explain.rules_backend import backend_not_installed
    from attn_doctor.explain.rules_sdpa import sdpa_gqa_heads_not_divisible

    f = extract_facts(
        "RuntimeError: The number of heads in key/value must divide number of heads in query."
    )
    (a,) = sdpa_gqa_heads_not_divisible(f, KNOW)
    assert a.class_id == "sdpa-gqa-heads-not-divisible"
    assert sdpa_gqa_heads_not_divisible(extract_facts("RuntimeError: heads"), KNOW) == []
    assert_ = extract_facts(
        "AssertionError: xformers is not installed or is not properly installed"
    )
    assert backend_not_installed(assert_, KNOW)[0].class_id == "backend-not-installed"
    # a warning naming it (no error) is not this class
    warn = extract_facts("UserWarning: xformers is not installed")
    assert backend_not_installed(warn, KNOW) == []
