"""The diagnosis on recorded machine snapshots: expected findings and top recommendation."""

from __future__ import annotations

import dataclasses
import json

import pytest

from attn_doctor.backends import BACKEND_NAMES
from attn_doctor.diagnose import diagnose
from attn_doctor.diagnosis import Diagnosis, Finding
from attn_doctor.facts import (
    DriverFacts,
    Environment,
    GpuFacts,
    HostFacts,
    PackageFacts,
    PythonFacts,
    TorchFacts,
)
from attn_doctor.rules_data import Rules, load_rules
from tests.conftest import REPO_ROOT, SNAPSHOTS

PY = "/home/user/venv/bin/python"
"""The interpreter the recorded snapshots name: every fix is for that environment."""
PYTORCH = "https://download.pytorch.org/whl"


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules()


def load(name: str) -> Environment:
    return Environment.from_json((SNAPSHOTS / f"{name}.json").read_text())


def ids_of(diag: Diagnosis) -> dict[str, str]:
    """Finding id -> severity (the highest one when an id repeats)."""
    out: dict[str, str] = {}
    for f in diag.findings:
        out.setdefault(f.id, f.severity)
    return out


def finding(diag: Diagnosis, rule_id: str) -> Finding:
    return next(f for f in diag.findings if f.id == rule_id)


# name: (expected findings {id: severity} -- exactly these, the one decision"s top backend,
# whether it works now). h200-real was recorded on a real H200 (docs/recorded/).
EXPECTED: dict[str, tuple[dict[str, str], str, bool]] = {
    "a100-linux": ({}, "flash_attn_2", True),
    "apple-silicon-mps": ({"apple-mps": "info"}, "sdpa", True),
    "b200-linux": ({}, "flash_attn_4", False),
    "broken-flash-attn-undefined-symbol": (
        {"flash-attn-abi-mismatch": "error", "flash-attn-built-for-other-torch": "error"},
        "sdpa",
        True,
    ),
    "broken-xformers-other-torch": (
        {
            "xformers-built-for-other-torch": "error",
            "package-pins-other-torch": "error",
            "xformers-not-an-attn-implementation": "info",
        },
        "sdpa",
        True,
    ),
    "cpu-only-laptop": ({"no-gpu": "info"}, "sdpa", True),
    "cpu-torch-on-gpu-box": ({"cpu-torch-on-nvidia-gpu": "error"}, "sdpa", False),
    "driver-minor-compat": ({"driver-below-cuda-release-minimum": "warning"}, "sdpa", True),
    "driver-too-old": (
        {"driver-too-old-for-torch": "error", "nvcc-torch-cuda-major-mismatch": "warning"},
        "sdpa",
        False,
    ),
    "h100-fa3-old-transformers": (
        {
            "package-pins-other-torch": "error",
            "nvcc-torch-cuda-major-mismatch": "warning",
            "python-no-prebuilt-flash-attn": "warning",
            "low-ram-for-source-build": "warning",
            "transformers-too-old-for-backend": "warning",
        },
        "flash_attn_3",
        True,
    ),
    "h100-linux-recent-torch": ({}, "flash_attn_3", False),
    "h200-real": ({}, "sdpa", True),
    "mi300-rocm": ({}, "sdpa", True),
    "no-torch-gpu": ({"no-torch": "error", "low-ram-for-source-build": "warning"}, "sdpa", False),
    "rtx3090-wsl2": (
        {"wsl-driver-is-windows-host": "info", "low-ram-for-source-build": "warning"},
        "sdpa",
        True,
    ),
    "rtx4090-windows": (
        {"windows-no-flash-attn-wheels": "info", "xformers-not-an-attn-implementation": "info"},
        "xformers",
        True,
    ),
    "rtx5090-linux": ({}, "sdpa", True),
    # torch 2.5.1 has no fused SDPA kernel on sm120 (sdpa_dispatch.toml: caps sm90 until 2.7),
    # so SDPA here is math and flash-attn 2 leads the blocked list
    "rtx5090-old-torch": ({"torch-lacks-gpu-arch": "error"}, "flash_attn_2", False),
    "t4-colab": (
        {
            "driver-below-cuda-release-minimum": "warning",
            "gpu-unsupported-by-backend": "warning",
            "gpu-pre-ampere": "info",
        },
        "sdpa",
        True,
    ),
    "v100-linux": (
        {"gpu-pre-ampere": "info", "xformers-not-an-attn-implementation": "info"},
        "xformers",
        True,
    ),
}


