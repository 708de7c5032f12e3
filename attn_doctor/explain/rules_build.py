"""Classes over build, compiler and kernel-resource facts (``evidence_build.BuildFacts``):
a Triton attention kernel asking for more shared memory than the GPU has, an embedded Python
without the headers Triton compiles its launcher against, ``TORCH_CUDA_ARCH_LIST`` naming an
architecture below a backend's floor, a source checkout without the cutlass submodule, and
model code importing a transformers helper the installed transformers no longer exports."""

from __future__ import annotations

import re

from attn_doctor.explain.answer import (
    ATTENTION_NAME,
    ClassAnswer,
    backends_in,
    backends_in_text,
    body_of,
    gpu_range,
    line_of,
)
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.knowledge import Knowledge

_FLEX = r"flex|inductor|torch\.compile|\btriton_(?:tem|per|red|poi)_"
"""FlexAttention or another kernel Inductor generated (its kernels are named triton_tem_…)."""


_OOR_BARE = re.compile(
    r"\bOutOfResources\b(?!\s*\()|out of resource: shared memory(?![,\s]*Required)", re.I
)


_TRITON_LAUNCH_REFUSED = re.compile(r"Triton Error \[CUDA\]: invalid argument", re.I)
"""Old Triton's launcher relaying CUDA_ERROR_INVALID_VALUE from the kernel launch."""


