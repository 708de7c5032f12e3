"""The resolver over snapshot-like machines: one per source and one per "no" reason."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from attn_doctor.errors import ExitCode, NoWayToInstall
from attn_doctor.facts import Environment
from attn_doctor.index import load_index
from attn_doctor.index.naming import published_wheels
from attn_doctor.planner.plans import BackendPlan
from attn_doctor.resolve import ALL_SOURCES, plan_backend, plan_install
from tests.index_envs import make_env

INDEX = load_index()
INDEX_DIR = Path(__file__).resolve().parent.parent / "wheels_index"
NO_COMMUNITY = ALL_SOURCES - {"community"}


def replace_glibc(env: Environment, glibc: str) -> Environment:
    return dataclasses.replace(env, host=dataclasses.replace(env.host, libc_version=glibc))


def reasons(plan: BackendPlan) -> str:
    return "\n".join(r.reason for r in plan.rejections)


# ------------------------------------------------------------------------ flash-attn 2


def test_fa2_upstream_wheel_for_torch_2_8_cu128_h100() -> None:
    plan = plan_backend(make_env(), INDEX, "flash_attn_2")
    best = plan.candidates[0]
    assert best.source == "upstream-release"
    assert best.trust == "official"
    assert best.filename == (
        f"flash_attn-{best.version}+cu12torch2.8cxx11abiTRUE-cp312-cp312-linux_x86_64.whl"
    )
    assert best.url is not None
    assert best.url.startswith(
        f"https://github.com/Dao-AILab/flash-attention/releases/download/v{best.version}/"
    )
    assert "%2Bcu12torch2.8" in best.url
    assert best.requirement == f"flash-attn @ {best.url}"
    assert best.torch_requirement is None
    # Never a community build when upstream has one.
    assert all(c.source != "community" for c in plan.candidates)
    assert "upload not confirmed offline" in best.reason
    assert best.verified is False


def test_fa2_confirmed_missing_asset_is_never_offered(tmp_path: Path) -> None:
    directory = tmp_path / "wheels_index"
    shutil.copytree(Path(__file__).resolve().parent.parent / "wheels_index", directory)
    best = plan_backend(make_env(), INDEX, "flash_attn_2").candidates[0]
    path = directory / "flash_attn.toml"
    text = path.read_text(encoding="utf-8")
    anchor = f'tag = "v{best.version}"\n'
    text = text.replace(anchor, anchor + f'missing_assets = ["{best.filename}"]\n', 1)
    path.write_text(text, encoding="utf-8")
    edited = load_index(directory)
    again = plan_backend(make_env(), edited, "flash_attn_2").candidates[0]
    assert again.filename != best.filename
    assert again.source == "upstream-release"


def test_fa2_glibc_filters_releases_built_on_a_newer_image() -> None:
    plan = plan_backend(make_env(glibc="2.28"), INDEX, "flash_attn_2", allow_sources=NO_COMMUNITY)
    assert all(c.source != "upstream-release" for c in plan.candidates)
    assert "built on ubuntu-22.04 (glibc 2.35); this system has glibc 2.28" in reasons(plan)
    # glibc 2.31 (Ubuntu 20.04): the newest release built on ubuntu-20.04 that fits torch 2.5.
    env = make_env(torch="2.5.1+cu124", torch_cuda="12.4", abi=False, python="3.10.14")
    old = plan_backend(replace_glibc(env, "2.31"), INDEX, "flash_attn_2").candidates[0]
    new = plan_backend(env, INDEX, "flash_attn_2").candidates[0]
    assert old.version is not None
    assert new.version is not None
    assert Version(old.version) < Version(new.version)
    release = next(r for r in INDEX.flash_attn if r.version == old.version)
    assert release.runner == ("ubuntu-20.04",)


@pytest.mark.parametrize(
    ("torch", "cuda", "python"),
    [("2.4.0+cu121", "12.1", "3.10.14"), ("2.6.0+cu124", "12.4", "3.12.7")],
)
def test_fa2_glibc_2_31_gets_the_newest_release_its_glibc_loads(
    torch: str, cuda: str, python: str
) -> None:
    """A torch that both 2.7.4.post1 and 2.8.x publish wheels for, on glibc 2.31 (Ubuntu 20.04,
    Debian 11): the newest release whose build image's glibc <= 2.31 is chosen. Per the
    workflows at the tags that is 2.7.4.post1 (the user case): v2.8.0.post1 on were built on
    ubuntu-22.04 (glibc 2.35), and v2.8.0 asked for ubuntu-20.04 after GitHub retired it."""
    env = make_env(torch=torch, torch_cuda=cuda, abi=False, python=python)
    builds = {b.version: b for b in INDEX.release_builds}
    releases = {r.version: r for r in INDEX.flash_attn}
    tail = f"torch{torch[:3]}cxx11abiFALSE-cp{python[0]}{python[2:4]}-"

    def publishes(version: str) -> bool:
        return any(tail in w.filename for w in published_wheels(releases[version]))

    both = [v for v in ("2.7.4.post1", "2.8.0", "2.8.3") if publishes(v)]
    assert both == ["2.7.4.post1", "2.8.0", "2.8.3"]  # the combination is published by both
    plan = plan_backend(
        replace_glibc(env, "2.31"), INDEX, "flash_attn_2", allow_sources=NO_COMMUNITY
    )
    best = plan.candidates[0]
    assert best.source == "upstream-release"
    assert best.version is not None
    # The rule, replayed over the index: newest built release whose glibc <= 2.31.
    fits = [
        r.version
        for r in INDEX.flash_attn
        if builds[r.version].built
        and Version(builds[r.version].glibc) <= Version("2.31")
        and publishes(r.version)
    ]
    assert best.version == max(fits, key=Version) == "2.7.4.post1"
    text = reasons(plan)
    assert "flash-attn 2.8.0: no release wheels were built" in text
    assert "retired by GitHub on 2025-04-15" in text
    assert "built on ubuntu-22.04 (glibc 2.35); this system has glibc 2.31" in text
    # glibc 2.35 loads them all: the newest release.
    newest = plan_backend(env, INDEX, "flash_attn_2", allow_sources=NO_COMMUNITY).candidates[0]
    built = [v for v in releases if builds[v].built and publishes(v)]
    assert newest.version == max(built, key=Version) == "2.8.3.post1"


def test_fa2_release_whose_runner_was_retired_is_not_planned(tmp_path: Path) -> None:
    """v2.8.0's workflow asks for ubuntu-20.04, which GitHub retired before the tag: its wheels
    are never planned; marked built, the same machine would get it."""
    env = make_env(torch="2.6.0+cu124", torch_cuda="12.4", abi=False, python="3.11.9")
    pinned = plan_backend(
        env, INDEX, "flash_attn_2", allow_sources=NO_COMMUNITY, versions=SpecifierSet("==2.8.0")
    )
    assert all(c.source != "upstream-release" for c in pinned.candidates)
    directory = tmp_path / "index"
    shutil.copytree(INDEX_DIR, directory)
    path = directory / "build_runners.toml"
    text = path.read_text(encoding="utf-8")
    start = text.index('version = "2.8.0"\n')
    head, tail = text[:start], text[start:]
    tail = tail.replace("built = false", "built = true", 1)
    path.write_text(head + tail, encoding="utf-8")
    edited = load_index(directory)
    again = plan_backend(
        env, edited, "flash_attn_2", allow_sources=NO_COMMUNITY, versions=SpecifierSet("==2.8.0")
    )
    assert again.candidates[0].version == "2.8.0"
    assert again.candidates[0].source == "upstream-release"


def test_fa2_python_3_7_has_no_upstream_plan() -> None:
    release = INDEX.flash_attn[0]
    names = [w.filename for w in published_wheels(release) if w.python == "3.7"]
    assert names
    assert all("-cp37-cp37m-" in n for n in names)


def test_fa2_torch_2_7_abi_false_is_not_offered_the_misnamed_assets() -> None:
    env = make_env(torch="2.8.0+cu128", abi=False)
    plan = plan_backend(env, INDEX, "flash_attn_2", allow_sources=NO_COMMUNITY)
    assert all(c.source != "upstream-release" for c in plan.candidates)
    assert "is named cxx11abiFALSE but was built against PyTorch's torch" in reasons(plan)
    # Community builds use PyTorch's torch too: ABI TRUE only from 2.7.
    community = plan_backend(env, INDEX, "flash_attn_2")
    assert all(c.source != "community" for c in community.candidates)


def test_fa2_vendor_torch_gets_a_source_build() -> None:
    env = make_env(torch="2.2.0a0+6a974be", torch_cuda="12.3", nvcc="12.3")
    plan = plan_backend(env, INDEX, "flash_attn_2")
    assert [c.source for c in plan.candidates] == ["source-build"]
    assert "vendor build" in reasons(plan)


def test_fa2_abi_false_torch_gets_the_abi_false_wheel() -> None:
    env = make_env(torch="2.6.0+cu124", torch_cuda="12.4", abi=False, python="3.10.14")
    best = plan_backend(env, INDEX, "flash_attn_2").candidates[0]
    assert best.filename is not None
    assert "torch2.6cxx11abiFALSE-cp310-cp310" in best.filename


def test_fa2_cuda_11_torch_falls_back_to_the_last_release_with_cu11() -> None:
    env = make_env(torch="2.5.1+cu118", torch_cuda="11.8", abi=False, python="3.10.14")
    plan = plan_backend(env, INDEX, "flash_attn_2")
    assert plan.candidates[0].version == "2.7.3"
    assert plan.candidates[0].filename == (
        "flash_attn-2.7.3+cu11torch2.5cxx11abiFALSE-cp310-cp310-linux_x86_64.whl"
    )
    assert "built with CUDA 12.4.1 only" in reasons(plan)


def test_fa2_blackwell_needs_a_release_built_with_cuda_12_8_or_newer() -> None:
    env = make_env(
        torch="2.6.0+cu124", torch_cuda="12.4", abi=False, python="3.11.9", gpu="RTX5090"
    )
    plan = plan_backend(env, INDEX, "flash_attn_2")
    best = plan.candidates[0]
    assert (best.version or "").startswith("2.8")
    for cand in plan.candidates:
        if cand.source == "upstream-release":
            assert not (cand.version or "2.7").startswith("2.7")


def test_fa2_new_torch_no_upstream_offers_community_and_ways_out() -> None:
    env = make_env(torch="2.9.1+cu128", torch_cuda="12.8")
    plan = plan_backend(env, INDEX, "flash_attn_2")
    assert "no wheel for torch 2.9" in reasons(plan)
    community = [c for c in plan.candidates if c.source == "community"]
    assert community
    assert community[0].trust == "community"
    assert community[0].filename is not None
    assert "+cu128torch2.9-cp312-cp312-" in community[0].filename
    assert "not built or tested by flash-attn's authors" in community[0].reason
    ways = " ".join(plan.ways_out)
    assert "attn_implementation='kernels-community/flash-attn2'" in ways
    assert "transformers >= 5.0.0 also falls back to it by itself" in ways
    assert "torch 2.8 has an upstream flash-attn wheel" in ways


def test_fa2_community_forbidden_says_it_exists() -> None:
    env = make_env(torch="2.9.1+cu128", torch_cuda="12.8")
    plan = plan_backend(env, INDEX, "flash_attn_2", allow_sources=NO_COMMUNITY)
    assert all(c.source != "community" for c in plan.candidates)
    assert "A community build exists" in " ".join(plan.ways_out)


def test_fa2_torch_change_only_when_allowed() -> None:
    env = make_env(torch="2.9.1+cu128", torch_cuda="12.8")
    sources = ALL_SOURCES - {"community", "source-build"}
    plan = plan_backend(env, INDEX, "flash_attn_2", allow_sources=sources)
    assert all(c.torch_requirement is None for c in plan.candidates)
    changed = plan_backend(
        env, INDEX, "flash_attn_2", allow_sources=sources, allow_torch_change=True
    )
    cand = changed.candidates[0]
    assert cand.torch_requirement == "torch==2.8.0"
    assert "REPLACES torch 2.9.1+cu128" in cand.reason
    install = plan_install(
        env, INDEX, "flash_attn_2", allow_sources=sources, allow_torch_change=True
    )
    assert not any(line.startswith("torch==") for line in install.protected)
    assert "WILL BE REPLACED" in install.notes[0]


def test_fa2_turing_gpu_is_refused_with_ways_out() -> None:
    plan = plan_backend(make_env(gpu="T4"), INDEX, "flash_attn_2")
    assert not plan.candidates
    assert "needs compute capability >= 8.0; Tesla T4 is sm75 (7.5)" in reasons(plan)
    assert "sdpa" in " ".join(plan.ways_out)


def test_fa2_windows_has_no_upstream_wheel_but_a_community_one() -> None:
    env = make_env(os="windows", arch="x86_64", abi=None, torch="2.8.0+cu128")
    plan = plan_backend(env, INDEX, "flash_attn_2")
    assert "publish only linux_x86_64 wheels" in reasons(plan)
    assert plan.candidates[0].source == "community"
    assert plan.candidates[0].filename is not None
    assert plan.candidates[0].filename.endswith("win_amd64.whl")


def test_fa2_aarch64_never_gets_the_hard_coded_x86_64_name() -> None:
    env = make_env(
        arch="aarch64",
        gpu="GH200",
        torch="2.2.2+cu121",
        torch_cuda="12.1",
        abi=False,
        python="3.10.12",
    )
    plan = plan_backend(env, INDEX, "flash_attn_2", allow_sources=NO_COMMUNITY)
    assert all(c.source != "upstream-release" for c in plan.candidates)
    text = reasons(plan)
    assert "publish only linux_x86_64 wheels; this machine is linux-aarch64" in text


def test_fa2_free_threaded_python_is_refused() -> None:
    env = make_env(python="3.13.1", free_threaded=True)
    plan = plan_backend(env, INDEX, "flash_attn_2", allow_sources=ALL_SOURCES - {"source-build"})
    assert all(c.source != "upstream-release" for c in plan.candidates)


def test_fa2_unknown_abi_is_refused_not_guessed() -> None:
    plan = plan_backend(
        make_env(abi=None), INDEX, "flash_attn_2", allow_sources={"upstream-release"}
    )
    assert not plan.candidates
    assert "C++11 ABI flag is unknown" in reasons(plan)


def test_fa2_no_torch_and_cpu_torch() -> None:
    assert "torch is not installed" in reasons(
        plan_backend(make_env(torch=None), INDEX, "flash_attn_2")
    )
    cpu = make_env(torch="2.13.0+cpu", torch_cuda=None, build="cpu", gpu=None)
    assert "is a cpu build" in reasons(plan_backend(cpu, INDEX, "flash_attn_2"))


def test_fa2_source_build_sizes_jobs_from_ram_and_restricts_arch() -> None:
    env = make_env(torch="2.10.0+cu128", torch_cuda="12.8", nvcc="12.8", ram_gib=64, cpus=16)
    plan = plan_backend(env, INDEX, "flash_attn_2", allow_sources={"source-build"})
    build = plan.candidates[0]
    assert build.source == "source-build"
    env_vars = dict(build.build_env)
    assert env_vars["MAX_JOBS"] == "6"  # 64 GiB / (5 GiB x NVCC_THREADS=2), 16 CPUs // 2
    assert env_vars["NVCC_THREADS"] == "2"
    assert env_vars["FLASH_ATTN_CUDA_ARCHS"] == "90"
    assert build.estimated_minutes == 13.3  # 320 core-minutes * 1/4 archs / 6 jobs
    assert build.pip_args == ("--no-build-isolation",)
    small = make_env(
        torch="2.10.0+cu128", torch_cuda="12.8", nvcc="12.8", ram_gib=16, cpus=2, gpu="RTX4090"
    )
    build = plan_backend(small, INDEX, "flash_attn_2", allow_sources={"source-build"}).candidates[0]
    assert dict(build.build_env)["MAX_JOBS"] == "1"  # 2 CPUs // 2; 16 GiB / 10 GiB
    assert dict(build.build_env)["FLASH_ATTN_CUDA_ARCHS"] == "80"  # sm89 runs sm80 code


def test_fa2_source_build_refusals() -> None:
    no_nvcc = plan_backend(
        make_env(torch="2.10.0+cu128"), INDEX, "flash_attn_2", allow_sources={"source-build"}
    )
    assert "no nvcc" in reasons(no_nvcc)
    assert "install a CUDA 12.x toolkit" in " ".join(no_nvcc.ways_out)
    mismatch = plan_backend(
        make_env(torch="2.10.0+cu128", nvcc="13.0"),
        INDEX,
        "flash_attn_2",
        allow_sources={"source-build"},
    )
    assert "differ in major version" in reasons(mismatch)
    old = plan_backend(
        make_env(torch="2.10.0+cu128", nvcc="12.4", gpu="RTX5090"),
        INDEX,
        "flash_attn_2",
        allow_sources={"source-build"},
    )
    assert "Blackwell targets need nvcc >= 12.8" in reasons(old)


# ---------------------------------------------------------------------------- xformers


def test_xformers_pypi_wheel_matching_the_installed_torch() -> None:
    plan = plan_backend(make_env(), INDEX, "xformers")
    best = plan.candidates[0]
    assert (best.source, best.requirement) == ("pypi", "xformers==0.0.32.post2")
    assert "torch==2.8.0" in best.reason
    assert "against torch 2.8.0+cu128" in best.reason
    # Newer releases are rejected with their pin.
    assert "xformers 0.0.33.post2 requires torch==2.9.1" in reasons(plan)


def test_xformers_other_cuda_flavour_goes_to_the_pytorch_index() -> None:
    plan = plan_backend(make_env(torch="2.8.0+cu126", torch_cuda="12.6"), INDEX, "xformers")
    best = plan.candidates[0]
    assert best.source == "pytorch-index"
    assert best.index_url == "https://download.pytorch.org/whl/cu126"
    assert best.verified is False


def test_xformers_never_moves_torch_unless_allowed() -> None:
    env = make_env(torch="2.6.0+cu124", torch_cuda="12.4", python="3.13.1", abi=True)
    plan = plan_backend(env, INDEX, "xformers")
    assert not plan.candidates
    # The release built for torch 2.6 says why first: no Python 3.13 wheel.
    assert "this is Python 3.13" in plan.rejections[0].reason
    assert plan.rejections[0].what == "xformers 0.0.28.post2 … 0.0.30"


def test_xformers_torch_2_3_gets_the_release_pinned_to_it() -> None:
    env = make_env(torch="2.3.0+cu121", torch_cuda="12.1", abi=False, python="3.11.9")
    plan = plan_backend(env, INDEX, "xformers")
    assert plan.candidates[0].requirement == "xformers==0.0.26.post1"
    assert plan.candidates[0].source == "pypi"
    cu118 = plan_backend(
        make_env(torch="2.3.0+cu118", torch_cuda="11.8", abi=False, python="3.11.9"),
        INDEX,
        "xformers",
    )
    assert cu118.candidates[0].index_url == "https://download.pytorch.org/whl/cu118"


def test_xformers_torch_2_1_is_covered_back_to_0_0_23() -> None:
    env = make_env(torch="2.1.1+cu121", torch_cuda="12.1", abi=False, python="3.10.14")
    assert plan_backend(env, INDEX, "xformers").candidates[0].requirement == "xformers==0.0.23"


def test_xformers_same_cuda_major_build_is_offered_and_checked() -> None:
    # 0.0.27.post2 (torch 2.4.0) was built for cu118 and cu121 only; cu121 on the package
    # index has the same CUDA major as torch's cu124: offered, verified after install.
    env = make_env(torch="2.4.0+cu124", torch_cuda="12.4", abi=False, python="3.10.14")
    best = plan_backend(env, INDEX, "xformers").candidates[0]
    assert (best.source, best.requirement) == ("pypi", "xformers==0.0.27.post2")
    assert "built for cu121, torch is cu124: same CUDA major" in best.reason
    assert "rolled back" in best.reason


def test_xformers_other_cuda_major_is_refused_with_the_real_reason() -> None:
    # 0.0.27.post2 has no CUDA 11.x wheel other than cu118 on PyTorch's index.
    env = make_env(torch="2.4.0+cu117", torch_cuda="11.7", abi=False, python="3.10.14")
    plan = plan_backend(env, INDEX, "xformers")
    assert not [c for c in plan.candidates if c.version == "0.0.27.post2"]


def test_xformers_verified_source_wins_over_a_newer_unverified_one() -> None:
    env = make_env(torch="2.2.2+cu121", torch_cuda="12.1", abi=False, python="3.10.12")
    cands = plan_backend(env, INDEX, "xformers").candidates
    assert [(c.version, c.source, c.verified) for c in cands[:2]] == [
        ("0.0.25.post1", "pypi", True),
        ("0.0.26", "pytorch-index", False),
    ]


@pytest.mark.parametrize("backend", ["xformers", "flash_attn_2"])
def test_a_nightly_torch_is_a_pre_release_for_prebuilt_wheels(backend: str) -> None:
    env = make_env(torch="2.8.0.dev20250601+cu128", torch_cuda="12.8")
    plan = plan_backend(env, INDEX, backend)  # type: ignore[arg-type]
    assert not [c for c in plan.candidates if c.source != "source-build"]
    assert "nightly (.dev) build" in " ".join(r.reason for r in plan.rejections)


def test_xformers_windows_cu118_is_never_planned_from_0_0_28() -> None:
    env = make_env(
        torch="2.4.1+cu118", torch_cuda="11.8", os="windows", arch="AMD64", python="3.10.2"
    )
    plan = plan_backend(env, INDEX, "xformers")
    assert not plan.candidates
    assert "cu124 (PyTorch index) on windows" in reasons(plan)
    assert "xformers 0.0.28 published no windows wheel" in reasons(plan)


def test_xformers_package_index_wheel_is_built_for_its_own_cuda_not_torchs() -> None:
    # The H200 record: torch 2.11.0+cu130; the package index's 0.0.35 is a cu128 build.
    env = make_env(torch="2.11.0+cu130", torch_cuda="13.0")
    best = plan_backend(env, INDEX, "xformers").candidates[0]
    assert best.source == "pytorch-index"
    assert best.index_url == "https://download.pytorch.org/whl/cu130"
    pypi = plan_backend(make_env(torch="2.11.0+cu128", torch_cuda="12.8"), INDEX, "xformers")
    assert pypi.candidates[0].source == "pypi"
    assert "torch 2.10.0+cu128" in pypi.candidates[0].reason


def test_xformers_has_no_aarch64_wheel() -> None:
    plan = plan_backend(make_env(arch="aarch64", gpu="GH200"), INDEX, "xformers")
    assert not plan.candidates
    assert "this CPU is aarch64" in reasons(plan)


def test_xformers_operators_per_gpu_come_from_the_release_source() -> None:
    blackwell = plan_backend(
        make_env(gpu="RTX5090", torch="2.10.0+cu128"), INDEX, "xformers"
    ).candidates[0]
    assert "cutlassF-blackwell" in blackwell.reason
    assert "cutlassF-pt" not in blackwell.reason  # cutlass FwOp max is sm90 from 0.0.33 on
    kepler = plan_backend(make_env(gpu="K80"), INDEX, "xformers")
    assert not kepler.candidates
    assert "attention operator supports Tesla K80" in reasons(kepler)
    assert "{" not in reasons(kepler)  # no f-string placeholder in operator names


# ------------------------------------------------------------------ FA3, FA4, unsloth, hub


def test_fa3_hopper_gets_community_wheel_and_source_build() -> None:
    env = make_env(torch="2.8.0+cu128", nvcc="12.8")
    plan = plan_backend(env, INDEX, "flash_attn_3")
    sources = [c.source for c in plan.candidates]
    assert sources[0] == "community"
    assert "source-build" in sources
    assert plan.candidates[0].filename is not None
    assert plan.candidates[0].filename.startswith("flash_attn_3-")
    assert "upstream publishes no flash-attn 3 wheel" in reasons(plan)


def test_fa3_refused_on_ampere() -> None:
    plan = plan_backend(make_env(gpu="A100"), INDEX, "flash_attn_3")
    assert not plan.candidates
    assert "A100" in reasons(plan)


def test_fa4_from_the_package_index() -> None:
    plan = plan_backend(make_env(), INDEX, "flash_attn_4")
    best = plan.candidates[0]
    assert best.source == "pypi"
    assert best.requirement == f"flash-attn-4=={INDEX.flash_attn_4[-1].version}"
    cu13 = plan_backend(make_env(torch="2.13.0+cu130", torch_cuda="13.0"), INDEX, "flash_attn_4")
    assert cu13.candidates[0].requirement.startswith("flash-attn-4[cu13]==")


@pytest.mark.parametrize(
    ("env_kwargs", "reason"),
    [
        pytest.param({"gpu": "T4"}, "sm75", id="turing"),
        pytest.param({"os": "windows", "abi": None}, "Linux only", id="windows"),
        pytest.param({"python": "3.9.18"}, "needs Python >=3.10", id="python39"),
    ],
)
def test_fa4_refusals(env_kwargs: dict[str, object], reason: str) -> None:
    plan = plan_backend(make_env(**env_kwargs), INDEX, "flash_attn_4")  # type: ignore[arg-type]
    assert not plan.candidates
    assert reason in reasons(plan)


def test_unsloth_recipe_and_torch_bounds() -> None:
    plan = plan_backend(make_env(), INDEX, "unsloth")
    best = plan.candidates[0]
    assert best.requirement == f"unsloth[cu128-torch280]=={INDEX.unsloth.version}"
    assert "xformers==0.0.32.post2" in best.reason
    too_new = plan_backend(make_env(torch="2.15.0+cu130", torch_cuda="13.0"), INDEX, "unsloth")
    assert not too_new.candidates
    assert "requires torch<2.15.0,>=2.4.0" in reasons(too_new)


def test_hub_kernel_route() -> None:
    plan = plan_backend(make_env(gpu="A100"), INDEX, "hub_kernels")
    best = plan.candidates[0]
    assert best.attn_implementation == "kernels-community/flash-attn2"
    assert best.requirement.startswith("kernels>=")
    assert (
        "build/torch28-cu128-x86_64-linux or build/torch28-cxx11-cu128-x86_64-linux" in best.reason
    )
    forbidden = plan_backend(make_env(), INDEX, "hub_kernels", allow_sources={"pypi"})
    assert "not an allowed source" in reasons(forbidden)
    turing = plan_backend(make_env(gpu="T4"), INDEX, "hub_kernels")
    assert "sm75" in reasons(turing)


def test_builtin_backends_need_nothing() -> None:
    plan = plan_backend(make_env(), INDEX, "sdpa_flash")
    assert not plan.candidates
    assert plan.already_installed == "2.8.0+cu128"


# ------------------------------------------------------------------------- install plan


def test_install_plan_pins_torch_family_exactly() -> None:
    install = plan_install(make_env(), INDEX, "xformers")
    assert install.protected == ("torch==2.8.0+cu128", "torchvision==0.23.0+cu128", "triton==3.4.0")
    # Pasteable on the machine planned for: the pins inline, no file of ours named.
    assert install.commands == (
        "/venv/bin/python -m pip install --no-input --disable-pip-version-check "
        "xformers==0.0.32.post2 torch==2.8.0+cu128 torchvision==0.23.0+cu128 triton==3.4.0",
    )


def test_plan_commands_are_the_commands_the_installer_runs() -> None:
    """One builder: the plan's JSON commands equal what ``execute_install`` displays and runs."""
    from attn_doctor.install.execute import display_commands, install_args

    env = make_env(torch="2.8.0+cu126", torch_cuda="12.6")
    install = plan_install(env, INDEX, "xformers")
    assert install.candidate.index_url == "https://download.pytorch.org/whl/cu126"
    shown = display_commands(
        install, python="/venv/bin/python", installer="pip", index_args=(), pins=install.protected
    )
    assert install.commands == shown
    args = install_args(install, ())
    assert args[1:3] == ["--index-url", "https://download.pytorch.org/whl/cu126"]
    assert " ".join(args[1:]) in install.commands[-1]


