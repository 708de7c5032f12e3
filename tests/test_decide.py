"""The one decision: check's first recommendation, ``install --auto`` and the runtime agree on
every recorded machine, and with the H200's recorded bench run all three choose ``sdpa``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from attn_doctor.backends import BACKENDS
from attn_doctor.bench.recommend import evidence_from_runs
from attn_doctor.bench.results import BenchResult
from attn_doctor.cli import main
from attn_doctor.decide import BenchEvidence, Measurement, rank, sdpa_default_kernel
from attn_doctor.diagnose import diagnose
from attn_doctor.diagnosis import Diagnosis
from attn_doctor.facts import Environment, ImportResult
from attn_doctor.index import load_index
from attn_doctor.loadtime.device import Target
from attn_doctor.loadtime.model_config import ANY_MODEL
from attn_doctor.loadtime.requirements import Requirement
from attn_doctor.loadtime.select import Choice, Settings
from attn_doctor.loadtime.select import decide as runtime_decide
from attn_doctor.planner.plans import Option
from attn_doctor.rules_data import Rules, load_rules
from tests.conftest import SNAPSHOTS

NAMES = sorted(p.stem for p in SNAPSHOTS.glob("*.json"))
H200_BENCH = Path(__file__).parent / "data" / "bench" / "h200-recorded.json"


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules()


def _env(name: str) -> Environment:
    return Environment.from_json((SNAPSHOTS / f"{name}.json").read_text())


def _check(env: Environment, rules: Rules, evidence: BenchEvidence | None = None) -> Diagnosis:
    return diagnose(env, rules, evidence=evidence, index=load_index() if env.gpus else None)


def _runtime(env: Environment, rules: Rules, evidence: BenchEvidence | None = None) -> Choice:
    """The runtime selector on the snapshot's facts: its first GPU (else the CPU), a model
    that declares every kind of support, what the snapshot says is installed, and an import
    that fails where the diagnosis found the installed package broken (the runtime's child
    import would find the same)."""
    broken = {
        module
        for row in _check(env, rules, evidence).backends
        if row.installed == "yes" and not row.usable
        for module in BACKENDS[row.backend].modules
    }
    gpu = env.gpus[0] if env.gpus else None
    kind = "cpu" if gpu is None else ("rocm" if gpu.vendor == "amd" else "cuda")
    if gpu is not None and gpu.vendor == "apple":
        kind, gpu = "mps", None
    target = Target(kind=kind, gpu=gpu, source="argument")

    def installed(req: Requirement) -> str | None:
        for dist in req.distributions:
            pkg = env.package(dist)
            if pkg is not None:
                return pkg.version
        return None

    def imports(module: str) -> ImportResult:
        found = env.import_result(module)
        if found is None and module in broken:
            return ImportResult(module=module, status="failed", detail="broken per check")
        return found or ImportResult(module=module, status="ok")

    return runtime_decide(
        traits=ANY_MODEL,
        target=target,
        dtype="bfloat16" if gpu is not None and (gpu.sm or 80) >= 80 else "float32",
        training=False,
        settings=Settings(),
        registered=True,
        installed=installed,
        imports=imports,
        evidence=evidence,
        sdpa_dispatch=sdpa_default_kernel(env, rules, gpu, evidence),
    )


def _auto(name: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    with pytest.raises(SystemExit) as info:
        main(
            [
                "install",
                "--auto",
                "--dry-run",
                "--json",
                "--snapshot",
                str(SNAPSHOTS / f"{name}.json"),
            ]
        )
    out, _ = capsys.readouterr()
    code = info.value.code
    assert isinstance(code, int)
    doc = json.loads(out)
    assert isinstance(doc, dict)
    return code, doc


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_check_auto_and_runtime_agree(
    name: str, rules: Rules, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _env(name)
    top = _check(env, rules).recommendations[0]
    code, doc = _auto(name, capsys)
    match top.status:
        case "ready":
            # Nothing to install, and the runtime loads the same backend.
            assert code == 0, doc
            assert doc["result"] is not None
            assert "nothing to install" in json.dumps(doc["result"])
            assert _runtime(env, rules).value == top.attn_implementation
        case "install":
            assert code == 0, doc
            result = doc["result"]
            assert isinstance(result, dict)
            assert result["plan"]["backend"] == top.backend
        case "blocked":
            # A blocked answer names the fix and exits 1; no GPU kernel package is planned.
            assert code == 1, doc
            error = doc["error"]
            assert isinstance(error, dict)
            assert error["code"] == "blocked"
            assert "installs nothing" in str(error["message"]) or "install torch first" in str(
                error["message"]
            )
            assert "fix first" in str(error["hint"]) or "install --auto" in str(error["hint"])


@pytest.mark.parametrize(
    ("name", "fix"),
    [
        ("driver-too-old", "Upgrade the NVIDIA driver"),
        ("rtx5090-old-torch", "pip install"),
        ("cpu-torch-on-gpu-box", "pip install"),
        ("no-torch-gpu", "pip install"),
    ],
)
def test_auto_installs_no_gpu_kernel_while_torch_cannot_run(
    name: str, fix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = _auto(name, capsys)
    assert code == 1
    assert doc["result"] is None
    assert fix in json.dumps(doc["error"])


def _h200_evidence() -> BenchEvidence:
    result = BenchResult.from_dict(json.loads(H200_BENCH.read_text()))
    evidence = evidence_from_runs([result])
    assert evidence is not None
    # The same machine's direct measurement of the default dispatch (gpu-records
    # 2026-11-29-h200/sdpa-dispatch.txt): it ran cuDNN's kernel; the run above predates the
    # bench row that records it.
    return dataclasses.replace(evidence, sdpa_kernel="sdpa_cudnn")


def test_h200_with_its_recorded_bench_all_choose_sdpa_running_cudnn(
    rules: Rules, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _env("h200-real")
    evidence = _h200_evidence()
    top = _check(env, rules, evidence).recommendations[0]
    assert (top.backend, top.status, top.kernel) == ("sdpa", "ready", "sdpa_cudnn")
    assert top.measured
    assert top.score is not None
    assert top.score > 500  # TFLOP/s, the cuDNN kernel's geometric mean
    assert top.activate is None  # the default is already the fastest verified kernel
    choice = _runtime(env, rules, evidence)
    assert choice.value == "sdpa"
    assert choice.sdpa_kernel == "sdpa_cudnn"
    assert choice.activate is None
    # install --auto on the live machine would read the same cache; on the snapshot the
    # static dispatch rules name cuDNN too (torch 2.11, cuDNN 9.19, sm90).
    code, doc = _auto("h200-real", capsys)
    assert code == 0
    assert "cuDNN" in json.dumps(doc["result"])


def test_static_rule_names_cudnn_on_the_h200(rules: Rules) -> None:
    env = _env("h200-real")
    kernel, source = sdpa_default_kernel(env, rules, env.gpus[0])
    assert kernel == "sdpa_cudnn"
    assert "dispatch rules" in source


def test_evidence_outranks_priors() -> None:
    """A measured backend is ranked by its measurement, an unmeasured one by its prior scaled
    to the measured default; an install needs INSTALL_MARGIN more to win."""
    from attn_doctor.facts import GpuFacts

    h100 = GpuFacts(index=0, vendor="nvidia", name="NVIDIA H100", compute_capability="9.0")
    options = [
        Option(backend="sdpa", status="ready", way="built in", reason="", source="torch"),
        Option(backend="flash_attn_3", status="install", way="install", reason="", source="pypi"),
    ]
    # No evidence, default dispatch = flash kernel (prior 1.0): FA3 (1.75 / 1.25) wins.
    ranked = rank(options, gpu=h100, sdpa_kernel="sdpa_flash", sdpa_kernel_source="rule")
    assert [c.backend for c in ranked] == ["flash_attn_3", "sdpa"]
    # Measured: the default ran cuDNN at 511 TFLOP/s: FA3's estimate (1.75 x 292 / 1.25) loses.
    evidence = BenchEvidence(
        key="k",
        measurements=(Measurement(backend="sdpa_cudnn", tflops=511.0, verified=True),),
        sdpa_kernel="sdpa_cudnn",
    )
    ranked = rank(
        options, gpu=h100, sdpa_kernel="sdpa_cudnn", sdpa_kernel_source="m", evidence=evidence
    )
    assert [c.backend for c in ranked] == ["sdpa", "flash_attn_3"]
    assert ranked[0].measured
    # A measurement that failed its kernel check is no evidence.
    unverified = BenchEvidence(
        key="k",
        measurements=(Measurement(backend="sdpa_flash", tflops=900.0, verified=False),),
    )
    ranked = rank(
        options, gpu=h100, sdpa_kernel="sdpa_flash", sdpa_kernel_source="m", evidence=unverified
    )
    assert not any(c.measured for c in ranked)


def test_blocked_ranks_last_and_training_uses_fwd_bwd() -> None:
    options = [
        Option(backend="flash_attn_2", status="blocked", way="fix", reason=""),
        Option(backend="sdpa", status="ready", way="built in", reason="", source="torch"),
        Option(backend="eager", status="ready", way="built in", reason="", source="torch"),
    ]
    evidence = BenchEvidence(
        key="k",
        measurements=(
            Measurement(backend="sdpa_cpu_fused", tflops=1.0, tflops_train=0.1, verified=True),
            Measurement(backend="eager", tflops=0.5, tflops_train=0.4, verified=True),
        ),
    )
    kw = {"gpu": None, "sdpa_kernel": "sdpa_cpu_fused", "sdpa_kernel_source": "m"}
    inference = rank(options, evidence=evidence, **kw)  # type: ignore[arg-type]
    assert [c.backend for c in inference] == ["sdpa", "eager", "flash_attn_2"]
    from attn_doctor.decide import Request

    training = rank(options, evidence=evidence, request=Request(training=True), **kw)  # type: ignore[arg-type]
    assert [c.backend for c in training] == ["eager", "sdpa", "flash_attn_2"]
