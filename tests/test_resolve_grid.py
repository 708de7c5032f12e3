"""Plans over a grid of machines: every upstream wheel planned is one the release published and
the very file flash-attn's setup.py asks for; every xformers plan names a variant its CI built
and uploaded. Nothing is invented."""

from __future__ import annotations

import itertools

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from attn_doctor.index import load_index
from attn_doctor.index.naming import published_wheels, setup_py_wheel_name
from attn_doctor.resolve import plan_backend
from attn_doctor.resolve.xformers import same_cuda_major
from tests.index_envs import make_env

INDEX = load_index()
PYTHONS = ("3.8.18", "3.9.19", "3.10.14", "3.11.9", "3.12.7", "3.13.1")
TORCHES = (
    ("2.1.2", "11.8"), ("2.2.2", "12.1"), ("2.3.1", "12.1"), ("2.4.1", "12.4"),
    ("2.5.1", "11.8"), ("2.6.0", "12.4"), ("2.7.1", "12.8"), ("2.8.0", "12.9"),
    ("2.9.1", "13.0"), ("2.10.0", "12.6"),
)  # fmt: skip


@pytest.mark.parametrize(("torch", "cuda"), TORCHES, ids=[t for t, _ in TORCHES])
def test_flash_attn_plans_only_files_setup_py_asks_for_and_the_release_published(
    torch: str, cuda: str
) -> None:
    planned = 0
    for python, abi in itertools.product(PYTHONS, (True, False)):
        label = "cu" + cuda.replace(".", "")
        env = make_env(torch=f"{torch}+{label}", torch_cuda=cuda, abi=abi, python=python)
        plan = plan_backend(env, INDEX, "flash_attn_2", allow_sources={"upstream-release"})
        planned += len(plan.candidates)
        for cand in plan.candidates:
            release = next(r for r in INDEX.flash_attn if r.version == cand.version)
            published = {w.filename: w for w in published_wheels(release)}
            assert cand.filename in published, cand.filename
            asked = setup_py_wheel_name(
                release,
                torch_version=torch,
                torch_cuda=cuda,
                cxx11_abi=abi,
                python=python,
                sys_platform="linux",
                machine="x86_64",
            )
            assert cand.filename == asked
            wheel = published[asked]
            # ABI-FALSE names for torch >= 2.7 hold ABI-TRUE code: never planned for ABI FALSE.
            assert abi or not INDEX.pytorch_wheel_abi(wheel.torch_minor)
            assert cand.url is not None
            assert cand.url.endswith(asked.replace("+", "%2B"))
    # torch 2.9 and 2.10 have no upstream wheel; every other torch here has some.
    assert (planned > 0) == (Version(torch) < Version("2.9"))


@pytest.mark.parametrize(("torch", "cuda"), TORCHES, ids=[t for t, _ in TORCHES])
@pytest.mark.parametrize("os", ["linux", "windows"])
def test_xformers_plans_name_only_variants_the_ci_uploaded(torch: str, cuda: str, os: str) -> None:
    label = "cu" + cuda.replace(".", "")
    arch = "x86_64" if os == "linux" else "AMD64"
    planned = 0
    for python in PYTHONS:
        env = make_env(torch=f"{torch}+{label}", torch_cuda=cuda, python=python, os=os, arch=arch)
        candidates = plan_backend(env, INDEX, "xformers").candidates
        planned += len(candidates)
        for cand in candidates:
            assert cand.version is not None
            build = INDEX.xformers_build(cand.version)
            assert build is not None
            assert Requirement(build.requires_torch).specifier.contains(torch)
            if cand.source == "pytorch-index":
                assert cand.index_url == f"https://download.pytorch.org/whl/{label}"
                assert label in build.pytorch_variants(os)
            else:
                assert cand.source == "pypi"
                # the package index's one CUDA build, or one of the same CUDA major
                assert same_cuda_major(label, build.package_index_cuda) or (
                    build.package_index_cuda == label
                )
                assert os in build.package_index_platforms
                wheel = next(w for w in INDEX.xformers if w.filename == cand.filename)
                assert wheel.version == cand.version
    # xformers' CI stopped building Windows cu118 wheels at 0.0.28 (torch 2.4.1).
    assert (planned == 0) == ((torch, cuda, os) == ("2.5.1", "11.8", "windows"))


def test_every_torch_release_with_an_xformers_build_gets_it() -> None:
    """Each build torch of each release, on its package-index CUDA, plans a release pinned to it."""
    for build in INDEX.xformers_builds:
        if not build.package_index_platforms or "linux" not in build.package_index_platforms:
            continue
        cuda = build.package_index_cuda[2:-1] + "." + build.package_index_cuda[-1]
        python = "3.10.14"
        env = make_env(torch=f"{build.build_torch}+{build.package_index_cuda}", torch_cuda=cuda,
                       python=python)  # fmt: skip
        plan = plan_backend(env, INDEX, "xformers")
        assert plan.candidates, (build.version, [r.reason for r in plan.rejections])
        best = plan.candidates[0]
        assert best.version is not None
        chosen = INDEX.xformers_build(best.version)
        assert chosen is not None
        assert chosen.build_torch == build.build_torch or chosen.stable_abi_torch
        # a verified source first (verified_first), else the newest
        assert any(Version(c.version or "0") >= Version(build.version) for c in plan.candidates)
        if any(c.verified for c in plan.candidates):
            assert best.verified
