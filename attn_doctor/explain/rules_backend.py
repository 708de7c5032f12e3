"""Failure classes of a backend, reasoned from its record: its package or its own
dependencies missing, forced by a framework setting, head dim, GPU range, device, and
binaries built for another torch (dtype: rules_dtype.py)."""

from __future__ import annotations

import re

from attn_doctor.backends import BackendRule
from attn_doctor.explain.answer import (
    ClassAnswer,
    backends_in,
    backends_in_text,
    body_of,
    gpu_range,
    has_error,
    instead,
    line_of,
    sm_name,
    unexplained_missing,
)
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.evidence_more import INSTALL_FIRST as _INSTALL_FIRST
from attn_doctor.explain.knowledge import Dependency, Knowledge

_MISSING_WORDS = (
    r"No module named|not installed|isn't available|is not available|doesn't seem to be installed"
    r"|must be installed first|missing package|cannot import|could not be imported|ImportError"
)


def _module_backend(know: Knowledge, module: str) -> BackendRule | None:
    """The backend whose module (or its top-level package) this is; exact names first, so
    ``flash_attn.cute`` is flash_attn_4 and ``flash_attn`` flash_attn_2."""
    candidates = [b for b in know.backends if b.name not in {"sdpa", "eager"} and b.modules]
    for b in candidates:
        if module in b.modules:
            return b
    top = module.split(".", maxsplit=1)[0]
    for b in candidates:
        if top in {m.split(".", maxsplit=1)[0] for m in b.modules}:
            return b
    return None


def _dependency(know: Knowledge, module: str, backends: list[str]) -> list[Dependency]:
    top = module.split(".", maxsplit=1)[0]
    return [
        dep
        for dep in know.dependencies
        if (module == dep.module or top == dep.module.split(".")[0]) and dep.backend in backends
    ]


