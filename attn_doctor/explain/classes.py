"""Failure classes: rules over the facts a message shows and the one knowledge.

A class does not look for a sentence: it reads ``TextFacts`` (``evidence.extract_facts``) and
the ``Knowledge`` (backend records, the arch table, dependencies, framework knobs) and, when its
premises hold, computes the cause and the fix for those facts ("Triton 3.2.0 does not know
sm_120; the first release that does is 3.3.0", the numbers read from the table). Framework
messages recorded from upstream source are the second path (``FrameworkMessage``), and the
symptom knowledge base's phrases the third (``match.py``).

Each rule returns ``ClassAnswer``s; ``classify`` runs them all in ``RULES`` order.
``contradictions`` says which premises of an answer (or of a phrase entry's machine checks)
the message itself contradicts: such an answer is rejected.
"""

from __future__ import annotations

import re

from attn_doctor.explain.answer import (
    NO_GPU_VISIBLE,
    ClassAnswer,
    Rule,
    explained_missing,
    version_of,
)
from attn_doctor.explain.checks import split_check
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.knowledge import Knowledge
from attn_doctor.explain.rules_api import (
    backend_feature_unsupported,
    backend_function_import_path,
    backend_import_left_none,
    build_arch_list_wrong_mix,
    extension_pins_other_torch,
    framework_advises_other_backend,
    model_refuses_backend,
    pip_egg_name_out_of_date,
    te_no_backend_for_inputs,
    torch_built_without_sdpa_kernel,
    torch_too_old_for_api,
)
from attn_doctor.explain.rules_backend import (
    backend_dependency_missing,
    backend_forced_package_missing,
    backend_not_installed,
    extension_symbol_mismatch,
    gpu_outside_backend_range,
    head_dim_unsupported,
)
from attn_doctor.explain.rules_build import (
    arch_list_below_backend_minimum,
    build_tool_missing,
    build_without_torch,
    cutlass_submodule_missing,
    flash_attn_device_code_below_ampere,
    remote_code_imports_removed_transformers_helper,
    triton_embedded_python_missing_headers,
    triton_kernel_out_of_shared_memory,
)
from attn_doctor.explain.rules_caller import (
    attention_extension_not_built,
    companion_package_too_old,
    flex_attention_no_config_fits,
    flex_attention_no_kernel_for_device,
    msvc_math_constants_undefined,
    package_too_old_for_caller,
    torch_nightly_attention_backward_regression,
    triton_needs_c_compiler,
    xformers_operators_not_built_for_rocm,
)
from attn_doctor.explain.rules_calls import (
    caller_written_for_other_api,
    feature_only_in_other_backend,
)
from attn_doctor.explain.rules_device import (
    backend_on_other_device,
    ck_xdl_kernel_on_gpu_without_mfma,
    flash_attn_ck_build_on_rdna,
    gpu_generation_refused,
    kernel_compiled_out_for_arch,
)
from attn_doctor.explain.rules_dtype import dtype_unsupported
from attn_doctor.explain.rules_messages import (
    app_wrapper,
    fallback_notice,
    framework_message,
    harmless_warning,
)
from attn_doctor.explain.rules_runtime import (
    backend_build_without_ninja,
    backend_operators_not_registered,
    caller_checks_old_distribution_name,
    cudnn_library_missing,
    cudnn_too_old_for_attention,
    diffusers_xformers_processor_for_joint_attention,
    flash_attn_newer_than_dependent_supports,
    kernels_client_too_old_for_stable_abi,
    model_code_requires_flash_attn,
    stale_extension_mixed_install,
    torch_sdpa_flash_backward_sm8x,
    windows_extension_entry_point_missing,
)
from attn_doctor.explain.rules_sdpa import (
    sdpa_attn_mask_dtype_mismatch,
    sdpa_cudnn_nan,
    sdpa_gqa_heads_differ,
    sdpa_gqa_heads_not_divisible,
    sdpa_kernel_not_on_device,
    sdpa_mem_efficient_no_kernel,
    sdpa_qkv_mismatch,
    torch_fused_op_not_built,
)
from attn_doctor.explain.rules_toolchain import (
    build_needs_newer_cuda,
    compiler_too_old_for_arch,
    cudnn_sdpa_refused,
    driver_api_symbol_missing,
    flashinfer_jit_needs_nvcc,
    hub_kernel_no_variant,
    jit_arch_check_misfires,
    libcuda_not_found,
    torch_too_old_for_gpu,
    triton_api_missing,
    triton_too_old_for_cuda,
)
from attn_doctor.explain.rules_upstream import (
    framework_package_missing,
    package_built_for_other_torch,
    wheel_built_for_other_torch,
)
from attn_doctor.explain.rules_wheels import flash_attn_release_without_torch_wheel
from attn_doctor.explain.rules_xformers import xformers_no_operator_reason