def test_every_snapshot_has_an_expectation() -> None:
    on_disk = sorted(p.stem for p in SNAPSHOTS.glob("*.json"))
    assert on_disk == sorted(EXPECTED)
    assert len(on_disk) >= 12


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=sorted(EXPECTED))
def test_snapshot_diagnosis(rules: Rules, name: str) -> None:
    expected_findings, top_backend, top_usable = EXPECTED[name]
    diag = diagnose(load(name), rules)
    assert ids_of(diag) == expected_findings
    top = diag.recommendations[0]
    assert (top.rank, top.backend, top.usable_now) == (1, top_backend, top_usable)


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=sorted(EXPECTED))
def test_snapshot_invariants(rules: Rules, name: str) -> None:
    env = load(name)
    diag = diagnose(env, rules)
    assert diagnose(env, rules) == diag, "deterministic"
    assert [s.backend for s in diag.backends] == list(BACKEND_NAMES)
    for f in diag.findings:
        assert f.sources, f.id
        assert f.evidence, f.id
        assert f.cause.strip()
    severities = [f.severity for f in diag.findings]
    order = {"error": 0, "warning": 1, "info": 2}
    assert severities == sorted(severities, key=order.__getitem__)
    for status in diag.backends:
        assert status.reason
        if status.usable:
            assert (status.installed, status.compatible) == ("yes", "yes")
    # ranks start at 1 per device and usable ones come first within a device
    by_gpu: dict[int | None, list[bool]] = {}
    for rec in diag.recommendations:
        by_gpu.setdefault(rec.gpu_index, []).append(rec.usable_now)
        assert rec.rank == len(by_gpu[rec.gpu_index])
    assert diag.has_errors == any(v == "error" for v in EXPECTED[name][0].values())


def test_cpu_torch_fix_keeps_the_torch_version(rules: Rules) -> None:
    diag = diagnose(load("cpu-torch-on-gpu-box"), rules)
    f = finding(diag, "cpu-torch-on-nvidia-gpu")
    # driver 570.133.20 reports CUDA 12.8: the cu128 build of the same torch
    assert f.fix == f"{PY} -m pip install torch==2.8.0 --index-url {PYTORCH}/cu128"
    assert {e.fact for e in f.evidence} >= {"torch.build", "gpus[0]"}
    assert not any(s.usable for s in diag.backends)


def test_driver_too_old_fix_and_evidence(rules: Rules) -> None:
    f = finding(diagnose(load("driver-too-old"), rules), "driver-too-old-for-torch")
    facts = {e.fact: e.value for e in f.evidence}
    assert facts["driver.version"] == "515.105.01"
    assert facts["index:driver_cuda.toml#minor_compat.12.linux"] == "525.60.13"
    assert facts["driver.cuda_version"] == "11.7"  # the driver's own max CUDA corroborates
    assert f.fix is not None
    assert f.fix.startswith("Upgrade the NVIDIA driver to >= 530.30.02")
    assert "torch==2.5.1 --index-url https://download.pytorch.org/whl/cu118" in f.fix
    assert f.fix_note is not None
    assert "minor version compatibility" in f.fix_note


def test_minor_compat_is_a_warning_that_still_runs(rules: Rules) -> None:
    diag = diagnose(load("driver-minor-compat"), rules)
    f = finding(diag, "driver-below-cuda-release-minimum")
    assert "570.26" in f.cause
    assert any("cuda-compatibility" in s for s in f.sources)
    assert next(s for s in diag.backends if s.backend == "sdpa_flash").usable


