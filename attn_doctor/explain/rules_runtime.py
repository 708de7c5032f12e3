"""Classes over what a runtime library says of one attention call
(``evidence_runtime.RuntimeFacts`` and the GPU facts): SDPA refusing a mask of another dtype,
a cuDNN too old for the attention graph (torch's cuDNN SDPA, TransformerEngine's fused
attention), torch 2.0.0 dispatching SDPA's flash backward on sm86/sm89, and a ``kernels``
client too old to pick a stable-ABI build of a Hub kernel."""

from __future__ import annotations

import re

from packaging.version import Version

from attn_doctor.explain.answer import (
    ClassAnswer,
    backends_in,
    body_of,
    line_of,
    version_of,
)
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.knowledge import Knowledge
from attn_doctor.explain.rules_backend import _module_backend


def _cudnn_fix(f: TextFacts, need: str) -> str:
    major = (f.torch_cuda or "12").split(".")[0]
    return f"pip install --upgrade 'nvidia-cudnn-cu{major}>={need}'"


_TORCH_SDPA = re.compile(
    r"scaled_dot_product|\bsdpa?\b|SDPBackend|sdp_utils|_cudnn_attention", re.I
)
"""torch's own SDPA in the message: its cuDNN backend, not another library's cuDNN graph."""


def cudnn_too_old_for_attention(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """A cuDNN older than the attention graph needs: TransformerEngine's fused attention finds
    no cuDNN backend for the call (newer masks, head dims and layouts arrive release by release
    in cuDNN 9.x), or torch's cuDNN SDPA says the bundled cuDNN is too old."""
    rt = f.runtime
    have = f" (this log shows cuDNN {rt.cudnn})" if rt.cudnn else ""
    if rt.fused_attn_refused:
        return [
            ClassAnswer(
                class_id="cudnn-too-old-for-fused-attention",
                title="cuDNN too old for TransformerEngine's fused attention",
                cause=(
                    "TransformerEngine's fused attention found no cuDNN graph for this call's "
                    "dtype, sequence lengths, mask or head dims: cuDNN adds such combinations "
                    "release by release (bottom-right causal masks from 9.3, head dims over 128 "
                    f"in the backward from 9.5), so the installed cuDNN is too old{have}."
                ),
                fix=(
                    _cudnn_fix(f, "9.5"),
                    "or let TransformerEngine use another backend: NVTE_FUSED_ATTN=0 "
                    "(with a flash-attn version it supports)",
                ),
                evidence=(("fused attention", "refused"), ("cuDNN", rt.cudnn or "not shown")),
                source=(
                    "NVIDIA/TransformerEngine transformer_engine/common/fused_attn/fused_attn.cpp "
                    "(nvte_get_fused_attn_backend) and its cuDNN version gates — unverified: "
                    "not re-read; the version floors are from the maintainers' answers"
                ),
                line=line_of(f, r"fused_attn|fused attention|execution plans"),
            )
        ]
    body = body_of(f)
    if (
        rt.cudnn_floor
        and re.search(r"requires? cuDNN \d", body, re.I)
        and not _TORCH_SDPA.search(body)
    ):
        # another library's cuDNN attention graph (FlashInfer's cuDNN prefill, JAX) states
        # the cuDNN release it needs
        return [
            ClassAnswer(
                class_id="cudnn-too-old-for-fused-attention",
                title=f"this cuDNN attention graph needs cuDNN {rt.cudnn_floor} or newer",
                cause=(
                    f"the cuDNN attention graph this call builds needs cuDNN {rt.cudnn_floor} "
                    f"or newer, as the message says; the cuDNN loaded is older{have}. cuDNN "
                    "adds attention features (sequence-length forms, masks, head dims) release "
                    "by release."
                ),
                fix=(
                    f"pip install --upgrade 'nvidia-cudnn-cu<cuda_major>>={rt.cudnn_floor}'",
                    "or choose the library's other attention backend for this call",
                ),
                evidence=(("needs cuDNN", rt.cudnn_floor), ("cuDNN", rt.cudnn or "older")),
                source="the message itself (the cuDNN version the graph requires)",
                line=line_of(f, r"cuDNN"),
            )
        ]
    if rt.cudnn_too_old:
        torch = f.version("torch")
        return [
            ClassAnswer(
                class_id="torch-cudnn-too-old-for-cudnn-attention",
                title="the cuDNN torch loaded is too old for cuDNN attention",
                cause=(
                    (
                        f"torch's cuDNN attention refuses these inputs (sequence lengths or "
                        f"head dim not a multiple of 64, dropout, a bias gradient) with a cuDNN "
                        f"below {rt.cudnn_floor} (as the message says); the cuDNN this torch"
                        f"{(' ' + torch) if torch else ''} loaded is older{have}."
                    )
                    if rt.cudnn_floor
                    else "torch's cuDNN attention backend for scaled_dot_product_attention "
                    f"needs cuDNN 9; the cuDNN this torch{(' ' + torch) if torch else ''} "
                    f"loaded is older{have}."
                ),
                fix=(
                    f"pip install --upgrade 'nvidia-cudnn-cu<cuda_major>>={rt.cudnn_floor}'   "
                    "# or a torch build that bundles it"
                    if rt.cudnn_floor
                    else "pip install --upgrade torch   # a build that bundles cuDNN 9",
                    "or: torch.backends.cuda.enable_cudnn_sdp(False)   # use another SDPA backend",
                ),
                evidence=(("cuDNN", rt.cudnn or "too old"),),
                source=(
                    "pytorch aten/src/ATen/native/transformers/cuda/sdp_utils.cpp "
                    "(check_cudnn_version) — unverified: not re-read"
                ),
                line=line_of(f, r"cuDNN"),
            )
        ]
    return []


_CUDNN_ATTENTION = re.compile(
    r"dot_product_attention|cudnn_attention|cuDNN attention|scaled_dot_product|fused_attn"
    r"|implementation=['\"]cudnn['\"]",
    re.I,
)


def cudnn_library_missing(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """cuDNN attention could not load one of cuDNN's own libraries (cuDNN 9 loads its engines
    and graph libraries at run time; cuDNN 8 its cnn/adv libraries): the cuDNN installation is
    incomplete, or another cuDNN comes first on the library path."""
    libs = [lib for lib in f.missing_libraries if lib.startswith("libcudnn")]
    if not libs or not _CUDNN_ATTENTION.search(body_of(f)):
        return []
    major = (f.torch_cuda or "12").split(".")[0]
    return [
        ClassAnswer(
            class_id="backend-dependency-missing",
            title=f"cuDNN attention cannot load {libs[0]}",
            cause=(
                f"cuDNN attention needs {libs[0]}, one of cuDNN's own libraries, which cuDNN "
                "loads when the attention graph is built; it was not found: the cuDNN "
                "installation is incomplete (a split cuDNN 9 install without its engines "
                "library), or another cuDNN comes first on the library path (LD_LIBRARY_PATH, "
                "a system cuDNN) instead of the one the framework ships."
            ),
            fix=(
                "ldconfig -p | grep libcudnn; echo $LD_LIBRARY_PATH   # which cuDNN is found first",
                f"pip install --force-reinstall 'nvidia-cudnn-cu{major}'   # the cuDNN wheel the "
                "framework was built with (torch and jax pin their own)",
            ),
            evidence=(("missing library", libs[0]),),
            source=(
                "cuDNN 9 splits into libcudnn_graph/libcudnn_engines_* loaded at run time "
                "(NVIDIA's cuDNN 9 installation guide); the library named is the message's"
            ),
            line=line_of(f, re.escape(libs[0])),
        )
    ]


_SM8X = frozenset({86, 87, 89})


def torch_sdpa_flash_backward_sm8x(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """torch 2.0.0 dispatched SDPA's flash backward on sm86/sm89 for head dims over 64, where
    the kernel asserts ``is_sm80 || is_sm90``; 2.0.1 stopped choosing it there. The GPU is
    inside the kernels' forward range, so this is torch's dispatch, not the GPU."""
    if 80 not in f.required_exact or not f.sms or not set(f.sms) <= _SM8X:
        return []
    torch = f.version("torch")
    v = version_of(torch)
    # The torch must be shown (the flash_attn package's own kernels assert the same on sm8x,
    # and its early releases did so for the backward: that is the GPU range, not torch).
    if v is None or "flash_attn_2" in backends_in(f):
        return []
    if v >= Version("2.0.1") and not (f.nightly and v < Version("2.1")):
        return []
    return [
        ClassAnswer(
            class_id="torch-sdpa-flash-backward-sm8x-dispatch-bug",
            title="torch 2.0.0 chose SDPA's flash backward on an sm8x GPU",
            cause=(
                f"torch{(' ' + torch) if torch else ''} dispatched the FlashAttention backward "
                f"of scaled_dot_product_attention on sm_{f.sms[0]} for a head dim it only runs "
                "on sm80/sm90 there (is_sm80 || is_sm90); torch 2.0.1 no longer picks it on "
                "sm86/sm89."
            ),
            fix=(
                "pip install --upgrade 'torch>=2.0.1'",
                "or, for training on this torch: torch.backends.cuda.enable_flash_sdp(False)",
            ),
            evidence=(("gpu", f"sm_{f.sms[0]}"), ("torch", torch or "not shown")),
            source=(
                "pytorch/pytorch#98140 and the 2.0.1 release notes — unverified: the fix commit "
                "not re-read"
            ),
            line=line_of(f, r"is_sm80"),
        )
    ]


_KERNELS_STABLE_ABI = "0.16"
"""The first ``kernels`` client that picks ``torch-stable-abi…`` builds (vllm-omni's report
of 0.14.1 against 0.16.0; unverified in kernels' own changelog)."""


def kernels_client_too_old_for_stable_abi(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """A Hub kernel publishes a stable-ABI build, but an older ``kernels`` client only matches
    ``torch{XY}`` folders and reports no variant for a torch newer than those."""
    if not f.runtime.stable_abi_variant:
        return []
    line = line_of(f, r"Cannot find a build variant|No kernel module found|variant")
    have = f.version("kernels")
    v = version_of(have)
    if not line or v is None or v >= Version(_KERNELS_STABLE_ABI):
        return []
    return [
        ClassAnswer(
            class_id="kernels-client-too-old-for-stable-abi-variant",
            title="kernels client too old to pick the stable-ABI build",
            cause=(
                f"the Hub kernel publishes a torch-stable-abi build that runs on this torch, "
                f"but kernels {have} only matches exact torch{{major}}{{minor}} builds, so it "
                "finds no variant."
            ),
            fix=(f"pip install --upgrade 'kernels>={_KERNELS_STABLE_ABI}'",),
            evidence=(("kernels", have or ""), ("variant", "torch-stable-abi")),
            source=(
                "wheels_index/hub_kernels.toml (stable-ABI variants); the client version from "
                "vllm-project/vllm-omni's report — unverified in kernels' changelog"
            ),
            line=line,
        )
    ]


def flash_attn_newer_than_dependent_supports(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """A dependent package (TransformerEngine) supports flash-attn only up to a version and the
    installed one is newer: it skips flash-attn and falls back (to cuDNN fused attention),
    whose failure is then what the user sees."""
    latest = f.runtime.fa_latest_supported
    have = f.runtime.fa_found or f.version("flash-attn")
    v, top = version_of(have), version_of(latest)
    above = f.runtime.fa_above_asserted or (v is not None and top is not None and v > top)
    if top is None or not above:
        return []
    # the range check itself raised (TE's assert, Megatron's ValueError): that is the failure
    refused = f.runtime.fa_above_asserted or bool(
        re.search(
            r"(?:Value|Assertion)Error:[^\n]{0,40}(?:Supported flash-attn|maximum version)",
            body_of(f),
        )
    )
    return [
        ClassAnswer(
            class_id="flash-attn-version-outside-supported-range",
            title="flash-attn newer than the dependent package supports",
            cause=(
                f"flash-attn{' ' + have if have else ''} is newer than {latest}, the latest the "
                "dependent package (TransformerEngine) supports: "
                + (
                    "its range check refuses it."
                    if refused
                    else "it does not use that flash-attn and falls back to another attention "
                    "backend (cuDNN fused attention), which is what failed."
                )
            ),
            fix=(
                f"pip install 'flash-attn=={latest}' --no-build-isolation",
                "or upgrade transformer-engine to a release that supports this flash-attn",
            ),
            evidence=(("flash-attn", have or ""), ("latest supported", latest or "")),
            source=(
                "NVIDIA/TransformerEngine's flash-attn version check (its attention module's "
                "supported range warning) — unverified: the file not re-read"
            ),
            line=line_of(f, r"latest supported|Supported flash-attn|maximum version"),
        )
    ]


def windows_extension_entry_point_missing(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """Windows' loader cannot find a procedure a compiled extension imports: a libtorch name
    (``?…@at@@…``), or any name while the message shows the torch it runs with, means the
    extension was built against another torch (its C++ API is not stable across releases)."""
    entry = f.runtime.entry_point_missing
    if entry is None:
        return []
    sym, module, from_torch = entry
    torch = f.version("torch")
    backend = _module_backend(know, module) if module else None
    named = backends_in(f)
    if backend is None and module.startswith("_") and named:
        # a private compiled module (_fused, _qattn, _C) of the attention backend the message
        # names ("Can't import SageAttention: DLL load failed while importing _fused")
        backend = know.backend(named[0])
    dll_missing = f.runtime.dll_not_found
    if not from_torch and not (torch and module) and backend is None:
        return []
    if dll_missing and backend is None:
        return []
    dist = (
        backend.distributions[0]
        if backend and backend.distributions
        else (module.split(".")[0] if module else "the extension")
    )
    return [
        ClassAnswer(
            class_id="extension-built-for-other-torch",
            title=f"{dist} built for another torch",
            cause=(
                (
                    f"Windows cannot load a DLL that {dist}'s compiled {module} links to: the "
                    "binary was built against another torch/CUDA release than this one"
                    f"{(' (' + torch + ')') if torch else ''}, whose library names differ (less "
                    "often, the Microsoft C++ runtime is missing)."
                )
                if dll_missing
                else f"Windows cannot find a procedure {module or 'a compiled extension'} imports"
                + (f" ({sym[:80]}, libtorch's)" if from_torch else "")
                + f" in this torch{(' ' + torch) if torch else ''}: the binary was built "
                "against another torch release, whose C++ symbols differ."
            ),
            fix=(
                f"pip install --force-reinstall --no-deps --no-cache-dir {dist}   # a build "
                "for torch <torch_mm>, or build it from source against this torch",
            ),
            checks=(f"built_for_other_torch:{dist}",) if backend else (),
            evidence=(("module", module or "?"), ("torch", torch or "not shown")),
            source=(
                "Windows' loader error ERROR_PROC_NOT_FOUND (127) and MSVC's decorated names "
                "(@at@/@c10@ are libtorch namespaces)"
            ),
            line=line_of(f, r"procedure|DLL load failed"),
            before_phrases=False,
        )
    ]


def backend_operators_not_registered(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """torch.ops has no operator in a backend's namespace: the backend's compiled extension,
    which registers them when it loads, did not load into this torch (built for another torch
    release or for CPU only) or was built without them."""
    if f.runtime.ops_missing is None or f.torch_build == "rocm":
        return []
    ns, op = f.runtime.ops_missing
    backend = _module_backend(know, ns)
    if backend is None:
        return []
    dist = backend.distributions[0] if backend.distributions else ns
    have = f.version(dist)
    torch = f.version("torch")
    return [
        ClassAnswer(
            class_id=f"{dist}-operator-not-built",
            title=f"{dist}'s compiled operators are not registered in this torch",
            cause=(
                f"torch.ops has no {ns}::{op or '…'}: {dist}{(' ' + have) if have else ''}'s "
                "compiled extension registers its operators when it loads, and it did not load "
                f"into this torch{(' ' + torch) if torch else ''}: the binary was built for "
                "another torch release (or without CUDA)."
            ),
            fix=(
                f"pip install --force-reinstall --no-deps {dist}   # the release built for torch "
                "<torch_mm>",
                f"python -m {ns}.info" if ns == "xformers" else f"python -c 'import {ns}'",
            ),
            checks=(f"built_for_other_torch:{dist}",),
            evidence=(("operator", f"{ns}::{op}" if op else ns), (dist, have or "installed")),
            source=(
                "torch/_ops.py (_OpNamespace.__getattr__: no operator registered under the "
                "namespace) — unverified: wording read in stored tracebacks"
            ),
            line=line_of(f, r"operator|_OpNamespace"),
        )
    ]


def model_code_requires_flash_attn(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """A model's own (remote) code asserts flash-attn although the caller chose eager/SDPA, or
    with trust_remote_code: transformers' attn_implementation does not reach that check."""
    rt = f.runtime
    if not rt.flash_required_by_model:
        return []
    body = body_of(f)
    # the model's own assert (Phi-3-small: "Flash Attention is not available, but is needed for
    # dense attention") marks its code as well as a modeling_*.py path does
    if rt.attn_impl_chosen is None and not re.search(
        r"trust_remote_code|modeling_\w+\.py|AssertionError|dynamic_module_utils"
        r"|transformers_modules",
        body,
    ):
        return []
    chosen = (
        f'attn_implementation="{rt.attn_impl_chosen}"'
        if rt.attn_impl_chosen
        else "another attention"
    )
    return [
        ClassAnswer(
            class_id="transformers-remote-code-needs-flash-attn",
            title="the model's own code requires flash-attn",
            cause=(
                "the model's remote modeling code checks for flash-attn itself and fails without "
                f"it, whatever transformers was told ({chosen} does not reach that check)."
            ),
            fix=(
                "pip install flash-attn --no-build-isolation   # where the GPU supports it "
                "(Ampere or newer)",
                "or load a revision / native transformers class of the model that runs without "
                "flash-attn, or edit the check in the cached modeling_*.py",
            ),
            evidence=(("model code", "needs flash-attn"), ("chosen", rt.attn_impl_chosen or "")),
            source=(
                "transformers dynamic_module_utils (remote code runs as written); the check is "
                "the model's own — unverified: Phi-3-small's modeling file not re-read"
            ),
            line=line_of(f, r"flash[ _-]?att"),
        )
    ]


def backend_build_without_ninja(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A CUDA extension built without ninja: torch's BuildExtension falls back to compiling
    one file at a time, and flash-attn's hundreds of kernels take hours instead of minutes."""
    if not f.runtime.no_ninja:
        return []
    body = body_of(f)
    named = [b for b in backends_in(f) if b not in {"sdpa", "eager", "flex_attention"}]
    pip = re.search(r"pip install[^\n]*?\b(flash[-_]attn|xformers|sageattention)\b", body, re.I)
    if not named and not pip:
        return []
    # Several packages named ("Could not build wheels for flash-attn, vllm, xformers"): the one
    # being built is the one last mentioned before torch's ninja warning.
    warned = re.search(r"ninja", body, re.I)
    cut = body[: warned.start()].lower() if warned else body.lower()

    def last_mention(name: str) -> int:
        b = know.backend(name)
        words = {name, *(b.distributions if b else ()), *(b.modules if b else ())}
        return max(cut.rfind(w.lower().replace("-", sep)) for w in words for sep in "-_")

    named.sort(key=last_mention, reverse=True)
    backend = know.backend(named[0]) if named else None
    dist = (
        backend.distributions[0]
        if backend and backend.distributions
        else (pip.group(1).lower().replace("_", "-") if pip else "the extension")
    )
    return [
        ClassAnswer(
            class_id=f"{dist}-build-without-ninja",
            title=f"{dist} is being built without ninja",
            cause=(
                f"{dist} is compiled from source, and without ninja torch's BuildExtension "
                "compiles one file at a time (the distutils fallback): the build takes hours "
                "instead of minutes."
            ),
            fix=(
                "pip install ninja && ninja --version   # must print a version",
                f"MAX_JOBS=4 pip install {dist} --no-build-isolation   # more jobs as RAM allows",
            ),
            evidence=(("build", dist), ("ninja", "not used")),
            source=(
                "torch/utils/cpp_extension.py (BuildExtension: the slow distutils fallback "
                "without ninja); Dao-AILab/flash-attention README (install ninja) — unverified: "
                "not re-read"
            ),
            line=line_of(f, r"ninja|long time|slow|single"),
        )
    ]


def stale_extension_mixed_install(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A compiled extension returns another number of values than the package's Python code
    unpacks: the two come from different releases (an old ``*_cuda`` .so left by an earlier
    install, or a second copy earlier on the path), so the Python side and the binary disagree."""
    ext = f.runtime.unpack_from_extension
    if ext is None:
        return []
    backend = _module_backend(know, ext)
    top = None
    if backend is None:
        # An older extension name (flash_attn_cuda): the package whose file made the call.
        # The frame's file is on its header line, the call on the source line below it.
        pkg = re.search(
            r"(?:site|dist)-packages[/\\](\w+)[/\\][\w/\\]*?\w+\.py\b[^\n]*\n?[^\n]*"
            + re.escape(ext),
            body_of(f),
        ) or re.search(r"[/\\](\w+)[/\\]\w+\.py\b[^\n]*\n?[^\n]*" + re.escape(ext), body_of(f))
        backend = _module_backend(know, pkg.group(1)) if pkg else None
        top = pkg.group(1) if pkg and pkg.group(1) not in {"torch", "site", "dist"} else None
    if backend is None and top is None:
        return []
    dist = (
        (backend.distributions[0] if backend.distributions else ext)
        if backend is not None
        else str(top).replace("_", "-")
    )
    said = (
        "refused the arguments"
        if re.search(r"incompatible function arguments", body_of(f))
        else "returned another number of values than"
    )
    return [
        ClassAnswer(
            class_id=f"{dist}-stale-extension-mixed-install",
            title=f"{dist}'s compiled extension is from another release than its Python code",
            cause=(
                f"{ext} (the compiled part of {dist}) {said} {dist}'s Python code "
                "passes or expects: the binary and the Python files come from "
                "different releases (a stale extension left by an earlier install or a build "
                "directory, or two copies on the path)."
            ),
            fix=(
                f"pip uninstall -y {dist}   # repeat until pip finds none",
                f'python -c "import {ext}" && echo still present   # remove any copy it finds',
                f"pip install {dist} --no-build-isolation --no-cache-dir",
            ),
            evidence=(("extension", ext), ("error", said)),
            source=(
                "the message's traceback (the call into the compiled module raises the unpack "
                "error); Dao-AILab/flash-attention#469 maintainer answer — unverified beyond "
                "that thread"
            ),
            line=line_of(f, r"values to unpack|incompatible function arguments"),
        )
    ]


_JOINT = r"transformer_(?:flux|sd3|hunyuan\w*|cogview\w*|lumina\w*|mochi|ltx)"


def diffusers_xformers_processor_for_joint_attention(
    f: TextFacts, _know: Knowledge
) -> list[ClassAnswer]:
    """diffusers' xformers processor returns one tensor, while joint-attention transformers
    (Flux, SD3…) unpack two (image and text streams): enabling xformers memory-efficient
    attention on them swaps in a processor they cannot use."""
    body = body_of(f)
    model = re.search(_JOINT, body, re.I)
    # without the model's path, the rotary keyword diffusers dropped for the xformers processor
    # names a joint-attention model (Flux, SD3... pass image_rotary_emb to their processor)
    dropped = re.search(r"\['image_rotary_emb'\] are not expected by XFormers\w*Processor", body)
    if not f.runtime.unpack_mismatch or (model is None and dropped is None):
        return []
    if not re.search(r"enable_xformers_memory_efficient_attention|XFormers\w*Processor", body):
        return []
    name = model.group(0).split("_", 1)[1] if model is not None else "this joint-attention model"
    return [
        ClassAnswer(
            class_id=(
                "diffusers-no-xformers-processor-for-flux"
                if name.lower() == "flux"
                else "diffusers-no-xformers-processor-for-joint-attention"
            ),
            title=f"diffusers has no xformers processor for {name}",
            cause=(
                f"diffusers' {name} transformer uses joint attention, whose processor returns "
                "the image and text streams as a pair; enable_xformers_memory_efficient_attention"
                "() replaces it with the generic xformers processor, which returns one tensor."
            ),
            fix=(
                "remove pipe.enable_xformers_memory_efficient_attention() for this model "
                "(its default processor already uses torch SDPA)",
            ),
            evidence=(("model", name), ("processor", "xformers")),
            source=(
                "huggingface/diffusers models/transformers/transformer_flux.py (the attention "
                "call unpacks two outputs); diffusers#9946 maintainer answer — unverified: "
                "attention_processor.py not re-read"
            ),
            line=line_of(f, r"values to unpack"),
        )
    ]


_RENAMED = {"flashinfer": ("flashinfer-python", "0.2.0")}
"""Attention distributions published under a new name from a release on (flashinfer's wheels
are ``flashinfer-python`` from 0.2.0) — unverified: flashinfer's install docs not re-read."""


def caller_checks_old_distribution_name(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """A caller looks up a backend's metadata under its old distribution name: the package is
    installed under the new name, so the caller's version check says it is missing. The
    caller predates the rename."""
    old = next((d for d in f.runtime.dist_not_found if d in _RENAMED), None)
    if old is None:
        return []
    new, since = _RENAMED[old]
    caller = next((c for c in ("sglang", "vllm") if re.search(c, body_of(f), re.I)), None)
    return [
        ClassAnswer(
            class_id=(
                f"{caller}-too-old-for-{old}-package-name"
                if caller
                else "caller-written-for-other-api"
            ),
            title=f"{caller or 'the caller'} looks for {old} under its old name",
            cause=(
                f"{old} is published as {new} from {since}; {caller or 'the calling package'} "
                f"checks the metadata of '{old}', which a {new} install does not have, so it "
                f"reports {old} missing although it is installed: the caller predates the rename."
            ),
            fix=(
                f"pip install --upgrade {caller}   # a release that looks for {new}"
                if caller
                else f"upgrade the package that checks for {old}",
                f"pip show {new}",
            ),
            evidence=(("not found", old), ("installed as", new)),
            source=(
                "importlib.metadata (PackageNotFoundError: no distribution of that name); the "
                "rename from flashinfer's releases — unverified: not re-read"
            ),
            line=line_of(f, r"PackageNotFoundError|not installed"),
        )
    ]