__all__ = ["RULES", "SAME_CAUSE", "ClassAnswer", "classify", "contradictions"]


SAME_CAUSE: dict[str, frozenset[str]] = {
    "cudnn-sdpa-refused": frozenset({"sdpa-no-available-kernel"}),
    "flashinfer-jit-needs-nvcc": frozenset({"flash-attn-nvcc-not-found"}),
    "compiler-too-old-for-arch": frozenset(
        {"nvcc-unsupported-gpu-arch", "cuda-ptx-unsupported-toolchain"}
    ),
    "torch-too-old-for-api": frozenset({"torch-too-old-for-flex-attention"}),
    # transformers' own flash-attn floor, read as a package floor: its phrase names transformers
    "flash-attn-too-old-for-caller": frozenset({"transformers-fa2-too-old"}),
    # the build class for flash-attn is its own phrase's cause: shown once
    "flash-attn-build-no-torch": frozenset({"flash-attn-build-no-torch"}),
    "torch-too-old-for-gpu": frozenset({"torch-gpu-not-supported", "cuda-no-kernel-image"}),
    "backend-dependency-missing": frozenset(
        {"triton-missing", "flash-attn-4-cutlass-dsl-incomplete"}
    ),
    "backend-forced-package-missing": frozenset(
        {
            "sageattention-not-installed",
            "transformers-fa2-not-installed",
            "flash-attn-not-installed",
            "flash-attn3-not-installed",
        }
    ),
    "head-dim-unsupported": frozenset(
        {
            "flash-attn-head-dim-too-large",
            "flash-attn3-head-size",
            "flash-attn-backward-head-dim-shared-memory",
        }
    ),
    "gpu-outside-backend-range": frozenset(
        {
            "flash-attn-needs-ampere",
            "flash-attn3-needs-hopper",
            "sageattention-gpu-unsupported",
            "xformers-fa3-kernels-blackwell",
            "flash-attn-no-kernel-image",
            "bf16-needs-ampere",
            "xformers-bf16-needs-ampere",
            "unsloth-no-gpu",
            "model-flash-attention-not-used",
        }
    ),
    "dtype-unsupported": frozenset({"flash-attn-fp32-input", "transformers-fa2-fp32-dtype"}),
    # xformers' own refusal of CPU tensors: its phrase carries the machine check
    "backend-needs-other-device": frozenset({"xformers-cpu-tensors"}),
    "extension-built-for-other-torch": frozenset(
        {
            "flash-attn-built-for-other-torch",
            "flash-attn-cxx11-abi-mismatch",
            # the phrase for an undefined torch symbol is this class's own cause: shown once
            "extension-built-for-other-torch",
            "torch-extension-abi-mismatch",
            "flash-attn3-undefined-symbol",
            "xformers-built-for-other-torch",
        }
    ),
    "backend-not-installed": frozenset(
        {
            "sageattention-not-installed",
            "flash-attn-not-installed",
            "flash-attn3-not-installed",
            "transformers-fa2-not-installed",
            "transformers-remote-code-needs-flash-attn",
            "flash-attn-extension-missing",
            "triton-missing",
        }
    ),
    "harmless-warning": frozenset(
        {"torch-sdpa-no-flash-windows", "xformers-triton-unavailable-warning"}
    ),
    "transformers-flash-package-missing": frozenset(
        {"transformers-fa2-not-installed", "flash-attn3-not-installed"}
    ),
    "comfyui-attention-package-missing": frozenset(
        {"sageattention-not-installed", "flash-attn-not-installed"}
    ),
}
"""Symptom entries that name the same cause as a class: when one of them matches, it is the
answer (it carries the upstream threads and finer machine checks) and the class is not repeated."""