def test_blackwell_with_old_torch_points_to_cu128(rules: Rules) -> None:
    f = finding(diagnose(load("rtx5090-old-torch"), rules), "torch-lacks-gpu-arch")
    assert "no kernel image is available" in f.cause
    assert f.fix == f"{PY} -m pip install 'torch==2.7.*' --index-url {PYTORCH}/cu128"


def test_blackwell_without_deep_uses_the_static_rule(rules: Rules) -> None:
    env = load("rtx5090-old-torch")
    shallow = dataclasses.replace(env, torch_runtime=None, imports=(), deep=False)
    f = finding(diagnose(shallow, rules), "torch-lacks-gpu-arch")
    assert "CUDA >= 12.8" in f.cause
    assert any(e.fact.startswith("index:driver_cuda.toml#arch_min_cuda") for e in f.evidence)


def test_no_torch_installs_a_variant_the_driver_runs(rules: Rules) -> None:
    f = finding(diagnose(load("no-torch-gpu"), rules), "no-torch")
    # newest torch in the table ships 12.6 / 13.0 / 13.2; a 570 driver runs 12.6 only
    assert f.fix == f"{PY} -m pip install 'torch==2.13.*' --index-url {PYTORCH}/cu126"


def test_t4_flash_attn_says_what_works_instead(rules: Rules) -> None:
    diag = diagnose(load("t4-colab"), rules)
    f = finding(diag, "gpu-unsupported-by-backend")
    assert f.backends == ("flash_attn_2",)
    assert "sm80" in f.cause
    assert f.fix_note is not None
    assert "memory-efficient" in f.fix_note
    assert "xformers" in f.fix_note
    assert any("flash-attn 2 needs Ampere" in s for s in diag.folklore)
    fa2 = next(s for s in diag.backends if s.backend == "flash_attn_2")
    assert (fa2.installed, fa2.compatible, fa2.usable) == ("yes", "no", False)


def test_undefined_symbol_is_an_abi_mismatch(rules: Rules) -> None:
    diag = diagnose(load("broken-flash-attn-undefined-symbol"), rules)
    f = finding(diag, "flash-attn-abi-mismatch")
    assert any(e.fact == "import:flash_attn" and "undefined symbol" in e.value for e in f.evidence)
    label = finding(diag, "flash-attn-built-for-other-torch")
    assert "torch 2.6 (installed: 2.8)" in label.cause
    assert "cxx11abi False" in label.cause
    fa2 = next(s for s in diag.backends if s.backend == "flash_attn_2")
    assert fa2.importable == "no"
    assert not fa2.usable


def test_xformers_build_metadata(rules: Rules) -> None:
    diag = diagnose(load("broken-xformers-other-torch"), rules)
    f = finding(diag, "xformers-built-for-other-torch")
    assert "torch 2.6.0+cu124" in f.cause
    assert "CUDA 12.4" not in f.cause  # same CUDA major: only the torch version is wrong
    pin = finding(diag, "package-pins-other-torch")
    assert pin.evidence[0].value == "numpy" or "torch==2.6.0" in pin.evidence[0].value


def test_pins_respect_markers(rules: Rules) -> None:
    env = load("h100-fa3-old-transformers")
    diag = diagnose(env, rules)
    pins = [f for f in diag.findings if f.id == "package-pins-other-torch"]
    assert len(pins) == 1
    assert pins[0].title.startswith("unsloth")
    # the same pin behind a Windows-only marker does not apply on this Linux machine
    unsloth = env.package("unsloth")
    assert unsloth is not None
    windows_only = dataclasses.replace(
        unsloth, requires=('torch<2.7.0,>=2.4.0; sys_platform == "win32"',)
    )
    others = tuple(p for p in env.packages if p.name != "unsloth")
    env2 = dataclasses.replace(env, packages=(*others, windows_only))
    assert "package-pins-other-torch" not in ids_of(diagnose(env2, rules))


