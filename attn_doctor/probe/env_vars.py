"""Environment variables that change how attention backends are built, chosen or run."""

from __future__ import annotations

from collections.abc import Mapping

EXACT: frozenset[str] = frozenset(
    {
        "CUDA_VISIBLE_DEVICES",  # recorded, not applied to the GPU list (NVML ignores it)
        "CUDA_DEVICE_ORDER",
        "CUDA_HOME",
        "CUDA_PATH",
        "ROCM_PATH",
        "HIP_VISIBLE_DEVICES",
        "ROCR_VISIBLE_DEVICES",
        "MAX_JOBS",
        "NVCC_THREADS",
        "NVCC_FLAGS",
        "TORCH_CUDA_ARCH_LIST",
        "PYTORCH_ROCM_ARCH",
        "PYTORCH_CUDA_ALLOC_CONF",
        "PYTORCH_ENABLE_MPS_FALLBACK",
        "TORCH_CUDNN_SDPA_ENABLED",
        "TORCH_CUDNN_SDPA_DEPRIORITIZED",
        "TORCH_CUDNN_SDPA_PREFERRED",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "USE_FLASH_ATTENTION",
        "LD_LIBRARY_PATH",
        "CONDA_PREFIX",
        "VIRTUAL_ENV",
        "UV_TORCH_BACKEND",
        # Frameworks and Hub kernels (diffusers utils/constants.py, kernels hf_hub.py):
        "DIFFUSERS_ATTN_BACKEND",
        "DIFFUSERS_ATTN_CHECKS",
        "DIFFUSERS_TRUST_REMOTE_KERNELS",
        "USE_HUB_KERNELS",
        "LOCAL_KERNELS",
        "UNSTABLE_KERNELS_ALL_LATEST",
        "HF_HOME",
        "HF_HUB_CACHE",
    }
)
PREFIXES: tuple[str, ...] = (
    "FLASH_ATTENTION_",  # FLASH_ATTENTION_FORCE_BUILD, _SKIP_CUDA_BUILD, _TRITON_AMD_ENABLE…
    "FLASH_ATTN_",
    "XFORMERS_",  # XFORMERS_MORE_DETAILS, XFORMERS_IGNORE_FLASH_VERSION_CHECK…
    "UNSLOTH_",
    "ATTN_DOCTOR_",
    "KERNELS_",  # HF kernels: KERNELS_CACHE…
    "TRITON_",
    "VLLM_",  # VLLM_ATTENTION_BACKEND (no longer read), VLLM_FLASH_ATTN_VERSION…
    "SGLANG_",
)
SECRET_MARKERS = ("TOKEN", "SECRET", "PASSWORD", "KEY", "AUTH")
"""Names that would leak a credential into a snapshot are never recorded (index URLs, which
may carry credentials, are not in the list at all)."""

MAX_VALUE = 300


def truncate(value: str, limit: int = MAX_VALUE) -> str:
    """Long values (LD_LIBRARY_PATH) are cut, saying how much was dropped."""
    if len(value) <= limit:
        return value
    return f"{value[:limit]}…(+{len(value) - limit} chars)"


def is_recorded(name: str) -> bool:
    if any(marker in name.upper() for marker in SECRET_MARKERS):
        return False
    return name in EXACT or name.startswith(PREFIXES)


def select_env_vars(environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The recorded variables as (name, value) pairs, sorted by name; values truncated."""
    return tuple(sorted((k, truncate(v)) for k, v in environ.items() if is_recorded(k)))
