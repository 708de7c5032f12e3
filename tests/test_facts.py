"""The Environment snapshot: round-trips, and bad input is refused naming the field."""

from __future__ import annotations

import json

import pytest

from attn_doctor.errors import SnapshotError
from attn_doctor.facts import (
    SCHEMA_VERSION,
    DriverFacts,
    Environment,
    GpuFacts,
    HostFacts,
    ImportResult,
    PackageFacts,
    PythonFacts,
    TorchFacts,
    Unknown,
)


def _env() -> Environment:
    return Environment(
        attn_doctor_version="0.1.0",
        created_at="2026-11-23T00:00:00Z",
        host=HostFacts(os="linux", arch="x86_64", cpu_count=32, ram_total_bytes=2**38),
        python=PythonFacts(version="3.12.3", implementation="cpython", abi_tag="cp312"),
        driver=DriverFacts(version="580.65.06", cuda_version="13.0", source="nvml"),
        gpus=(
            GpuFacts(
                index=0, vendor="nvidia", name="NVIDIA H100 80GB HBM3", compute_capability="9.0"
            ),
            GpuFacts(
                index=1, vendor="nvidia", name="NVIDIA RTX PRO 6000", compute_capability="12.0"
            ),
        ),
        torch=TorchFacts(version="2.9.0+cu128", build="cuda", cuda="12.8", cxx11_abi=True),
        packages=(
            PackageFacts(
                name="xformers",
                version="0.0.33",
                requires=("torch==2.9.0",),
                build_info=(("torch", "2.9.0+cu128"), ("cuda", "12.8")),
            ),
        ),
        env_vars=(("CUDA_VISIBLE_DEVICES", "0"),),
        imports=(ImportResult(module="flash_attn", status="crashed", detail="SIGSEGV"),),
        unknowns=(Unknown(field="cuda_toolkit.nvcc_version", reason="nvcc not on PATH"),),
    )


def test_round_trip_is_exact() -> None:
    env = _env()
    again = Environment.from_json(env.to_json())
    assert again == env
    assert again.to_json() == env.to_json()


def test_lookups() -> None:
    env = _env()
    assert env.gpus[0].sm == 90
    assert env.gpus[1].sm == 120
    assert env.package("xformers") is not None
    assert env.package("flash-attn") is None
    assert env.env("CUDA_VISIBLE_DEVICES") == "0"
    assert env.unknown_reason("cuda_toolkit.nvcc_version") == "nvcc not on PATH"
    assert env.import_result("flash_attn") is not None


def test_older_snapshot_without_optional_fields_loads() -> None:
    data = {
        "schema_version": 1,
        "host": {"os": "linux"},
        "python": {"version": "3.10.12", "implementation": "cpython"},
    }
    env = Environment.from_dict(data)
    assert env.torch is None
    assert env.gpus == ()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["gpus"][0].update(compute_capability=9.0), "gpus[0].compute_capability"),
        (lambda d: d["host"].update(os="beos"), "host.os: 'beos' is not one of"),
        (lambda d: d["host"].update(cpu_count="32"), "host.cpu_count: expected an integer"),
        (lambda d: d["host"].update(cpu_count=True), "host.cpu_count: expected an integer"),
        (lambda d: d["torch"].update(cxx11_abi="yes"), "torch.cxx11_abi"),
        (lambda d: d["torch"].pop("version"), "torch.version: missing"),
        (lambda d: d.update(gpus={}), "gpus: expected a list"),
        (lambda d: d["packages"][0].update(build_info=[["torch"]]), "build_info[0]"),
        (lambda d: d.update(surprise=1), "unknown field 'surprise'"),
        (lambda d: d.pop("python"), "python: missing"),
    ],
    ids=[
        "cc-as-number",
        "bad-os",
        "string-int",
        "bool-int",
        "bad-bool",
        "missing-required",
        "object-for-list",
        "short-pair",
        "unknown-key",
        "missing-section",
    ],
)
def test_malformed_snapshot_names_the_field(mutate: object, message: str) -> None:
    data = json.loads(_env().to_json())
    mutate(data)  # type: ignore[operator]
    with pytest.raises(SnapshotError) as err:
        Environment.from_dict(data)
    assert message in err.value.message


def test_future_schema_is_refused_with_upgrade_hint() -> None:
    data = json.loads(_env().to_json())
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(SnapshotError) as err:
        Environment.from_dict(data)
    assert "newer" in err.value.message
    assert err.value.hint is not None


@pytest.mark.parametrize("text", ["", "{", "[]", '"x"', '{"schema_version": "1"}'])
def test_not_a_snapshot(text: str) -> None:
    with pytest.raises(SnapshotError):
        Environment.from_json(text)