def test_conflicting_triton_distributions(rules: Rules) -> None:
    env = load("mi300-rocm")
    both = dataclasses.replace(
        env, packages=(*env.packages, PackageFacts(name="triton", version="3.4.0"))
    )
    f = finding(diagnose(both, rules), "conflicting-packages")
    assert f.severity == "warning"
    assert "pytorch-triton-rocm 3.4.0" in f.title
    assert "conflicting-packages" not in ids_of(diagnose(env, rules))


def test_transformers_too_old_for_fa3(rules: Rules) -> None:
    f = finding(
        diagnose(load("h100-fa3-old-transformers"), rules), "transformers-too-old-for-backend"
    )
    assert f.fix == f"{PY} -m pip install -U 'transformers>=4.53.0'"


def test_low_ram_suggests_max_jobs(rules: Rules) -> None:
    f = finding(diagnose(load("h100-fa3-old-transformers"), rules), "low-ram-for-source-build")
    build = f"{PY} -m pip install flash-attn --no-build-isolation"
    assert f.fix == f"MAX_JOBS=1 NVCC_THREADS=2 {build}"
    f2 = finding(diagnose(load("rtx3090-wsl2"), rules), "low-ram-for-source-build")
    assert f2.fix == f"MAX_JOBS=2 NVCC_THREADS=2 {build}"


def test_windows_folklore(rules: Rules) -> None:
    diag = diagnose(load("rtx4090-windows"), rules)
    assert any('"Windows -> xformers" is not needed' in s for s in diag.folklore)
    env = load("rtx4090-windows")
    assert env.torch is not None
    old = dataclasses.replace(
        env, torch=dataclasses.replace(env.torch, version="2.3.1+cu121", cuda="12.1")
    )
    diag_old = diagnose(old, rules)
    sdpa = next(s for s in diag_old.backends if s.backend == "sdpa_flash")
    assert sdpa.compatible == "no"
    assert "torch >= 2.5 on windows" in sdpa.reason
    assert any("has no SDPA flash kernel on Windows" in s for s in diag_old.folklore)
    # xformers 0.0.31.post1 pins torch==2.7.1: with torch 2.3.1 it is not usable either
    assert "package-pins-other-torch" in ids_of(diag_old)
    # Without a flash kernel in this torch, SDPA runs the memory-efficient kernel (about half
    # FlashAttention-2's speed): a flash-attn 2 install is worth it now.
    sdpa = next(r for r in diag_old.recommendations if r.backend == "sdpa")
    assert sdpa.kernel == "sdpa_mem_efficient"
    top = diag_old.recommendations[0]
    assert (top.backend, top.status) == ("flash_attn_2", "install")


def test_hopper_and_blackwell_folklore(rules: Rules) -> None:
    h100 = diagnose(load("h100-linux-recent-torch"), rules)
    assert any("FlashAttention-3" in s for s in h100.folklore)
    backends = [r.backend for r in h100.recommendations]
    assert backends.index("flash_attn_3") < backends.index("flash_attn_2")
    b200 = diagnose(load("b200-linux"), rules)
    fa3 = next(s for s in b200.backends if s.backend == "flash_attn_3")
    assert fa3.compatible == "no"
    assert any("flash-attn-4 targets it" in s for s in b200.folklore)
    rtx5090 = diagnose(load("rtx5090-linux"), rules)
    fa4 = next(r for r in rtx5090.recommendations if r.backend == "flash_attn_4")
    assert "upstream targets" in fa4.reason


def test_unknown_driver_is_reported_not_guessed(rules: Rules) -> None:
    env = load("a100-linux")
    blind = dataclasses.replace(env, driver=DriverFacts())
    diag = diagnose(blind, rules)
    assert ids_of(diag) == {"driver-unknown": "info"}


def test_rocm_torch_on_nvidia(rules: Rules) -> None:
    env = load("a100-linux")
    assert env.torch is not None
    rocm = dataclasses.replace(
        env,
        torch=dataclasses.replace(env.torch, version="2.6.0+rocm6.2.4", build="rocm", cuda=None),
    )
    f = finding(diagnose(rocm, rules), "rocm-torch-on-nvidia-gpu")
    assert f.severity == "error"
    assert f.fix == f"{PY} -m pip install torch==2.6.0 --index-url {PYTORCH}/cu124"


