"""wheels_index/gpu_specs.toml: loads, validates, and matches real device names."""

from __future__ import annotations

import pytest

from attn_doctor.bench.gpu_specs import (
    datasheet_tflops,
    find_gpu_spec,
    load_gpu_specs,
    parse_gpu_specs,
)
from attn_doctor.errors import IndexDataError


@pytest.mark.parametrize(
    ("device_name", "key"),
    [
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA H200", "h200-sxm"),
        ("NVIDIA A100-SXM4-80GB", "a100"),
        ("NVIDIA A100 80GB PCIe", "a100"),
        ("NVIDIA L4", "l4"),
        ("NVIDIA L40S", "l40s"),
        ("Tesla T4", "t4"),
        ("Tesla V100-SXM2-16GB", "v100-sxm2"),
        ("Tesla V100-PCIE-32GB", "v100-pcie"),
        ("NVIDIA GeForce RTX 3090", "rtx-3090"),
        ("NVIDIA GeForce RTX 4090", "rtx-4090"),
        ("NVIDIA GeForce RTX 5090", "rtx-5090"),
        ("NVIDIA B200", "b200"),
    ],
)
def test_matches_device_names(device_name: str, key: str) -> None:
    spec = find_gpu_spec(device_name)
    assert spec is not None
    assert spec.key == key


@pytest.mark.parametrize(
    "device_name",
    ["NVIDIA L40", "NVIDIA H100 NVL", "NVIDIA RTX A1000", "NVIDIA H200 NVL", "AMD Instinct MI300X"],
)
def test_unknown_or_ambiguous_parts_get_no_figure(device_name: str) -> None:
    # An unlisted variant must not borrow a sibling's figure (H100 NVL is not an SXM5).
    assert find_gpu_spec(device_name) is None


def test_every_entry_has_provenance_and_dense_figures() -> None:
    specs = load_gpu_specs()
    assert len(specs) >= 13
    for spec, _pattern in specs:
        assert spec.source
        # Dense figures: the largest dense fp16 tensor figure of any listed part is B200's.
        assert 0 < spec.dense_tflops_fp16 <= 2250
    h100 = find_gpu_spec("NVIDIA H100 80GB HBM3")
    assert h100 is not None
    assert datasheet_tflops(h100, "bf16") == pytest.approx(989.4)
    assert datasheet_tflops(h100, "fp32") is None
    t4 = find_gpu_spec("Tesla T4")
    assert t4 is not None
    assert datasheet_tflops(t4, "bf16") is None  # Turing has no bf16 tensor cores


def _entry(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "key": "x",
        "name": "X",
        "match": "X",
        "dense_tflops_fp16": 1.0,
        "source": "s",
        "verified": False,
    }
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (_entry(dense_tflops_fp16=-1), "dense_tflops_fp16"),
        (_entry(match="("), "regular expression"),
        (_entry(verified="yes"), "verified"),
        (_entry(source=""), "source"),
        (_entry(sparse=2.0), "unknown field 'sparse'"),
    ],
)
def test_validation_names_the_entry(entry: dict[str, object], message: str) -> None:
    with pytest.raises(IndexDataError, match=message) as info:
        parse_gpu_specs({"schema_version": 1, "gpu": [entry]})
    assert "'x'" in info.value.message


def test_duplicate_keys_refused() -> None:
    with pytest.raises(IndexDataError, match="duplicate"):
        parse_gpu_specs({"schema_version": 1, "gpu": [_entry(), _entry()]})
