"""Backends as adapters: one object per record, its planner, its reasons, what derives from it."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from attn_doctor.adapters import adapter_for, kernel_backends
from attn_doctor.adapters.base import RecordAdapter
from attn_doctor.adapters.registry import ADAPTER_CLASSES
from attn_doctor.backends import BACKEND_NAMES, BACKENDS, AdapterKind, BackendName
from attn_doctor.errors import ExitCode, NoPlanner

SNAPSHOTS = Path(__file__).parent.parent / "snapshots"


def test_every_adapter_kind_has_a_class() -> None:
    from typing import get_args

    assert set(ADAPTER_CLASSES) == set(get_args(AdapterKind))


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_each_backend_has_one_adapter_built_from_its_record(backend: BackendName) -> None:
    adapter = adapter_for(backend)
    assert adapter.record is BACKENDS[backend]
    assert adapter is adapter_for(backend)  # one object per backend
    assert adapter.launches_kernel == (BACKENDS[backend].verify.kind == "kernel")


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_the_planner_an_adapter_names_exists(backend: BackendName) -> None:
    ref = adapter_for(backend).planner
    if BACKENDS[backend].builtin:
        assert ref is None  # nothing to install
        return
    assert ref is not None, f"{backend} names no planner"
    module, _, name = ref.partition(":")
    assert callable(getattr(importlib.import_module(module), name))


def test_integrations_are_the_registration_functions() -> None:
    from attn_doctor.integrations.sage_attention import register_sageattention
    from attn_doctor.integrations.xformers_attention import register_xformers_attention

    assert adapter_for("xformers").integration is register_xformers_attention
    assert adapter_for("sageattention").integration is register_sageattention
    assert adapter_for("sdpa").integration is None


@pytest.mark.parametrize(
    ("backend", "device", "cc", "reason"),
    [
        ("flash_attn_2", "cpu", None, "needs a CUDA device"),
        ("sdpa_cpu_fused", "cuda", None, "CPU-only kernel"),
        ("sdpa_math", "cpu", None, None),
        ("flash_attn_2", "cuda", (7, 5), "flash-attn 2 needs compute capability 8.0+, GPU is 7.5"),
        ("flash_attn_3", "cuda", (10, 0), "supports compute capability up to 9.0, GPU is 10.0"),
        ("sdpa_flash", "cuda", (9, 0), None),
        ("sageattention", "cuda", (10, 0), "supports GPU generations 8.x, 9.x, 12.x, GPU is 10.0"),
        ("unsloth", "cuda", (9, 0), "unsloth launches no attention kernel of its own (cuda)"),
    ],
    ids=[
        "fa2-cpu",
        "cpu-fused-on-cuda",
        "math-cpu",
        "fa2-t4",
        "fa3-b200",
        "flash-h100",
        "sage-b200",
        "unsloth",
    ],
)
def test_why_it_cannot_run_is_judged_from_the_record(
    backend: BackendName, device: str, cc: tuple[int, int] | None, reason: str | None
) -> None:
    got = adapter_for(backend).unavailable_here(device, cc)
    if reason is None:
        assert got is None
    else:
        assert got is not None
        assert got.endswith(reason)


def test_kernel_backends_follow_the_records() -> None:
    assert kernel_backends() == tuple(
        n for n in BACKEND_NAMES if BACKENDS[n].verify.kind == "kernel"
    )


def test_a_backend_without_planner_is_a_usage_error_not_a_key_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from attn_doctor import resolve

    monkeypatch.setattr(resolve, "adapter_for", lambda name: RecordAdapter(BACKENDS[name]))
    with pytest.raises(NoPlanner) as info:
        resolve.planner_for("xformers")
    assert info.value.exit_code == ExitCode.USAGE
    assert "no install planner" in info.value.message
    assert info.value.hint is not None
    assert "\n  python -m pip install xformers\n" in info.value.hint
    assert info.value.hint.endswith("\n  attn-doctor verify xformers")


def test_install_without_planner_exits_2_with_the_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from attn_doctor import resolve
    from attn_doctor.cli import main

    monkeypatch.setattr(resolve, "adapter_for", lambda name: RecordAdapter(BACKENDS[name]))
    snapshot = SNAPSHOTS / "h200-real.json"
    with pytest.raises(SystemExit) as info:
        main(["install", "xformers", "--snapshot", str(snapshot), "--dry-run", "--json"])
    assert info.value.code == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "no-planner"


def test_watched_distributions_include_every_record_distribution() -> None:
    from attn_doctor.probe.packages import WATCHED

    for record in BACKENDS.values():
        for dist in (*record.distributions, *record.companions):
            assert dist in WATCHED, f"{record.name}: {dist} is not watched"


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_the_releases_an_adapter_names_exist(backend: BackendName) -> None:
    from attn_doctor.index import load_index
    from attn_doctor.resolve import known_versions

    ref = adapter_for(backend).releases
    if ref is None:
        assert known_versions(load_index(), backend) == ()
        return
    assert known_versions(load_index(), backend), f"{backend}: no release known"


@pytest.mark.parametrize(
    ("impl", "backend"),
    [
        ("flash_attention_2", "flash_attn_2"),
        ("flash_attention_4", "flash_attn_4"),
        ("xformers", "xformers"),
        ("sdpa", None),
        ("eager", None),
        ("kernels-community/flash-attn2", None),
    ],
)
def test_the_adapter_behind_an_attn_implementation(impl: str, backend: str | None) -> None:
    from attn_doctor.adapters import adapter_of_implementation

    adapter = adapter_of_implementation(impl)
    assert (adapter.record.name if adapter else None) == backend


def test_model_check_asks_the_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    from attn_doctor.adapters import xformers as xformers_adapter
    from attn_doctor.verify.model_check import XFORMERS_MISSING, _impl_reason

    assert _impl_reason("flash_attention_2", "cpu") == "needs a CUDA device"
    assert _impl_reason("sdpa", "cpu") is None

    def missing() -> None:
        raise ImportError("no transformers")

    monkeypatch.setattr(
        xformers_adapter.XformersAdapter, "integration", property(lambda self: missing)
    )
    assert _impl_reason("xformers", "cuda") == XFORMERS_MISSING