def test_cuda_torch_on_amd(rules: Rules) -> None:
    env = load("mi300-rocm")
    assert env.torch is not None
    cuda = dataclasses.replace(
        env, torch=dataclasses.replace(env.torch, version="2.8.0+cu128", build="cuda", cuda="12.8")
    )
    f = finding(diagnose(cuda, rules), "cuda-torch-on-amd-gpu")
    assert f.fix == f"{PY} -m pip install torch==2.8.0 --index-url {PYTORCH}/rocm6.4"


def test_minimal_environment(rules: Rules) -> None:
    """A snapshot with almost nothing known still diagnoses, without guessing."""
    env = Environment(
        host=HostFacts(os="linux"),
        python=PythonFacts(version="3.12.1", implementation="cpython"),
        gpus=(GpuFacts(index=0, vendor="nvidia", name="NVIDIA Mystery"),),
        torch=TorchFacts(version="2.8.0+cu128", build="cuda", cuda="12.8"),
        packages=(PackageFacts(name="flash-attn", version="2.8.3"),),
    )
    diag = diagnose(env, rules)
    assert "driver-unknown" in ids_of(diag)
    fa2 = next(s for s in diag.backends if s.backend == "flash_attn_2")
    assert fa2.compatible == "unknown"


def test_snapshots_are_valid_json_with_schema_version() -> None:
    for path in sorted(SNAPSHOTS.glob("*.json")):
        data = json.loads(path.read_text())
        assert data["schema_version"] == 1, path.name


def test_planner_does_not_import_torch() -> None:
    """The planning stages are pure: no torch, no subprocess, no NVML, and nothing from the
    layers above them (install, commands, report, loadtime, verify, bench) (checked in the
    source)."""
    package = REPO_ROOT / "attn_doctor"
    paths = sorted(
        [package / "decide.py"]
        + [
            p
            for stage in ("diagnose", "resolve", "planner")
            for p in (package / stage).rglob("*.py")
        ]
    )
    assert len(paths) > 10  # the diagnose and resolve packages are included
    upward = ("install", "commands", "report", "loadtime", "verify", "bench", "cli", "fleet")
    for path in paths:
        text = path.read_text()
        for layer in upward:
            assert f"from attn_doctor.{layer}" not in text, f"{path.name} imports {layer}"
            assert f"import attn_doctor.{layer}" not in text, f"{path.name} imports {layer}"
        lines = [line.strip() for line in path.read_text().splitlines()]
        imports = [line for line in lines if line.startswith(("import ", "from "))]
        for banned in ("torch", "subprocess", "pynvml", "psutil", "platform"):
            assert not any(line.split()[1].split(".")[0] == banned for line in imports), (
                f"{path.name}: {banned}"
            )
        assert not any("os.environ" in line for line in lines), path.name


def test_rules_and_docs_list_the_same_rule_ids(rules: Rules) -> None:
    docs = (REPO_ROOT / "docs" / "diagnosis.md").read_text()
    for rule_id, _ in rules.rule_sources:
        assert f"`{rule_id}`" in docs, rule_id


def test_every_emitted_id_has_sources_in_the_data(rules: Rules) -> None:
    known = {rule_id for rule_id, _ in rules.rule_sources}
    for name in EXPECTED:
        for f in diagnose(load(name), rules).findings:
            assert f.id in known, f.id


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=sorted(EXPECTED))
def test_diagnosis_encodes_to_json(rules: Rules, name: str) -> None:
    from attn_doctor.facts import encode

    text = json.dumps(encode(diagnose(load(name), rules)), sort_keys=True)
    data = json.loads(text)
    assert set(data) == {"findings", "backends", "recommendations", "folklore", "frameworks"}


