"""The bench cache that `check` reads through ``load_bench_result(env)``."""

from __future__ import annotations

import json
from pathlib import Path

from attn_doctor.bench.cache import (
    cache_key,
    cache_path,
    load_bench_result,
    load_cached_result,
    save_bench_result,
)
from attn_doctor.bench.results import BenchResult
from attn_doctor.facts import Environment, GpuFacts, HostFacts, PythonFacts, TorchFacts
from tests.bench_data import result, sweep


def _env(gpu: str | None, torch_version: str | None = "2.8.0+cu128") -> Environment:
    return Environment(
        host=HostFacts(os="linux"),
        python=PythonFacts(version="3.12.3", implementation="cpython"),
        gpus=() if gpu is None else (GpuFacts(index=0, vendor="nvidia", name=gpu),),
        torch=None if torch_version is None else TorchFacts(version=torch_version, build="cuda"),
    )


def test_cache_path_honours_xdg() -> None:
    assert cache_path({"XDG_CACHE_HOME": "/x/cache"}) == Path("/x/cache/attn-doctor/bench.json")
    # A relative XDG_CACHE_HOME is invalid per the spec and ignored.
    assert cache_path({"XDG_CACHE_HOME": "rel"}).parts[-3:] == (
        ".cache",
        "attn-doctor",
        "bench.json",
    )


def test_round_trip_and_lookup_by_environment(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    res = result(sweep("sdpa_flash", {1024: 1.0}), sweep("eager", {1024: 3.0}))
    save_bench_result(res, path)
    loaded = load_bench_result(_env("NVIDIA H100 80GB HBM3"), path)
    assert loaded == res
    assert loaded is not None
    assert loaded.recommendation is not None
    assert loaded.recommendation.backend == "sdpa_flash"
    # Another GPU, another torch, or no torch: no result.
    assert load_bench_result(_env("NVIDIA A100-SXM4-80GB"), path) is None
    assert load_bench_result(_env("NVIDIA H100 80GB HBM3", "2.9.0+cu128"), path) is None
    assert load_bench_result(_env("NVIDIA H100 80GB HBM3", None), path) is None


def test_results_for_several_machines_coexist(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    a = result(sweep("sdpa_flash", {1024: 1.0}))
    b = result(sweep("flash_attn_2", {1024: 1.0}), device_name="NVIDIA L4")
    save_bench_result(a, path)
    save_bench_result(b, path)
    assert load_cached_result(a.cache_key, path) == a
    assert load_cached_result(b.cache_key, path) == b


def test_cpu_key() -> None:
    assert cache_key(device="cpu", device_name="AMD EPYC", torch_version="2.13.0+cpu") == (
        "cpu|torch 2.13.0+cpu"
    )


def test_corrupt_or_newer_cache_reads_as_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    env = _env("NVIDIA H100 80GB HBM3")
    path.write_text("{not json", encoding="utf-8")
    assert load_bench_result(env, path) is None
    res = result(sweep("sdpa_flash", {1024: 1.0}))
    save_bench_result(res, path)  # replaces the corrupt file
    assert load_bench_result(env, path) == res
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["results"][res.cache_key]["schema_version"] = 99
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert load_bench_result(env, path) is None


def test_result_json_round_trip() -> None:
    res = result(sweep("sdpa_flash", {1024: 1.0, 2048: None}))
    assert BenchResult.from_dict(json.loads(res.to_json())) == res
