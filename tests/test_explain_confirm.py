"""Confirming a matched cause against a machine's facts, and filling in the fix."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from attn_doctor.explain import (
    confirm,
    evaluate_check,
    explain_text,
    load_symptoms,
    match_symptoms,
    render_fix,
)
from attn_doctor.explain.checks import built_for, suggested_max_jobs
from attn_doctor.explain.engine import Explanation
from attn_doctor.facts import (
    CudaToolkitFacts,
    DriverFacts,
    Environment,
    ImportResult,
    PackageFacts,
    TorchRuntimeFacts,
)
from tests.explain_envs import GIB, gpu, make_env, with_host, with_torch

DATA = Path(__file__).parent / "data" / "explain"


def _sample(name: str) -> str:
    return (DATA / f"{name}.txt").read_text(encoding="utf-8").partition("\n")[2]


def _explain_one(sample: str, env: Environment | None) -> Explanation:
    result = explain_text(_sample(sample), env)
    assert result.explanations
    return result.explanations[0]


@pytest.mark.parametrize(
    ("cc", "status"),
    [("7.5", "confirmed"), ("7.0", "confirmed"), ("8.0", "contradicted"), ("9.0", "contradicted"),
     ("12.0", "confirmed")],
    ids=["sm75-T4", "sm70-V100", "sm80-A100", "sm90-H100", "sm120-RTX5090"],
)
def test_ampere_message_confirmed_only_below_sm80(cc: str, status: str) -> None:
    """Below sm_80 the GPU is too old; on sm_100+ the flash-attn build is (it predates it)."""
    kb = load_symptoms()
    (match,) = match_symptoms(_sample("flash-attn-needs-ampere"), kb)
    result = confirm(match, make_env(gpus=(gpu(cc),)), kb=kb)
    assert result.status == status
    (check,) = result.checks
    assert check.check == "gpu_sm_below:80|gpu_sm_at_least:100"
    assert check.evidence[0].fact == "gpus[0].compute_capability"
    assert check.evidence[0].value == cc


def test_no_gpu_facts_leave_the_ampere_cause_unknown() -> None:
    kb = load_symptoms()
    (match,) = match_symptoms(_sample("flash-attn-needs-ampere"), kb)
    env = make_env(gpus=())
    assert confirm(match, env, kb=kb).status == "unknown"


def test_cxx11_abi_mismatch_read_from_the_wheel_label() -> None:
    fa = PackageFacts(name="flash-attn", version="2.7.4.post1+cu12torch2.4cxx11abiTRUE")
    env = with_torch(make_env(packages=(fa,)), version="2.4.0+cu121", cuda="12.1",
                     cxx11_abi=False)
    exp = _explain_one("flash-attn-cxx11-abi-mismatch", env)
    assert exp.confirmation.status == "confirmed"
    (check,) = exp.confirmation.checks
    assert "cxx11abi=TRUE" in check.reason
    assert {e.fact for e in check.evidence} >= {"packages.flash-attn.version", "torch.cxx11_abi"}


def test_cxx11_abi_unknown_when_the_package_does_not_record_it() -> None:
    exp = _explain_one("flash-attn-cxx11-abi-mismatch", make_env())
    # flash-attn 2.8.3 without a local label: neither the ABI nor the torch it was built for
    assert exp.confirmation.status == "unknown"


def test_fix_is_filled_with_this_machines_facts() -> None:
    env = make_env()
    exp = _explain_one("flash-attn-cxx11-abi-mismatch", env)
    install = exp.fix[1]
    assert install.unfilled == ()
    # The wheel comes from the index (the newest release with a torch 2.7 wheel), not from a
    # name template that could point at a release that never published one.
    assert install.command.endswith(
        "v2.8.3.post1/flash_attn-2.8.3.post1%2Bcu12torch2.7cxx11abiTRUE-cp311-cp311-linux_x86_64.whl'"
    )
    assert exp.fix_note is not None
    assert "<" not in exp.fix_note


def test_unknown_facts_stay_as_placeholders_and_are_listed() -> None:
    env = make_env(packages=(), torch=None)
    template = "pip install flash-attn==<flash_attn_version> torch==<torch_version>"
    rendered = render_fix(template, env)
    assert rendered.command == template
    assert rendered.unfilled == ("flash_attn_version", "torch_version")


def test_message_captures_fill_fixes() -> None:
    exp = _explain_one("nvcc-gcc-too-new", make_env())
    assert exp.fix[0].command == "sudo apt-get install gcc-12 g++-12"


def test_xformers_built_for_cuda_torch_but_cpu_torch_installed() -> None:
    xf = PackageFacts(name="xformers", version="0.0.23",
                      build_info=(("torch", "2.1.0+cu121"), ("cuda", "1201")))
    cpu = with_torch(make_env(packages=(xf,)), version="2.1.0+cpu", build="cpu", cuda=None)
    exp = _explain_one("xformers-with-cpu-torch", cpu)
    assert exp.confirmation.status == "confirmed"
    cuda = with_torch(make_env(packages=(xf,)), version="2.1.0+cu121", cuda="12.1")
    exp = _explain_one("xformers-with-cpu-torch", cuda)
    assert exp.confirmation.status == "contradicted"


def test_xformers_built_for_other_torch_release() -> None:
    xf = PackageFacts(name="xformers", version="0.0.23.post1",
                      build_info=(("torch", "2.1.2+cu121"),))
    env = with_torch(make_env(packages=(xf,)), version="2.0.1+cu118", cuda="11.8")
    exp = _explain_one("xformers-built-for-other-torch", env)
    assert exp.confirmation.status == "confirmed"
    env = with_torch(make_env(packages=(xf,)), version="2.1.2+cu121", cuda="12.1")
    exp = _explain_one("xformers-built-for-other-torch", env)
    assert exp.confirmation.status == "contradicted"


def test_glibc_check_uses_the_version_the_message_asked_for() -> None:
    old = with_host(make_env(), libc_version="2.31")
    assert _explain_one("flash-attn-glibc-too-old", old).confirmation.status == "confirmed"
    new = with_host(make_env(), libc_version="2.35")
    exp = _explain_one("flash-attn-glibc-too-old", new)
    assert exp.confirmation.status == "contradicted"
    assert exp.confirmation.checks[0].check == "glibc_below:2.32"


def test_driver_too_old_for_torch_cuda() -> None:
    env = make_env(driver=DriverFacts(version="470.86", cuda_version="11.4", source="nvml"))
    env = with_torch(env, version="2.1.0+cu121", cuda="12.1")
    exp = _explain_one("torch-driver-too-old", env)
    assert exp.confirmation.status == "confirmed"
    assert _explain_one("torch-driver-too-old", make_env()).confirmation.status == "contradicted"


def test_build_oom_confirmed_on_a_many_core_small_ram_box() -> None:
    env = with_host(make_env(), cpu_count=32, ram_available_bytes=32 * GIB)
    exp = _explain_one("flash-attn-build-oom--cc1plus", env)
    assert exp.confirmation.status == "confirmed"
    assert exp.fix[0].command.startswith("MAX_JOBS=3 NVCC_THREADS=2 ")
    roomy = with_host(make_env(), cpu_count=8, ram_available_bytes=512 * GIB)
    exp = _explain_one("flash-attn-build-oom--cc1plus", roomy)
    assert exp.confirmation.status == "contradicted"


def test_suggested_max_jobs_is_at_least_one_and_at_most_the_cpus() -> None:
    assert suggested_max_jobs(with_host(make_env(), ram_available_bytes=2 * GIB)) == 1
    # flash-attn's rule: never more than half the cores (make_env has 16 CPUs)
    assert suggested_max_jobs(with_host(make_env(), ram_available_bytes=1024 * GIB)) == 8
    assert suggested_max_jobs(with_host(make_env(), ram_available_bytes=None)) is None


def test_nvcc_missing_confirmed_and_cuda_toolkit_install_filled() -> None:
    env = make_env(cuda_toolkit=CudaToolkitFacts())
    exp = _explain_one("flash-attn-nvcc-not-found", env)
    assert exp.confirmation.status == "confirmed"
    assert exp.fix[1].command == "conda install -c nvidia cuda-nvcc=12.6"
    exp = _explain_one("flash-attn-nvcc-not-found", make_env())
    assert exp.confirmation.status == "contradicted"


def test_torch_gpu_too_new_for_torch_cuda() -> None:
    blackwell = make_env(gpus=(gpu("12.0", "NVIDIA GeForce RTX 5090"),))
    exp = _explain_one("torch-gpu-not-supported", blackwell)  # torch is cu126 in make_env
    assert exp.confirmation.status == "confirmed"
    ok = with_torch(blackwell, version="2.8.0+cu128", cuda="12.8")
    # torch's CUDA is new enough; whether it carries sm_120 kernels is known only with --deep
    assert _explain_one("torch-gpu-not-supported", ok).confirmation.status == "unknown"
    rt = TorchRuntimeFacts(arch_list=("sm_80", "sm_90", "sm_100", "sm_120"))
    deep = dataclasses.replace(ok, torch_runtime=rt)
    assert _explain_one("torch-gpu-not-supported", deep).confirmation.status == "contradicted"


def test_arch_list_check_reads_deep_facts() -> None:
    rt = TorchRuntimeFacts(cuda_available=True, arch_list=("sm_50", "sm_80", "sm_86", "sm_90"))
    env = make_env(gpus=(gpu("12.0"),), torch_runtime=rt)
    res = evaluate_check("torch_arch_list_lacks_gpu", env)
    assert res.status == "confirmed"
    # sm_86 cubins run on sm_89 (same major, higher minor)
    assert evaluate_check("torch_arch_list_lacks_gpu", make_env(torch_runtime=rt)).status == (
        "contradicted"
    )
    assert evaluate_check("torch_arch_list_lacks_gpu", make_env()).status == "unknown"


def test_either_check_confirms_when_one_alternative_holds() -> None:
    env = make_env(gpus=(), driver=DriverFacts())
    res = evaluate_check("torch_cpu_only|no_nvidia_gpu", env)
    assert res.status == "confirmed"
    res = evaluate_check("torch_cpu_only|no_nvidia_gpu", make_env())
    assert res.status == "contradicted"


def test_import_checks_use_deep_import_results() -> None:
    crashed = ImportResult(module="flash_attn", status="crashed", detail="SIGSEGV")
    env = make_env(imports=(crashed,), deep=True)
    assert evaluate_check("import_crashed:flash_attn", env).status == "confirmed"
    assert evaluate_check("import_failed:flash_attn", env).status == "confirmed"
    assert evaluate_check("import_crashed:flash_attn", make_env()).status == "unknown"


def test_built_for_reads_label_build_info_and_pins() -> None:
    fa = PackageFacts(name="flash-attn", version="2.7.4.post1+cu12torch2.6cxx11abiFALSE")
    assert built_for(fa) == {
        "torch": ("2.6", "packages.flash-attn.version"),
        "cuda": ("12", "packages.flash-attn.version"),
        "cxx11_abi": ("FALSE", "packages.flash-attn.version"),
    }
    tv = PackageFacts(name="torchvision", version="0.22.1", requires=("torch==2.7.1",))
    assert built_for(tv)["torch"] == ("2.7.1", "packages.torchvision.requires")


def test_libcudart_major_mismatch() -> None:
    fa = PackageFacts(name="flash-attn", version="2.5.8+cu118torch2.1cxx11abiFALSE")
    exp = _explain_one("flash-attn-libcudart-missing", make_env(packages=(fa,)))
    assert exp.confirmation.status == "confirmed"


def test_explain_without_facts_still_names_the_cause() -> None:
    result = explain_text(_sample("flash-attn-needs-ampere"), None, facts_reason="probe failed")
    assert result.matched
    assert not result.facts_available
    (exp,) = result.explanations
    assert exp.confirmation.status == "unknown"
    assert exp.confirmation.summary == "could not confirm: facts unavailable (probe failed)"
    assert exp.threads


def test_unknown_text_reports_the_key_facts() -> None:
    result = explain_text("Something odd happened in my training loop", make_env())
    assert not result.matched
    facts = {e.fact: e.value for e in result.key_facts}
    assert facts["torch.version"] == "2.7.1+cu126"
    assert facts["torch.cuda"] == "12.6"
    assert facts["driver.version"] == "570.86.15 (CUDA 12.8)"
    assert facts["gpus[0]"] == "NVIDIA GeForce RTX 4090, compute capability 8.9"
    assert facts["packages.flash-attn"] == "2.8.3"
    assert facts["packages.xformers"] == "not installed"


def test_confirmed_causes_rank_before_contradicted_ones() -> None:
    # xformers with a CPU torch is contradicted here (torch is a CUDA build); the Ampere
    # message is confirmed on a T4 and comes first although it is later in the log.
    text = _sample("xformers-with-cpu-torch") + "\n" + _sample("flash-attn-needs-ampere")
    env = make_env(gpus=(gpu("7.5", "Tesla T4"),))
    result = explain_text(text, env)
    statuses = [e.confirmation.status for e in result.explanations]
    assert statuses == ["confirmed", "contradicted"]
    assert result.explanations[0].match.symptom_id == "flash-attn-needs-ampere"
    env = make_env(gpus=(gpu("9.0", "H100"),))
    result = explain_text(text, env)
    assert [e.confirmation.status for e in result.explanations] == ["contradicted"] * 2


def test_failed_deep_imports_are_explained_for_check() -> None:
    from attn_doctor.explain import explain_imports

    tail = (DATA / "flash-attn-built-for-other-torch--setdevice.txt").read_text().partition("\n")[2]
    imports = (
        ImportResult(module="torch", status="ok"),
        ImportResult(module="flash_attn", status="error", detail=tail.strip().splitlines()[-1],
                     traceback_tail=tail),
        ImportResult(module="xformers.ops", status="crashed", detail="SIGSEGV"),
    )
    fa = PackageFacts(name="flash-attn", version="2.8.3+cu12torch2.8cxx11abiTRUE")
    env = make_env(imports=imports, deep=True, packages=(fa,))
    results = dict(explain_imports(env))
    assert set(results) == {"flash_attn", "xformers.ops"}
    (fa_exp,) = results["flash_attn"].explanations
    assert fa_exp.match.symptom_id == "flash-attn-built-for-other-torch"
    assert fa_exp.confirmation.status == "confirmed"  # built for torch 2.8, 2.7.1 installed
    (xf_exp,) = results["xformers.ops"].explanations
    assert xf_exp.match.symptom_id == "attention-extension-segfault"


# --- the newer classes are confirmed (or not) by this machine's facts ------------------------


@pytest.mark.parametrize(
    ("release", "status"), [("11.5", "confirmed"), ("12.6", "contradicted")],
    ids=["nvcc-11.5", "nvcc-12.6"],
)
def test_old_nvcc_for_a_flash_attn_build_is_checked_against_the_message(
    release: str, status: str
) -> None:
    env = make_env(cuda_toolkit=CudaToolkitFacts(
        nvcc_path="/usr/local/cuda/bin/nvcc", nvcc_version=f"{release}.0", release=release,
        cuda_home="/usr/local/cuda"))
    exp = _explain_one("flash-attn-build-nvcc-too-old", env)
    assert exp.match.symptom_id == "flash-attn-build-nvcc-too-old"
    assert exp.match.captured()["min_cuda"] == "11.6"
    assert exp.confirmation.status == status
    assert exp.confirmation.checks[0].check == "nvcc_below:11.6|nvcc_missing"


def test_old_nvcc_check_without_nvcc_is_the_missing_alternative() -> None:
    env = make_env(cuda_toolkit=CudaToolkitFacts())
    exp = _explain_one("flash-attn-build-nvcc-too-old", env)
    assert exp.confirmation.status == "confirmed"
    assert "nvcc was not found" in exp.confirmation.summary


@pytest.mark.parametrize(
    ("os_name", "status"), [("windows", "confirmed"), ("linux", "contradicted")]
)
def test_torch_without_flash_sdpa_is_a_windows_build_warning(os_name: str, status: str) -> None:
    env = with_host(make_env(), os=os_name)
    exp = _explain_one("torch-sdpa-no-flash-windows--storydiffusion", env)
    assert exp.match.symptom_id == "torch-sdpa-no-flash-windows"
    assert exp.confirmation.status == status


@pytest.mark.parametrize(
    ("cc", "status"), [("12.0", "confirmed"), ("9.0", "contradicted")], ids=["sm120", "sm90"]
)
def test_xformers_bundled_fa3_kernels_fail_only_on_blackwell(cc: str, status: str) -> None:
    env = make_env(gpus=(gpu(cc, "NVIDIA GeForce RTX 5090"),),
                   packages=(PackageFacts(name="xformers", version="0.0.30"),))
    result = explain_text(_sample("xformers-fa3-kernels-blackwell"), env)
    assert [e.match.symptom_id for e in result.explanations] == ["xformers-fa3-kernels-blackwell"]
    assert result.explanations[0].confirmation.status == status


@pytest.mark.parametrize(
    ("cc", "status"), [("7.5", "confirmed"), ("8.9", "contradicted")], ids=["T4", "RTX4090"]
)
def test_a_models_own_flash_warning_is_confirmed_on_pre_ampere(cc: str, status: str) -> None:
    exp = _explain_one("model-flash-attention-not-used--phi3-turing", make_env(gpus=(gpu(cc),)))
    assert exp.match.symptom_id == "model-flash-attention-not-used"
    assert exp.confirmation.status == status


@pytest.mark.parametrize(("torch_version", "status"), [("1.13.1", "confirmed"),
                                                       ("2.1.2", "contradicted")])
def test_missing_sdpa_means_torch_before_2_0(torch_version: str, status: str) -> None:
    env = with_torch(make_env(), version=torch_version)
    exp = _explain_one("torch-too-old-for-sdpa--cambrian", env)
    assert exp.confirmation.status == status


def test_transformers_flash_version_check_compares_with_the_installed_flash_attn() -> None:
    old = make_env(packages=(PackageFacts(name="flash-attn", version="2.0.4"),))
    new = make_env(packages=(PackageFacts(name="flash-attn", version="2.5.8"),))
    assert _explain_one("transformers-fa2-too-old", old).confirmation.status == "confirmed"
    assert _explain_one("transformers-fa2-too-old", new).confirmation.status == "contradicted"


@pytest.mark.parametrize(
    ("sample", "release", "status"),
    [("nvcc-unsupported-gpu-arch", "12.6", "confirmed"),  # compute_120 needs 12.8
     ("nvcc-unsupported-gpu-arch", "12.8", "contradicted"),
     ("nvcc-unsupported-gpu-arch--86", "10.2", "confirmed"),
     ("nvcc-unsupported-gpu-arch--90a", "12.4", "contradicted")],
)
def test_nvcc_is_compared_with_the_architecture_the_build_asked_for(
    sample: str, release: str, status: str
) -> None:
    env = make_env(cuda_toolkit=CudaToolkitFacts(
        nvcc_path="/usr/local/cuda/bin/nvcc", nvcc_version=f"{release}.1", release=release,
        cuda_home="/usr/local/cuda"))
    exp = _explain_one(sample, env)
    assert exp.match.symptom_id == "nvcc-unsupported-gpu-arch"
    assert exp.confirmation.status == status
    (check,) = exp.confirmation.checks
    assert check.evidence[0].value == release


def test_an_architecture_without_a_known_minimum_is_unknown_not_guessed() -> None:
    result = evaluate_check("nvcc_too_old_for_arch:{arch}", make_env(), {"arch": "30"})
    assert result.status == "unknown"
    assert "no known minimum CUDA for architecture 30" in result.reason


def test_each_deep_import_explanation_cites_only_its_own_package() -> None:
    # xformers crashed and flash_attn hung after printing a segfault from a worker: the
    # segfault explanation of flash_attn must not be "confirmed" by xformers' crash, and
    # neither explanation may cite the other package's import.
    from attn_doctor.explain import explain_imports

    imports = (
        ImportResult(module="torch", status="ok"),
        ImportResult(module="xformers", status="crashed", detail="SIGSEGV"),
        ImportResult(module="flash_attn", status="timeout", detail="no answer after 60 s",
                     traceback_tail="flash_attn_2_cuda worker: Segmentation fault"),
    )
    results = dict(explain_imports(make_env(imports=imports, deep=True)))
    assert set(results) == {"xformers", "flash_attn"}
    for module, result in results.items():
        assert result.explanations, module
        for exp in result.explanations:
            cited = {ev.fact.split(":", 1)[1] for c in exp.confirmation.checks
                     for ev in c.evidence if ev.fact.startswith("import:")}
            assert cited, (module, exp.match.symptom_id)
            assert {m.split(".")[0] for m in cited} == {module}, (module, cited)
    (xf,) = results["xformers"].explanations
    assert xf.confirmation.status == "confirmed"
    (fa,) = results["flash_attn"].explanations
    assert fa.match.symptom_id == "attention-extension-segfault"
    assert fa.confirmation.status == "contradicted"  # flash_attn hung; it did not crash


@pytest.mark.parametrize(
    ("sm", "name", "status"),
    [("7.5", "Tesla T4", "confirmed"), ("9.0", "H100", "contradicted")],
    ids=["turing", "hopper"],
)
def test_sageattention_unsupported_arch_is_checked_against_the_gpu(
    sm: str, name: str, status: str
) -> None:
    result = explain_text(_sample("sageattention-gpu-unsupported"),
                          make_env(gpus=(gpu(sm, name),)))
    (exp,) = result.explanations
    assert exp.match.symptom_id == "sageattention-gpu-unsupported"
    assert exp.match.captured()["arch"] == "sm75"
    assert exp.confirmation.status == status


@pytest.mark.parametrize("installed", [False, True], ids=["missing", "installed"])
def test_sageattention_not_installed_is_checked_and_fixed_with_the_install(
    installed: bool
) -> None:
    pkgs = (PackageFacts(name="sageattention", version="2.2.0"),) if installed else ()
    result = explain_text(_sample("sageattention-not-installed--kjnodes"),
                          make_env(packages=pkgs))
    (exp,) = result.explanations
    assert exp.match.symptom_id == "sageattention-not-installed"
    assert exp.confirmation.status == ("contradicted" if installed else "confirmed")
    assert [f.command for f in exp.fix] == ["attn-doctor install sageattention"]


def test_vllm_fallback_is_confirmed_when_the_package_vllm_imports_is_missing() -> None:
    # vLLM 0.5 imports vllm_flash_attn: an installed flash-attn does not help it.
    text = _sample("vllm-flash-attn-backend-unavailable--vllm-flash-attn")
    fa = PackageFacts(name="flash-attn", version="2.6.1")
    (exp,) = explain_text(text, make_env(packages=(fa,))).explanations
    assert exp.match.symptom_id == "vllm-flash-attn-backend-unavailable"
    assert exp.match.captured()["module"] == "vllm_flash_attn"
    assert exp.confirmation.status == "confirmed"
    both = (fa, PackageFacts(name="vllm-flash-attn", version="2.6.1"))
    (exp,) = explain_text(text, make_env(packages=both)).explanations
    assert exp.confirmation.status == "contradicted"
