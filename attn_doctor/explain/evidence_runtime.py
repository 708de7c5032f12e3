"""Evidence about what a runtime library says of one attention call, kept apart from
``evidence.py`` for size: SDPA's mask/query dtype check, a cuDNN too old for the attention
graph (torch's cuDNN SDPA, TransformerEngine's fused attention), the cuDNN version a log shows,
and a Hub-kernels variant list offering a stable-ABI build. Pure functions of the normalised
text; ``extract_facts`` calls ``read_runtime``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_DT = r"(?:c10::|torch\.)?(\w+(?: int)?)"  # "long int": the dtype as C++ names it
_MASK_DTYPE = re.compile(
    r"Expected attn[_ ]mask dtype to be bool or (?:float or )?to match query dtype,? but got "
    rf"attn_mask\.dtype:?\s*{_DT},?\s+and\s+query\.dtype:?\s*{_DT}",
    re.I,
)
"""torch's SDPA input check (aten/src/ATen/native/transformers/attention.cpp,
validate_sdpa_input), in its 2.0 wording and the later one that also allows float."""
_MASK_DTYPE_LOOSE = re.compile(
    r"attn_mask\b[^\n]{0,40}\bdtype\b[^\n]{0,60}\b(?:match|same)\b[^\n]{0,20}\bquery"
    # the memory-efficient kernel's own check (torch's attention.cu and xformers' copy)
    r"|invalid dtype for bias - should match query's dtype",
    re.I,
)
_XF_QKV = re.compile(
    r"Query/Key/Value should (?:either )?all have the same dtype[^\n]*"
    r"(?:\s+query\.dtype\s*:\s*(?:torch\.)?(\w+)\s+key\.dtype\s*:\s*(?:torch\.)?(\w+)"
    r"\s+value\.dtype\s*:\s*(?:torch\.)?(\w+))?"
)
"""xformers' input check (fmha/common.py, Inputs.validate_inputs), with the dtypes it lists on
the lines after it."""
_QKV_MISMATCH = re.compile(
    r"Expected query, key, and value to have the same (dtype|device type)(?:, but got "
    # MSVC builds name the type with its keyword ("struct c10::Half")
    r"query\.(?:dtype|device):\s*(?:struct |class )?(\S+?)\s+key\.(?:dtype|device):\s*"
    r"(?:struct |class )?(\S+?)\s+and\s+value\.(?:dtype|device):\s*(?:struct |class )?(\S+?)"
    r"\s+instead)?"
)
"""torch's SDPA input check (validate_sdpa_input): q, k and v of different dtypes or devices
(the wording read in torch 2.13.0's libtorch_cpu)."""
_SDPA_HEADS = re.compile(
    r"same num_heads\.?\s*Query\.sizes\(\):\s*\[(\d+),\s*(\d+),[^\]]*\],\s*Key sizes\(\):\s*"
    r"\[(\d+),\s*(\d+),"
)
"""torch's SDPA reason for skipping the fused kernels when q and k/v have other head counts
("For dense input, both fused kernels require query, key and value to have the same num_heads.
Query.sizes(): [1, 32, 128, 64], Key sizes(): [1, 8, 128, 64] …", read in 2.13.0's
libtorch_cpu)."""
_CUDNN_TOO_OLD = re.compile(
    r"cuDNN version (?:is )?too old|cuDNN (?:is )?too old|cudnn version below \d+(?:\.\d+)*"
    r"|requires? cuDNN \d+(?:\.\d+)* or (?:above|newer|higher|later)",
    re.I,
)
"""A cuDNN the message calls too old, or a cuDNN feature refused "with cudnn version below
9.0.0" (cuDNN Frontend's gates)."""
_FUSED_ATTN = re.compile(
    r"\bnvte_fused_attn_(?:fwd|bwd)\w*|\btex\.fused_attn_(?:fwd|bwd)\b"
    r"|\bfused_attn_(?:f16|fp8)\w*\.cu\b"  # TransformerEngine's own source files
    r"|\b(?:NVTE_)?F16_(?:arbitrary|max512)_seqlen\b"  # its cuDNN fused-attention backends
)
_FUSED_REFUSED = re.compile(
    r"Invalid combination of data type and sequence length for fused attention"
    # TransformerEngine's NVTE_CHECK_CUDNN with no reason after it (a stated reason, such as
    # a head-dim limit, is read as that)
    r"|\bcuDNN Error\s*$"
    r"|No (?:valid )?execution plans? support(?:s)? the graph"
    r"|No execution plans built successfully"
    # cuDNN frontend's own graph check of the softmax node's outputs (newer cuDNN allow more)
    r"|CompositeSoftmaxNode can only output"
    r"|CUDNN_STATUS_(?:NOT_SUPPORTED|EXECUTION_FAILED)",
    re.I | re.M,
)
_CUDNN_VERSION = re.compile(
    r"\bCuDNN \(v(\d)(\d{2})(\d{2})\b|\bcuDNN (?:version )?v?([89]\.\d+(?:\.\d+)?)", re.I
)
_FA_LATEST = re.compile(
    r"\b(\d+\.\d+\.\d+)\.? is the latest supported"
    r"|Supported flash-attn versions are [^\n]{0,40}?<=\s*(\d+\.\d+(?:\.\d+)?(?:\.post\d+)?)"
    r"|FlashAttention maximum version (\d+\.\d+(?:\.\d+)?(?:\.post\d+)?) is supported",
    re.I,
)
_FA_FOUND = re.compile(r"\bFound flash-attn (\d+\.\d+(?:\.\d+)?(?:\.post\d+)?)", re.I)
"""The flash-attn release TransformerEngine's range check found ("Found flash-attn 2.8.3")."""
"""TransformerEngine's flash-attn range warning (its attention backends' version check):
"Supported flash-attn versions are >= 2.1.1, <= 2.6.3", told in prose as "2.6.3 is the
latest supported"."""
_ENTRY_POINT = re.compile(
    # the symbol may be missing when the dialog's text is retyped ("The procedure entry point
    # could not be located in the dynamic link library …\_C.pyd")
    r"procedure entry point\s+(?:(?P<sym>[^\n]{1,300}?)\s+)?could not (?:be )?locat\w*\s+in the "
    r"dynamic link library\s+(?P<dll>[^\n]*?\.(?:pyd|dll))",
    re.I,
)
"""Windows' loader (ERROR_PROC_NOT_FOUND told by the dialog): an MSVC-decorated name and the
DLL that needed it."""
_PROC_NOT_FOUND = re.compile(
    r"DLL load failed(?: while importing (?P<mod>[\w.]+))?:\s*The specified "
    r"(?P<what>procedure|module) could not be found",
    re.I,
)
"""Python's ImportError for the same loader error, without the name."""
_TORCH_NS = re.compile(r"@(?:at|c10|torch|caffe2|aten)@", re.I)
_NO_OP = re.compile(
    r"No such operator (\w+)(?:::(\w+))?"
    r"|'_OpNamespace' '(\w+)' object has no attribute '(\w+)'"
    r"|Could not find the operator (\w+)::(\w+)",
)
"""torch.ops finding no operator in a namespace: "No such operator xformers::…" (torch < 2.0's
_OpNamespace), "'_OpNamespace' 'xformers' object has no attribute …" (later), and the
dispatcher's "Could not find the operator ns::op"."""
_TENSOR_DEVICE = re.compile(
    r"\bdevice=(?:device\(type=)?'?(cpu|mps|xpu|meta)\b"
    r"|\b(?:q|k|v|query|key|value|out|qkv)\w{0,8} must be (?:on CUDA|a CUDA tensor)\b"
    # SageAttention's, FlashAttention-4's and diffusers' wordings of the same check
    r"|All tensors need to be on cuda device\. Got query on device: (cpu|mps|xpu)\b"
    r"|\b(?:Input tensors|inputs|Query, key,? and value) must be on (?:a )?(?:CUDA|cuda)\b"
    r"(?! device with compute capability)"
)
"""The device an attention kernel got its tensors on, as the kernel's own check says it:
xformers' dispatch ("device=cpu (supported: {'cuda'})" from 0.0.2x, the older
"AttentionOpDispatch(dtype=…, device=device(type='cpu'), …)"), flash-attn's CHECK_DEVICE ("q
must be on CUDA", csrc/flash_attn/flash_api.cpp) and FlashInfer's CHECK_CUDA ("… must be a CUDA
tensor")."""
_CPU_RUN = re.compile(
    r"\bCPU[- ](?:training|inference|only mode)\b"
    r"|\b(?:training|inference|running) on (?:the )?CPU\b"
    r"|\bis not available on CPU\b|\bmake sure torch can access a CUDA device\b"
    r"|\bwith no GPU available\b",
    re.I,
)
"""A run told in words to be on the CPU ("CPU training"): its tensors are on the CPU."""
_NO_DEVICE_CODE = re.compile(
    r"kernel (\w+) has no device code compatible with CUDA arch (\d{2,4})"
    r"(?:[^\n]*?compiled for:?\s*([\d ,]+))?",
    re.I,
)
"""ggml's CUDA backend (ggml-cuda/common.cuh, NO_DEVICE_CODE): a kernel compiled out for the
running architecture ("… compatible with CUDA arch 610. ggml-cuda.cu was compiled for: 610"),
the arch written as 100 × major + 10 × minor."""
_FLASH_REQUIRED = re.compile(
    r"Flash[ _-]?Attention\w*(?: ?2)? is not (?:available|installed),? "
    r"but (?:it )?is (?:needed|required)"
    r"|(?:needs?|requires?) flash[-_ ]?attn(?:ention)?\w* (?:to be installed|for (?:dense|this))"
    r"|flash[-_ ]?att(?:n|ention)\w* must be installed",
    re.I,
)
"""Model code that insists on flash-attn whatever attention was chosen (Phi-3-small's remote
code: "Flash Attention is not available, but is needed for dense attention")."""
_IMPL_CHOSEN = re.compile(r"attn_implementation\s*=\s*['\"](eager|sdpa)['\"]")
_NO_NINJA = re.compile(
    r"could not find ninja|Falling back to using the slow distutils backend"
    r"|ninja (?:is )?not (?:installed|found)|without ninja",
    re.I,
)
"""torch.utils.cpp_extension's BuildExtension: "Attempted to use ninja as the BuildExtension
backend but we could not find ninja.. Falling back to using the slow distutils backend." """
_SLOW_BUILD = re.compile(
    r"(?:takes?|taking|took) (?:such )?(?:a |so )?(?:very )?long(?: time)? "
    r"to (?:build|compile|install)"
    r"|(?:build|compil\w*|install\w*) (?:is |was )?(?:very |so |extremely )?(?:slow|takes? forever)"
    r"|(?:compil\w*|build) (?:is |was )?single[- ]thread",
    re.I,
)
_UNPACK = re.compile(
    r"not enough values to unpack \(expected (\d+), got (\d+)\)"
    r"|too many values to unpack \(expected (\d+)\)"
)
_EXT_CALL = re.compile(r"\b(\w+_cuda|\w+_C|_C|_C_\w+|tex)\.(\w+)\(")
"""A call into a compiled extension module (``flash_attn_cuda.varlen_fwd(``, ``_C.fwd(``)."""
_AMD_GPU = re.compile(
    r"\b(?:Instinct\s*)?MI ?(25|50|60|100|210|250X?|300[AX]?|325X|355X)\b|\bRadeon VII\b"
    r"|\bgfx(9\d\w|1[0-2]\d\d)\b",
    re.I,
)
_AMD_TARGET = {
    "25": "gfx900", "50": "gfx906", "60": "gfx906", "100": "gfx908", "210": "gfx90a",
    "250": "gfx90a", "250x": "gfx90a", "300": "gfx942", "300a": "gfx942", "300x": "gfx942",
    "325x": "gfx942", "355x": "gfx950",
}  # fmt: skip
"""AMD Instinct GPUs and their LLVM targets (ROCm's GPU support table)."""
_CK_XDL_REFUSED = re.compile(r"\b(Device\w*_Xdl\w*)\b[^\n]*does not support this problem")
"""composable_kernel: a device op built on XDL (MFMA) instructions refusing the arguments."""
_NO_DIST = re.compile(
    r"(?:PackageNotFoundError:\s*(?:No package metadata was found for\s*)?"
    r"|No package metadata was found for\s*)['\"]?([\w.-]*\w)"
)
"""importlib.metadata finding no distribution of that name (a caller's version check)."""
_STABLE_ABI = re.compile(r"\btorch-stable-abi\d*\b|\bstable[- ]ABI (?:build|variant)", re.I)


_HUB_MISSING = re.compile(
    r"does not have (?:one of )?build(?: variants?)?:|Cannot find a build variant for this system"
    r"|No kernel module found at",
    re.I,
)
_HUB_VARIANT = re.compile(
    r"\btorch(\d)(\d{1,2})-(cxx11|cxx98)-([a-z]+\d*)-(\w+?)-(linux|darwin|windows)\b"
    r"|\btorch-(cpu|universal|cuda|rocm|xpu|metal|npu)\b"
)
"""A Hub kernel build variant as the ``kernels`` package names it: ``torch27-cxx11-cann81-aarch64
-linux`` (torch 2.7, C++11 ABI, CANN 8.1, aarch64 Linux) or a generic ``torch-universal``."""


@dataclass(frozen=True, kw_only=True)
class RuntimeFacts:
    sdpa_heads: tuple[int, int] | None = None
    """(query heads, key/value heads) SDPA's fused kernels refused as different."""
    qkv_mismatch: tuple[str, str, str, str] | None = None
    """("dtype" or "device type", query's, key's, value's) when SDPA refused q/k/v that differ."""
    mask_dtype: tuple[str, str] | None = None
    """(mask dtype, query dtype) SDPA refused; ``("", "")`` when the check is told in prose."""
    cudnn_too_old: bool = False
    """A library said the cuDNN it loaded is too old ("The cuDNN version is too old")."""
    cudnn_floor: str | None = None
    """The cuDNN release a refused feature needs ("not supported with cudnn version below
    9.0.0")."""
    fused_attn_refused: bool = False
    """TransformerEngine's fused attention (``nvte_fused_attn_fwd``/``tex.fused_attn_bwd``)
    found no cuDNN graph for the call."""
    cudnn: str | None = None
    """The cuDNN version the log shows (``9.1.0`` from ``CuDNN (v90100 …``)."""
    fa_found: str | None = None
    """The flash-attn release a range check reports finding."""
    fa_above_asserted: bool = False
    """TransformerEngine asserted the installed flash-attn is above its maximum ("FlashAttention
    maximum version 2.5.8 is supported." is raised only then)."""
    fa_latest_supported: str | None = None
    """The newest flash-attn a dependent package says it supports (TransformerEngine)."""
    entry_point_missing: tuple[str, str, bool] | None = None
    """Windows: (symbol or "", the module that needed it, the symbol is libtorch's)."""
    dll_not_found: bool = False
    """With ``entry_point_missing``: the loader found no DLL the module links to ("The
    specified module could not be found"), rather than no procedure in one."""
    ops_missing: tuple[str, str] | None = None
    """(namespace, operator or "") torch.ops did not find: the extension registering them did
    not load or was not built with them."""
    no_device_code: tuple[str, int, tuple[int, ...]] | None = None
    """(kernel, sm, the archs the binary was compiled for) from ggml's NO_DEVICE_CODE."""
    flash_required_by_model: bool = False
    """Model code says it needs flash-attn whatever attention was chosen."""
    attn_impl_chosen: str | None = None
    """``eager``/``sdpa`` when the caller chose one (``attn_implementation="eager"``)."""
    no_ninja: bool = False
    """A build ran without ninja: torch's fallback warning, or a slow, single-threaded build
    told in prose with no ninja in sight."""
    unpack_from_extension: str | None = None
    """The compiled module whose call returned another number of values than the Python code
    unpacks (the code line just above "not enough values to unpack")."""
    unpack_mismatch: bool = False
    """Any "not enough / too many values to unpack" in the message."""
    amd_targets: tuple[str, ...] = ()
    """LLVM targets of the AMD GPUs named (``MI50`` -> ``gfx906``, ``gfx1100`` as written)."""
    ck_xdl_refused: str | None = None
    """A composable_kernel XDL device op that said it "does not support this problem"."""
    dist_not_found: tuple[str, ...] = ()
    """Distribution names importlib.metadata found no metadata for."""
    tensor_device: str | None = None
    """Where an attention kernel's tensors were (``cpu``, ``mps``…), as its own check says it."""
    hub_variants: tuple[tuple[str, str, str, str], ...] = ()
    """(torch X.Y, accelerator, cpu arch, os) of each Hub kernel build variant the ``kernels``
    package said the kernel lacks; ``("", "universal", "", "")`` for a generic one."""
    stable_abi_variant: bool = False
    """A Hub kernel's variant list shows a stable-ABI build (``torch-stable-abi29-…``)."""


def read_runtime(body: str) -> RuntimeFacts:
    """The facts above, from the normalised text."""
    mask: tuple[str, str] | None = None
    if m := _MASK_DTYPE.search(body):
        mask = (m.group(1), m.group(2))
    elif _MASK_DTYPE_LOOSE.search(body):
        mask = ("", "")
    cudnn = None
    if v := _CUDNN_VERSION.search(body):
        cudnn = v.group(4) or f"{int(v.group(1))}.{int(v.group(2))}.{int(v.group(3))}"
    entry: tuple[str, str, bool] | None = None
    flat = re.sub(r"\s*\n\s*", " ", body)
    if e := _ENTRY_POINT.search(flat):
        parts = [p for p in re.split(r"[\\/]", e.group("dll")) if p]
        name = parts[-1].rsplit(".", 1)[0]
        # An extension module named _C/_fused is known by its package folder (xformers\_C.pyd).
        module = f"{parts[-2]}.{name}" if name.startswith("_") and len(parts) > 1 else name
        sym = (e.group("sym") or "").strip()
        entry = (sym, module, bool(_TORCH_NS.search(sym)))
    elif p := _PROC_NOT_FOUND.search(body):
        entry = ("", p.group("mod") or "", False)
    ops = None
    if o := _NO_OP.search(body):
        g = list(o.groups())
        ns = next(x for x in (g[0], g[2], g[4]) if x)
        ops = (ns, (g[1] if g[0] else g[3] if g[2] else g[5]) or "")
    ndc = None
    if n := _NO_DEVICE_CODE.search(body):
        built = tuple(int(a) // 10 for a in re.findall(r"\d{2,4}", n.group(3) or ""))
        ndc = (n.group(1), int(n.group(2)) // 10, built)
    impl = _IMPL_CHOSEN.search(body)
    no_ninja = bool(_NO_NINJA.search(body)) or bool(
        _SLOW_BUILD.search(body) and not re.search(r"\bninja\b", body, re.I)
    )
    ext_unpack = None
    lines = body.splitlines()
    for i, line in enumerate(lines):
        # the values unpacked, or pybind11 refusing the arguments the Python side passes
        if _UNPACK.search(line) or re.search(r"\(\): incompatible function arguments", line):
            for prev in reversed(lines[max(0, i - 3) : i]):
                if c := _EXT_CALL.search(prev):
                    ext_unpack = c.group(1)
                    break
            break
    targets: dict[str, None] = {}
    for a in _AMD_GPU.finditer(body):
        if a.group(1):
            targets[_AMD_TARGET[a.group(1).lower()]] = None
        elif a.group(2):
            targets["gfx" + a.group(2).lower()] = None
        else:
            targets["gfx906"] = None  # Radeon VII
    ck = _CK_XDL_REFUSED.search(body)
    td = _TENSOR_DEVICE.search(body)
    qkv_fact: tuple[str, str, str, str] | None = None
    if (qkv := _QKV_MISMATCH.search(body)) or (qkv := _XF_QKV.search(body)):
        # torch's check names what differs first; xformers' lists only dtypes
        what, first = (qkv.group(1), 2) if qkv.re is _QKV_MISMATCH else ("dtype", 1)
        qd, kd, vd = (qkv.group(i) or "(cut off)" for i in range(first, first + 3))
        qkv_fact = (what, qd, kd, vd)
    hd = _SDPA_HEADS.search(re.sub(r"\s*\n\s*", " ", body))
    return RuntimeFacts(
        sdpa_heads=(int(hd.group(2)), int(hd.group(4))) if hd else None,
        qkv_mismatch=qkv_fact,
        tensor_device=(td.group(1) or td.group(2) or "cpu")
        if td
        else "cpu"
        if _CPU_RUN.search(body)
        else None,
        dist_not_found=tuple(dict.fromkeys(m.group(1).lower() for m in _NO_DIST.finditer(body))),
        amd_targets=tuple(targets),
        ck_xdl_refused=ck.group(1) if ck else None,
        unpack_from_extension=ext_unpack,
        unpack_mismatch=bool(_UNPACK.search(body)),
        flash_required_by_model=bool(_FLASH_REQUIRED.search(body)),
        attn_impl_chosen=impl.group(1) if impl else None,
        no_ninja=no_ninja,
        no_device_code=ndc,
        ops_missing=ops,
        entry_point_missing=entry,
        dll_not_found=bool(
            (pm := _PROC_NOT_FOUND.search(body)) and pm.group("what").lower() == "module"
        ),
        mask_dtype=mask,
        cudnn_too_old=bool(_CUDNN_TOO_OLD.search(body)),
        cudnn_floor=(
            (fl.group(1) or fl.group(2))
            if (
                fl := re.search(
                    r"cudnn version below (\d+(?:\.\d+)*)"
                    r"|requires? cuDNN (\d+(?:\.\d+)*) or (?:above|newer|higher|later)",
                    body,
                    re.I,
                )
            )
            else None
        ),
        fused_attn_refused=bool(_FUSED_ATTN.search(body) and _FUSED_REFUSED.search(body)),
        cudnn=cudnn,
        fa_latest_supported=(
            (m2.group(1) or m2.group(2) or m2.group(3)) if (m2 := _FA_LATEST.search(body)) else None
        ),
        fa_above_asserted=bool(m2 and m2.group(3)),
        fa_found=(m3.group(1) if (m3 := _FA_FOUND.search(body)) else None),
        hub_variants=_hub_variants(body),
        stable_abi_variant=bool(_STABLE_ABI.search(body)),
    )


def _hub_variants(body: str) -> tuple[tuple[str, str, str, str], ...]:
    if not _HUB_MISSING.search(body):
        return ()
    out: dict[tuple[str, str, str, str], None] = {}
    for m in _HUB_VARIANT.finditer(body):
        if m.group(7):
            out[("", m.group(7), "", "")] = None
        else:
            out[(f"{m.group(1)}.{m.group(2)}", m.group(4), m.group(5), m.group(6))] = None
    return tuple(out)
