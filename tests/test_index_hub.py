"""Hub kernel variant names and the kernels package's matching rules (restated, pure)."""

from __future__ import annotations

import pytest

from attn_doctor.index.hub import expected_variants, variant_mismatch

HERE = {"torch": "2.7.1+cu126", "cuda": "12.6", "cpu": "x86_64", "os": "linux"}


def test_expected_variant_names() -> None:
    assert expected_variants(cxx11_abi=True, **HERE) == (
        "torch27-cu126-x86_64-linux",
        "torch27-cxx11-cu126-x86_64-linux",
    )


@pytest.mark.parametrize(
    ("variant", "why"),
    [
        ("torch27-cxx11-cu126-x86_64-linux", None),
        ("torch27-cu124-x86_64-linux", None),  # older CUDA minor, same major
        ("torch-stable-abi26-cu126-x86_64-linux", None),  # stable ABI <= torch
        ("torch-stable-abi28-cu126-x86_64-linux", "newer than torch"),
        ("torch27-cxx98-cu126-x86_64-linux", "C++ ABI tag cxx98"),
        ("torch28-cxx11-cu126-x86_64-linux", "built for torch 2.8"),
        ("torch27-cxx11-cu128-x86_64-linux", "CUDA 12.8 is not compatible"),
        ("torch27-cxx11-cu118-x86_64-linux", "CUDA 11.8 is not compatible"),
        ("torch27-cxx11-cu126-aarch64-linux", "CPU aarch64"),
        ("torch27-cxx11-cu126-x86_64-windows", "OS windows"),
        ("torch27-cxx11-rocm63-x86_64-linux", "not CUDA"),
    ],
)
def test_variant_matching(variant: str, why: str | None) -> None:
    result = variant_mismatch(variant, cxx11_abi=True, **HERE)
    if why is None:
        assert result is None
    else:
        assert result is not None
        assert why in result
