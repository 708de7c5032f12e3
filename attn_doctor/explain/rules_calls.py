"""A caller written for another release of an attention backend's (or its framework's) API:
the call passes a keyword the installed function does not take, the wrong number of
arguments, or looks up a name the installed module or class no longer (or not yet) has."""

from __future__ import annotations

import re

from packaging.version import Version

from attn_doctor.explain.answer import (
    ATTENTION_NAME,
    ClassAnswer,
    body_of,
    has_error,
    line_of,
    mm,
    version_of,
)
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.knowledge import BackendApi, Knowledge

_ATTN_KEYWORD = re.compile(
    r"padding_mask|attention_mask|attn_mask|position_embeddings|cache_position|output_attentions"
    r"|sliding_window|softcap|window_size|alibi_slopes|cu_seqlens\w*|max_seqlen\w*|is_causal"
    r"|dropout_p|attn_bias|enable_gqa|past_key_values?|use_cache|layer_past|kv_cache\w*"
    # an attention switch of another release of the model class (remote code's own keyword)
    # (attn_implementation itself: transformers too old for it, a phrase of its own)
    r"|use_flash_attn\w*|use_flash_attention\w*|use_sdpa|use_xformers\w*"
)
"""Keywords of an attention layer's forward or an attention function: a ``forward()`` that
refuses one is a patched attention forward written for another release of the framework
(transformers 4.34 began passing ``padding_mask``, later releases ``position_embeddings`` and
``cache_position``)."""
BACKEND_MODULES = ("xformers", "flash_attn", "sageattention", "flashinfer")
"""Top-level modules of the attention backends whose API callers are written against."""


def _answer(f: TextFacts, what: str, name: str, pattern: str) -> ClassAnswer:
    return ClassAnswer(
        class_id="caller-written-for-other-api",
        title=f"the caller was written for another release's API ({what})",
        cause=(
            f"the calling code {what}: it was written against a different release of the "
            "attention backend or of the framework around it than the one installed "
            "(the API changed between them)."
        ),
        fix=(
            "pip install --upgrade <the package the traceback's calling frame belongs to>   "
            "# a release written for the installed API",
            "or pin the backend/framework release the caller was written for "
            "(its requirements or changelog name it)",
        ),
        evidence=(("call", name), ("mismatch", what)),
        source="Python's TypeError/AttributeError/ImportError wording for a call that does "
        "not fit the installed code",
        line=line_of(f, pattern),
    )


def _module_left_none(f: TextFacts, know: Knowledge, attr: str) -> ClassAnswer | None:
    """'NoneType' object has no attribute 'attn_bias': the code's handle for a backend module
    (``xformers = None`` in the except branch of its import) is None, and the attribute is that
    module's: the backend did not import."""
    api = next((a for a in know.backend_api if attr in a.names), None)
    if api is None:
        return None
    dist = api_distribution(know, api)
    return ClassAnswer(
        class_id="backend-not-installed",
        title=f"{api.module} is None: {dist} did not import",
        cause=(
            f"the code reads {attr} from its handle for {api.module}, and the handle is None: "
            "the guarded import that sets it (try/except, leaving None on failure) failed, so "
            f"{dist} is not installed in this Python or does not import (its own error is "
            "hidden by the guard)."
        ),
        fix=(
            f"pip install {dist}   # or: attn-doctor install {api.backend}",
            f'python -c "import {api.module}"   # shows why it does not import',
        ),
        checks=(f"package_missing:{dist}",),
        evidence=(("None has no attribute", attr), ("module", api.module)),
        source=f"wheels_index/explain_classes.toml [backend_api] {api.module}: {api.source}",
        line=line_of(f, re.escape(attr)),
    )