def test_install_plan_source_build_command_carries_the_environment() -> None:
    env = make_env(torch="2.10.0+cu128", nvcc="12.8")
    install = plan_install(env, INDEX, "flash_attn_2", allow_sources={"source-build"})
    assert install.commands[0].startswith("MAX_JOBS=6 FLASH_ATTN_CUDA_ARCHS=90 ")
    assert "--no-build-isolation" in install.commands[0]


def test_install_plan_without_candidates_is_a_problem_found_with_ways_out() -> None:
    """No way to install here is a fact about the machine (exit 1), not bad input (exit 2)."""
    with pytest.raises(NoWayToInstall) as info:
        plan_install(make_env(gpu="T4"), INDEX, "flash_attn_2")
    assert info.value.exit_code == ExitCode.PROBLEMS
    assert "sm75" in info.value.message
    assert "sdpa" in (info.value.hint or "")


def test_resolver_is_deterministic() -> None:
    env = make_env(torch="2.9.1+cu128")
    assert plan_backend(env, INDEX, "flash_attn_2") == plan_backend(env, INDEX, "flash_attn_2")


def test_no_install_is_planned_for_a_backend_check_says_cannot_run_here() -> None:
    from attn_doctor.facts import Environment as Env

    env = Env.from_json((Path(__file__).parent / "snapshots" / "b200-linux.json").read_text())
    plan = plan_backend(env, INDEX, "sageattention")
    assert not plan.candidates
    assert plan.rejections[0].reason.startswith("check says it cannot run here")


def _rocm_env(**changes: str | None) -> Environment:
    env = Environment.from_json(
        (Path(__file__).parent / "snapshots" / "mi300-rocm.json").read_text()
    )
    toolkit = dataclasses.replace(env.cuda_toolkit, **changes)
    return dataclasses.replace(env, cuda_toolkit=toolkit)


def test_flash_attn_on_rocm_is_a_source_build_with_the_toolkit_torch_was_built_for() -> None:
    plan = plan_backend(_rocm_env(), INDEX, "flash_attn_2")
    (cand,) = plan.candidates
    assert cand.source == "source-build"
    assert ("GPU_ARCHS", "gfx942") in cand.build_env
    assert "needs a CUDA build" not in " ".join(r.reason for r in plan.rejections)


def test_flash_attn_on_rocm_refuses_another_rocm_toolkit() -> None:
    plan = plan_backend(_rocm_env(rocm_version="6.2.4"), INDEX, "flash_attn_2")
    assert not plan.candidates
    assert "point ROCM_HOME at a ROCm 6.4 toolkit" in plan.rejections[0].reason
    none = plan_backend(_rocm_env(rocm_version=None), INDEX, "flash_attn_2")
    assert "no ROCm toolkit" in none.rejections[0].reason
