"""Torch SDPA refusing its inputs before any kernel runs: the mask's dtype, query/key/value of
different dtypes or devices, grouped-query head counts without enable_gqa, and one of its fused
ops called in a build without it. Each reads torch's own wording (validate_sdpa_input and the
fused kernels' reasons, read in torch 2.13.0's libtorch_cpu; attention.cu's build checks)."""

from __future__ import annotations

import re

from attn_doctor.explain.answer import ClassAnswer, body_of, has_error, line_of
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.knowledge import Knowledge

_DTYPE_NAMES = {"bfloat16": "bfloat16", "half": "float16", "float": "float32", "double": "float64"}


def _dtype(name: str) -> str:
    low = name.lower().removeprefix("c10::").removeprefix("torch.")
    return _DTYPE_NAMES.get(low, low)


def sdpa_attn_mask_dtype_mismatch(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """SDPA takes a bool mask or a float mask of the query's dtype; a float32 mask with a
    bf16/fp16 query (autocast casts q/k/v, not the mask) is refused before any kernel runs."""
    if f.runtime.mask_dtype is None:
        return []
    mask, query = (_dtype(d) for d in f.runtime.mask_dtype)
    q = query or "the query's dtype"
    return [
        ClassAnswer(
            class_id="sdpa-attn-mask-dtype-mismatch",
            title="SDPA got an attention mask of another dtype than the query",
            cause=(
                "torch's scaled_dot_product_attention accepts a bool mask or a float mask of "
                f"the query's dtype; it got a {mask or 'float'} mask with a {q} query. Under "
                "autocast q/k/v are cast to the autocast dtype but a mask built beforehand is "
                "not, so the caller's float32 mask no longer matches."
            ),
            fix=(
                "cast the mask where it is passed: attn_mask = attn_mask.to("
                f"{q if query else 'q.dtype'})",
                "or pass a bool mask (True = attend), which any query dtype accepts",
            ),
            evidence=(("mask dtype", mask or "not shown"), ("query dtype", query or "not shown")),
            source=(
                "pytorch aten/src/ATen/native/transformers/attention.cpp (validate_sdpa_input) "
                "— unverified: wording read in stored tracebacks, the file not re-read"
            ),
            line=line_of(f, r"attn_mask"),
        )
    ]


def sdpa_qkv_mismatch(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """SDPA takes q, k and v of one dtype on one device: a projection run outside autocast, a
    cache or rotary table kept in float32, or part of the model left on the CPU."""
    if f.runtime.qkv_mismatch is None:
        return []
    what, q, k, v = f.runtime.qkv_mismatch
    dtype = what == "dtype"
    if dtype:
        q, k, v = (_dtype(x) or x for x in (q, k, v))
    return [
        ClassAnswer(
            class_id="sdpa-qkv-dtype-mismatch" if dtype else "sdpa-qkv-device-mismatch",
            title=f"SDPA got query, key and value of different {what}s",
            cause=(
                f"torch's scaled_dot_product_attention takes q, k and v of one {what}; it got "
                f"query {q}, key {k}, value {v}. "
                + (
                    "One of them was computed outside autocast or kept in float32 (a KV cache, "
                    "a rotary table, a layer the model left in float32)."
                    if dtype
                    else "Part of the model (or its cache) is on another device than the rest."
                )
            ),
            fix=(
                (
                    "cast where SDPA is called: q, k = q.to(v.dtype), k.to(v.dtype)",
                    "or load the model in one dtype (dtype=torch.float16 / bfloat16), or run it "
                    "under torch.autocast",
                )
                if dtype
                else ("move the whole model and its inputs to one device: model.to('cuda')",)
            ),
            evidence=(("query", q), ("key", k), ("value", v)),
            source="torch 2.13.0 libtorch_cpu (validate_sdpa_input: 'Expected query, key, and "
            "value to have the same dtype / device type', read here)",
            line=line_of(f, r"Expected query, key, and value"),
        )
    ]


def sdpa_gqa_heads_differ(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """SDPA refused q and k/v of different head counts (grouped-query attention) and no
    kernel was left: code written for models without GQA, or without torch 2.5's enable_gqa."""
    heads = f.runtime.sdpa_heads
    if heads is None or heads[0] == heads[1] or not has_error(f):
        return []
    hq, hk = heads
    ratio = f" ({hq // hk} query heads per key/value head)" if hk and hq % hk == 0 else ""
    return [
        ClassAnswer(
            class_id="caller-written-for-other-api",
            title=f"SDPA got {hq} query heads and {hk} key/value heads (grouped-query attention)",
            cause=(
                f"the model uses grouped-query attention{ratio}, and the caller passes key and "
                "value with their own head count; SDPA's fused kernels need equal head counts "
                "(or enable_gqa=True, torch 2.5+), so no kernel was left. The calling code was "
                "written for models without GQA, or for another release of the model code."
            ),
            fix=(
                "repeat key/value heads before the call: k = k.repeat_interleave("
                f"{hq // hk if hk else 'n'}, dim=1) (and v)",
                "or scaled_dot_product_attention(q, k, v, enable_gqa=True)   # torch 2.5+",
            ),
            evidence=(("query heads", str(hq)), ("key/value heads", str(hk))),
            source="torch 2.13.0 libtorch_cpu (check_batch_size_and_num_heads_dense: 'both "
            "fused kernels require query, key and value to have the same num_heads', read "
            "here); enable_gqa from the backend_api table (2.5.0)",
            line=line_of(f, r"same num_heads"),
        )
    ]


def sdpa_gqa_heads_not_divisible(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """SDPA with enable_gqa=True needs the query's head count to be a multiple of the key/value
    head count: a config or a tensor-parallel split that gives other counts."""
    if "heads in key/value must divide number of heads in query" not in "\n".join(f.lines):
        return []
    return [
        ClassAnswer(
            class_id="sdpa-gqa-heads-not-divisible",
            title="SDPA: the key/value head count does not divide the query head count",
            cause=(
                "scaled_dot_product_attention(..., enable_gqa=True) shares each key/value head "
                "among a whole number of query heads; here the query's head count is not a "
                "multiple of the key/value's: the model config's num_key_value_heads does not fit "
                "num_attention_heads, or a tensor-parallel split divided them unevenly."
            ),
            fix=(
                "check config.num_attention_heads % config.num_key_value_heads == 0 (and the "
                "same after dividing both by the tensor-parallel size)",
            ),
            evidence=(("check", "query heads % key/value heads != 0"),),
            source="torch 2.13.0 libtorch_cpu ('The number of heads in key/value must divide "
            "number of heads in query.', SDPA's grouped-query check, read here)",
            line=line_of(f, r"must divide number of heads"),
        )
    ]


_NOT_ENABLED = re.compile(
    r"(USE_FLASH_ATTENTION|USE_MEM_EFF_ATTENTION|_flash_attention_forward"
    r"|_efficient_attention_forward) was not enabled for build"
)
"""torch's fused attention op called in a build without it (TORCH_CHECK in attention.cu's
#else branch)."""


def torch_fused_op_not_built(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """Code called one of torch's fused attention ops directly (``aten._flash_attention_forward``)
    and this torch build has no such kernel: official Windows wheels are built without
    USE_FLASH_ATTENTION, and SDPA itself skips a kernel its build lacks, so the call came from
    code that picks the op itself (a library's dispatcher, a model's fused path)."""
    m = _NOT_ENABLED.search(body_of(f))
    if m is None:
        return []
    words, flag = (
        ("flash", "USE_FLASH_ATTENTION")
        if "flash" in m.group(1).lower()
        else ("memory-efficient", "USE_MEM_EFF_ATTENTION")
    )
    windows = "windows" in f.platforms
    return [
        ClassAnswer(
            class_id="torch-built-without-sdpa-kernel",
            title=f"torch's {words} attention op was called, and this torch is built without it",
            cause=(
                f"code called torch's fused {words} attention op directly, and this torch was "
                f"built without it ({flag} off"
                + (": official Windows wheels leave flash attention out" if windows else "")
                + "). scaled_dot_product_attention itself would have picked another kernel; "
                "the call came from code that chooses the op itself (a library's dispatcher, as "
                "xformers' flash path did on Windows, or a model's own fused path)."
            ),
            fix=(
                "upgrade the caller (xformers, the node or model code) to a release that checks "
                "the kernel is built, or set it to use SDPA / another attention backend",
                "pip install --upgrade torch   # on Linux: an official wheel, built with it",
            ),
            evidence=(("missing kernel", words), ("torch build", f.torch_build or "not shown")),
            source=(
                "pytorch aten/src/ATen/native/transformers/cuda/attention.cu and "
                f'attention_backward.cu (#else: TORCH_CHECK(false, "{flag} was not enabled for '
                'build.")), read on main'
            ),
            line=line_of(f, r"was not enabled for build"),
        )
    ]


_NAN = re.compile(
    r"\bNaNs?\b|\bnan (?:loss|grad)|\b(?:loss|grad\w*)\W{0,3}(?:is |=\s*)?nan\b", re.I
)
_CUDNN_SDPA = re.compile(
    r"CUDNN_ATTENTION|cudnn_attention|enable_cudnn_sdp|cuDNN (?:SDPA|attention|backend)"
    r"|SDPBackend\.CUDNN",
    re.I,
)


def sdpa_cudnn_nan(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """NaN outputs or gradients with SDPA's cuDNN kernel: torch releases that put cuDNN first
    on Hopper/Blackwell (2.5.0; 2.11 on with a recent cuDNN) met backward bugs in it for some
    shapes and masks; the other SDPA kernels give finite results for the same inputs."""
    body = body_of(f)
    if not (_NAN.search(body) and _CUDNN_SDPA.search(body)):
        return []
    torch = f.version("torch")
    return [
        ClassAnswer(
            class_id="torch-sdpa-cudnn-backend-nan-bug",
            title="NaN from SDPA's cuDNN attention kernel",
            cause=(
                "scaled_dot_product_attention ran its cuDNN kernel, which torch prefers on "
                "Hopper/Blackwell GPUs in some releases (2.5.0; 2.11 and later with cuDNN newer "
                "than 9.15), and that kernel's backward has given NaN for some shapes, layouts "
                "and masks (torch 2.5.0 with transposed outputs; from 2.11 sequence lengths of "
                "64 mod 128 with a mask); the same inputs through the flash or memory-efficient "
                f"kernel stay finite{' (this log shows torch ' + torch + ')' if torch else ''}."
            ),
            fix=(
                "torch.backends.cuda.enable_cudnn_sdp(False)   # at start-up: SDPA then uses "
                "flash / memory-efficient",
                # only 2.5.0's default is lifted by an upgrade: 2.11 on prefer cuDNN again
                *(
                    ("or pip install 'torch>=2.5.1,<2.11'   # 2.5.1 made cuDNN attention opt-in",)
                    if torch and torch.startswith("2.5.0")
                    else ()
                ),
            ),
            evidence=(("NaN", "reported"), ("SDPA kernel", "cuDNN")),
            source=(
                "wheels_index/sdpa_dispatch.toml (releases whose default dispatch puts cuDNN "
                "first); pytorch/pytorch#139298 and #138522 (2.5.1 'Make CuDNN Attention Opt "
                "in'), #196678 (2.11+ backward NaN)"
            ),
            line=line_of(f, r"NaN|nan"),
        )
    ]


_SDPA_OP_NOT_ON_DEVICE = re.compile(
    r"operator 'aten::_scaled_dot_product_(flash|efficient|cudnn)_attention(_backward)?\w*' is "
    r"not currently implemented for the (\w+) device"
)
"""torch's dispatcher: the device's build has no kernel for one of SDPA's fused ops."""


_ATTN_OP_NOT_ON_DEVICE = re.compile(
    r"operator '(?P<op>[\w:.]*attention[\w:.]*)' is not currently implemented for the "
    r"(?P<device>\w+) device"
)
"""torch's dispatcher refusing a library's attention op (IPEX's torch_ipex::…attention_mask) on a
device it has no kernel for."""


def sdpa_kernel_not_on_device(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """A fused SDPA op (the memory-efficient backward, flash) has no kernel in this device's
    torch build (XPU, MPS): the caller forced that kernel, or a release dispatched to it."""
    m = _SDPA_OP_NOT_ON_DEVICE.search(body_of(f))
    if m is None:
        return _library_op_not_on_device(f)
    kernel = {"flash": "flash", "efficient": "memory-efficient", "cudnn": "cuDNN"}[m.group(1)]
    part = " backward" if m.group(2) else ""
    device = m.group(3).upper()
    return [
        ClassAnswer(
            class_id="torch-built-without-sdpa-kernel",
            title=f"torch's {device} build has no SDPA {kernel}{part} kernel",
            cause=(
                f"scaled_dot_product_attention reached its {kernel}{part} op, and torch's {device} "
                "build has no kernel for it: the caller forced that kernel (sdpa_kernel, or "
                "calling the op directly), or this torch release dispatches to a kernel its "
                f"{device} build does not have."
            ),
            fix=(
                "let SDPA choose, or allow the math kernel: with sdpa_kernel([SDPBackend.MATH, …])",
                f"pip install --upgrade torch   # a newer {device} build may have the kernel",
            )
            + (
                ("PYTORCH_ENABLE_MPS_FALLBACK=1   # run the op on the CPU",)
                if device == "MPS"
                else ()
            ),
            evidence=(("op", m.group(0).split("'")[1]), ("device", device)),
            source="torch's dispatcher error for an op without a kernel for the device (the "
            "op names read from the message)",
            line=line_of(f, r"not currently implemented for the"),
        )
    ]


def _library_op_not_on_device(f: TextFacts) -> list[ClassAnswer]:
    """Another library's attention op with no kernel for the device the tensors are on."""
    m = _ATTN_OP_NOT_ON_DEVICE.search(body_of(f))
    if m is None or m.group("op").startswith("aten::"):
        return []
    device = m.group("device").upper()
    env = {"XPU": "PYTORCH_ENABLE_XPU_FALLBACK=1", "MPS": "PYTORCH_ENABLE_MPS_FALLBACK=1"}
    return [
        ClassAnswer(
            class_id="backend-needs-other-device",
            title=f"{m.group('op')} has no {device} kernel",
            cause=(
                f"the attention op {m.group('op')} has kernels for other devices only, and the "
                f"tensors are on the {device}: the library that registers it does not implement "
                "it there (in this release)."
            ),
            fix=(
                *(
                    (f"{env[device]}   # run the op on the CPU, as torch's message offers",)
                    if device in env
                    else ()
                ),
                "upgrade the library that registers the op, or run that model on a device it "
                "supports",
            ),
            evidence=(("op", m.group("op")), ("device", device)),
            source="torch's dispatcher error for an op without a kernel for the device (the op "
            "read from the message)",
            line=line_of(f, r"not currently implemented for the"),
        )
    ]


_CUTLASS_NO_KERNEL = re.compile(r"cutlass(?P<dir>[FB]): no kernel found to launch")


def sdpa_mem_efficient_no_kernel(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """torch's memory-efficient SDPA kernel (the CUTLASS one xformers also ships) found no kernel
    for this dtype on this GPU: its bfloat16 kernels exist only for sm_80 and newer, so bf16 on a
    V100 or T4 has none. With xformers in the message its own entry answers."""
    body = body_of(f)
    m = _CUTLASS_NO_KERNEL.search(body)
    if m is None or re.search(r"xformers", body, re.I):
        return []
    old = [sm for sm in f.sms if sm < 80]
    bf16 = any(d in {"bfloat16", "bf16"} for d in f.dtypes)
    if f.sms and not old and not bf16:
        return []  # an Ampere or newer GPU has every dtype: another cause
    said = f"the GPU is sm_{old[0]}" if old else "the message names neither the GPU nor the dtype"
    return [
        ClassAnswer(
            class_id="dtype-unsupported",
            title="torch's memory-efficient attention has no kernel for this dtype on this GPU",
            cause=(
                "torch's memory-efficient SDPA kernel (CUTLASS, "
                + ("forward" if m.group("dir") == "F" else "backward")
                + ") has bfloat16 kernels only for sm_80 (Ampere) and newer; run in bf16 on an "
                f"older GPU, it finds none to launch ({said}"
                + (
                    "; the message shows bfloat16"
                    if bf16
                    else "; bf16 on a pre-Ampere GPU is the usual cause"
                )
                + ")."
            ),
            fix=(
                "run the model in float16 on this GPU (torch_dtype=torch.float16, "
                "--dtype float16, or the app's fp16 / half-precision setting)",
                "or restrict SDPA to the math kernel for this call: with "
                "torch.nn.attention.sdpa_kernel(SDPBackend.MATH): ...",
            ),
            evidence=(
                ("kernel", f"cutlass{m.group('dir')}"),
                *((("gpu", f"sm_{old[0]}"),) if old else ()),
                *((("dtype", "bfloat16"),) if bf16 else ()),
            ),
            source=(
                "pytorch aten/src/ATen/native/transformers/cuda/mem_eff_attention (the CUTLASS "
                "kernels instantiated per architecture and dtype, bf16 from Sm80; 'cutlassF: no "
                "kernel found to launch!' when none matches) — the instantiation list not re-read"
            ),
            line=line_of(f, m.group(0)),
        )
    ]