def backend_dependency_missing(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A backend imports fine up to one of its own dependencies (FA4's CuTe DSL stack,
    SageAttention's Triton), which is missing or of the wrong version."""
    backends = backends_in(f)
    out = []
    body = body_of(f)
    wrong = re.findall(r"cannot import name '(\w+)' from '([\w.]+)'", body)
    candidates = [(m, "missing") for m in unexplained_missing(f, know)] + [
        (mod, f"lacks {name}")
        for name, mod in dict.fromkeys([*wrong, *((n, m) for m, n in f.missing_attrs)])
    ]
    for module, how in candidates:
        top = module.split(".")[0]
        needed_by = [
            d.backend for d in know.dependencies if top == d.module.split(".", maxsplit=1)[0]
        ]
        for dep in know.dependencies:
            if not (module == dep.module or top == dep.module.split(".")[0]):
                continue
            # A dependency several backends share (Triton) is the answer even when the
            # message does not name the backend; any other needs its backend in the message.
            # A module present at the wrong version (it lacks a name) is evidence enough when
            # only one backend's stack uses it (cutlass.cute is FA4's DSL).
            if (
                dep.backend not in backends
                and (backends or len(needed_by) < 2)
                and (how == "missing" or backends)
            ):
                continue
            windows = "windows" in f.platforms and dep.dist == "triton"
            req = (
                dep.requirement.replace("triton", "triton-windows") if windows else dep.requirement
            )
            state = (
                "is not installed"
                if how == "missing"
                else f"is installed at a version that {how} (too old or too new for it)"
            )
            out.append(
                ClassAnswer(
                    class_id="backend-dependency-missing",
                    title=f"{dep.backend}'s dependency {dep.dist} missing or wrong",
                    cause=(
                        f"{dep.backend} itself is present, but its own dependency {dep.dist} "
                        f"(module {dep.module}) {state}; {dep.backend} needs {dep.requirement}."
                        if dep.backend in backends
                        else f"{dep.dist} (module {dep.module}) {state}; "
                        f"{', '.join(dict.fromkeys(needed_by))} need it."
                    ),
                    fix=(f"pip install --upgrade '{req}'",),
                    checks=(f"package_missing:{dep.dist}",) if how == "missing" else (),
                    evidence=(("module", module), ("backend", dep.backend)),
                    source=dep.source,
                    line=line_of(f, re.escape(module)),
                )
            )
            return out
    return out


_INSTALLED_TOO_OLD = re.compile(
    r"[Dd]etected version|greater (?:than )?or equal|\btoo old\b|older than"
    r"|minimum (?:required )?version",
)
"""The message reports an installed release that is too old, not a missing package."""


def backend_forced_package_missing(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A framework setting forces a backend (ComfyUI --use-sage-attention, transformers
    attn_implementation, diffusers set_attention_backend, SGLang/vLLM --attention-backend)
    while the backend's package is not installed."""
    body = body_of(f)
    # A None called while a setting forces the backend: its guarded import left it None.
    if not re.search(_MISSING_WORDS + r"|'NoneType' object is not callable", body):
        return []
    for knob in know.knobs:
        m = knob.pattern.search(body)
        if m is None:
            continue
        backend = knob.backend.replace("{n}", m.groupdict().get("n") or "2")
        record = know.backend(backend)
        if record is None:
            continue
        # A missing module that is a dependency (triton for sage) is the other class.
        if any(_dependency(know, mod, [backend]) for mod in f.missing_modules):
            return []
        # The message reports the installed release ("Detected version 2.0.4"): installed,
        # too old rather than missing.
        if _INSTALLED_TOO_OLD.search(body) or f.runtime.tensor_device is not None:
            return []  # installed but too old, or refused for the device: not missing
        if f.required_sm is not None and re.search(r"compute capability", body):
            return []  # the error it raised states the GPU it needs: the GPU's range
        others = [mod for mod in f.missing_modules if _module_backend(know, mod) is None]
        if (
            f.missing_modules
            and others
            and not any(_module_backend(know, mod) is record for mod in f.missing_modules)
        ):
            return []  # the missing module is something else entirely
        return [
            ClassAnswer(
                class_id="backend-forced-package-missing",
                title=f"{knob.framework} is set to use {backend}, which is not installed",
                cause=(
                    f"{knob.framework}'s setting `{m.group(0)}` forces the {backend} backend, and "
                    f"its package ({', '.join(record.distributions) or backend}) is not importable "
                    "in the Python that runs it."
                ),
                fix=(f"attn-doctor install {backend}", f"or {knob.instead}"),
                checks=tuple(f"package_missing:{d}" for d in record.distributions[:1]),
                evidence=(("framework setting", m.group(0)), ("backend", backend)),
                source=knob.source,
                line=line_of(f, re.escape(m.group(0))) or line_of(f, _MISSING_WORDS),
            )
        ]
    return []


def _one_operator_of_many(body: str) -> bool:
    """xformers' "No operator found" lists each operator's reasons: a head-dim limit that only
    some operators give is not why none was found when the others refuse for other reasons."""
    if "No operator found" not in body:
        return False
    reasons = re.split(r"`[\w.@-]+` is not supported because:", body)[1:]
    return bool(reasons) and not all(
        re.search(r"embed per head|shape\[-1\]|head ?dim", r, re.I) for r in reasons
    )


def head_dim_unsupported(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A head dimension the kernels refuse: the rule the message states ("at most 256",
    "a multiple of 32"), or above the limit in the backend's record."""
    if not has_error(f) or _one_operator_of_many(body_of(f)):
        return []
    if re.search(r"operator wasn't built|wasn't build with CUDA support", body_of(f)):
        return []  # xformers lists a head-dim limit among the reasons of an operator not built
    if f.head_dim_rule is not None:
        named = backends_in(f) or ([f.upstream.backend] if f.upstream.backend else [])
        who = named[0] if named else "the attention kernel"
        model = f", and this model's is {max(f.head_dims)}" if f.head_dims else ""
        limit = re.search(r"at most (\d+)", f.head_dim_rule)
        # no head dim in the message: an alternative must at least take one above the limit
        need = max(f.head_dims) if f.head_dims else (int(limit.group(1)) + 1 if limit else None)
        alt = instead(know, head_dim=need, exclude=who)
        return [
            ClassAnswer(
                class_id="head-dim-unsupported",
                title=f"{who} refuses this head dim",
                cause=(
                    f"{who} supports head dims {f.head_dim_rule} (as the message says)"
                    f"{model}; the model's attention heads do not fit its kernels."
                ),
                fix=tuple(
                    f"use {a} instead" + (' (attn_implementation="sdpa")' if a == "sdpa" else "")
                    for a in alt[:2]
                )
                or ('attn_implementation="sdpa"',),
                evidence=(
                    ("head-dim rule", f.head_dim_rule),
                    *((("head dim", str(max(f.head_dims))),) if f.head_dims else ()),
                ),
                source="the message itself; wheels_index/backends.toml max_head_dim",
                line=line_of(f, r"head|hidden_dim"),
            )
        ]
    if not f.head_dims:
        return []
    for name in backends_in(f):
        b = know.backend(name)
        if b is None or not b.max_head_dim:
            continue
        too_big = [h for h in f.head_dims if h > b.max_head_dim]
        if not too_big:
            continue
        h = max(too_big)
        alt = instead(know, head_dim=h, exclude=name, sm=f.sms[0] if f.sms else None)
        return [
            ClassAnswer(
                class_id="head-dim-unsupported",
                title=f"head dim {h} is above {name}'s limit ({b.max_head_dim})",
                cause=(
                    f"{name}'s kernels support head dims up to {b.max_head_dim}; this model's "
                    f"attention has head dim {h}."
                ),
                fix=tuple(
                    f"use {a} instead" + (' (attn_implementation="sdpa")' if a == "sdpa" else "")
                    for a in alt[:2]
                )
                or ('attn_implementation="eager"',),
                evidence=(("head dim", str(h)), ("backend", name)),
                source=f"wheels_index/backends.toml {name}: {b.source}",
                line=line_of(f, rf"\b{h}\b") or line_of(f, "head"),
            )
        ]
    return []


def _range_text(lo: int, hi: int | None) -> str:
    return f"sm_{lo}" + (f"..sm_{hi}" if hi else " and newer")


def _outside(f: TextFacts, lo: int, hi: int | None, exact: tuple[int, ...] = ()) -> int | None:
    """The message's GPU architecture when every one it names is outside [lo, hi] (or, when
    ``exact`` is given, not one of those)."""
    outside = [
        sm
        for sm in f.sms
        if (sm not in exact if exact else sm < lo or (hi is not None and sm > hi))
    ]
    return outside[0] if outside and len(outside) == len(f.sms) else None


def _range_answer(
    f: TextFacts,
    know: Knowledge,
    *,
    who: str,
    lo: int,
    hi: int | None,
    sm: int | None,
    said: str,
    source: str,
    exclude: str = "",
    framework: str = "",
    late: bool = False,
) -> ClassAnswer:
    if sm is None or sm < lo:
        checks: tuple[str, ...] = (f"gpu_sm_below:{lo}",)
    elif hi is not None and sm > hi:
        checks = (f"gpu_sm_at_least:{hi + 1}",)
    else:
        checks = ()  # inside [lo, hi] but not one of the exact architectures allowed
    needs = (
        " or ".join(f"sm_{x}" for x in f.required_exact)
        if f.required_exact and said == "as the message says"
        else _range_text(lo, hi)
    )
    # With the GPU unknown, only SDPA is sure to run (it picks a kernel the GPU has).
    alt = instead(know, sm=sm, exclude=exclude) if sm is not None else ["sdpa"]
    here = f"this GPU is {sm_name(know, sm)}" if sm else "the GPU is not named in the message"
    return ClassAnswer(
        class_id="gpu-outside-backend-range",
        title=f"{who} does not run on " + (sm_name(know, sm) if sm else "this GPU"),
        cause=f"{who} runs on {needs} ({said}); {here}.",
        fix=(
            (
                f"in {framework}, choose an attention backend or kernel setting it offers for "
                "this GPU (its documentation lists them), or run on a GPU it lists",
            )
            if framework
            else tuple(
                f"use {a} instead" + (' (attn_implementation="sdpa")' if a == "sdpa" else "")
                for a in alt[:2]
            )
        ),
        checks=checks,
        evidence=(
            *((("architecture", f"sm_{sm}"),) if sm else ()),
            ("needs", needs),
            *((("gpu", f.gpus[0]),) if f.gpus else ()),
        ),
        source=source,
        line=line_of(f, r"support|requires|Ampere|Hopper|capability|SM|sm_?\d|Expected"),
        before_phrases=sm is not None and not late,
    )


def _refused_answer(f: TextFacts, know: Knowledge, name: str) -> ClassAnswer | None:
    """The backend itself says it does not support this architecture. Inside the range its
    record gives, the installed build is older than the release that added the arch."""
    b = know.backend(name)
    if b is None:
        return None
    sm = f.refused_sms[0]
    lo, hi = gpu_range(b)
    dist = b.distributions[0] if b.distributions else name
    have = f.version(dist)
    if lo <= sm and (hi is None or sm <= hi):
        cause = (
            f"this {dist}{' ' + have if have else ''} was built without kernels for "
            f"{sm_name(know, sm)}, which {name} supports in newer releases (its record: "
            f"{_range_text(lo, hi)})."
        )
        fix: tuple[str, ...] = (f"attn-doctor install {name}   # a build for this GPU and torch",)
    else:
        which = (
            "the message refuses " + ", ".join(sm_name(know, x) for x in f.refused_sms)
            if len(f.refused_sms) > 1
            else f"this GPU is {sm_name(know, sm)}"
        )
        cause = f"{name} runs on {_range_text(lo, hi)} (its record); {which}."
        fix = tuple(
            f"use {a} instead" + (' (attn_implementation="sdpa")' if a == "sdpa" else "")
            for a in instead(know, sm=sm, exclude=name)[:2]
        )
    return ClassAnswer(
        class_id="gpu-outside-backend-range",
        title=f"{name} refuses {sm_name(know, sm)}",
        cause=cause,
        fix=fix,
        evidence=(
            ("refused", f"sm_{sm}"),
            ("backend", name),
            *((("version", have),) if have else ()),
        ),
        source=f"wheels_index/backends.toml {name}: {b.source}",
        line=line_of(f, r"Unsupported|not supported"),
    )


_FRAMEWORK_PROJECTS = frozenset(
    {"tensorrt-llm", "vllm", "sglang", "lmdeploy", "deepspeed", "text-generation-inference"}
)
"""Projects whose own kernels refuse a GPU in their words: the fix is in their settings."""

_REFUSING = (
    r"Unsupported (?:CUDA |GPU )?architecture|not supported on sm|cannot use|can't use"
    r"|(?:does not|doesn't) support[^\n]{0,60}GPU"
)


_BARE_REFUSAL = re.compile(r"(?m)Error: Unsupported (?:CUDA |GPU )?architecture\.?[ \t]*$")


def _kernel_refused_gpu(f: TextFacts, know: Knowledge, name: str, sm: int) -> ClassAnswer:
    b = know.backend(name)
    lo, hi = gpu_range(b) if b is not None else (0, None)
    flashinfer = name == "flashinfer"
    return ClassAnswer(
        class_id="gpu-outside-backend-range",
        title=f"the {name} kernel this call reaches does not run on {sm_name(know, sm)}",
        cause=(
            f"{name} said 'Unsupported architecture' on {sm_name(know, sm)}: the kernel this "
            f"call reaches has no code for this GPU. {name} as a whole covers "
            f"{_range_text(lo, hi)} (its record), but not every kernel in it runs on every GPU "
            "there"
            + (
                " (its trtllm-gen kernels are for sm_100/sm_103; on sm_90 and sm_120/121 its "
                "decode picks xqa)"
                if flashinfer
                else ""
            )
            + ", or this build lacks the GPU."
        ),
        fix=(
            (
                "let FlashInfer choose its kernel for this GPU: backend='auto' rather than "
                "'trtllm-gen' (or the framework's other attention backend)"
                if flashinfer
                else f"choose the {name} kernel or option made for this GPU, or the framework's "
                "other attention backend"
            ),
            f"attn-doctor install {name}   # if this build lacks the GPU",
        ),
        evidence=(("refused", f"sm_{sm}"), ("backend", name)),
        source=(
            f"the message itself ('Unsupported architecture'); wheels_index/backends.toml {name}"
            " for the backend's overall range"
            + (
                "; flashinfer-ai/flashinfer flashinfer/decode.py at fb28d7242 (backend 'auto' "
                "chooses trtllm-gen on sm_100/sm_103, xqa on sm_90 and sm_120/sm_121)"
                if flashinfer
                else ""
            )
        ),
        line=line_of(f, _BARE_REFUSAL.pattern),
    )


def gpu_outside_backend_range(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """The GPU's architecture is outside the range a kernel needs: the range the message
    itself states ("compute capability > 7.5", "sm80-sm90", "is_sm80 || is_sm90"), else the
    backend's record."""
    if not has_error(f) or f.torch_build in {"rocm", "xpu"}:
        return []
    named = backends_in(f) or ([f.upstream.backend] if f.upstream.backend else [])
    if f.required_sm is not None:
        lo, hi = f.required_sm
        sm = _outside(f, lo, hi, f.required_exact)
        if sm is not None or not f.sms:
            # a serving framework's own kernel refusing (its wording): its settings are the fix
            framework = (
                next((p for p in f.upstream.projects if p in _FRAMEWORK_PROJECTS), "")
                if not named
                else ""
            )
            who = (
                named[0]
                if named
                else f"{framework}'s attention kernel"
                if framework
                else "the kernel"
            )
            return [
                _range_answer(
                    f,
                    know,
                    who=who,
                    lo=lo,
                    hi=hi,
                    sm=sm,
                    said="as the message says",
                    source="the message itself",
                    exclude=named[0] if named else "",
                    framework=framework,
                )
            ]
    if not f.refused_sms and named and f.sms and _BARE_REFUSAL.search(body_of(f)):
        # the kernel refused "Unsupported architecture" with no number: the GPU the message
        # shows is the one refused, by the one kernel this call reached
        return [_kernel_refused_gpu(f, know, named[0], f.sms[0])]
    if f.refused_sms and named:
        # The backend the refusing line names ("Cannot use FlashAttention-2 backend for Volta
        # and Turing GPUs" in a log that goes on with XFormers) is the one that refuses.
        said = line_of(f, _REFUSING)
        first = next((b for b in named if backends_in_text(said)[:1] == [b]), named[0])
        refused = _refused_answer(f, know, first)
        if refused is not None:
            return [refused]
    # A message that names the backend and fails: its GPU range (from the record) decides.
    in_traceback = bool(named)
    if not f.sms or not (
        in_traceback
        or re.search(
            r"support|requires|Ampere|Hopper|Blackwell|Turing|Volta|architecture|capability"
            r"|SM ?[<>]=?|sm_?\d|kernel image",
            body_of(f),
            re.I,
        )
    ):
        return []
    for name in named:
        b = know.backend(name)
        if b is None:
            continue
        lo, hi = gpu_range(b)
        sm = _outside(f, lo, hi)
        if sm is None:
            continue  # a GPU the backend does support is in the message: not this class
        return [
            _range_answer(
                f,
                know,
                who=name,
                lo=lo,
                hi=hi,
                sm=sm,
                said="its record",
                source=f"wheels_index/backends.toml {name}: {b.source}",
                exclude=name,
                # the backend's own module is missing: that error, recorded, says it first
                late=any(m.split(".")[0] in b.modules for m in f.missing_modules),
            )
        ]
    return []


def _missing_torch_library(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A backend's binary links a torch library (libtorch_*, libc10*) this torch lacks."""
    libs = [lib for lib in f.missing_libraries if re.match(r"lib(?:torch|c10)", lib)]
    named = backends_in(f)
    b = know.backend(named[0]) if named else None
    if not libs or b is None:
        return []
    dist = b.distributions[0] if b.distributions else b.name
    return [
        ClassAnswer(
            class_id="extension-built-for-other-torch",
            title=f"{dist} built for another torch",
            cause=(
                f"{dist}'s compiled extension links {libs[0]}, a library of the torch it was "
                "built against; this torch does not ship it: it was built for another torch "
                "release."
            ),
            fix=(
                f"pip install --force-reinstall --no-deps --no-cache-dir {dist}   # a build for "
                "torch <torch_mm> (attn-doctor install picks one)",
            ),
            checks=(f"built_for_other_torch:{dist}",),
            evidence=(("missing library", libs[0]), ("backend", b.name)),
            source="torch's shared libraries (libtorch_*, libc10*) differ between releases",
            line=line_of(f, re.escape(libs[0])),
            before_phrases=False,
        )
    ]


def extension_symbol_mismatch(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """An undefined torch symbol in a backend's binary, or a torch library it links that this
    torch lacks: built for another torch (or ABI)."""
    if not f.symbols:
        return _missing_torch_library(f, know)
    for sym in f.symbols:
        if sym.owner != "torch":
            continue
        b = _module_backend(know, sym.binary or "") if sym.binary else None
        dist = b.distributions[0] if b and b.distributions else (sym.binary or "the extension")
        abi = "__cxx11" in sym.mangled or re.search(r"NSs|Ss[A-Z0-9]", sym.mangled) is not None
        torch = f.version("torch")
        cause = (
            f"{sym.binary or 'a compiled extension'} needs {sym.name} from torch, which this "
            f"torch{' ' + torch if torch else ''} does not define: it was built "
            + (
                "with the other C++11 ABI setting than torch's"
                if abi
                else "against another torch release"
            )
        )
        return [
            ClassAnswer(
                class_id="extension-built-for-other-torch",
                title=f"{dist} built for another torch",
                cause=cause + ".",
                fix=(
                    f"pip install --force-reinstall --no-deps --no-cache-dir {dist}   "
                    "# a build for "
                    "torch <torch_mm> (attn-doctor install picks one)",
                ),
                checks=(f"built_for_other_torch:{dist}",) if b else (),
                evidence=(
                    ("symbol", sym.name or sym.mangled),
                    ("defined by", "torch"),
                    ("needed by", sym.binary or "?"),
                ),
                source="Itanium C++ name of the symbol (namespace c10/at/torch is libtorch's)",
                line=line_of(f, "undefined symbol"),
                before_phrases=False,
            )
        ]
    return []


def backend_not_installed(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """A backend's own module is missing (no framework setting named): the import error's
    class, or its bare "No module named 'x'" line as apps print it."""
    # an import error, its bare line, a model's "Please install X first", or any error
    bare = _INSTALL_FIRST.search(body_of(f)) or re.search(
        # an app's own report of the import ("Can't import SageAttention: No module named …")
        r"(?m)^\W{0,3}No module named |\bimport \w+:\s*No module named ",
        body_of(f),
    )
    # a caller's importlib.metadata lookup finding no such distribution: not installed
    dists = [
        (d, b)
        for d in f.runtime.dist_not_found
        if (b := know.backend_of_distribution(d.replace("_", "-"))) is not None
    ]
    if not bare and not dists and not any(not e.endswith("Warning") for e in f.error_classes):
        return []
    found = [(mod, _module_backend(know, mod)) for mod in unexplained_missing(f, know)]
    for mod, b in found + dists:
        if b is None or b.name in {"unsloth"}:
            continue
        return [
            ClassAnswer(
                class_id="backend-not-installed",
                title=f"{b.name} is not installed",
                cause=(
                    f"the code imports {mod}, the {b.name} backend's module, and it is not "
                    "installed in this Python."
                    if (mod, b) in found
                    else f"the code looks up the {mod} distribution (importlib.metadata, a "
                    f"version check before using {b.name}), and it is not installed in this "
                    "Python."
                ),
                fix=(f"attn-doctor install {b.name}",),
                checks=tuple(f"package_missing:{d}" for d in b.distributions[:1]),
                evidence=(("missing module", mod),),
                source=f"wheels_index/backends.toml {b.name}: modules",
                line=line_of(f, re.escape(mod)),
                before_phrases=False,
            )
        ]
    return []
