"""Tensors on the wrong device, as the kernel's own device check says it, answered from facts
(``RuntimeFacts.tensor_device``) and the backend records' vendors, with near misses."""

from __future__ import annotations

from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.evidence_runtime import RuntimeFacts, read_runtime
from attn_doctor.explain.knowledge import load_knowledge
from attn_doctor.explain.rules_device import backend_on_other_device

KNOW = load_knowledge()


def _facts(on: str | None, text: str, **kw: object) -> TextFacts:
    return TextFacts(
        lines=(text,),
        error_classes=("NotImplementedError",),
        runtime=RuntimeFacts(tensor_device=on),
        **kw,  # type: ignore[arg-type]
    )


def test_each_kernels_own_device_check_gives_the_device() -> None:
    for said, on in (
        ("AttentionOpDispatch(dtype=torch.float32, device=device(type='cpu'), k=40)", "cpu"),
        ("device=cpu (supported: {'cuda'})", "cpu"),
        ("device=mps (supported: {'cuda'})", "mps"),
        ("RuntimeError: q must be on CUDA", "cpu"),
        ("RuntimeError: qkv must be a CUDA tensor", "cpu"),
    ):
        assert read_runtime(said).tensor_device == on, said
    for other in ("device=cuda:0", "torch.device('cpu') was given", "must be on the same device"):
        assert read_runtime(other).tensor_device is None, other


def test_a_gpu_only_backend_given_cpu_tensors_is_answered_with_both_ways_out() -> None:
    f = _facts("cpu", "xformers memory_efficient_attention: No operator found")
    (a,) = backend_on_other_device(f, KNOW)
    assert a.class_id == "backend-needs-other-device"
    assert a.title.startswith("xformers got tensors on the CPU")
    assert "not moved to the GPU" in a.cause
    assert "torch.cuda.is_available()" in a.fix[0]


def test_a_cpu_only_torch_is_named_as_the_reason() -> None:
    f = _facts("cpu", "flash_attn: q must be on CUDA", torch_build="cpu")
    (a,) = backend_on_other_device(f, KNOW)
    assert "CPU-only build" in a.cause


def test_a_backend_that_runs_on_the_cpu_or_no_error_is_not_this_class() -> None:
    # torch SDPA runs on the CPU: not refused for the device
    assert backend_on_other_device(_facts("cpu", "scaled_dot_product_attention sdpa"), KNOW) == []
    # no device fact: nothing to say
    assert backend_on_other_device(_facts(None, "xformers No operator found"), KNOW) == []
    # no error in the text
    quiet = TextFacts(lines=("xformers device=cpu",), runtime=RuntimeFacts(tensor_device="cpu"))
    assert backend_on_other_device(quiet, KNOW) == []
