"""The framework data (records' [[backend.frameworks]], frameworks.toml) and the probes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from attn_doctor.backends import BACKENDS, parse_backend_records
from attn_doctor.datafiles import read_toml
from attn_doctor.errors import IndexDataError
from attn_doctor.framework_names import FRAMEWORK_NAMES
from attn_doctor.index.frameworks import load_frameworks, parse_frameworks
from attn_doctor.probe.comfyui import probe_comfyui
from attn_doctor.probe.env_vars import select_env_vars
from attn_doctor.probe.hub_cache import (
    cache_dir,
    parse_lockfile,
    parse_pyproject_dependencies,
    probe_hub_kernels,
)
from attn_doctor.probe.packages import is_watched


def test_every_framework_entry_names_a_known_framework_with_a_source() -> None:
    for record in BACKENDS.values():
        for entry in record.frameworks:
            assert entry.framework in FRAMEWORK_NAMES
            assert entry.source.strip()


def test_the_transformers_name_is_the_records_attn_implementation() -> None:
    entry = BACKENDS["flash_attn_2"].framework_entry("transformers")
    assert entry is not None
    assert entry.name == "flash_attention_2"


def test_names_hold_for_their_version_range() -> None:
    record = BACKENDS["flash_attn_3"]
    assert record.framework_entry("vllm", "0.34.0") is not None
    assert record.framework_entry("vllm", "0.10.0") is None  # before --attention-backend
    assert BACKENDS["xformers"].framework_entry("vllm", "0.34.0") is None  # removed there


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"framework": "pytorch"}, "is not one of"),
        ({"framework": "transformers"}, "attn_implementation"),
        ({"versions": "not a spec"}, "not a version specifier"),
        ({"extra": {"flash_attn_version": 3}}, "table of strings"),
        ({"colour": "red"}, "colour"),
    ],
    ids=["unknown-framework", "transformers", "bad-versions", "bad-extra", "unknown-key"],
)
def test_a_bad_framework_entry_is_refused_naming_it(
    change: dict[str, object], message: str
) -> None:
    doc = copy.deepcopy(read_toml("backends.toml"))
    entry = dict(doc["backend"][0]["frameworks"][0])
    entry.update(change)
    doc["backend"][0] = {**doc["backend"][0], "frameworks": [entry]}
    with pytest.raises(IndexDataError, match=message):
        parse_backend_records(doc)


def test_frameworks_file_loads_and_refuses_a_bad_minimum() -> None:
    data = load_frameworks()
    assert {f.name for f in data.frameworks} == set(FRAMEWORK_NAMES)
    sage = next(m for m in data.minimums if m.backend == "sageattention")
    assert sage.requirement == "sageattention>=2.1.1"
    doc = copy.deepcopy(read_toml("frameworks.toml"))
    doc["minimum"][0] = {**doc["minimum"][0], "backend": "flash_attention_9"}
    with pytest.raises(IndexDataError, match="not a known backend"):
        parse_frameworks(doc)


def test_the_framework_variables_are_recorded_and_secrets_are_not() -> None:
    recorded = dict(
        select_env_vars(
            {
                "VLLM_ATTENTION_BACKEND": "FLASHINFER",
                "VLLM_API_KEY": "secret",
                "SGLANG_ENABLE_TORCH_COMPILE": "1",
                "DIFFUSERS_ATTN_BACKEND": "sage",
                "DIFFUSERS_TRUST_REMOTE_KERNELS": "true",
                "USE_HUB_KERNELS": "NO",
                "LOCAL_KERNELS": "org/repo=/src",
                "KERNELS_CACHE": "/cache",
                "HF_HUB_OFFLINE": "1",
            }
        )
    )
    assert "VLLM_API_KEY" not in recorded
    assert recorded["VLLM_ATTENTION_BACKEND"] == "FLASHINFER"
    for name in ("SGLANG_ENABLE_TORCH_COMPILE", "USE_HUB_KERNELS", "LOCAL_KERNELS"):
        assert name in recorded


@pytest.mark.parametrize(
    "name",
    ["vllm", "sglang", "sglang-kernel", "diffusers", "flashinfer-python", "flashinfer-cubin",
     "flashinfer-jit-cache"],
)  # fmt: skip
def test_the_framework_distributions_are_watched(name: str) -> None:
    assert is_watched(name)


def _comfyui(folder: Path, version: str = "0.3.75") -> Path:
    (folder / "comfy").mkdir(parents=True)
    (folder / "comfy" / "cli_args.py").write_text("import argparse\n")
    (folder / "main.py").write_text("")
    (folder / "comfyui_version.py").write_text(f'__version__ = "{version}"\n')
    return folder


def test_comfyui_is_found_in_the_current_folder_or_by_option(tmp_path: Path) -> None:
    assert probe_comfyui(tmp_path) is None
    portable = tmp_path / "ComfyUI_windows_portable"
    _comfyui(portable / "ComfyUI")
    (portable / "python_embeded").mkdir()
    (portable / "python_embeded" / "python.exe").write_text("")
    found = probe_comfyui(portable)  # its ComfyUI/ subfolder
    assert found is not None
    assert found.found_by == "cwd"
    assert found.version == "0.3.75"
    assert found.python == str(portable / "python_embeded" / "python.exe")
    named = probe_comfyui(tmp_path, portable / "ComfyUI")
    assert named is not None
    assert named.found_by == "option"
    assert probe_comfyui(tmp_path, tmp_path) is None  # named, but not a ComfyUI folder


def _dist_info(site: Path, name: str, version: str) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text("pip\n")


def test_the_portable_builds_packages_are_read_from_its_dist_info(tmp_path: Path) -> None:
    portable = tmp_path / "ComfyUI_windows_portable"
    _comfyui(portable / "ComfyUI")
    embeded = portable / "python_embeded"
    embeded.mkdir()
    (embeded / "python.exe").write_text("")
    (embeded / "python312.dll").write_text("")
    (embeded / "python3.dll").write_text("")
    (embeded / "python312._pth").write_text(
        "python312.zip\n.\nLib/site-packages\n../ComfyUI\nextra\n# comment\nimport site\n"
    )
    site = embeded / "Lib" / "site-packages"
    _dist_info(site, "torch", "2.7.1+cu128")
    _dist_info(site, "xformers", "0.0.31.post1")
    _dist_info(site, "numpy", "2.2.6")  # not about attention: left out
    _dist_info(embeded / "extra", "flash-attn", "2.8.3")  # a folder the ._pth lists
    found = probe_comfyui(portable)
    assert found is not None
    assert found.python_version == "3.12"
    assert found.packages is not None
    have = {p.name: p.version for p in found.packages}
    assert have == {"torch": "2.7.1+cu128", "xformers": "0.0.31.post1", "flash-attn": "2.8.3"}
    assert next(p for p in found.packages if p.name == "torch").installer == "pip"


def test_a_portable_build_without_site_packages_has_no_package_facts(tmp_path: Path) -> None:
    portable = tmp_path / "ComfyUI_windows_portable"
    _comfyui(portable / "ComfyUI")
    (portable / "python_embeded").mkdir()
    (portable / "python_embeded" / "python.exe").write_text("")
    found = probe_comfyui(portable)
    assert found is not None
    assert found.packages is None
    assert found.python_version is None
    plain = probe_comfyui(_comfyui(tmp_path / "plain"))  # not the portable build
    assert plain is not None
    assert plain.python is None
    assert plain.packages is None


LOCK = [
    {
        "dependency": {"repo-id": "kernels-community/activation", "version": 1},
        "lock": {"commit": "0123456789abcdef0123456789abcdef01234567"},
    }
]


def test_lockfile_and_pyproject_dependencies_are_read() -> None:
    locked = parse_lockfile(json.dumps(LOCK))
    assert locked is not None
    assert locked[0].repo == "kernels-community/activation"
    assert locked[0].version == "1"
    assert parse_lockfile("{}") is None
    deps = parse_pyproject_dependencies(
        '[tool.kernels.dependencies]\n"kernels-community/flash-attn2" = 4\n'
    )
    assert deps is not None
    assert deps[0].version == "4"


def test_cache_dir_follows_kernels_then_huggingface(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert cache_dir({}, home) == home / ".cache" / "huggingface" / "hub"
    assert cache_dir({"HF_HOME": "/hf"}, home) == Path("/hf/hub")
    assert cache_dir({"HF_HUB_CACHE": "/c", "HF_HOME": "/hf"}, home) == Path("/c")
    assert cache_dir({"KERNELS_CACHE": "/k", "HF_HUB_CACHE": "/c"}, home) == Path("/k")


def test_the_cache_is_scanned_for_versions_and_variants(tmp_path: Path) -> None:
    repo = tmp_path / "cache" / "kernels--kernels-community--flash-attn2"
    commit = "a" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "v4").write_text(commit)
    (repo / "snapshots" / commit / "build" / "torch211-cxx11-cu130-x86_64-linux").mkdir(
        parents=True
    )
    (tmp_path / "kernels.lock").write_text(json.dumps(LOCK))
    facts, unknowns = probe_hub_kernels(
        tmp_path, {"KERNELS_CACHE": str(tmp_path / "cache")}, tmp_path
    )
    assert not unknowns
    assert facts is not None
    assert facts.locked[0].repo == "kernels-community/activation"
    cached = facts.cached[0]
    assert cached.repo == "kernels-community/flash-attn2"
    assert cached.versions == (("v4", commit),)
    assert cached.variants == ((commit, "torch211-cxx11-cu130-x86_64-linux"),)


@pytest.mark.parametrize(
    "text",
    ["", "[", "[[[[" * 10000, "null", '[{"dependency": 3}]', '[{"dependency": {"repo-id": 1}}]',
     "NaN", "\ufeff[]"],
    ids=["empty", "cut", "deep", "null", "bad-dependency", "bad-repo", "nan", "bom"],
)  # fmt: skip
def test_a_broken_lockfile_is_not_one(text: str) -> None:
    assert parse_lockfile(text) in (None, ())


@pytest.mark.parametrize(
    "text",
    ["tool = 1", "[tool]\nkernels = 'x'", "[tool.kernels]\ndependencies = []", "= broken"],
)
def test_a_pyproject_without_kernel_dependencies_has_none(text: str) -> None:
    assert parse_pyproject_dependencies(text) is None