def caller_written_for_other_api(f: TextFacts, know: Knowledge) -> list[ClassAnswer]:
    """An attention-path callable refuses a keyword or the argument count, an attention class
    lacks an attribute, or a backend module lacks a name the knowledge does not place
    elsewhere (that case is ``backend-function-import-path``)."""
    calls = f.calls
    for fn, kw in calls.bad_kwargs:
        if (late := _keyword_too_new(f, know, fn, kw)) is not None:
            return [late]
        if (gone := _triton_keyword_removed(f, know, fn, kw)) is not None:
            return [gone]
    for fn, kw in calls.bad_kwargs:
        if ATTENTION_NAME.search(fn) or _ATTN_KEYWORD.fullmatch(kw):
            return [
                _answer(f, f"passes {kw}= to {fn}(), which does not take it", fn, re.escape(kw))
            ]
    for fn, said in calls.bad_arity:
        if ATTENTION_NAME.search(fn):
            return [_answer(f, f"calls {fn}(): {said}", fn, re.escape(fn))]
    for cls, attr in calls.object_attrs:
        if cls == "NoneType" and (left := _module_left_none(f, know, attr)) is not None:
            return [left]
        if f.runtime.ops_missing is not None and cls == f.runtime.ops_missing[0]:
            continue  # torch.ops finding no operator: the extension did not load (its own class)
        if ATTENTION_NAME.search(cls) or ATTENTION_NAME.search(attr):
            return [
                _answer(
                    f,
                    f"uses {cls}.{attr}, which the installed {cls} lacks",
                    f"{cls}.{attr}",
                    re.escape(attr),
                )
            ]
    if calls.varlen_args:
        arg = calls.varlen_args[0]
        return [
            _answer(
                f,
                f"passes {arg} in a form the installed kernel refuses (its own check failed)",
                arg,
                re.escape(arg),
            )
        ]
    if (gqa := _grouped_query_view(f)) is not None:
        return [gqa]
    # a name from after the rename that the API's own module lacks: the release is older
    renamed = [
        name
        for mod, name in f.missing_attrs
        for api in know.backend_api
        if api.renamed_to and mod == api.module and name.startswith(api.renamed_to)
    ]
    for name in [*calls.undefined_names, *renamed]:
        if too_old := _renamed_api_too_old(f, know, name):
            return [too_old]
    for name in calls.undefined_names:
        if missing := _backend_function_undefined(f, know, name):
            return [missing]
    known = {n for api in know.backend_api for n in api.names}
    for name in calls.undefined_names:
        # an attention function no table knows (a name of another release: sageattn_blackwell,
        # sageattn3_blackwell since SageAttention 3)
        if ATTENTION_NAME.search(name) and name not in known:
            return [_answer(f, f"calls {name}, which is not defined here", name, re.escape(name))]
    for mod, name in f.missing_attrs:
        # a backend's module, or a framework's attention module (comfy.ldm.modules.attention,
        # diffusers' attention_processor): the caller was written for another release of it
        top = mod.split(".", maxsplit=1)[0]
        # (transformers' helpers removed between releases and torch's API by release are
        # their own classes)
        framework = top not in {"transformers", "torch"} and bool(ATTENTION_NAME.search(mod))
        if (top in BACKEND_MODULES or framework) and name not in known:
            return [
                _answer(
                    f,
                    f"looks up {name} in {mod}, which the installed release lacks",
                    f"{mod}.{name}",
                    re.escape(name),
                )
            ]
    return []


def _triton_keyword_removed(f: TextFacts, know: Knowledge, fn: str, kw: str) -> ClassAnswer | None:
    """A Triton kernel passes a keyword its language function no longer takes (``tl.dot(…,
    trans_b=True)``): the kernel was written for a Triton before that release."""
    name = fn.rsplit(".", 1)[-1]
    t = next((t for t in know.triton_keywords if (t.function, t.keyword) == (name, kw)), None)
    if t is None:
        return None
    have = f.version("triton")
    return ClassAnswer(
        class_id="triton-version-mismatch",
        title=f"tl.{name}() has no {kw}= from Triton {t.removed_in}: the kernel is older",
        cause=(
            f"the Triton kernel calls tl.{name}(…, {kw}=…), which Triton releases before "
            f"{t.removed_in} took; the installed Triton{' ' + have if have else ''} no longer "
            "does, so the kernel (written for that older Triton) does not compile."
        ),
        fix=(
            f"pip install 'triton<{t.removed_in}'   # the release the kernel names (its file or "
            "requirements), if torch allows it",
            "or a release of the calling package whose kernels are written for this Triton "
            "(flash-attn: its CUDA kernels, flash_attn_func, instead of flash_attn_triton)",
        ),
        evidence=(("keyword", f"tl.{name}({kw}=)"), ("removed in", f"triton {t.removed_in}")),
        source=t.source,
        line=line_of(f, re.escape(kw)),
    )


def api_distribution(know: Knowledge, api: BackendApi) -> str:
    """The distribution that ships a backend API (``flash-attn``; ``torch`` for SDPA)."""
    record = know.backend(api.backend)
    dist = record.distributions[0] if record is not None and record.distributions else ""
    return dist or api.module.split(".")[0].replace("_", "-")


def upgrade_fix(dist: str, floor: str, backend: str) -> str:
    return (
        f"pip install --no-build-isolation '{dist}>={floor}'   # or: attn-doctor install {backend}"
    )


