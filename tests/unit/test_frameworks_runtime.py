"""Hub-kernel readiness offline, and the diffusers helper with the real diffusers on CPU."""

from __future__ import annotations

import dataclasses

import pytest

from attn_doctor.diagnose import diagnose
from attn_doctor.diagnose.hub_ready import parse_variant, variant_fits
from attn_doctor.facts import (
    CachedKernel,
    Environment,
    HubKernelFacts,
    LockedKernel,
    PackageFacts,
)
from attn_doctor.rules_data import load_rules
from tests.conftest import SNAPSHOTS

COMMIT = "b" * 40


def h200(**changes: object) -> Environment:
    env = Environment.from_json((SNAPSHOTS / "h200-real.json").read_text())
    return dataclasses.replace(env, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("variant", "fits"),
    [
        ("torch211-cxx11-cu130-x86_64-linux", True),
        ("torch-2.11-cxx11-cuda-13.0-cpython-3.9-abi3-x86_64-linux", True),
        ("torch-stable-abi210-cu130-x86_64-linux", True),
        ("torch-stable-abi-2.12-cuda-13.0-cpython-3.9-abi3-x86_64-linux", False),
        ("torch210-cxx11-cu130-x86_64-linux", False),
        ("torch211-cxx11-cu128-x86_64-linux", False),
        ("torch211-cxx11-cu130-aarch64-linux", False),
        ("torch-universal", True),
    ],
)
def test_variant_matching_for_the_h200(variant: str, fits: bool) -> None:
    env = h200()  # torch 2.11.0+cu130, C++11 ABI, x86_64 Linux
    parsed = parse_variant(variant)
    assert parsed is not None
    assert variant_fits(parsed, env) is fits


def _hub(variant: str, *, ref: str = "v4") -> HubKernelFacts:
    return HubKernelFacts(
        cache_dir="/cache",
        lockfile="/project/kernels.lock",
        locked=(LockedKernel(repo="kernels-community/flash-attn2", version="4"),),
        cached=(
            CachedKernel(
                repo="kernels-community/flash-attn2",
                versions=((ref, COMMIT),),
                variants=((COMMIT, variant),),
            ),
        ),
    )


@pytest.mark.parametrize(
    ("hub", "expect", "words"),
    [
        (_hub("torch211-cxx11-cu130-x86_64-linux"), "hub-kernel-ready", "in the cache"),
        (_hub("torch28-cxx11-cu128-x86_64-linux"), "hub-kernel-not-ready", "needs torch-2.11"),
        (_hub("torch211-cxx11-cu130-x86_64-linux", ref="v3"), "hub-kernel-not-ready", "no v4"),
    ],
    ids=["ready", "wrong-variant", "wrong-version"],
)
def test_locked_kernel_readiness(hub: HubKernelFacts, expect: str, words: str) -> None:
    env = h200(hub_kernels=hub, env_vars=(("HF_HUB_OFFLINE", "1"),))
    found = [f for f in diagnose(env, load_rules()).findings if f.id.startswith("hub-kernel")]
    locked = next(f for f in found if "locked" in f.title)
    assert locked.id == expect
    assert words in locked.title + locked.cause
    if expect != "hub-kernel-ready":
        assert locked.severity == "error"  # offline: load_kernel() never downloads


def test_offline_transformers_and_diffusers_kernels_name_their_trust_switch() -> None:
    env = h200(
        packages=(
            PackageFacts(name="diffusers", version="0.42.1"),
            PackageFacts(name="transformers", version="5.25.0"),
            PackageFacts(name="kernels", version="0.19.1"),
        ),
        env_vars=(("DIFFUSERS_ATTN_BACKEND", "sage_hub"), ("HF_HUB_OFFLINE", "1")),
    )
    found = [f for f in diagnose(env, load_rules()).findings if f.id.startswith("hub-kernel")]
    sage = next(f for f in found if "sage_hub" in f.title)
    assert "DIFFUSERS_TRUST_REMOTE_KERNELS=true" in sage.cause
    assert sage.severity == "warning"  # chosen by DIFFUSERS_ATTN_BACKEND, and offline
    assert any(
        "flash_attention_2 fetches kernels-community/flash-attn2 v4" in f.title for f in found
    )
    assert any("flash_hub fetches kernels-community/flash-attn2 v3" in f.title for f in found)


@pytest.mark.slow
def test_diffusers_helper_name_runs_a_tiny_model_on_cpu() -> None:
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    from attn_doctor.loadtime import diffusers_backend

    torch.manual_seed(0)
    model = diffusers.FluxTransformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    name = diffusers_backend(model, device="cpu")
    assert name == "native"  # torch SDPA: what the decision runs on a CPU
    model.set_attention_backend(name)
    with torch.no_grad():
        out = model(
            hidden_states=torch.randn(1, 16, 4),
            encoder_hidden_states=torch.randn(1, 8, 32),
            pooled_projections=torch.randn(1, 32),
            timestep=torch.tensor([1.0]),
            img_ids=torch.zeros(16, 3),
            txt_ids=torch.zeros(8, 3),
        ).sample
    assert out.shape == (1, 16, 4)
    assert torch.isfinite(out).all()


def test_diffusers_helper_refuses_a_package_below_diffusers_minimum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from attn_doctor.loadtime import frameworks

    versions = {"sageattention": "1.0.6", "flash-attn": "2.8.3"}
    monkeypatch.setattr(frameworks, "_installed", versions.get)
    assert frameworks._usable_in_diffusers("sageattention", "0.42.1") is None
    assert frameworks._usable_in_diffusers("flash_attn_2", "0.42.1") == "flash"
    assert frameworks._usable_in_diffusers("sdpa_cudnn", "0.42.1") == "_native_cudnn"
    assert frameworks._usable_in_diffusers("eager", "0.42.1") is None


def test_offline_without_kernels_installed_says_nothing_about_hub_kernels() -> None:
    env = h200(
        packages=(PackageFacts(name="diffusers", version="0.42.1"),),
        env_vars=(("HF_HUB_OFFLINE", "1"),),
    )
    assert not any(f.id.startswith("hub-kernel") for f in diagnose(env, load_rules()).findings)
