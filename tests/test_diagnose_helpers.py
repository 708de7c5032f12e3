"""Pure helpers of the planner: arch lists, CUDA labels, variant choice, attn_implementation."""

from __future__ import annotations

import dataclasses

import pytest

from attn_doctor.facts import DriverFacts, Environment, GpuFacts, HostFacts, PythonFacts
from attn_doctor.planner.attn_impl import check_attn_implementation
from attn_doctor.planner.compat import device_verdict
from attn_doctor.planner.machine import (
    arch_covers,
    choose_cuda_variant,
    cu_tag,
    driver_column,
    normalise_cuda,
)
from attn_doctor.rules_data import Rules, load_rules
from tests.conftest import SNAPSHOTS


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules()


@pytest.mark.parametrize(
    ("arch_list", "sm", "covered"),
    [
        (("sm_80", "sm_86", "sm_90"), 86, True),
        (("sm_80", "sm_90"), 89, True),  # sm_80 cubins run on 8.9
        (("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"), 120, False),
        (("sm_75", "sm_80", "sm_90", "compute_90"), 120, True),  # PTX JIT
        (("sm_90a",), 90, True),
        (("sm_90a",), 100, False),
        (("sm_100", "sm_120"), 120, True),
        (("sm_100",), 103, True),
        (("sm_120",), 100, False),
    ],
    ids=[
        "exact",
        "same-major-newer-minor",
        "blackwell-on-cu124",
        "ptx-jit",
        "arch-specific-exact",
        "arch-specific-elsewhere",
        "blackwell-cu128",
        "sm100-family",
        "newer-cubin-older-gpu",
    ],
)
def test_arch_covers(arch_list: tuple[str, ...], sm: int, covered: bool) -> None:
    assert arch_covers(arch_list, sm) is covered


@pytest.mark.parametrize(
    ("text", "cuda"),
    [
        ("12.8", "12.8"),
        ("12.8.93", "12.8"),
        ("cu128", "12.8"),
        ("1204", "12.4"),
        ("cu118", "11.8"),
        ("x", None),
    ],
    ids=["plain", "patch", "cu-tag", "xformers-int", "cu118", "garbage"],
)
def test_normalise_cuda(text: str, cuda: str | None) -> None:
    assert normalise_cuda(text) == cuda


def test_cu_tag() -> None:
    assert cu_tag("13.0") == "cu130"
    assert cu_tag("12.6") == "cu126"


def _env(
    driver: str | None, cuda: str | None, *, os: str = "linux", wsl: int | None = 0, sm: str = "8.9"
) -> Environment:
    return Environment(
        host=HostFacts(os=os, wsl=wsl),  # type: ignore[arg-type]
        python=PythonFacts(version="3.12.1", implementation="cpython"),
        driver=DriverFacts(version=driver, cuda_version=cuda),
        gpus=(GpuFacts(index=0, vendor="nvidia", name="GPU", compute_capability=sm),),
    )


@pytest.mark.parametrize(
    ("driver", "cuda", "torch_minor", "sm", "expected"),
    [
        ("575.64.03", "12.9", "2.8", "8.9", "12.9"),
        ("570.86.15", "12.8", "2.8", "8.9", "12.8"),
        ("560.35.05", "12.6", "2.8", "8.9", "12.6"),
        ("550.54.15", "12.4", "2.8", "8.9", None),  # below 12.6's own minimum
        ("580.95.05", "13.0", "2.9", "8.9", "13.0"),
        (None, "12.8", "2.9", "8.9", "12.8"),  # only the driver's max CUDA is known
        ("575.64.03", "12.9", "2.6", "12.0", None),  # Blackwell needs >= 12.8; 2.6 has none
    ],
    ids=["r575", "r570", "r560", "r550-none", "r580-cu130", "cuda-only", "blackwell-2.6"],
)
def test_choose_cuda_variant(
    rules: Rules, driver: str | None, cuda: str, torch_minor: str, sm: str, expected: str | None
) -> None:
    choice = choose_cuda_variant(rules, _env(driver, cuda, sm=sm), torch_minor)
    assert (choice.cuda if choice else None) == expected


def test_wsl_uses_the_windows_driver_column(rules: Rules) -> None:
    assert driver_column(_env("572.16", "12.8", wsl=2)) == "windows"
    assert driver_column(_env("572.16", "12.8", os="windows", wsl=None)) == "windows"
    assert driver_column(_env("570.86.15", "12.8")) == "linux"
    # 572.16 is a Windows driver number: below 12.8 Update 1's 572.61 but above 12.8 GA's 570.65
    choice = choose_cuda_variant(rules, _env("572.16", "12.8", wsl=2), "2.8")
    assert choice is not None
    assert choice.cuda == "12.8"