def _renamed_api_too_old(f: TextFacts, know: Knowledge, name: str) -> ClassAnswer | None:
    """A name the code uses is undefined, and it is a backend function that exists only since
    the backend renamed its API (``flash_attn_varlen_func``, 2.0): the installed release is
    older than the caller's, so its guarded import found nothing."""
    for api in know.backend_api:
        if not api.renamed_to or not name.startswith(api.renamed_to):
            continue
        dist = api_distribution(know, api)
        old = api.renamed_from + name[len(api.renamed_to) :]
        return ClassAnswer(
            class_id=f"{dist}-too-old-for-caller",
            title=f"{name} is missing: the installed {dist} predates it",
            cause=(
                f"the code calls {name}, which {dist} has from {api.renamed_in} ({old} before); "
                f"the installed {dist}{' ' + v if (v := f.version(dist)) else ''} is older, so "
                "it does not have that name."
            ),
            fix=(upgrade_fix(dist, api.renamed_in, api.backend),),
            evidence=(("undefined", name), ("since", f"{dist} {api.renamed_in}")),
            source=api.source,
            line=line_of(f, re.escape(name)),
        )
    return None


def _grouped_query_view(f: TextFacts) -> ClassAnswer | None:
    """A ``view`` in attention code asks for a whole multiple of the elements it got: code that
    reshapes keys/values with the query head count, on a model with grouped-query attention
    (fewer key/value heads), was written for models without it."""
    if not ATTENTION_NAME.search("\n".join(f.lines)):
        return None
    vm, sm = f.calls.view_mismatch, f.calls.size_mismatch
    if vm is not None:
        dims, size = vm
        want = 1
        for d in dims:
            if d < 0:
                return None
            want *= d
        heads = next(iter(dims[2:3]), None)
        evidence = (("view", str(list(dims))), ("elements", str(size)))
    elif sm is not None and sm[2] in {1, 2}:  # the head dimension of (b, h, s, d) or (b, s, h, d)
        want, size = max(sm[:2]), min(sm[:2])
        heads = want
        evidence = (("sizes", f"{sm[0]} and {sm[1]}"), ("dimension", str(sm[2])))
    else:
        return None
    if size <= 0 or want <= size or want % size:
        return None
    ratio = want // size
    if ratio & (ratio - 1) or ratio > 64:  # head groups come in powers of two
        return None
    heads = heads if heads is not None and heads % ratio == 0 else None
    kv = f" ({heads} query heads, {heads // ratio} key/value heads)" if heads else ""
    return ClassAnswer(
        class_id="caller-written-for-other-api",
        title="attention code treats keys/values as having the query head count (no GQA)",
        cause=(
            f"the shapes differ by {ratio}× in the heads: the model has grouped-query "
            f"attention{kv}, and the attention code (often a flash-attn monkey patch) reshapes "
            "or combines its keys and values with num_heads instead of num_key_value_heads (or "
            "without repeating them per group); it was written for models without GQA."
        ),
        fix=(
            'use the framework\'s own attention (attn_implementation="sdpa" or '
            '"flash_attention_2") instead of the patch or fallback, or a revision of it that '
            "handles num_key_value_heads (repeat_kv before the call)",
        ),
        evidence=(*evidence, ("ratio", str(ratio))),
        source="the message itself (the shapes it reports, a power-of-two ratio in the heads)",
        line=line_of(f, r"is invalid for input of size|must match the size of tensor b"),
    )


def _keyword_too_new(f: TextFacts, know: Knowledge, fn: str, kw: str) -> ClassAnswer | None:
    """A backend function refuses a keyword it took only from a later release
    (``flash_attn_func(window_size=…)``, flash-attn 2.3.0): the installed one is older."""
    name = fn.rsplit(".", 1)[-1]
    for api in know.backend_api:
        since = dict(api.keywords).get(kw)
        if since is None or name not in api.names:
            continue
        dist = api_distribution(know, api)
        have = f.version(dist)
        if have and (got := version_of(have)) is not None and got >= Version(since):
            return None  # the installed release takes the keyword: something else refused it
        return ClassAnswer(
            # torch's own API has its class; a backend package's is "<dist>-too-old-for-caller"
            class_id="torch-too-old-for-api" if dist == "torch" else f"{dist}-too-old-for-caller",
            title=f"{name}() has no {kw}= before {dist} {since}",
            cause=(
                f"the caller passes {kw}= to {name}(), which {dist} accepts from {since}; the "
                f"installed {dist}{' ' + have if have else ''} is older."
            ),
            fix=(
                (
                    f"pip install --upgrade 'torch>={since}'   # the build for your CUDA "
                    "(attn-doctor check names its index)",
                    f"or a release of the calling package written for torch {mm(have)}"
                    if have
                    else "or a release of the calling package written for this torch",
                )
                if dist == "torch"
                else (upgrade_fix(dist, since, api.backend),)
            ),
            evidence=(("keyword", kw), ("since", f"{dist} {since}")),
            source=api.source,
            line=line_of(f, re.escape(kw)),
        )
    return None


