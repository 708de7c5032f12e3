"""Classes over what a caller or the runtime says of the installed stack
(``evidence_caller.CallerFacts``): a package a caller calls too old, a torch nightly without
the backward of an attention op, Triton finding no C compiler, and MSVC without the math
constants (``M_LOG2E``) a kernel uses."""

from __future__ import annotations

import re

from attn_doctor.explain.answer import ClassAnswer, body_of, line_of
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.knowledge import Knowledge

_SAGE_2 = (
    "install SageAttention 2.x built for this torch and CUDA (PyPI's sageattention stops at "
    "1.0.6: build thu-ml/SageAttention from source, or a prebuilt 2.x wheel for the platform)"
)


def package_too_old_for_caller(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """A caller (a ComfyUI node, a trainer) says the installed backend package is too old for
    the code path it takes: the package is present, the caller was written for a newer API."""
    if not f.caller.too_old:
        return []
    pkg, need = f.caller.too_old[0]
    have = f.version(pkg)
    spec = f"{pkg}>={need}" if need else pkg
    if pkg == "sageattention":
        fix: tuple[str, ...] = ("pip uninstall -y sageattention", _SAGE_2)
    else:
        fix = (f"pip install --upgrade '{spec}'",)
    return [
        ClassAnswer(
            class_id=f"{pkg}-too-old-for-caller",
            title=f"{pkg} is older than the caller needs",
            cause=(
                f"the calling code says the installed {pkg}"
                + (f" ({have})" if have else "")
                + " is too old for the path it takes"
                + (f" (it needs {need} or newer)" if need else "")
                + "; the caller was written for a newer release's API."
            ),
            fix=fix,
            evidence=(("too old", spec),),
            source=(
                "the message itself; thu-ml/SageAttention releases (2.x is built from source, "
                "PyPI has 1.0.6) — unverified: the release page was not re-read"
                if pkg == "sageattention"
                else "the message itself"
            ),
            line=line_of(f, r"new enough|too old|outdated|upgrade|requires?|needs?"),
        )
    ]


_OWN_HANDLING = frozenset({"torch", "transformers", "diffusers", "triton", "numpy"})
"""Top-level modules whose missing names other classes read (an API of another release)."""


def companion_package_too_old(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A framework's attention code calls a function of a companion package (ComfyUI's
    attention module and comfy_kitchen) that the installed package lacks: the framework was
    updated and the package was not, so it is older than its caller."""
    if "AttributeError" not in f.error_classes:
        return []
    body = body_of(f)
    for mod, name in f.missing_attrs:
        if "." in mod or mod in _OWN_HANDLING or know.backend_of_module(mod) is not None:
            continue
        # the call is attention code's: the frame that raised is an attention module, or the
        # name is an attention function
        frame = re.search(
            rf'File "[^"\n]*attention[^"\n]*\.py", line \d+[^\n]*\n[^\n]*\b{re.escape(mod)}\.'
            rf"{re.escape(name)}\b",
            body,
        )
        if frame is None and not re.search(r"attn|attention", name):
            continue
        dist = mod.replace("_", "-")
        have = f.version(dist) or f.version(mod)
        return [
            ClassAnswer(
                class_id=f"{dist}-too-old-for-caller",
                title=f"{dist} is older than the attention code calling it",
                cause=(
                    f"the attention code calls {mod}.{name}, which the installed {dist}"
                    + (f" {have}" if have else "")
                    + " does not have: the code calling it was updated (a framework update) "
                    f"and {dist}, a package it depends on, was not."
                ),
                fix=(
                    f"pip install --upgrade {dist}   # or reinstall the framework's "
                    "requirements: pip install -r requirements.txt",
                ),
                evidence=(("module", mod), ("missing", name)),
                source="the message itself (the attention module's call and the name missing)",
                line=line_of(f, re.escape(name)),
            )
        ]
    return []


def _release_of(version: str) -> str | None:
    """The release a nightly leads to (``2.5.0.dev20240828`` -> ``2.5``): below it is stable."""
    m = re.match(r"(\d+)\.(\d+)", version)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def torch_nightly_attention_backward_regression(
    f: TextFacts, _know: Knowledge
) -> list[ClassAnswer]:
    """A torch nightly whose autograd has no derivative for an attention op: the op was
    renamed or split in that nightly and its backward not registered, a regression of the
    nightly (a stable release has the backward of every SDPA path)."""
    ops = [op for op in f.caller.no_derivative if re.search(r"attention|sdpa", op, re.I)]
    if not ops or not f.nightly:
        return []
    op = ops[0]
    torch = f.version("torch") or ""
    mps = "mps" in op.lower() or "macos" in f.platforms
    before = _release_of(torch)
    return [
        ClassAnswer(
            class_id=(
                "torch-nightly-mps-sdpa-backward-regression"
                if mps
                else "torch-nightly-attention-backward-regression"
            ),
            title=f"torch nightly {torch} has no backward for {op}".replace("  ", " "),
            cause=(
                f"this torch nightly{f' ({torch})' if torch else ''} has no derivative for "
                f"aten::{op}, so training (backward) through "
                + ("SDPA on Apple MPS" if mps else "this attention op")
                + " fails; a nightly regression, not the caller's code."
            ),
            fix=(
                "pip install --pre --upgrade torch   # a later nightly, from the nightly index",
                f"pip install 'torch<{before}'   # or the last stable release"
                if before
                else "or install the last stable torch release",
            ),
            evidence=(("no derivative", op), ("torch", torch or "nightly")),
            source=(
                "the message itself (autograd's 'derivative for … is not implemented' names an "
                "op whose backward is not registered); pytorch issue 134678 for the MPS case — "
                "unverified: the fixing commit was not read"
            ),
            line=line_of(f, r"derivative for"),
        )
    ]


def triton_needs_c_compiler(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """Triton compiles a small C launcher at its first kernel and found no C compiler. On
    Windows triton-windows looks for MSVC (cl, through the Visual Studio 2019/2022 install);
    elsewhere gcc or clang, or CC."""
    if not f.caller.no_c_compiler:
        return []
    if f.build.missing_headers and not re.search(r"Failed to find C", body_of(f), re.I):
        return []  # the compiler ran and failed on a missing header: that header's class
    if "windows" not in f.platforms:
        # Linux, WSL, Colab, macOS, or no OS named at all: then the answer is the general one,
        # with the fix for each OS, rather than a guess at Windows.
        named = bool({"linux", "colab", "macos", "wsl"} & set(f.platforms))
        return [
            ClassAnswer(
                class_id="triton-needs-c-compiler",
                title="Triton found no C compiler",
                cause=(
                    "Triton builds a small C launcher module the first time it runs a kernel, "
                    "with $CC or else gcc/clang from PATH, and none was found (or the one "
                    "chosen did not run)"
                    + (
                        "."
                        if named
                        else " (the message names no OS: on Windows triton-windows looks for "
                        "MSVC's cl, elsewhere gcc or clang)."
                    )
                ),
                fix=(
                    "sudo apt install build-essential   # or your distribution's gcc",
                    "export CC=/path/to/gcc   # when a compiler exists off PATH (a conda env)",
                    *(
                        ()
                        if named
                        else (
                            "on Windows: Visual Studio 2022 Build Tools with 'Desktop development "
                            "with C++', or a triton-windows release that bundles TinyCC",
                        )
                    ),
                ),
                evidence=(("C compiler", "not found"),),
                source="triton python/triton/runtime/build.py (_build: CC, else gcc or clang)",
                line=line_of(f, r"C compiler"),
            )
        ]
    return [
        ClassAnswer(
            class_id="triton-windows-needs-msvc-compiler",
            title="Triton on Windows found no C compiler (MSVC)",
            cause=(
                "Triton builds a small C launcher the first time it runs a kernel (SageAttention "
                "and torch.compile go through it); triton-windows looks for MSVC's cl through a "
                "Visual Studio 2019/2022 install (or $CC) and found none, or the one it was given "
                "does not run ('Failed to compile. cc_cmd': a CC naming a cl.exe that no longer "
                "exists, or two paths in one)."
            ),
            fix=(
                "install Visual Studio 2022 Build Tools with 'Desktop development with C++' "
                "(MSVC and the Windows SDK), then restart the app",
                "set CC=   # clear a CC that names a missing or doubled cl.exe path",
                "pip install --upgrade triton-windows   # releases that bundle TinyCC need no "
                "MSVC for the launcher",
            ),
            evidence=(("C compiler", "not found"),),
            source=(
                "triton-windows python/triton/runtime/build.py (on Windows cc = 'cl' after "
                "initialize_visual_studio_env for VS 2019/2022; else RuntimeError 'Failed to find "
                "C compiler'; a compiler that fails, 'Failed to compile. cc_cmd'), read in a "
                "stored copy; TinyCC bundling — unverified: the "
                "triton-windows README was not re-read"
            ),
            line=line_of(f, r"C compiler"),
        )
    ]


def msvc_math_constants_undefined(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """A kernel using the POSIX math constants (``M_LOG2E``, ``M_PI``) compiled with MSVC,
    whose <cmath> defines them only after ``_USE_MATH_DEFINES``."""
    consts = [i for i in f.caller.undefined_identifiers if re.fullmatch(r"M_[A-Z0-9_]+", i)]
    if not consts or "windows" not in f.platforms:
        return []
    candle = bool(re.search(r"candle[-_]flash[-_]attn", body_of(f), re.I))
    fix = (
        (
            "update candle to a revision whose candle-flash-attn build passes "
            "-D_USE_MATH_DEFINES on Windows (candle PR 2734), then rebuild",
        )
        if candle
        else ()
    ) + ("set NVCC_APPEND_FLAGS=-D_USE_MATH_DEFINES   # defines M_* in MSVC's <cmath>; rebuild",)
    return [
        ClassAnswer(
            class_id=(
                "candle-flash-attn-msvc-needs-math-defines" if candle else "msvc-needs-math-defines"
            ),
            title=f"MSVC does not define {consts[0]} without _USE_MATH_DEFINES",
            cause=(
                f"the kernel uses {', '.join(consts)}, which MSVC's <cmath>/<math.h> define only "
                "when _USE_MATH_DEFINES is set before the include; gcc and clang define them "
                "by default, so the code builds on Linux and fails on Windows."
            ),
            fix=fix,
            evidence=(("undefined", consts[0]), ("platform", "windows")),
            source=(
                "Microsoft C runtime docs, Math Constants (_USE_MATH_DEFINES) — unverified: not "
                "re-read; candle PR 2734 (from the thread) — unverified"
            ),
            line=line_of(f, r"is undefined"),
        )
    ]


_CPU_FLEX_TORCH = "2.6"
"""The torch release whose Inductor lowers FlexAttention on x86 CPUs (PyTorch 2.6 release
highlights for Intel platforms: 'FlexAttention optimization on x86 CPU')."""


def flex_attention_no_kernel_for_device(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """Inductor found no kernel choice for FlexAttention on the inputs' device: in the torch
    releases before CPU FlexAttention, it lowers only to Triton GPU templates, so CPU tensors
    leave it nothing to pick."""
    nk = f.build.no_kernel_for
    if nk is None or nk[0] != "flex_attention" or nk[1] != "cpu":
        return []
    torch = f.version("torch")
    if torch and tuple(map(int, re.findall(r"\d+", torch)[:2])) >= (2, 6):
        return []
    return [
        ClassAnswer(
            class_id="backend-needs-other-device",
            title="FlexAttention has no CPU kernel in this torch",
            cause=(
                "torch.compile lowered flex_attention for CPU tensors and Inductor had no kernel "
                "to choose (its FlexAttention templates are Triton GPU kernels"
                + (f" in torch {torch}" if torch else "")
                + f"); CPU FlexAttention came with torch {_CPU_FLEX_TORCH}."
            ),
            fix=(
                "move the model and inputs to a CUDA device (.to('cuda'))",
                f"pip install --upgrade 'torch>={_CPU_FLEX_TORCH}'   # CPU FlexAttention",
                'or use attn_implementation="sdpa" on CPU',
            ),
            evidence=(("no kernel for", "flex_attention"), ("device", "cpu")),
            source=(
                "torch/_inductor/kernel/flex_attention.py (autotune_select_algorithm over its "
                "Triton templates; NoValidChoicesError when none applies); PyTorch 2.6 blog for "
                "Intel platforms (FlexAttention on x86 CPU) — unverified: the lowering's device "
                "check was not re-read"
            ),
            line=line_of(f, r"NoValidChoicesError|No choices"),
        )
    ]


_FLEX_TARGET = re.compile(r"\btarget:\s*(?:[\w.]+\.)?(flex_attention(?:_backward)?)\b")
_NO_CHOICE = re.compile(r"NoValidChoicesError|No choices to select")


def flex_attention_no_config_fits(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """Inductor's autotuning found no FlexAttention kernel configuration for a GPU: the Triton
    templates it tries are dropped when their tiles need more shared memory than one SM has
    (consumer and L40-class GPUs, about 100 KB, at head dim 128 and up), so none is left."""
    body = body_of(f)
    target = _FLEX_TARGET.search(body)
    if target is None or not _NO_CHOICE.search(body):
        return []
    nk = f.build.no_kernel_for
    if nk is not None and nk[1] == "cpu":
        return []  # flex_attention_no_kernel_for_device: no CPU kernel, not shared memory
    op = target.group(1)
    gpu = f" on the {f.gpus[0]}" if f.gpus else ""
    blocks = (
        '{"BLOCK_M1": 32, "BLOCK_N1": 32, "BLOCK_M2": 32, "BLOCK_N2": 32}'
        if op.endswith("backward")
        else '{"BLOCK_M": 64, "BLOCK_N": 64, "num_stages": 1}'
    )
    torch = f.version("torch")
    return [
        ClassAnswer(
            class_id="triton-attention-kernel-out-of-shared-memory",
            title=f"no {op} kernel configuration fits this GPU's shared memory",
            cause=(
                f"torch.compile autotuned {op}{gpu} and every Triton configuration it tried was "
                "dropped, most often because its tiles (block sizes × head dim × stages) need "
                "more shared memory per SM than the GPU has (about 100 KB on consumer and "
                "L40-class GPUs; the defaults are tuned for A100/H100)"
                + (f"; torch {torch}" if torch else "")
                + ". The exact reason per configuration is in the autotuning log, not here."
            ),
            fix=(
                f"pass smaller tiles: flex_attention(q, k, v, ..., kernel_options={blocks})",
                "or compile with mode='max-autotune-no-cudagraphs', which tries more "
                "configurations",
                "or try another torch release: per-GPU FlexAttention configurations change "
                "between releases (pytorch#146260 for 2.6)",
            ),
            evidence=(("no kernel choice for", op), *((("gpu", f.gpus[0]),) if f.gpus else ())),
            source=(
                "torch/_inductor/kernel/flex_attention.py and flex_decoding.py (the per-GPU "
                "configurations autotune_select_algorithm tries; NoValidChoicesError when none "
                "compiles); pytorch/pytorch#146260 — unverified: the filter was not re-read"
            ),
            line=line_of(f, r"NoValidChoicesError|No choices"),
        )
    ]


def xformers_operators_not_built_for_rocm(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """xformers found no operator with a ROCm torch, and the installed xformers is not a ROCm
    build: its kernels were compiled for CUDA, so none exists for the AMD GPU."""
    xf = f.version("xformers")
    body = body_of(f)
    if f.torch_build != "rocm" or "No operator found" not in body or (xf and "rocm" in xf):
        return []
    return [
        ClassAnswer(
            class_id="xformers-operator-not-built",
            title="xformers has no operators for this ROCm torch",
            cause=(
                f"torch is a ROCm build ({f.version('torch') or 'rocm'}) and the installed "
                f"xformers{f' ({xf})' if xf else ''} is not built for ROCm, so "
                "memory_efficient_attention has no operator for the AMD GPU."
            ),
            fix=(
                "pip uninstall -y xformers   # torch SDPA runs on ROCm (ComfyUI: "
                "--use-pytorch-cross-attention)",
                "or install an xformers wheel built for this torch's ROCm release",
            ),
            evidence=(("torch build", "rocm"), ("xformers", xf or "installed")),
            source=(
                "xformers: operators are compiled per platform; a CUDA build registers none for "
                "HIP devices — unverified: xformers' ROCm build notes not re-read"
            ),
            line=line_of(f, r"No operator found"),
        )
    ]


_ATTENTION_EXTENSION = re.compile(
    r"(?:^|\.)(?P<ext>\w*(?:attn|attention|fmha|mha)\w*_(?:cuda|cpp|ext|C|kernels?|ops))$", re.I
)
"""A compiled attention extension's module name (``sparse_dl.attn_cuda``, ``natten._C``-style
names with attention in them)."""


def attention_extension_not_built(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A package's own compiled attention extension is missing: its C++/CUDA part was never
    built (a source checkout imported without building it, or a build that failed earlier),
    though the Python package is there."""
    for mod in f.missing_modules:
        m = _ATTENTION_EXTENSION.search(mod)
        if m is None or "." not in mod:
            continue
        pkg = mod.split(".")[0]
        if know.backend_of_distribution(pkg.replace("_", "-")) is not None:
            continue  # a recorded backend's module: its own answers say more
        return [
            ClassAnswer(
                class_id="backend-not-installed",
                title=f"{pkg}'s compiled attention extension {mod} is not built",
                cause=(
                    f"the Python package {pkg} imports {mod}, its compiled attention kernels, and "
                    "that extension is not there: the package's C++/CUDA part was not built (the "
                    "source checkout is imported without building it, or its build failed "
                    "earlier and only the Python files are present)."
                ),
                fix=(
                    f"build and install {pkg} from its source folder: pip install -e . "
                    "--no-build-isolation   # or the project's own `python setup.py install`",
                    'then check: python -c "import ' + mod + '"',
                ),
                evidence=(("missing module", mod), ("package", pkg)),
                source="the message itself (Python's ModuleNotFoundError for a compiled module "
                "inside an installed package)",
                line=line_of(f, re.escape(mod)),
            )
        ]
    return []