RULES: tuple[Rule, ...] = (
    framework_message,
    # what a package's own project says of it (built for another torch, a framework set to use
    # it and not finding it) comes before what the knowledge infers
    package_built_for_other_torch,
    wheel_built_for_other_torch,
    framework_package_missing,
    package_too_old_for_caller,
    companion_package_too_old,
    torch_nightly_attention_backward_regression,
    triton_needs_c_compiler,
    msvc_math_constants_undefined,
    flex_attention_no_kernel_for_device,
    flex_attention_no_config_fits,
    xformers_operators_not_built_for_rocm,
    sdpa_attn_mask_dtype_mismatch,
    sdpa_qkv_mismatch,
    sdpa_gqa_heads_differ,
    sdpa_gqa_heads_not_divisible,
    flash_attn_newer_than_dependent_supports,
    cudnn_too_old_for_attention,
    cudnn_library_missing,
    sdpa_cudnn_nan,
    torch_sdpa_flash_backward_sm8x,
    kernel_compiled_out_for_arch,
    kernels_client_too_old_for_stable_abi,
    model_code_requires_flash_attn,
    backend_build_without_ninja,
    stale_extension_mixed_install,
    diffusers_xformers_processor_for_joint_attention,
    ck_xdl_kernel_on_gpu_without_mfma,
    caller_checks_old_distribution_name,
    jit_arch_check_misfires,
    triton_too_old_for_cuda,
    triton_api_missing,
    compiler_too_old_for_arch,
    build_needs_newer_cuda,
    build_arch_list_wrong_mix,
    arch_list_below_backend_minimum,
    flash_attn_device_code_below_ampere,
    cutlass_submodule_missing,
    flash_attn_release_without_torch_wheel,
    build_without_torch,
    build_tool_missing,
    triton_embedded_python_missing_headers,
    triton_kernel_out_of_shared_memory,
    torch_too_old_for_gpu,
    torch_too_old_for_api,
    backend_dependency_missing,
    backend_function_import_path,
    caller_written_for_other_api,
    remote_code_imports_removed_transformers_helper,
    pip_egg_name_out_of_date,
    backend_forced_package_missing,
    libcuda_not_found,
    flashinfer_jit_needs_nvcc,
    hub_kernel_no_variant,
    cudnn_sdpa_refused,
    model_refuses_backend,
    te_no_backend_for_inputs,
    xformers_no_operator_reason,
    head_dim_unsupported,
    backend_on_other_device,
    gpu_outside_backend_range,
    flash_attn_ck_build_on_rdna,
    gpu_generation_refused,
    dtype_unsupported,
    sdpa_mem_efficient_no_kernel,
    extension_symbol_mismatch,
    driver_api_symbol_missing,
    windows_extension_entry_point_missing,
    backend_operators_not_registered,
    extension_pins_other_torch,
    backend_feature_unsupported,
    feature_only_in_other_backend,
    backend_not_installed,
    attention_extension_not_built,
    backend_import_left_none,
    sdpa_kernel_not_on_device,
    torch_built_without_sdpa_kernel,
    torch_fused_op_not_built,
    harmless_warning,
    fallback_notice,
    framework_advises_other_backend,
    app_wrapper,
)
"""Every class, in the order their answers are listed."""