def _backend_function_undefined(f: TextFacts, know: Knowledge, name: str) -> ClassAnswer | None:
    """A backend function the code calls is undefined (a ``NameError``, or the ``assert … is
    not None`` a guarded import leaves): the import that should define it failed, so the
    backend is not installed or does not import; a name from before the backend renamed its
    API may also mean the installed release is too new for the code."""
    for api in know.backend_api:
        renamed = bool(api.renamed_from) and name.startswith(api.renamed_from)
        guarded = name in api.guarded
        if name not in api.names and not renamed and not guarded:
            continue
        dist = api_distribution(know, api)
        new = api.renamed_to + name[len(api.renamed_from) :] if renamed else ""
        if (have := f.version(dist)) and not renamed and not guarded:
            return ClassAnswer(
                class_id=f"{dist}-too-old-for-caller",
                title=f"{name} is undefined although {dist} {have} is installed",
                cause=(
                    f"{dist} {have} is installed, yet {name} is undefined: the caller imports it "
                    "only when the installed release passes its own version check (or the "
                    f"import failed), so it needs a newer {dist} than {have}."
                ),
                fix=(
                    f"pip install --upgrade {dist}   # the release the caller's requirements name",
                    f'python -c "from {api.module} import {name}"   # if it still fails: why',
                ),
                evidence=(("undefined", name), ("installed", f"{dist} {have}")),
                source=api.source,
                line=line_of(f, re.escape(name)),
            )
        return ClassAnswer(
            class_id="backend-not-installed",
            title=f"{name} is undefined: {dist} did not import",
            cause=(
                f"the code uses {name}, which its guarded import of {dist} should define; it is "
                f"undefined, so that import failed: {dist} is not installed, or it does not "
                "import here (built for another torch)"
                + (
                    f", or it is {api.renamed_in} or newer, where {name} is called {new}"
                    if renamed
                    else ""
                )
                + "."
            ),
            fix=(
                f'python -c "import {api.module.split(".")[0]}"   # shows why the import fails',
                f"attn-doctor install {api.backend}",
            ),
            checks=(f"package_missing:{dist}",),
            evidence=(("undefined", name), ("package", dist)),
            source=api.source,
            line=line_of(f, re.escape(name)),
        )
    return None


_ONLY_IN = re.compile(
    r"(?P<feature>[\w ]{3,40}?) (?:is|are) only supported (?:for|in|with|by) (?:the )?"
    r"(?P<backend>[\w .-]{2,40}?)(?: backend)?[.!\"')]*(?: \([^)\n]{1,40}\))?\s*$",
    re.M,
)
"""A framework's check that a feature exists in one attention backend only ("Attention sinks
are only supported for TRTLLM backend.", "Sinks are only supported in FlashAttention 3")."""


def feature_only_in_other_backend(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """The model uses an attention feature that only one backend implements, and another
    backend was chosen (by a setting, or by default on this GPU)."""
    m = _ONLY_IN.search(body_of(f))
    if m is None or not has_error(f) or not _ATTN_FEATURE_WORDS.search(m.group("feature")):
        return []
    feature, backend = m.group("feature").strip(), m.group("backend").strip()
    gpu = f" (this GPU is sm_{f.sms[0]})" if f.sms else ""
    return [
        ClassAnswer(
            class_id="backend-feature-unsupported",
            title=f"{feature}: only the {backend} backend has it",
            cause=(
                f"the model uses {feature.lower()}, which this framework implements only in its "
                f"{backend} backend, and another attention backend is in use: one chosen by a "
                f"setting, or the only one available on this GPU{gpu}."
            ),
            fix=(
                f"select the {backend} attention backend in the framework's settings",
                f"or, if this GPU cannot run {backend}, a framework release or image whose other "
                "backends implement it, or a GPU that runs it",
            ),
            evidence=(("feature", feature), ("only in", backend)),
            source="the message itself (the framework's check that only one backend has it)",
            line=line_of(f, re.escape(m.group(0)[:60])),
        )
    ]


_ATTN_FEATURE_WORDS = re.compile(
    r"sink|soft-?cap|alibi|sliding|window|mask|dropout|bias|causal|paged|kv|cache|head|mla"
    r"|attention|fp8|quant",
    re.I,
)