def test_bench_measurements_reorder_what_works_now() -> None:
    from attn_doctor.decide import BenchEvidence, Measurement

    env = load("cpu-only-laptop")
    rules = load_rules()
    plain = [r.backend for r in diagnose(env, rules).recommendations]
    assert plain[0] == "sdpa"
    evidence = BenchEvidence(
        key="cpu",
        measurements=(
            Measurement(backend="eager", tflops=0.09, verified=True),
            Measurement(backend="sdpa_cpu_fused", tflops=0.03, verified=True),
        ),
    )
    measured = diagnose(env, rules, evidence=evidence)
    ranked = [r.backend for r in measured.recommendations]
    assert ranked[0] == "eager"  # measured faster here: the measurement wins
    assert measured.recommendations[0].measured
    assert "measured" in measured.recommendations[0].reason
    assert sorted(ranked) == sorted(plain)  # the same candidates, only reordered


def test_with_the_index_install_notes_name_the_wheel_that_fits() -> None:
    from attn_doctor.index import load_index

    env = load("h100-linux-recent-torch")  # torch 2.9: no upstream flash-attn 2 wheel exists
    recs = {r.backend: r for r in diagnose(env, load_rules(), index=load_index()).recommendations}
    assert "(community: flash_attn-" in recs["flash_attn_2"].way
    assert "(pypi: xformers-" in recs["xformers"].way
    # an official prebuilt way outranks a community build of the same speed
    assert recs["xformers"].rank < recs["flash_attn_2"].rank
    t4 = load("t4-colab")
    t4_recs = {r.backend for r in diagnose(t4, load_rules(), index=load_index()).recommendations}
    assert "flash_attn_2" not in t4_recs  # sm75: never recommended, index or not


def test_transformers_falls_back_to_hub_kernels_when_flash_attn_is_missing() -> None:
    from attn_doctor.index import load_index

    h100 = load("h100-linux-recent-torch")  # no flash-attn installed; transformers 4.57.1
    tf = h100.package("transformers")
    assert tf is not None
    kernels = PackageFacts(name="kernels", version="0.19.3")
    before = dataclasses.replace(h100, packages=(*h100.packages, kernels))
    ids = {f.id for f in diagnose(before, load_rules(), index=load_index()).findings}
    assert "transformers-hub-fallback" not in ids  # transformers 4.x has no such fallback
    tf5 = dataclasses.replace(tf, version="5.25.0")  # a release the bundled table knows
    env = dataclasses.replace(
        h100, packages=tuple(tf5 if p.name == "transformers" else p for p in h100.packages)
    )
    with_kernels = dataclasses.replace(env, packages=(*env.packages, kernels))
    ids = {f.id for f in diagnose(with_kernels, load_rules(), index=load_index()).findings}
    assert "transformers-hub-fallback" in ids
    old = dataclasses.replace(kernels, version="0.18.3")
    off = dataclasses.replace(env, packages=(*env.packages, old))
    ids = {f.id for f in diagnose(off, load_rules(), index=load_index()).findings}
    assert "transformers-hub-fallback-off" in ids
    assert "transformers-hub-fallback" not in ids
    none = {f.id for f in diagnose(env, load_rules(), index=load_index()).findings}
    assert not {"transformers-hub-fallback", "transformers-hub-fallback-off"} & none


def test_free_threaded_python_gets_one_answer_about_flash_attn_wheels(rules: Rules) -> None:
    """cp313t: the static rule expects no upstream wheel, the resolver finds a community build;
    check says the latter (an info finding naming the wheel), not "no prebuilt wheels"."""
    from attn_doctor.index import load_index
    from attn_doctor.resolve import plan_backend

    env = load("h100-fa3-old-transformers")
    assert env.python.free_threaded
    index = load_index()
    best = plan_backend(env, index, "flash_attn_2").candidates[0]
    assert best.source == "community"
    findings = {f.id: f for f in diagnose(env, rules, index=index).findings}
    assert "python-no-prebuilt-flash-attn" not in findings
    info = findings["python-no-upstream-flash-attn"]
    assert info.severity == "info"
    assert best.filename is not None
    assert best.filename in info.cause
    # Without the index (no plan to consult) the conservative warning stays.
    assert "python-no-prebuilt-flash-attn" in ids_of(diagnose(env, rules))
