"""The bench result cache: the latest run per (device, torch) so ``check`` can use it.

File: ``$XDG_CACHE_HOME/attn-doctor/bench.json`` (``~/.cache/attn-doctor/bench.json`` when
``XDG_CACHE_HOME`` is unset)::

    {"schema": "attn-doctor/bench-cache", "schema_version": 1,
     "results": {"<cache key>": <BenchResult>, ...}}

The key is the GPU's name and the full torch version (``cuda:NVIDIA H100 80GB HBM3|torch
2.8.0+cu128``; ``cpu|torch 2.13.0+cpu`` on CPU), because a result says nothing about another GPU
or another torch build. A missing, unreadable or newer-schema file reads as "no result": the
cache only ever adds evidence, it never stops a command.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from attn_doctor.errors import SnapshotError
from attn_doctor.facts import Environment

if TYPE_CHECKING:
    from attn_doctor.bench.results import BenchResult
    from attn_doctor.decide import BenchEvidence

CACHE_SCHEMA = "attn-doctor/bench-cache"
CACHE_SCHEMA_VERSION = 1


def cache_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the cache lives, honouring ``XDG_CACHE_HOME``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "attn-doctor" / "bench.json"


def cache_key(*, device: str, device_name: str, torch_version: str) -> str:
    """The key a result is stored under; the CPU's model is not part of it."""
    if device == "cpu":
        return f"cpu|torch {torch_version}"
    return f"{device}:{device_name}|torch {torch_version}"


CACHE_MAX_BYTES = 32 << 20
"""A bench result is tens of KiB; a file above this is not a cache this tool wrote."""


def _read(path: Path) -> dict[str, object]:
    from attn_doctor.userfiles import read_json_file

    try:
        data = read_json_file(path, max_bytes=CACHE_MAX_BYTES)
    except (OSError, ValueError):  # absent, unreadable, binary, not JSON, too large: no cache
        return {}
    if (
        not isinstance(data, dict)
        or data.get("schema") != CACHE_SCHEMA
        or data.get("schema_version") != CACHE_SCHEMA_VERSION
        or not isinstance(data.get("results"), dict)
    ):
        return {}
    results: dict[str, object] = data["results"]
    return results


def save_bench_result(result: BenchResult, path: Path | None = None) -> Path | None:
    """Store what of ``result`` is evidence under its key (replacing an older one),
    atomically, and return the path.

    Only figures that pass the quality gate are stored (``recommend.evidence_only``): an
    unreliable figure is never saved as evidence. None, and nothing written, when no figure
    of the run passed.
    """
    from attn_doctor.bench.recommend import evidence_only

    kept = evidence_only(result)
    if kept is None:
        return None
    result = kept
    path = cache_path() if path is None else path
    path.parent.mkdir(parents=True, exist_ok=True)
    results = _read(path)
    results[_stored_key(result.cache_key, result.mode)] = result.to_dict()
    doc = {"schema": CACHE_SCHEMA, "schema_version": CACHE_SCHEMA_VERSION, "results": results}
    fd, tmp = tempfile.mkstemp(prefix=".bench-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2, sort_keys=True)
            fh.write("\n")
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_cached_result(key: str, path: Path | None = None) -> BenchResult | None:
    """The stored result for ``key``, or None (absent, unreadable, or from a newer schema)."""
    raw = _read(cache_path() if path is None else path).get(key)
    if raw is None:
        return None
    from attn_doctor.bench.results import BenchResult

    try:
        return BenchResult.from_dict(raw)
    except (SnapshotError, ValueError, TypeError, KeyError, AttributeError, OverflowError):
        return None  # a hand-edited or foreign entry: as if nothing were cached


def _stored_key(key: str, mode: str) -> str:
    """A forward run is stored under its key; a forward+backward run beside it."""
    return key if mode == "fwd" else f"{key}|{mode}"


def load_bench_results(env: Environment, path: Path | None = None) -> tuple[BenchResult, ...]:
    """Every cached run that applies to this machine: the forward run and, when one was made,
    the forward+backward run (same GPU, same torch). Empty when none or torch is missing."""
    first = load_bench_result(env, path)
    if first is None:
        return ()
    train = load_cached_result(_stored_key(first.cache_key, "fwd_bwd"), path)
    if first.mode == "fwd_bwd":
        return (first,)
    return (first,) if train is None else (first, train)


def load_bench_result(env: Environment, path: Path | None = None) -> BenchResult | None:
    """The cached bench result that applies to this machine, if there is one.

    Tries each NVIDIA GPU's name with the installed torch version; on a machine without an
    NVIDIA GPU, the CPU result. None when torch is not installed or nothing was cached.
    """
    if env.torch is None:
        return None
    keys = [
        cache_key(device="cuda", device_name=gpu.name, torch_version=env.torch.version)
        for gpu in env.nvidia_gpus
    ]
    if not keys:
        keys.append(cache_key(device="cpu", device_name="", torch_version=env.torch.version))
    for key in keys:
        for stored in (key, _stored_key(key, "fwd_bwd")):
            result = load_cached_result(stored, path)
            if result is not None:
                return result
    return None


def bench_evidence(env: Environment) -> BenchEvidence | None:
    """What cached ``attn-doctor bench`` runs measured for this GPU and torch, if any."""
    if env.torch is None or not cache_path().is_file():
        return None  # nothing was ever measured here: spare check the bench modules' import
    from attn_doctor.bench.recommend import evidence_from_runs

    try:
        return evidence_from_runs(load_bench_results(env))
    except Exception:  # a stale or foreign cache file must never break check
        return None
