"""Datasheet figures per GPU, from ``wheels_index/gpu_specs.toml`` (validated on load)."""

from __future__ import annotations

import re

from attn_doctor.bench.results import GpuSpec
from attn_doctor.bench.shapes import DType
from attn_doctor.datafiles import read_toml
from attn_doctor.errors import IndexDataError

SPECS_FILE = "gpu_specs.toml"


def _entry_error(index: int, key: object, what: str) -> IndexDataError:
    return IndexDataError(f"{SPECS_FILE}: gpu entry {index} ({key!r}): {what}")


def parse_gpu_specs(data: dict[str, object]) -> tuple[tuple[GpuSpec, re.Pattern[str]], ...]:
    """Validate the decoded TOML; raises ``IndexDataError`` naming the bad entry."""
    if data.get("schema_version") != 1:
        raise IndexDataError(f"{SPECS_FILE}: schema_version must be 1")
    entries = data.get("gpu")
    if not isinstance(entries, list) or not entries:
        raise IndexDataError(f"{SPECS_FILE}: no [[gpu]] entries")
    seen: set[str] = set()
    out: list[tuple[GpuSpec, re.Pattern[str]]] = []
    allowed = {
        "key",
        "name",
        "match",
        "dense_tflops_fp16",
        "dense_tflops_bf16",
        "source",
        "verified",
        "note",
    }
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise IndexDataError(f"{SPECS_FILE}: gpu entry {i} is not a table")
        key = entry.get("key")
        extra = sorted(set(entry) - allowed)
        if extra:
            raise _entry_error(i, key, f"unknown field {extra[0]!r}")
        for name in ("key", "name", "match", "source"):
            if not isinstance(entry.get(name), str) or not entry[name]:
                raise _entry_error(i, key, f"{name} must be a non-empty string")
        if not isinstance(entry.get("verified"), bool):
            raise _entry_error(i, key, "verified must be true or false")
        fp16 = entry.get("dense_tflops_fp16")
        bf16 = entry.get("dense_tflops_bf16")
        if isinstance(fp16, bool) or not isinstance(fp16, int | float) or fp16 <= 0:
            raise _entry_error(i, key, "dense_tflops_fp16 must be a positive number")
        if bf16 is not None and (
            isinstance(bf16, bool) or not isinstance(bf16, int | float) or bf16 <= 0
        ):
            raise _entry_error(i, key, "dense_tflops_bf16 must be a positive number")
        note = entry.get("note")
        if note is not None and not isinstance(note, str):
            raise _entry_error(i, key, "note must be a string")
        assert isinstance(key, str)
        if key in seen:
            raise _entry_error(i, key, "duplicate key")
        seen.add(key)
        try:
            pattern = re.compile(str(entry["match"]), re.IGNORECASE)
        except re.error as exc:
            raise _entry_error(i, key, f"match is not a valid regular expression: {exc}") from exc
        out.append(
            (
                GpuSpec(
                    key=key,
                    name=str(entry["name"]),
                    dense_tflops_fp16=float(fp16),
                    dense_tflops_bf16=None if bf16 is None else float(bf16),
                    source=str(entry["source"]),
                    verified=bool(entry["verified"]),
                    note=note,
                ),
                pattern,
            )
        )
    return tuple(out)


def load_gpu_specs() -> tuple[tuple[GpuSpec, re.Pattern[str]], ...]:
    return parse_gpu_specs(read_toml(SPECS_FILE))


def find_gpu_spec(device_name: str) -> GpuSpec | None:
    """The first entry whose ``match`` is found in the device name, or None."""
    for spec, pattern in load_gpu_specs():
        if pattern.search(device_name):
            return spec
    return None


def datasheet_tflops(spec: GpuSpec, dtype: DType) -> float | None:
    """The dense tensor figure for this dtype; None for fp32 (no tensor-core figure used)."""
    match dtype:
        case "fp16":
            return spec.dense_tflops_fp16
        case "bf16":
            return spec.dense_tflops_bf16
        case "fp32":
            return None