@pytest.mark.parametrize(
    ("backend", "cc", "compatible", "official"),
    [
        ("flash_attn_2", "7.5", "no", True),
        ("flash_attn_2", "8.0", "yes", True),
        ("flash_attn_2", "12.0", "yes", True),
        ("flash_attn_3", "9.0", "yes", True),
        ("flash_attn_3", "8.0", "yes", False),
        ("flash_attn_3", "10.0", "no", True),
        ("flash_attn_4", "10.0", "yes", True),
        ("flash_attn_4", "12.0", "yes", False),
        ("xformers", "7.0", "yes", True),
        ("sdpa_flash", "7.5", "no", True),
        ("sdpa_mem_efficient", "7.5", "yes", True),
        ("unsloth", "6.1", "no", True),
        ("flex_attention", "7.0", "no", True),
    ],
    ids=str,
)
def test_device_verdicts(
    rules: Rules, backend: str, cc: str, compatible: str, official: bool
) -> None:
    gpu = GpuFacts(index=0, vendor="nvidia", name="GPU", compute_capability=cc)
    verdict = device_verdict(rules.backend(backend), gpu)  # type: ignore[arg-type]
    assert (verdict.compatible, verdict.official) == (compatible, official)


def test_device_verdict_unknown_capability(rules: Rules) -> None:
    gpu = GpuFacts(index=0, vendor="nvidia", name="GPU")
    assert device_verdict(rules.backend("flash_attn_2"), gpu).compatible == "unknown"


@pytest.mark.parametrize(
    ("value", "version", "accepted"),
    [
        ("sdpa", "4.36.0", "yes"),
        ("sdpa", "4.35.2", "no"),
        ("flash_attention_3", "4.52.4", "no"),
        ("flash_attention_3", "4.53.0", "yes"),
        ("flash_attention_4", "5.3.0", "no"),
        ("flash_attention_4", "5.23.0", "yes"),
        ("flex_attention", "4.47.0", "yes"),
        ("kernels-community/flash-attn2", "4.54.0", "yes"),
        ("kernels-community/flash-attn2", "4.53.0", "no"),
        ("sdpa_paged", "4.54.0", "yes"),
        ("sdpa_paged", "5.0.0", "no"),
        ("paged|eager", "5.23.0", "yes"),
        ("xformers", "5.23.0", "no"),
        ("xformers", None, "no"),
        ("my_registered_fn", "5.23.0", "unknown"),
        ("sdpa", None, "unknown"),
    ],
    ids=str,
)
def test_check_attn_implementation(
    rules: Rules, value: str, version: str | None, accepted: str
) -> None:
    assert check_attn_implementation(value, version, rules).accepted == accepted


def test_attn_implementation_messages(rules: Rules) -> None:
    old = check_attn_implementation("flash_attention_3", "4.50.0", rules)
    assert old.fix == "python -m pip install -U 'transformers>=4.53.0'"
    named = check_attn_implementation("flash_attention_3", "4.50.0", rules, python="/v/bin/python")
    assert named.fix == "/v/bin/python -m pip install -U 'transformers>=4.53.0'"
    removed = check_attn_implementation("sdpa_paged", "5.1.0", rules)
    assert "removed in 5.0.0" in removed.reason
    assert 'use attn_implementation="sdpa"' in removed.reason
    xf = check_attn_implementation("xformers", "4.57.1", rules)
    assert "is not supported. The only possible arguments are" in xf.reason
    assert xf.fix is not None
    assert "sdpa" in xf.fix


def test_verdict_is_frozen(rules: Rules) -> None:
    gpu = GpuFacts(index=0, vendor="nvidia", name="GPU", compute_capability="8.0")
    verdict = device_verdict(rules.backend("eager"), gpu)
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.compatible = "no"  # type: ignore[misc]


def test_every_max_jobs_suggestion_is_the_same_number() -> None:
    """check's resolver, explain's fixes and install's build settings name one MAX_JOBS."""
    from attn_doctor.explain.checks import suggested_max_jobs
    from attn_doctor.index import load_index
    from attn_doctor.install.build import max_jobs_for
    from attn_doctor.resolve import plan_backend

    env = Environment.from_json((SNAPSHOTS / "h100-linux-recent-torch.json").read_text())
    host = env.host
    assert host.ram_available_bytes is not None
    resolved = plan_backend(env, load_index(), "flash_attn_2", allow_sources={"source-build"})
    from_resolver = dict(resolved.candidates[0].build_env)["MAX_JOBS"]
    from_install = max_jobs_for(host.cpu_count, host.ram_available_bytes)
    assert from_resolver == str(from_install) == str(suggested_max_jobs(env))
    # ... and the index's figure is the rules' figure (two files, one fact).
    index_figure = load_index().source_build.gib_per_nvcc_thread
    assert index_figure == load_rules().source_build.gb_per_nvcc_thread