def classify(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """All classes whose premises the facts satisfy, without contradicted ones."""
    out: list[ClassAnswer] = []
    for rule in RULES:
        for ans in rule(f, know):
            if not contradictions(f, ans.checks, know=know):
                out.append(ans)
    if any(a.class_id != "app-wrapper-message" for a in out):
        out = [a for a in out if a.class_id != "app-wrapper-message"]
    return out


# --- contradictions ----------------------------------------------------------------------


_COMPILING = re.compile(
    r"nvcc|ninja|setup\.py|\bbuild|bdist_wheel|MAX_JOBS|cc1plus|cicc|ptxas|\.cu\b|\.o\b|compil"
    r"|pip install|Installing|wheel"
    # a compiler's own diagnostics on the package's sources ("…/csrc/…/stride.hpp(112): warning")
    r"|\bcsrc[\\/]|\.(?:hpp|cuh|h)\(\d+\): (?:warning|error)",
    re.I,
)
"""Any sign of a compile step (a build's OOM needs one)."""


def _nvcc_dropped(f: TextFacts, args: tuple[str, ...], know: Knowledge | None) -> str | None:
    """An nvcc newer than the last release that knew the arch: too new, not too old."""
    have = version_of(f.tool("nvcc"))
    if know is None or have is None or not args:
        return None
    digits = re.sub(r"\D", "", args[0])
    arch = know.arch(int(digits)) if digits else None
    dropped = version_of(arch.nvcc_dropped) if arch and arch.nvcc_dropped else None
    if arch is None or dropped is None or have < dropped:
        return None
    return (
        f"the message's nvcc {f.tool('nvcc')} is too new, not too old: CUDA "
        f"{arch.nvcc_dropped} dropped sm_{arch.sm}"
    )


def _check_contradiction(
    f: TextFacts, name: str, args: tuple[str, ...], know: Knowledge | None = None
) -> str | None:
    """Why the message contradicts one machine check's premise, or None."""
    if name == "nvcc_too_old_for_arch" and (why := _nvcc_dropped(f, args, know)):
        return why
    if (
        name in {"triton_missing", "package_missing"}
        and know is not None
        and (args[0] if args else "triton") in explained_missing(f, know)
    ):
        return "the message's own warning reports the missing module, and that warning is harmless"
    if name == "package_missing" and NO_GPU_VISIBLE.search("\n".join(f.lines)):
        return (
            "the message says torch sees no GPU (the backend is not available on the CPU): the "
            "package may well be installed; the device is the cause"
        )
    if name == "ram_per_job_low" and f.lines and not _COMPILING.search("\n".join(f.lines)):
        return "the message shows no compile step: a process killed at run time is not a build's"
    build = f.torch_build
    other = build in {"rocm", "xpu"}
    if name == "torch_cpu_only" and build in {"rocm", "xpu", "cuda"}:
        return f"the message shows a {build} torch, not a CPU-only one"
    if name == "torch_cpu_only" and f.other_device:
        return f"the message's torch runs on {f.other_device}, which is not CUDA's device"
    if (
        name
        in {
            "nvcc_missing",
            "nvcc_below",
            "nvcc_too_old_for_arch",
            "cuda_home_unset",
            "nvcc_major_differs_from_torch",
            "driver_below_torch_cuda",
        }
        and other
    ):
        return f"the message shows a {build} torch: the CUDA toolkit is not involved"
    if name in {"gpu_sm_below", "gpu_sm_at_least"} and other:
        return f"the message shows a {build} torch, not an NVIDIA GPU"
    if name == "gpu_sm_below" and f.sms and args:
        try:
            lim = int(args[0])
        except ValueError:
            return None
        if all(sm >= lim for sm in f.sms):
            return f"the message's GPU is sm_{f.sms[0]}, which is not below sm_{lim}"
    if name == "gpu_sm_at_least" and f.sms and args:
        try:
            lim = int(args[0])
        except ValueError:
            return None
        if all(sm < lim for sm in f.sms):
            return f"the message's GPU is sm_{f.sms[0]}, below sm_{lim}"
    if name == "torch_build_is" and build and args and args[0] != build:
        return f"the message shows a {build} torch, not {args[0]}"
    if name == "torch_below" and args:
        have = version_of(f.version("torch"))
        floor = version_of(args[0])
        if have is not None and floor is not None and have >= floor:
            return f"the message shows torch {f.version('torch')}, not below {args[0]}"
    return None


def contradictions(
    f: TextFacts,
    checks: tuple[str, ...],
    captures: dict[str, str] | None = None,
    know: Knowledge | None = None,
) -> list[str]:
    """The message's facts that contradict these checks' premises (``a|b``: all must be).
    ``{name}`` in a check is filled from ``captures`` (a phrase entry's captured values)."""
    out = []
    for raw in checks:
        check = re.sub(r"\{(\w+)\}", lambda m: (captures or {}).get(m.group(1), m.group(0)), raw)
        if "{" in check:
            continue
        reasons = [_check_contradiction(f, name, args, know) for name, args in split_check(check)]
        if reasons and all(reasons):
            out.append(str(reasons[0]))
    return out
