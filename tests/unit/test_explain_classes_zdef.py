"""Classes and facts added for batches ZD-ZF's misses, each from one extracted fact or
hand-built text in other words than the batches', with a near miss."""

from __future__ import annotations

from attn_doctor.explain import explain_text
from attn_doctor.explain.evidence import extract_facts, normalise
from attn_doctor.explain.evidence_build import read_build
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_api import model_refuses_backend, te_no_backend_for_inputs
from attn_doctor.explain.rules_backend import backend_not_installed
from attn_doctor.explain.rules_calls import caller_written_for_other_api
from attn_doctor.explain.rules_dtype import dtype_unsupported

KNOW = load_knowledge()


def _top(text: str) -> str | None:
    result = explain_text(text, None)
    return result.explanations[0].match.symptom_id if result.explanations else None


def test_a_model_asking_to_install_a_backend_is_the_backend_not_installed() -> None:
    for said, module in (
        ("RuntimeError: import xformers failed, please install xformers first", "xformers"),
        ("AssertionError: Make sure SageAttention is installed", "sageattention"),
        ("ValueError: flash attention 2 is not installed", "flash_attn"),
        ("AssertionError: FlashAttention is not installed", "flash_attn"),
    ):
        f = extract_facts(said)
        assert module in f.missing_modules, said
        (a,) = backend_not_installed(f, KNOW)
        assert a.class_id == "backend-not-installed"
    # a notice at INFO/WARNING level, or another package: not this class
    assert (
        backend_not_installed(extract_facts("WARNING: please install xformers first"), KNOW) == []
    )
    assert backend_not_installed(extract_facts("Error: please install numpy first"), KNOW) == []


def test_an_asserted_half_precision_check_is_the_dtype() -> None:
    text = (
        '  File "/srv/model/attn.py", line 40, in forward\n'
        "    assert q.dtype in (torch.bfloat16, torch.float16)\n"
        "AssertionError"
    )
    (a,) = dtype_unsupported(extract_facts(text), KNOW)
    assert a.class_id == "dtype-unsupported"
    assert "float32" in a.cause
    # a dtype assertion that is not about half precision, or an assert that did not fail
    other = text.replace("(torch.bfloat16, torch.float16)", "(torch.int32, torch.int64)")
    assert dtype_unsupported(extract_facts(other), KNOW) == []
    assert dtype_unsupported(extract_facts(text.replace("AssertionError", "")), KNOW) == []


def test_a_model_refusing_the_forced_backend() -> None:
    f = extract_facts(
        "export VLLM_ATTENTION_BACKEND=FLASHINFER\n"
        "RuntimeError: Molmo does not support _Backend.FLASHINFER backend now."
    )
    (a,) = model_refuses_backend(f, KNOW)
    assert a.class_id == "backend-feature-unsupported"
    assert "VLLM_ATTENTION_BACKEND" in a.cause
    assert a.fix[0].startswith("unset VLLM_ATTENTION_BACKEND")
    unforced = extract_facts(
        "RuntimeError: Qwen3-VL does not support AttentionBackendEnum.XFORMERS backend"
    )
    (b,) = model_refuses_backend(unforced, KNOW)
    assert "XFORMERS" in b.title
    assert b.fix[0].startswith("# drop")
    # a feature refused in words is another class's
    assert model_refuses_backend(extract_facts("this GPU does not support bf16"), KNOW) == []


def test_transformer_engine_without_a_backend_for_the_inputs() -> None:
    text = (
        "ValueError: No dot product attention backend is available for the provided inputs. "
        "Please run with NVTE_DEBUG=1 NVTE_DEBUG_LEVEL=2 to find out the reasons\n"
        "[DEBUG | DotProductAttention]: Disabling FlashAttention as it does not support MLA.\n"
        "Running with config={'head_dim_qk': 192, 'head_dim_v': 128}"
    )
    (a,) = te_no_backend_for_inputs(extract_facts(text), KNOW)
    assert a.class_id == "backend-feature-unsupported"
    assert "qk 192, v 128" in a.cause
    assert "does not support MLA" in a.cause
    assert "NVTE_DEBUG=1" in a.fix[0]
    # the same backend picked and running: nothing to answer
    assert (
        te_no_backend_for_inputs(extract_facts("Running with FusedAttention backend"), KNOW) == []
    )


def test_msvc_missing_header_in_any_language() -> None:
    for line in (
        "main.c(12): fatal error C1083: Cannot open include file: 'Python.h': No such file",
        "main.c(12): fatal error C1083: Impossible d'ouvrir le fichier include : 'Python.h'",
        "main.c(12): fatal error C1083: 无法打开包括文件: “Python.h”: No such file or directory",
    ):
        assert read_build(line).missing_headers == (("Python.h", "msvc"),), line
    assert read_build("fatal error C1083: nothing quoted here").missing_headers == ()


def test_a_class_flash_attn_defines_under_a_guarded_import() -> None:
    f = extract_facts("NameError: name 'FlashCrossAttention' is not defined")
    (a,) = caller_written_for_other_api(f, KNOW)
    assert a.class_id == "backend-not-installed"
    # a name flash-attn never defined is the caller's
    other = extract_facts("NameError: name 'FlashSparseAttention' is not defined")
    assert all(
        x.class_id != "backend-not-installed" for x in caller_written_for_other_api(other, KNOW)
    )


def test_a_frame_header_cut_before_its_line_number_is_still_a_header() -> None:
    lines = normalise(
        '  File "C:\\app\\nodes.py", line\n    assert FLASH_ATTN_2_AVAILABLE\nAssertionError'
    )
    assert lines[1].strip() == "assert FLASH_ATTN_2_AVAILABLE"


def test_knowledge_answers_in_other_words() -> None:
    # an undefined torch symbol with no library named: the general class's own id
    assert _top("undefined symbol: _ZN3c1017SymbolicShapeMeta18init_is_contiguousEv") == (
        "extension-built-for-other-torch"
    )
    # flash_attn_2_cuda with its symbol cut off, in parentheses
    assert _top(
        "(ImportError: flash_attn_2_cuda.cpython-311-x86_64-linux-gnu.so: undefined symbol)"
    ) == ("flash-attn-built-for-other-torch")
    # pip's resolver naming torch's Triton pin
    assert (
        _top("torch 2.8.0 requires triton==3.4.0, but you have triton 3.3.1 which is incompatible.")
        == "triton-version-mismatch"
    )
    # another package's pin is not Triton's mismatch
    assert _top(
        "vllm 0.9.2 requires xgrammar==0.1.19, but you have xgrammar 0.1.21 which is incompatible."
    ) != ("triton-version-mismatch")
    # flash-attn's optional fused kernels, built on their own
    assert (
        _top("ModuleNotFoundError: No module named 'rotary_emb'") == "flash-attn-extension-missing"
    )
    # xformers without any compiled library, and Stable Diffusion's notice without xformers
    assert _top("Need to compile C++ extensions to use all xFormers features.") == (
        "xformers-operator-not-built"
    )
    assert _top("No module 'xformers'. Proceeding without it.") == "harmless-warning"
    assert _top("UserWarning: xFormers is disabled (Block)") == "harmless-warning"
    # a wheel named in words, glibc said in words
    assert _top(
        "ERROR: flash_attn cp312 linux_x86_64 is not a supported wheel on this platform."
    ) == ("wheel-not-supported-on-platform")
    assert (
        _top("the prebuilt binary needs GLIBC_2.34 and this host has 2.31")
        == "flash-attn-glibc-too-old"
    )
