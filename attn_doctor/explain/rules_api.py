"""Failure classes about what a build or a caller expects: torch built without an SDPA kernel,
torch older than an attribute a library reads, a backend function looked up in the wrong
module, pip's #egg= name out of date, a build's arch list compiling one architecture's
instructions for another, a framework advising another backend, and a backend's guarded
import left as None."""

from __future__ import annotations

import re

from packaging.version import Version

from attn_doctor.explain.answer import (
    ClassAnswer,
    backends_in_text,
    body_of,
    fits,
    has_error,
    line_of,
    sm_name,
    version_of,
)
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.knowledge import BackendApi, Knowledge
from attn_doctor.explain.rules_calls import api_distribution, upgrade_fix

_KERNEL_NAMES = {
    "mem_efficient": ("memory-efficient", "sdpa_mem_efficient", "USE_MEM_EFF_ATTENTION"),
    "flash": ("flash", "sdpa_flash", "USE_FLASH_ATTENTION"),
}


def torch_built_without_sdpa_kernel(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """torch says it was built without one of SDPA's fused kernels. On ROCm both come from
    AOTriton, which a build may leave out; a CUDA Windows wheel without flash is harmless
    (that warning is in the harmless list), so only ROCm and a missing memory-efficient
    kernel are this class. Not when the text has an error of its own."""
    if has_error(f) or not f.torch_missing_kernels:
        return []
    rocm = f.torch_build == "rocm"
    kernel = next((k for k in f.torch_missing_kernels if k == "mem_efficient" or rocm), None)
    if kernel is None or kernel not in _KERNEL_NAMES:
        return []
    words, backend, flag = _KERNEL_NAMES[kernel]
    windows = "windows" in f.platforms
    ver = f.version("torch")
    if rocm:
        cause = (
            f"this ROCm build of torch{' ' + ver if ver else ''} "
            f"was built without SDPA's {words} kernel ({flag} off: on ROCm it comes from "
            "AOTriton, which this build left out), so scaled_dot_product_attention runs the "
            "slower math kernel (more memory, nothing is wrong with the results)."
        )
        fix: tuple[str, ...] = (
            "pip install --upgrade torch   # a current release from PyTorch's ROCm wheel index "
            "(built with AOTriton)",
        )
        if windows:
            fix += ("on Windows ROCm builds (TheRock): use a build with aotriton enabled",)
        source = (
            "pytorch aten/src/ATen/native/transformers/hip/sdp_utils.cpp (#ifndef "
            f"{flag}: 'Torch was not compiled with {words.replace('-', ' ')} attention'); "
            "ROCm/TheRock#1040, pytorch/pytorch#112997 (unverified: not re-read)"
        )
    else:
        cause = (
            f"this torch was built without SDPA's {words} kernel ({flag} off), so "
            "scaled_dot_product_attention uses another kernel (slower, same results)."
        )
        fix = ("pip install --upgrade torch   # an official wheel, built with that kernel",)
        source = (
            "pytorch aten/src/ATen/native/transformers/cuda/sdp_utils.cpp (#ifndef " + flag + ")"
        )
    return [
        ClassAnswer(
            class_id="torch-built-without-sdpa-kernel",
            title=f"torch was built without SDPA's {words} kernel" + (" (ROCm)" if rocm else ""),
            cause=cause,
            fix=fix,
            evidence=(("missing kernel", backend), ("torch build", f.torch_build or "not shown")),
            source=source,
            line=line_of(f, r"not compiled with"),
        )
    ]


def torch_too_old_for_api(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A library reads an attribute of torch (``torch.version.xpu``) that only newer torch
    releases have (or imports a torch submodule only they have): torch is older than the
    first release the table names."""
    submodules = tuple(
        tuple(m.rsplit(".", 1)) for m in f.missing_modules if m.startswith("torch.") and "." in m
    )
    for mod, name in f.missing_attrs + submodules:
        api = next((a for a in know.torch_api if a.name == f"{mod}.{name}"), None)
        if api is None:
            continue
        have = f.version("torch")
        first = version_of(api.first)
        if (hv := version_of(have)) is not None and first is not None and hv >= first:
            continue  # the message's torch already has it: not this class
        xpu = "xpu" in api.name or f.torch_build == "xpu"
        return [
            ClassAnswer(
                class_id="torch-too-old-for-api",
                title=f"torch{' ' + have if have else ''} has no {api.name} (added in {api.first})",
                cause=(
                    f"the code reads {api.name}, which torch has only since {api.first}; the "
                    f"installed torch{' ' + have if have else ''} is older."
                ),
                fix=(
                    f"pip install --upgrade 'torch>={api.first}'"
                    + ("   # the XPU build, from PyTorch's XPU wheel index" if xpu else ""),
                ),
                checks=(f"torch_below:{api.first}",),
                evidence=(("missing attribute", api.name), ("torch", have or "not shown")),
                source=api.source,
                line=line_of(f, re.escape(name)),
            )
        ]
    return []


def backend_function_import_path(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A caller looks up a backend's function in a module that does not export it (the
    package's top level of an older release), or by the name it had before a rename."""
    for mod, name in f.missing_attrs:
        for api in know.backend_api:
            top = api.module.split(".", maxsplit=1)[0]
            if mod.split(".", maxsplit=1)[0] != top:
                continue
            older = _top_level_too_old(f, know, api, name) if mod == top else None
            if name in api.names and mod != api.module:
                return ([older] if older is not None else []) + [
                    ClassAnswer(
                        class_id="backend-function-import-path",
                        title=f"{name} is not exported by {mod}: import it from {api.module}",
                        cause=(
                            f"the caller looks up {name} on {mod}, and the installed "
                            f"{api.backend} does not export it there; {name} is defined in "
                            f"{api.module}."
                            + (
                                f" (When {mod}.__version__ is a release that exports it, "
                                f"another module named {mod} shadows the package: a folder of "
                                "that name in the working directory.)"
                                if name in dict(api.top_level)
                                else ""
                            )
                        ),
                        fix=(f"from {api.module} import {name}",),
                        evidence=(("module", mod), ("function", name)),
                        source=api.source,
                        line=line_of(f, re.escape(name)),
                    )
                ]
            if api.renamed_from and name.startswith(api.renamed_from + "_"):
                new = api.renamed_to + name[len(api.renamed_from) :]
                return [
                    ClassAnswer(
                        class_id="caller-written-for-other-api",
                        title=f"{name} is the name before {api.backend} {api.renamed_in}",
                        cause=(
                            f"the caller uses {name}, the name before {api.backend} "
                            f"{api.renamed_in} renamed these functions; the installed release "
                            f"has {new} instead."
                        ),
                        fix=(
                            f"from {api.module} import {new}   # the current name",
                            f"or pin the release the caller was written for (< {api.renamed_in})",
                        ),
                        evidence=(("module", mod), ("function", name)),
                        source=api.source,
                        line=line_of(f, re.escape(name)),
                    )
                ]
    return []


def _top_level_too_old(
    f: TextFacts, know: Knowledge, api: BackendApi, name: str
) -> ClassAnswer | None:
    """The package's top level lacks a function it exports from a known release on
    (``from flash_attn import flash_attn_func``, 2.0.0): the installed release is older, the
    1.x API. When the message shows a release that has it, this is not the cause."""
    first = dict(api.top_level).get(name)
    if first is None:
        return None
    record = know.backend(api.backend)
    dist = api_distribution(know, api)
    have = f.version(dist)
    if (hv := version_of(have)) is not None and hv >= Version(first):
        return None
    top = api.module.split(".", maxsplit=1)[0]
    fix = upgrade_fix(dist, first, api.backend)
    low = [sm for sm in f.sms if record is not None and sm < record.min_sm]
    notes: tuple[str, ...] = ()
    if low and record is not None:
        notes = (
            f"# this GPU (sm_{low[0]}) is below {dist} {first}'s range (sm_{record.min_sm} and "
            "newer): the release the caller needs will not run here; use the caller's "
            "non-flash attention path (sdpa/eager) instead",
        )
    return ClassAnswer(
        class_id=f"{dist}-too-old-for-caller",
        title=f"{name} is missing from {top}: the installed {dist}{' ' + have if have else ''} "
        f"predates {first}",
        cause=(
            f"the caller imports {name} from the {top} package, which exports it since {dist} "
            f"{first}; the installed {dist}{' ' + have if have else ''} is older"
            + (
                " (flash-attn 1.x exports no functions there)"
                if api.backend == "flash_attn_2"
                else ""
            )
            + ", so the name is not there."
        ),
        fix=(*notes, fix) if notes else (fix,),
        checks=(f"package_installed:{dist}",),
        evidence=(
            ("missing", f"{top}.{name}"),
            ("exported since", f"{dist} {first}"),
            ("installed", have or "not shown"),
        ),
        source=api.source,
        line=line_of(f, re.escape(name)),
    )


def pip_egg_name_out_of_date(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """pip discards a VCS requirement whose ``#egg=`` name is not the name in the package's
    metadata (the project renamed its distribution at that commit)."""
    if f.pip_name_mismatch is None:
        return []
    want, have, url = f.pip_name_mismatch
    base, _, frag = url.partition("#")
    rest = "&".join(p for p in frag.split("&") if p and not p.startswith("egg="))
    new_url = base + (f"#{rest}" if rest else "")
    fix: tuple[str, ...] = (
        (f"pip install '{have} @ {new_url}'   # ask for it by its current name",)
        if base
        else (f"ask for {have} (its current name) instead of {want}",)
    )
    fix += (f"or pin the commit where it was still named {want}: {base or 'URL'}@COMMIT",)
    return [
        ClassAnswer(
            class_id="pip-egg-name-out-of-date",
            title=f"the package at that URL is now named {have}, not {want}",
            cause=(
                f"the requirement asks for `{want}` (#egg={want}), but the package at the "
                f"repository's current commit declares the name `{have}` in its metadata, so "
                "pip discards it and then finds no distribution of that name."
            ),
            fix=fix,
            evidence=(("requested", want), ("metadata name", have)),
            source="pip's 'inconsistent name' check (pip/_internal/req/req_install.py) "
            "on the VCS requirement",
            line=line_of(f, r"inconsistent name"),
        )
    ]


def build_arch_list_wrong_mix(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """ptxas refuses an instruction that only another architecture's arch-specific target has
    (wgmma: sm_90a) on this target: the build's arch list mixes architectures and the kernel
    written for one was compiled for the other."""
    for prefix, target in f.arch_instructions:
        ins = next((i for i in know.arch_instructions if i.prefix == prefix), None)
        if ins is None or ins.sm == target:
            continue
        arch = f"{target // 10}.{target % 10}"
        return [
            ClassAnswer(
                class_id="build-arch-list-wrong-mix",
                title=f"{ins.target} kernels compiled for sm_{target}: the arch list mixes GPUs",
                cause=(
                    f"the build compiled kernels that use {prefix} (an {ins.target}-only "
                    f"instruction, {sm_name(know, ins.sm)}) for sm_{target} "
                    f"({sm_name(know, target)}); the arch list it was given "
                    "(TORCH_CUDA_ARCH_LIST) asks for several architectures and the kernels of "
                    "one were built with the other's settings."
                ),
                fix=(
                    f'TORCH_CUDA_ARCH_LIST="{arch}" pip install --no-build-isolation .   '
                    "# only this GPU's architecture",
                ),
                evidence=(("instruction", prefix), ("target", f"sm_{target}")),
                source=ins.source,
                line=line_of(f, re.escape(prefix)),
            )
        ]
    return []


_ADVISED = (
    (r"flash[ _-]?attention[ _-]?(?:v?2|two)\b|\bfa2\b", "flash_attn_2"),
    (r"flash[ _-]?attention[ _-]?v?3|\bfa3\b", "flash_attn_3"),
    (r"\bsdpa\b", "sdpa"),
    (r"\beager\b", "eager"),
    (r"xformers", "xformers"),
    (r"flashinfer", "flashinfer"),
)


def framework_advises_other_backend(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A framework warns that a model should run with another attention backend (and which
    setting to change). Only when the text has no error of its own."""
    if not f.advice or (has_error(f) and not f.advice[0].refusal):
        return []
    adv = f.advice[0]
    backend = next((b for rx, b in _ADVISED if re.search(rx, adv.backend, re.I)), None)
    record = know.backend(backend) if backend else None
    setting = (
        f"{adv.setting}={adv.value}"
        if adv.setting.isupper()
        else f"{adv.setting}: {adv.value}"
        if adv.setting and adv.value
        else ""
    )
    where = "in the environment" if adv.setting.isupper() else "in the config"
    fix = ((f"set `{setting}` {where}",) if setting else ()) + (
        (f"attn-doctor install {backend}   # if it is not installed yet",)
        if record is not None and record.distributions
        else ()
    )
    return [
        ClassAnswer(
            class_id="framework-advises-other-backend",
            title=f"advice: {adv.subject or 'this model'} should use {adv.backend}",
            cause=(
                f"the framework advises running {adv.subject or 'this model'} with "
                f"{adv.backend}"
                + (f" and names the setting (`{setting}`)" if setting else "")
                + (
                    "; it refuses to run this model with the backend in use."
                    if adv.refusal
                    else "; it is a warning about the configuration, not a failure."
                )
            ),
            fix=fix or (f"configure the model to use {adv.backend}",),
            evidence=(("advised", adv.backend), *((("setting", setting),) if setting else ())),
            source="the framework's own warning",
            line=line_of(f, r"should (?:use|be)|Please use"),
        )
    ]


_FRAME_BACKENDS = {"flashinfer": "flashinfer", "flash_attn": "flash_attn_2", "xformers": "xformers"}


_NONE_CALLED = re.compile(
    r"\b(\w+)\(\s*\n(?:\s*\^+\s*\n)?\s*TypeError: 'NoneType' object is not callable"
)
"""The call on the source line just above Python's "'NoneType' object is not callable"."""


def backend_import_left_none(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A framework's attention module for a backend calls a name its guarded import left None
    ("'NoneType' object is not callable"): the backend's package is not installed. Also any
    code calling a backend's own function that way (``flash_attn_varlen_func = None`` in the
    except branch of its import)."""
    if (m := _NONE_CALLED.search("\n".join(f.lines))) is not None:
        api = next((a for a in know.backend_api if m.group(1) in a.names), None)
        b = know.backend(api.backend) if api is not None else None
        if api is not None and b is not None and b.distributions:
            return [
                ClassAnswer(
                    class_id="backend-not-installed",
                    title=f"{m.group(1)} is None: {b.name} did not import",
                    cause=(
                        f"the code calls {m.group(1)}, {b.name}'s function, which its guarded "
                        "import left None when importing the package failed: "
                        f"{b.distributions[0]} is not installed in this Python (or does not "
                        "import: the import's own error, hidden by the guard, says which)."
                    ),
                    fix=(f"attn-doctor install {b.name}", "or choose another attention mode"),
                    checks=(f"package_missing:{b.distributions[0]}",),
                    evidence=(("called", m.group(1)), ("backend", b.name)),
                    source=f"wheels_index/explain_classes.toml [backend_api] {api.module}",
                    line=line_of(f, r"'NoneType' object is not callable"),
                )
            ]
    for framework, module in f.none_called_in:
        b = know.backend(_FRAME_BACKENDS.get(module, ""))
        if b is None:
            continue
        env = (
            "VLLM_ATTENTION_BACKEND / --attention-backend"
            if framework == "vllm"
            else ("--attention-backend")
        )
        return [
            ClassAnswer(
                class_id="backend-not-installed",
                title=f"{framework} runs its {b.name} backend, and {b.name} is not installed",
                cause=(
                    f"{framework}'s {module} attention backend imports {b.name} inside a guard "
                    f"that leaves its names None when the import fails; a None was then called, "
                    f"so {', '.join(b.distributions) or b.name} is not importable."
                ),
                fix=(
                    f"attn-doctor install {b.name}",
                    f"or unset the setting that selects it ({env})",
                ),
                checks=tuple(f"package_missing:{d}" for d in b.distributions[:1]),
                evidence=(("framework", framework), ("backend module", module)),
                source=(
                    f"wheels_index/backends.toml {b.name}: modules; {framework}'s guarded import"
                ),
                line=line_of(f, r"NoneType"),
            )
        ]
    return []


def _release_for_torch(know: Knowledge, dist: str, torch: str) -> str | None:
    """The newest release of ``dist`` whose wheels pin exactly this torch (from the tables)."""
    have = version_of(torch)
    found = [
        ver
        for d, ver, req in know.torch_pins
        if d == dist and have is not None and version_of(req.lstrip("=")) == have
    ]
    return max(found, key=lambda v: version_of(v) or Version("0")) if found else None


_OWN_ID = {
    "xformers": "xformers-built-for-other-torch",
    "flash-attn": "flash-attn-built-for-other-torch",
}
"""The backend's own id for this cause, where the knowledge base has one (with its finer
machine check, ``built_for_other_torch:DIST``): the answer names it instead of the general id."""


def extension_pins_other_torch(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """pip reports that a backend's compiled package pins another torch than the one
    installed, and torch stayed (the log shows no torch uninstalled): the package's binaries
    were built for the torch it pins, not for this one."""
    if "torch" in f.uninstalled:
        return []  # pip replaced torch: the phrase entries for that case answer it
    for dist, ver, need, have in f.pin_conflicts:
        b = know.backend_of_distribution(dist)
        if b is None:
            continue
        match = _release_for_torch(know, dist, have)
        fix = (
            (f"pip install '{dist}=={match}' --no-deps   # the release built for torch {have}",)
            if match
            else (f"attn-doctor install {b.name}   # a build for the installed torch {have}",)
        ) + (f"or pip install 'torch=={need}'   # the torch {dist} {ver} was built for",)
        return [
            ClassAnswer(
                class_id=_OWN_ID.get(dist, "extension-built-for-other-torch"),
                title=f"{dist} {ver} is built for torch {need}, but torch {have} is installed",
                cause=(
                    f"{dist} {ver} ships binaries built against torch {need} (its wheel pins "
                    f"torch=={need}), and this environment kept torch {have}; its compiled "
                    "operators do not load against this torch."
                ),
                fix=fix,
                checks=((f"built_for_other_torch:{dist}",) if dist in _OWN_ID else ())
                + (f"package_installed:{dist}",),
                evidence=(("package", f"{dist} {ver}"), ("pins", need), ("torch", have)),
                source="pip's dependency-conflict report; xformers releases and their torch pins "
                "from wheels_index/xformers.toml",
                line=line_of(f, rf"{re.escape(dist)} \S+ requires torch"),
            )
        ]
    return []


_ATTENTION_FEATURE = re.compile(
    r"sink|mask|window|soft.?cap|bias|alibi|\bkv\b|kv_|cache|causal|dropout|head|gqa|mqa|mla"
    r"|varlen|paged|cross|attention|position|scale|\blse\b|_lse|backward|chunk",
    re.I,
)
"""Words of an attention feature: only those are this class when the table does not list the
feature (beam search refused by a backend is something else)."""


def _build_lacks_feature(
    f: TextFacts, backend: str, name: str, feature: str, having: tuple[str, ...]
) -> ClassAnswer:
    """A backend the feature table credits with a feature refuses it: the installed build or
    release of it does not implement it yet (flash-attn's soft-capping came in 2.6)."""
    others = [b for b in having if b != backend]
    return ClassAnswer(
        class_id="backend-feature-unsupported",
        title=f"this {backend} build does not support {name}",
        cause=(
            f"the {backend} in use refuses {name} ({feature}), as the message says; {backend} has "
            "it in other builds or later releases (the feature table), so the installed one is "
            "older, or a build of it without the feature (a Hub kernel, a framework's own copy)."
        ),
        fix=(
            f"upgrade {backend} (attn-doctor install {backend} picks a release for this torch)",
            *(f"or use {b} instead" for b in others[:2]),
        ),
        evidence=(("backend", backend), ("feature", feature)),
        source="the message itself; wheels_index/explain_classes.toml [feature] " + name,
        line=line_of(f, r"not supported|support"),
    )


def _unlisted_feature(f: TextFacts, backend: str, feature: str) -> ClassAnswer:
    """A backend refusing a feature the feature table does not list: the message is the
    evidence; which backends have it is not known here."""
    return ClassAnswer(
        class_id="backend-feature-unsupported",
        title=f"{backend} does not support {feature}",
        cause=(
            f"{backend} refuses a feature the caller uses ({feature}), as the message says; the "
            "other attention backends of the framework may have it (which ones is not in "
            "attn-doctor's feature table)."
        ),
        fix=(
            f"pick another attention backend than {backend} for this model (the framework's "
            "backend setting), or drop the feature",
        ),
        evidence=(("backend", backend), ("feature", feature)),
        source="the message itself",
        line=line_of(f, r"not supported|support"),
        before_phrases=False,
    )


def backend_feature_unsupported(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A backend says it lacks a feature of attention the caller uses (an attention mask,
    logits soft-capping): the backends that have it come from the feature table."""
    for feature_text, backend_text in f.features_refused:
        feat = next((x for x in know.features if x.pattern.search(feature_text)), None)
        # The refusing clause names the backend on its own ("set to sdpa"); SDPA is left
        # out of the message-wide backend words, which would take any mention of it.
        named = backends_in_text(backend_text) or re.findall(
            r"\b(sdpa|cuDNN)\b", backend_text, re.I
        )
        named = [n.lower() for n in named]
        if feat is None and named and _ATTENTION_FEATURE.search(feature_text):
            return [_unlisted_feature(f, named[0], feature_text)]
        if (
            feat is not None
            and named
            and named[0] in feat.backends
            and re.search(
                r"\b[Tt]his [\w ]{0,30}\b(?:build|implementation|version)\b[^\n]{0,20}"
                r"(?:does not|doesn't) support",
                body_of(f),
            )
        ):
            # the table credits the backend with it, and the refusal is the backend's own about
            # itself ("This flash attention implementation does not support"): this build or
            # release lacks it (a wrapper refusing a feature the backend has is not this)
            return [_build_lacks_feature(f, named[0], feat.name, feature_text, feat.backends)]
        if feat is None or not named or named[0] in feat.backends:
            continue
        sm = f.sms[0] if len(f.sms) == 1 else None
        others = [
            b
            for b in feat.backends
            if (rec := know.backend(b)) is not None and (sm is None or fits(rec, sm))
        ]
        return [
            ClassAnswer(
                class_id="backend-feature-unsupported",
                title=f"{named[0]} does not support {feat.name}",
                cause=(
                    f"{named[0]} has no {feat.name}, and the caller uses one ({feature_text}); "
                    f"the backends that have it: {', '.join(feat.backends)}."
                ),
                fix=tuple(
                    f"use {b} instead" + (" (torch SDPA: no extra package)" if b == "sdpa" else "")
                    for b in others[:2]
                )
                or (f"drop the {feat.name} or pick a backend that has it",),
                evidence=(("backend", named[0]), ("feature", feat.name)),
                source=feat.source,
                line=line_of(f, r"not supported|support"),
                before_phrases=False,
            )
        ]
    return []


_MODEL_REFUSES_BACKEND = re.compile(
    r"(?P<model>[\w.-]{2,40}) does not support (?:_Backend\.|AttentionBackendEnum\.)?"
    r"(?P<backend>[A-Z][A-Z0-9_]{2,}) backend(?: now)?\b"
)
"""vLLM's vision encoders refusing the attention backend they were given ("Qwen2-VL does not
support _Backend.FLASHINFER backend now.")."""


def model_refuses_backend(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """A model's attention code implements some of the framework's backends only, and the one
    chosen (by a setting that forces one backend for the whole model, or by the platform) is
    not among them."""
    m = _MODEL_REFUSES_BACKEND.search(body_of(f))
    if m is None:
        return []
    model, backend = m.group("model"), m.group("backend")
    forced = re.search(
        r"(?<![\w-])(VLLM_ATTENTION_BACKEND|--(?:mm-encoder-)?attention-backend)\b", body_of(f)
    )
    return [
        ClassAnswer(
            class_id="backend-feature-unsupported",
            title=f"{model} does not implement the {backend} attention backend",
            cause=(
                f"{model}'s attention code (its vision encoder, in vLLM) implements only some "
                f"backends (FLASH_ATTN, TORCH_SDPA, XFORMERS, ROCm's AITER in the releases "
                f"read) and refuses {backend}"
                + (f", which {forced.group(1)} forces for the whole model." if forced else ".")
            ),
            fix=(
                f"unset {forced.group(1)}   # or set it to FLASH_ATTN or TORCH_SDPA"
                if forced and forced.group(1).isupper()
                else f"# drop {forced.group(1) if forced else 'the forced backend'}, or set it "
                "to FLASH_ATTN or TORCH_SDPA",
            ),
            evidence=(("model", model), ("backend", backend)),
            source=(
                "vllm-project/vllm model_executor/models/qwen2_vl.py, qwen2_5_vl.py, qwen3_vl.py, "
                'molmo.py (raise RuntimeError(f"… does not support {self.attn_backend} backend '
                "now.\") when the ViT backend is not in the model's set; stored copies read here)"
            ),
            line=line_of(f, re.escape(m.group(0))),
        )
    ]


_TE_NO_BACKEND = re.compile(
    r"No dot product attention backend is available for the provided inputs"
)
_TE_DISABLING = re.compile(r"Disabling (\w+) (?:for|as|because|since|due to) ([^\n]{3,100})")
_TE_HEAD_DIMS = re.compile(
    r"'head_dim_qk': (\d+), 'head_dim_v': (\d+)|head_dim_qk = (\d+)\s+head_dim_v = (\d+)"
)


def te_no_backend_for_inputs(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """TransformerEngine disabled all three of its attention backends (flash, cuDNN fused,
    unfused) for these inputs: each lacks something the call uses; its debug log names what."""
    body = body_of(f)
    if _TE_NO_BACKEND.search(body) is None:
        return []
    reasons = [f"{m.group(1)}: {m.group(2).strip()}" for m in _TE_DISABLING.finditer(body)]
    dims = _TE_HEAD_DIMS.search(body)
    qk, v = (dims.group(1) or dims.group(3), dims.group(2) or dims.group(4)) if dims else ("", "")
    mla = bool(qk and v and qk != v)
    return [
        ClassAnswer(
            class_id="backend-feature-unsupported",
            title="TransformerEngine has no attention backend for these inputs",
            cause=(
                "TransformerEngine disabled each of its attention backends (FlashAttention, cuDNN "
                "fused attention, unfused) for what this call uses: a layout, mask, head dims, "
                "softmax type or context parallelism one of them lacks, on this GPU and cuDNN"
                + (
                    f"; the head dims differ (qk {qk}, v {v}: MLA), which FlashAttention 2 "
                    "does not take"
                    if mla
                    else ""
                )
                + (f". Its log says: {'; '.join(reasons[:3])}." if reasons else ".")
            ),
            fix=(
                "NVTE_DEBUG=1 NVTE_DEBUG_LEVEL=2 <the same command>   # TE prints why it "
                "disabled each backend",
                "# then change what the reasons name (the attention backend setting, the "
                "layout or context parallelism), or use a GPU/cuDNN the fused backend supports",
            ),
            evidence=(("head dims", f"qk {qk}, v {v}"),) if dims else (),
            source=(
                "NVIDIA/TransformerEngine transformer_engine/pytorch/attention/"
                "dot_product_attention/dot_product_attention.py (the ValueError when flash, "
                "fused and unfused attention are all disabled; stored copies read here)"
            ),
            line=line_of(f, _TE_NO_BACKEND.pattern),
        )
    ]