def triton_kernel_out_of_shared_memory(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """A Triton kernel (a backend's or a model's own) whose tiles need more shared memory per
    block than the GPU has; without the numbers (OutOfResources alone, or cut before
    "Required") the same class in general terms. With FlexAttention or Inductor named, the
    FlexAttention entry's."""
    body = body_of(f)
    if re.search(_FLEX, body, re.I):
        return []
    gpu = f" ({f.gpus[0]})" if f.gpus else ""
    lower = "or use the project's non-Triton attention path (SDPA) on this GPU"
    # the bare launch error is any Triton kernel's (Inductor's own included): only with an
    # attention kernel in the message is it this class
    launch_refused = bool(_TRITON_LAUNCH_REFUSED.search(body)) and bool(
        re.search(r"flash|attn|attention", body, re.I)
    )
    if f.build.shared_memory is None:
        if not (_OOR_BARE.search(body) or launch_refused) or not re.search(
            r"\btriton\b", body, re.I
        ):
            return []
        cause = (
            (
                "CUDA refused to launch a Triton kernel (Triton Error [CUDA]: invalid argument). "
                "Triton releases before 2.0 launched a kernel without checking its shared memory "
                "against the GPU's, and a kernel whose tiles need more than the GPU has per block "
                f"failed this way; its configuration was tuned for an A100 and the GPU{gpu} has "
                "less (A100/H100 up to 227 KiB; consumer GPUs ~99 KiB, T4 and older 64 KiB or "
                "less). Unverified beyond the threads that report it (flash-attn's and MosaicML's "
                "Triton attention on T4 and A40)."
            )
            if launch_refused and not _OOR_BARE.search(body)
            else "Triton raised OutOfResources: a kernel's tiles (its BLOCK_M/BLOCK_N and "
            f"num_stages) need more shared memory per block than the GPU{gpu} has"
            + (
                ""
                if re.search(r"shared memory", body, re.I)
                else " (the message does not name the resource: shared memory is the one "
                "triton 2.0.0 raises it for; later releases were not re-read)"
            )
            + "; the message does not give the numbers. The kernel's configuration was chosen "
            "for a GPU with more shared memory per SM (A100/H100 up to 227 KiB; consumer GPUs "
            "~99 KiB, older ones 48-64 KiB)."
        )
        fix: tuple[str, ...] = (
            "lower the kernel's BLOCK_M / BLOCK_N or num_stages in its config (the full error "
            "gives 'Required' and 'Hardware limit')",
            lower,
        )
        evidence: tuple[tuple[str, str], ...] = (("error", "OutOfResources (shared memory)"),)
        source = (
            "triton 2.0.0's wheel triton/compiler.py: OutOfResources is raised only for shared "
            "memory (self.shared > max_shared), read here; later releases' other resources not "
            "re-read"
        )
    else:
        need, limit = f.build.shared_memory
        # Tiles scale with BLOCK_M × BLOCK_N (and the pipeline's num_stages): halving one block
        # size halves the tile; the factor below is how far over the limit the kernel is.
        cause = (
            f"the Triton kernel's tiles need {need} bytes of shared memory per block and the "
            f"GPU{gpu} allows {limit} ({need / limit:.2f}× over): its BLOCK_M/BLOCK_N or "
            "num_stages were chosen for a GPU with more shared memory per SM (A100/H100 have up "
            "to 227 KiB; consumer GPUs ~99 KiB)."
        )
        # The bare message is any Triton kernel's, FlexAttention's under torch.compile included
        # (its fix is the last line); with FlexAttention or Inductor in the text this class
        # stands aside for the FlexAttention entry.
        fix = (
            "lower the kernel's BLOCK_M / BLOCK_N (halve one) or num_stages in its config until "
            f"it needs at most {limit} bytes",
            lower,
            "if it is FlexAttention under torch.compile: flex_attention(..., kernel_options="
            '{"BLOCK_M": 64, "BLOCK_N": 64, "num_stages": 1})',
        )
        evidence = (("shared memory required", str(need)), ("hardware limit", str(limit)))
        source = (
            "triton-lang/triton python/triton/compiler/compiler.py (_init_handles: raise "
            "OutOfResources(self.metadata.shared, max_shared, 'shared memory')), read in stored "
            "tracebacks; python/triton/runtime/errors.py itself not re-read"
        )
    return [
        ClassAnswer(
            class_id="triton-attention-kernel-out-of-shared-memory",
            title="a Triton kernel needs more shared memory than this GPU has",
            cause=cause,
            fix=fix,
            evidence=evidence,
            source=source,
            line=line_of(f, r"OutOfResources|out of resource"),
        )
    ]


def triton_embedded_python_missing_headers(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """Triton compiles a small C launcher against ``Python.h``; an embedded (portable) Windows
    Python ships without ``include/`` and ``libs/``. TinyCC, bundled by triton-windows, is the
    compiler whose wording ("include file 'Python.h' not found") marks it; else Triton must be
    named with a Windows or portable Python."""
    headers = [h for h, cc in f.build.missing_headers if h.endswith(("Python.h", "pyconfig.h"))]
    # triton-windows' own warning when the running Python has no libs/ folder
    # (windows_utils.py, as the message's path shows)
    if not headers and re.search(r"Failed to find Python (?:libs|include)", body_of(f)):
        headers = ["libs/python3X.lib (triton-windows: 'Failed to find Python libs')"]
    windows = {"windows", "comfyui-portable"} & set(f.platforms)
    # TinyCC failing on the launcher with its own output cut off, on Windows, and no other
    # header or library named: the missing include/libs folders are its usual reason.
    failed = f.build.tcc_failed or f.build.launcher_failed in {"tcc", "cl"}
    silent = failed and windows and not f.build.missing_headers
    if not headers and not (silent and not f.missing_libraries):
        return []
    tcc = silent or any(
        cc == "tcc" for h, cc in f.build.missing_headers if h.endswith(("Python.h", "pyconfig.h"))
    )
    triton = re.search(r"triton", body_of(f), re.I)
    portable = "comfyui-portable" in f.platforms
    launcher = re.search(
        r"tmp\w*[/\\](?:main|cuda_utils|__triton_launcher)\.c\b", body_of(f)
    )  # Triton's launcher, compiled in a temporary folder
    # off Windows, OpenAI Triton's own build of its launcher (its temporary main.c, or its
    # runtime's frames): another project named Triton builds its own bindings
    own = launcher or re.search(r"triton[/\\](?:runtime|backends|compiler)[/\\]", body_of(f))
    if headers and not windows and own and not tcc:
        return [_python_dev_headers_missing(f, headers[0])]
    if not (tcc or ((triton or portable) and windows)):
        return []
    py = f.python or "X.Y"
    return [
        ClassAnswer(
            class_id="triton-embedded-python-missing-include-libs",
            title=(
                "Triton cannot find Python.h: this Python has no include/ and libs/ folders"
                if headers
                else "Triton's launcher failed to compile on an embedded Python: its missing "
                "include/ and libs/ folders are the usual reason (the compiler's output is cut)"
            ),
            cause=(
                "Triton compiles a small C launcher for each kernel against the running Python's "
                "headers (include/Python.h) and import library (libs/python3X.lib); an embedded "
                "or portable Windows Python (ComfyUI portable, FramePack, other one-click "
                "bundles) ships without both folders."
            ),
            fix=(
                f"copy the include/ and libs/ folders of CPython {py} (same version as the "
                "embedded python.exe; triton-windows publishes them per version) next to the "
                "embedded python.exe",
                "or run the app from a full Python install or venv that has them",
            ),
            evidence=(
                ("missing header", headers[0] if headers else "(tcc's output not shown)"),
                ("compiler", f.build.launcher_failed or ("tcc" if tcc else "triton")),
            ),
            source=(
                "a ComfyUI portable installer's notes (read): 'the portable's embedded Python "
                "lacks the include and libs folders Triton needs to compile … triton-windows "
                "publishes them for each Python version'; triton-windows' README not re-read"
            ),
            line=line_of(f, r"Python\.h"),
        )
    ]


def cutlass_submodule_missing(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """A CUDA extension built from a source checkout whose cutlass git submodule is absent:
    the compiler cannot open CUTLASS's/CuTe's own headers (``cute/tensor.hpp``)."""
    headers = [h for h, _cc in f.build.missing_headers if re.match(r"(?:cute|cutlass)/", h)]
    # xformers' setup.py says it in words before compiling anything
    said = re.search(r"\b(CUTLASS|flashattention) submodule not found", body_of(f))
    if said:
        headers = headers or [f"the {said.group(1)} submodule"]
    if not headers:
        return []
    named = backends_in(f) or (["xformers"] if said else [])
    sub = said.group(1) if said else "cutlass"
    who = named[0] if named else "the extension"
    return [
        ClassAnswer(
            class_id="flash-attn-source-missing-cutlass-submodule",
            title=f"{headers[0]} not found: the source checkout has no {sub} submodule",
            cause=(
                f"the compiler cannot open {headers[0]}, a header of NVIDIA CUTLASS/CuTe, "
                f"which {who}'s kernels include from the csrc/cutlass git submodule; the "
                "checkout was made without submodules (a plain clone or a source archive)."
            ),
            fix=(
                "git submodule update --init --recursive   # in the source checkout, then rebuild",
                "or install a prebuilt wheel instead of building from source",
            ),
            evidence=(("missing header", headers[0]),),
            source=(
                "Dao-AILab/flash-attention's csrc/cutlass submodule: build scripts that build "
                "it run 'git submodule update --init csrc/cutlass' (read in several); "
                ".gitmodules and setup.py not re-read; xformers' setup.py ('CUTLASS submodule "
                "not found', 'flashattention submodule not found', read at v0.0.13-v0.0.28)"
            ),
            line=line_of(f, re.escape(headers[0]) + r"|submodule not found"),
        )
    ]


_UV_NO_TORCH = re.compile(
    r"`(?P<dist>[\w.-]+)@[\w.+-]+` depends on `torch`, but doesn't declare it as a build dependency"
)
"""uv's hint when a source build imports torch in an isolated build environment."""
_BUILD_STEP = re.compile(
    r"[Gg]etting requirements to build (?:wheel|editable)|pip-build-env|Failed to build|"
    r"setup\.py|pip install -e\b|Building wheels? for|get_requires_for_build_\w+"
    r"|The build backend returned an error"
)


_BUILT_SDIST = re.compile(
    r"(?:Using cached|Downloading)\s+(?:\S*/)?([A-Za-z][\w.]*?)-\d[\w.]*\.(?:tar\.gz|zip)\b"
)
"""The source archive pip takes to build (``Using cached natten-0.15.1.tar.gz``)."""
_REQUIREMENTS_STEP_FAILED = re.compile(r"Getting requirements to build wheel \.\.\. error")


def _built_attention_dist(f: TextFacts, know: Knowledge) -> str | None:
    """The attention package a source build is building: pip's source archive when it is an
    attention package without a backend record (NATTEN), under its own name rather than
    another backend the message mentions; else the backend the message names."""
    built = _BUILT_SDIST.findall(body_of(f))
    if built and ATTENTION_NAME.search(built[-1]) and not backends_in_text(built[-1]):
        return str(built[-1]).lower().replace("_", "-")
    named = backends_in(f)
    record = know.backend(named[0]) if named else None
    if record is not None and record.distributions:
        return record.distributions[0]
    return None


def build_without_torch(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A backend built from source imports torch in its setup.py, and pip/uv build it in an
    isolated environment that has no torch, even when torch is installed."""
    body = body_of(f)
    uv = _UV_NO_TORCH.search(body)
    built = _BUILT_SDIST.findall(body)
    # the requirements step of an attention package's source build failed and the log is cut
    # before its reason: its setup.py imports torch first, which the isolated build lacks
    cut = (
        bool(_REQUIREMENTS_STEP_FAILED.search(body))
        and not f.missing_modules
        and bool(built)
        and bool(ATTENTION_NAME.search(built[-1]))
    )
    if uv is None and not cut and not ("torch" in f.missing_modules and _BUILD_STEP.search(body)):
        return []
    named = backends_in(f)
    record = know.backend(named[0]) if named else None
    found = uv.group("dist").lower() if uv is not None else _built_attention_dist(f, know)
    if found is None:
        return []  # a build without an attention backend named: not this class
    dist = found
    return [
        ClassAnswer(
            class_id=f"{dist}-build-no-torch",
            title=f"building {dist}: No module named 'torch' (build isolation)",
            cause=(
                f"{dist}'s setup.py imports torch, but pip (or uv) builds it in an isolated "
                "environment that has only the declared build requirements, so torch is missing "
                "there even when it is installed in the environment the build runs from."
                + (
                    " The log stops before the build's own reason: this is the usual one for "
                    "a failed 'Getting requirements to build wheel' step (inferred; the lines "
                    "after it name the module)."
                    if cut and uv is None
                    else ""
                )
            ),
            fix=(
                "pip install packaging ninja wheel setuptools   # the build tools it needs",
                f"pip install --no-build-isolation {dist}   # uv: uv pip install "
                f"--no-build-isolation {dist}; or: attn-doctor install "
                f"{record.name if record else dist}",
            ),
            checks=("torch_present",),
            evidence=(("package", dist), ("missing in the build", "torch")),
            source=(
                "pip's build isolation (PEP 517: only build-system.requires is installed) and "
                "uv's own hint ('depends on `torch`, but doesn't declare it as a build "
                "dependency'); flash-attn's and SageAttention's setup.py import torch"
            ),
            line=line_of(f, r"No module named|depends on `torch`"),
            # flash-attn's own phrase for it is shown instead; another package's build is
            # this answer, before that phrase (which reads only "No module named 'torch'")
            before_phrases=dist != "flash-attn",
        )
    ]


def _cc(sm: int) -> str:
    return f"{sm // 10}.{sm % 10}"


def arch_list_below_backend_minimum(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A backend's build script refuses the architectures it is asked to build for: these come
    from ``TORCH_CUDA_ARCH_LIST`` (torch's ``_get_cuda_arch_flags``), not from the GPU, so a
    GPU at or above the floor still fails when the list names an older one."""
    if f.required_sm is None or f.required_sm[1] is not None or not f.build.build_script:
        return []
    if re.search(r"\bGPUs? with compute capability below", body_of(f), re.I):
        # SageAttention's setup.py says this of the GPUs it detects, only when
        # TORCH_CUDA_ARCH_LIST is unset: the GPU is the problem, not the list
        return []
    lo = f.required_sm[0]
    if any(sm < lo for sm in f.sms):
        return []  # the message names a GPU below the floor: that GPU is the problem
    below = [sm for sm in f.build.arch_list if sm < lo]
    named = backends_in(f)
    who = named[0] if named else "the package"
    record = know.backend(named[0]) if named else None
    hi = gpu_range(record)[1] if record else None
    archs = [a.sm for a in know.archs if a.sm >= lo and (hi is None or a.sm <= hi)]
    wanted = [sm for sm in f.sms if sm >= lo] or archs
    value = " ".join(_cc(sm) for sm in sorted(set(wanted)))
    said = (
        f"it names {', '.join(_cc(sm) for sm in below)}"
        if below
        else "a list set by the environment (NGC containers set one) can name older ones"
    )
    return [
        ClassAnswer(
            class_id="torch-cuda-arch-list-below-backend-minimum",
            title=f"TORCH_CUDA_ARCH_LIST asks {who} for architectures below sm_{lo}",
            cause=(
                f"{who}'s build script builds for the architectures in TORCH_CUDA_ARCH_LIST and "
                f"refuses any below sm_{lo}; {said}. The GPU itself is not the problem"
                + (f" (this one is sm_{f.sms[0]})." if f.sms else ".")
            ),
            fix=(
                f'export TORCH_CUDA_ARCH_LIST="{value}"   # only architectures >= {_cc(lo)}',
                "or unset TORCH_CUDA_ARCH_LIST (the build then targets the GPU it sees)",
            ),
            evidence=(
                ("needs", f"sm_{lo}+"),
                *((("TORCH_CUDA_ARCH_LIST below it", " ".join(map(_cc, below))),) if below else ()),
            ),
            source=(
                "flashinfer setup.py (read in stored copies: for each flag of torch_cpp_ext."
                "_get_cuda_arch_flags(), 'if arch < 75: raise RuntimeError(\"FlashInfer requires "
                "sm75+\")'); torch's _get_cuda_arch_flags reads TORCH_CUDA_ARCH_LIST; "
                "wheels_index/backends.toml min_sm"
            ),
            line=line_of(f, r"requires? sm"),
        )
    ]


_FA_DEVICE_GUARD = re.compile(r"FlashAttention requires building with sm version sm80-sm90, but")
"""flash-attn's device-side guard (FLASH_UNSUPPORTED_ARCH in csrc/flash_attn/src, printed by
the kernel variant compiled for an architecture below 8.0)."""


def _python_dev_headers_missing(f: TextFacts, header: str) -> ClassAnswer:
    """Triton's launcher compiled on Linux (or macOS) against a Python without its development
    headers: a distribution's python3 without python3-dev, or a slim container image."""
    py = f.python or "3.X"
    return ClassAnswer(
        class_id="triton-embedded-python-missing-include-libs",
        title="Triton cannot find Python.h: this Python has no development headers",
        cause=(
            "Triton compiles a small C launcher for its kernels at run time (torch.compile, "
            "FlexAttention, Triton attention kernels) against the running Python's headers; "
            "this Python has none: a distribution's python3 without its -dev package, or a "
            "slim container image."
        ),
        fix=(
            f"sudo apt-get install python{py}-dev   # Debian/Ubuntu; dnf install python3-devel "
            "on Fedora/RHEL",
            "in a container: a full Python image, or the same package in the Dockerfile",
        ),
        evidence=(("missing header", header), ("compiler", "gcc")),
        source="triton's runtime build of its launcher (main.c / cuda_utils.c include Python.h)",
        line=line_of(f, re.escape(header.rsplit("/", 1)[-1])),
    )


def flash_attn_device_code_below_ampere(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """flash-attn's kernels ran device code compiled for an architecture below sm80: on a GPU
    older than Ampere, that GPU is outside flash-attn's range; on a newer one, the build that
    made the binary (flash-attn's, or a framework's copy such as vLLM's) was given only older
    architectures."""
    if not _FA_DEVICE_GUARD.search(body_of(f)):
        return []
    old = [sm for sm in f.sms if sm < 80]
    if old:
        sm = old[0]
        return [
            ClassAnswer(
                class_id="gpu-outside-backend-range",
                title=f"flash-attn's kernels do not run on sm_{sm}",
                cause=(
                    "flash-attn's kernels are compiled for sm80-sm90 only (Ampere and newer); "
                    "the kernel that ran was the fallback compiled for an older architecture, "
                    f"which only prints this message: this GPU is sm_{sm}."
                ),
                fix=(
                    'use SDPA instead (attn_implementation="sdpa"; in vLLM, another attention '
                    "backend)",
                ),
                evidence=(("needs", "sm_80+"), ("architecture", f"sm_{sm}")),
                source="Dao-AILab/flash-attention csrc/flash_attn/src (FLASH_UNSUPPORTED_ARCH), "
                "read on main",
                line=line_of(f, r"requires building with sm version"),
            )
        ]
    # flash-attn's host code refuses a GPU before Ampere ("FlashAttention only supports Ampere
    # GPUs or newer"), so a kernel that reached the device passed it: the binary lacks the
    # GPU's architecture
    gpu = f"this GPU (sm_{f.sms[0]})" if f.sms else "the GPU (it passed flash-attn's own check)"
    value = _cc(f.sms[0]) if f.sms else "<the GPU's compute capability>"
    return [
        ClassAnswer(
            class_id="torch-cuda-arch-list-below-backend-minimum",
            title="the flash-attn binary was built without this GPU's architecture",
            cause=(
                f"{gpu} is one flash-attn runs on, but the binary that ran "
                "was compiled only for architectures below sm80 (the build's architecture list: "
                "TORCH_CUDA_ARCH_LIST, or a framework's own list for its copy of flash-attn), "
                "so its fallback printed this message."
            ),
            fix=(
                f'export TORCH_CUDA_ARCH_LIST="{value}" and rebuild (or the framework\'s own '
                "architecture setting), or install a prebuilt wheel made for this GPU",
            ),
            evidence=(
                ("needs", "sm_80+"),
                *((("architecture", f"sm_{f.sms[0]}"),) if f.sms else ()),
            ),
            source="Dao-AILab/flash-attention csrc/flash_attn/src (FLASH_UNSUPPORTED_ARCH), read "
            "on main; vllm-project/vllm#9062 (flash-attention arches not set in its build)",
            line=line_of(f, r"requires building with sm version"),
        )
    ]


def remote_code_imports_removed_transformers_helper(
    f: TextFacts, _know: Knowledge
) -> list[ClassAnswer]:
    """Model code (often a Hub repo's remote code) imports a helper from one of transformers'
    internal modules, and the installed transformers no longer exports it there. Names from
    the top-level ``transformers`` (model classes) are a transformers too old, not this."""
    for mod, name in f.missing_attrs:
        if not mod.startswith("transformers."):
            continue
        if _ATTENTION_CLASS.fullmatch(name) and mod.startswith("transformers.models."):
            return [_removed_attention_class(f, mod, name)]
        if not re.fullmatch(r"_?[a-z][a-z0-9_]*", name):
            continue
        have = f.version("transformers")
        body = body_of(f)
        if (
            re.search(rf"has no attribute ['\"]?{name}\b", body)
            and "transformers_modules" not in body
        ):
            return [_library_patches_removed_helper(mod, name, have, f)]
        return [
            ClassAnswer(
                class_id="remote-code-imports-removed-transformers-helper",
                title=f"the model code imports {name} from {mod}, which no longer exports it",
                cause=(
                    f"the model's code imports the helper {name} from transformers' internal "
                    f"module {mod}; the installed transformers{' ' + have if have else ''} no "
                    "longer exports it there (internal modules change between releases). The "
                    "attention package itself is not the problem."
                ),
                fix=(
                    "update the model's code (a newer revision of the Hub repo's modeling files, "
                    "or import the function from its own package, e.g. flash_attn)",
                    "or pin the transformers release the model card names: "
                    "pip install 'transformers==<the model's version>'",
                ),
                evidence=(("module", mod), ("name", name)),
                source="the message itself (the module and the name it lacks)",
                line=line_of(f, re.escape(name)),
            )
        ]
    return []


def _library_patches_removed_helper(
    mod: str, name: str, have: str | None, f: TextFacts
) -> ClassAnswer:
    """Not an import of remote code: a library reaches into a transformers module for a name
    (to call or patch it, as training libraries patch attention functions), and this
    transformers no longer has it."""
    return ClassAnswer(
        class_id="caller-written-for-other-api",
        title=f"the caller reaches {mod}.{name}, which this transformers no longer has",
        cause=(
            f"code outside transformers looks up {name} in transformers' internal module {mod} "
            "(to call or patch it: training and serving libraries patch model attention this "
            f"way); the installed transformers{' ' + have if have else ''} no longer has it "
            "there (internal modules change between releases). The caller was written for "
            "another transformers release."
        ),
        fix=(
            "upgrade the library that patches transformers to a release for this "
            "transformers (its changelog names the transformers it supports)",
            "or install the transformers release it was written for: "
            "pip install 'transformers==<its version>'",
        ),
        evidence=(("module", mod), ("name", name)),
        source="the message itself (the module and the attribute it lacks)",
        line=line_of(f, re.escape(name)),
    )


_ATTENTION_CLASS = re.compile(
    r"[A-Z]\w*(?:FlashAttention2?|SdpaAttention|FlexAttention)|[A-Z0-9_]+_ATTENTION_CLASSES"
)
"""A model's per-backend attention class (``LlamaFlashAttention2``, ``MistralSdpaAttention``)
or the table of them (``LLAMA_ATTENTION_CLASSES``): transformers' attention refactor replaced
them with one ``<Model>Attention`` that dispatches through ``ALL_ATTENTION_FUNCTIONS``."""


def _removed_attention_class(f: TextFacts, mod: str, name: str) -> ClassAnswer:
    have = f.version("transformers")
    base = re.sub(r"(?:FlashAttention2?|SdpaAttention|FlexAttention)$", "Attention", name)
    one = base if base != name else "<Model>Attention"
    return ClassAnswer(
        class_id="remote-code-imports-removed-transformers-helper",
        title=f"the model code imports {name}, a per-backend attention class transformers removed",
        cause=(
            f"the model's code imports {name} from {mod}. transformers"
            f"{' ' + have if have else ''} no longer has per-backend attention classes: its "
            f"attention refactor replaced them with one {one}"
            " that runs the backend chosen by attn_implementation. Releases up to 4.47.x have "
            "them (4.47.1 is the one users report working; the exact release that removed each "
            "model's classes is unverified). flash-attn itself is not the problem."
        ),
        fix=(
            "use a newer revision of the model's code (one written for the attention interface), "
            f"or import {one} and pass "
            'attn_implementation="flash_attention_2" when loading',
            "or pin the release the model was written for: pip install 'transformers<4.48'",
        ),
        evidence=(("module", mod), ("name", name)),
        source=(
            "transformers' attention refactor (models call ALL_ATTENTION_FUNCTIONS; "
            "modeling_llama.py in 5.25.0 has LlamaAttention only); the 4.47.1 bound from user "
            "reports in the model repositories' threads, unverified against the tags"
        ),
        line=line_of(f, re.escape(name)),
    )


_BUILD_TOOLS = ("packaging", "wheel", "setuptools", "ninja", "psutil")
"""Modules attention packages' setup.py import at build time (flash-attn: packaging.version,
wheel.bdist_wheel, setuptools; SageAttention and others likewise): with --no-build-isolation
they come from the user's environment."""


def build_tool_missing(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A source build of an attention package stops at its setup.py's own import of a build
    tool (packaging, wheel, setuptools): with --no-build-isolation the build runs in the user's
    environment, which lacks it."""
    body = body_of(f)
    tool = next((m for m in f.missing_modules if m.split(".")[0] in _BUILD_TOOLS), None)
    if tool is None or not _BUILD_STEP.search(body):
        return []
    dist = _built_attention_dist(f, know)
    if dist is None:
        return []
    isolated = re.search(r"--no-build-isolation", body) is not None
    return [
        ClassAnswer(
            class_id="backend-dependency-missing",
            title=f"building {dist}: its setup.py needs {tool.split('.')[0]}",
            cause=(
                f"{dist}'s setup.py imports {tool.split('.')[0]} at build time, and the "
                "environment the build runs in lacks it"
                + (
                    ": --no-build-isolation builds in your own environment, so its build tools "
                    "must be installed there first."
                    if isolated
                    else "."
                )
            ),
            fix=(
                "pip install packaging wheel setuptools ninja psutil",
                f"then again: pip install {dist} --no-build-isolation",
            ),
            checks=(f"package_missing:{tool.split('.')[0]}",),
            evidence=(("missing in the build", tool), ("package", dist)),
            source=(
                "Dao-AILab/flash-attention setup.py at v2.8.3 (from packaging.version import "
                "parse, Version; from wheel.bdist_wheel import bdist_wheel; import torch), read "
                "at that tag; pip's --no-build-isolation builds in the current environment"
            ),
            line=line_of(f, re.escape(tool)),
        )
    ]
