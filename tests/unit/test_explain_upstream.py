"""Upstream projects' own wordings of the GPU, head-dim and dtype refusals and of harmless
messages (``wheels_index/upstream_messages.toml``) are read as facts, and the classes answer
from those facts: every wording in the data is fed back in its own words, hard-wrapped, and
beside near misses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from attn_doctor.datafiles import read_toml
from attn_doctor.errors import IndexDataError
from attn_doctor.explain.engine import explain_text
from attn_doctor.explain.evidence import extract_facts
from attn_doctor.explain.evidence_upstream import FILE, load_templates, read_upstream

_SAMPLE = {
    "gpu_cc": "(7, 5)",
    "min_cc": "(8, 0)",
    "max_cc": "(9, 0)",
    "only_cc": "80",
    "gpu_sm": "75",
    "head_dim": "320",
    "head_max": "256",
    "head_multiple": "8",
    "dtype": "torch.float32",
    "pkg": "flashinfer_python",
    "pkg_min": "2.6.3",
    "built": "2.3.1+cu121",
    "have": "2.4.0+cu121",
    "x": "something",
}
_ENTRIES = read_toml(FILE)["template"]


def _said(text: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: _SAMPLE[m.group(1)], text)


def _top(text: str) -> str | None:
    res = explain_text(text, None)
    return res.explanations[0].match.symptom_id if res.explanations else None


@pytest.mark.parametrize("entry", _ENTRIES, ids=lambda e: f"{e['project']}:{e['text'][:40]}")
def test_every_wording_is_read_back_from_its_own_text(entry: dict[str, object]) -> None:
    text = _said(str(entry["text"]))
    up = read_upstream(text)
    assert entry["project"] in up.projects
    if "harmless" in entry:
        assert up.harmless
        assert not up.refusal
    else:
        assert up.refusal
        # every refusal states at least one fact: a range, the GPU, a head-dim rule or dtypes
        assert (
            up.required
            or up.gpu_sms
            or up.needs
            or up.built_for
            or up.missing
            or up.head_rule
            or up.dtypes_allowed
            or up.dtypes_seen
            or (entry["text"] == "head_size not supported")
        )


def test_a_hard_wrapped_paste_still_matches() -> None:
    wrapped = (
        "RuntimeError: Flash attention requires q,k,v to have the same last dimension and to\n"
        "be less than or equal to 256. Got Query.size(-1): 512, Key.size(-1): 512,"
    )
    up = extract_facts(wrapped).upstream
    assert up.head_rule == "at most 256"
    assert up.head_dims == (512,)


def test_the_kernels_range_and_the_gpu_are_told_apart() -> None:
    f = extract_facts(
        "Flash attention only supports gpu architectures in the range [sm80, sm90]. Attempting "
        "to run on a sm 7.5 gpu."
    )
    assert f.required_sm == (80, 90)
    assert f.sms == (75,)  # 80 and 90 are the kernel's range, not this GPU
    assert (
        _top(
            "UserWarning: requires device with capability >= (8, 0) but your GPU has "
            "capability (7, 5) (too old)"
        )
        == "gpu-outside-backend-range"
    )


def test_gpus_a_refusal_names_as_examples_are_not_this_gpu() -> None:
    f = extract_facts("requires NVidia GPU with sm80 minimum compute capacity, e.g., A100/H100/L4")
    assert f.required_sm == (80, None)
    assert f.gpus == ()
    assert (
        _top(
            "ValueError: requires NVidia GPU with sm80 minimum compute capacity, e.g., A100/H100/L4"
        )
        == "gpu-outside-backend-range"
    )


def test_head_dims_and_dtypes_stated_by_upstream_are_answered() -> None:
    assert _top("RuntimeError: Embed dim 320 not supported") == "head-dim-unsupported"
    assert _top("ValueError: inputs must be float16 or bfloat16") == "dtype-unsupported"
    res = explain_text(
        "RuntimeError: Input dtype torch.float32 not supported. Supported: FP16, BF16, FP8 (E4M3).",
        None,
    )
    assert res.explanations[0].match.symptom_id == "dtype-unsupported"
    assert "fp32" in res.explanations[0].cause
    # bf16 refused before Ampere is the GPU's range, not the dtype
    assert _top("RuntimeError: Unsupported data type, pre SM 80 GPUs do not support bfloat16") == (
        "gpu-outside-backend-range"
    )


def test_harmless_wordings_only_without_an_error_of_their_own() -> None:
    assert _top("INFO 05-01 [cuda.py:288] Using XFormers backend.") == "harmless-warning"
    assert _top("Using pytorch attention") == "harmless-warning"
    # near misses: the same line in a log that fails, and the phrase inside another sentence
    failing = "Using pytorch attention\nRuntimeError: CUDA error: an illegal memory access"
    assert _top(failing) != "harmless-warning"
    assert read_upstream("We are using pytorch attention with a patch").harmless == ()


def test_xformers_operator_listings_are_left_to_their_own_classes() -> None:
    listing = (
        "NotImplementedError: No operator found for `memory_efficient_attention_forward`\n"
        "`fa3F@0.0.0` is not supported because:\n"
        "    requires device with capability > (9, 0) but your GPU has capability (8, 6) (too old)"
    )
    assert read_upstream(listing).refusal is False


def test_malformed_wordings_are_refused_naming_the_entry(tmp_path: Path) -> None:
    for bad, why in (
        ('text = "Unsupported {head} dim"', "unknown placeholder"),
        ('text = "{x} not ok {x}"', "too little literal text"),
    ):
        where = tmp_path / why.split()[0]
        where.mkdir()
        (where / FILE).write_text(f'schema = 1\n[[template]]\nproject = "p"\n{bad}\nsource = "s"\n')
        with pytest.raises(IndexDataError, match=rf"template #1\.text: {why}"):
            load_templates(where)
    load_templates.cache_clear()


def test_package_facts_stated_upstream_are_answered_by_their_classes() -> None:
    from attn_doctor.explain.evidence import TextFacts
    from attn_doctor.explain.evidence_upstream import UpstreamFacts
    from attn_doctor.explain.knowledge import load_knowledge
    from attn_doctor.explain.rules_upstream import (
        framework_package_missing,
        package_built_for_other_torch,
    )

    know = load_knowledge()
    built = TextFacts(
        upstream=UpstreamFacts(built_for=(("torchvision", "12", "13"),), refusal=True)
    )
    (a,) = package_built_for_other_torch(built, know)
    assert a.class_id == "extension-built-for-other-torch"
    assert "built for 12; this is 13" in a.cause
    xf = TextFacts(upstream=UpstreamFacts(built_for=(("xformers", "", ""),), refusal=True))
    assert [x.class_id for x in package_built_for_other_torch(xf, know)] == [
        "xformers-built-for-other-torch"
    ]
    missing = TextFacts(upstream=UpstreamFacts(missing=(("flashinfer-python", "vllm"),)))
    (b,) = framework_package_missing(missing, know)
    assert b.class_id == "backend-forced-package-missing"
    assert b.fix[0] == "attn-doctor install flashinfer"
    # near misses: nothing stated, nothing answered
    assert package_built_for_other_torch(TextFacts(), know) == []
    assert framework_package_missing(TextFacts(), know) == []


def test_a_floor_stated_upstream_joins_the_callers_facts() -> None:
    f = extract_facts(
        "ValueError: FlashInfer is required for the flashinfer Mamba SSU backend. Please install "
        "flashinfer (>= 0.6.4): pip install flashinfer-python"
    )
    assert ("flashinfer-python", "0.6.4") in f.caller.too_old
    assert (
        _top(
            "ImportError: flashinfer_python is installed with version 0.5.2, which is less than "
            "the minimum required version 0.6.1."
        )
        == "flashinfer-python-too-old-for-caller"
    )
