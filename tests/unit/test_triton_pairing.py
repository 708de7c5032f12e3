"""The triton each torch release pins, and the triton-windows pairing (triton.toml)."""

from __future__ import annotations

import dataclasses

import pytest

from attn_doctor.diagnose import diagnose
from attn_doctor.facts import PackageFacts
from attn_doctor.rules_data import load_rules
from attn_doctor.triton_data import TritonPairing, triton_problem
from tests.index_envs import make_env

_LOADED = load_rules().triton
assert _LOADED is not None
PAIRING: TritonPairing = _LOADED


@pytest.mark.parametrize(
    ("torch", "triton", "fits"),
    [
        ("2.8.0+cu128", "3.4.0", True),
        ("2.8.0+cu128", "3.5.0", False),
        ("2.4.1+cu124", "3.0.0", True),
        ("2.14.0", "3.8.2", True),  # ~=3.8.0
        ("2.14.0", "3.9.0", False),
        ("2.99.0", "1.0.0", True),  # unknown torch: nothing is claimed
    ],
)
def test_linux_triton_pin(torch: str, triton: str, fits: bool) -> None:
    found = triton_problem(
        PAIRING, torch_version=torch, distribution="triton", installed=triton, os_name="linux"
    )
    assert (found is None) == fits


def test_triton_windows_pairs_by_the_triton_release_it_builds() -> None:
    ok = triton_problem(
        PAIRING,
        torch_version="2.6.0+cu126",
        distribution="triton-windows",
        installed="3.2.0.post19",
        os_name="windows",
    )
    assert ok is None
    bad = triton_problem(
        PAIRING,
        torch_version="2.6.0+cu126",
        distribution="triton-windows",
        installed="3.4.0.post20",
        os_name="windows",
    )
    assert bad is not None
    assert bad[1] == "triton-windows>=3.2,<3.3"


def test_check_names_a_triton_that_torch_does_not_pin() -> None:
    env = make_env(packages=(("triton", "3.5.0"),))
    found = [f for f in diagnose(env, load_rules()).findings if f.id == "triton-torch-mismatch"]
    assert len(found) == 1
    assert found[0].fix is not None
    assert 'triton==3.4.0"' in found[0].fix
    fine = dataclasses.replace(env, packages=(PackageFacts(name="triton", version="3.4.0"),))
    assert not [f for f in diagnose(fine, load_rules()).findings if f.id.startswith("triton-")]
