"""xformers' own CI rules, replayed per tag: the variant table, the torch pins, the platforms.

``tests/data/xformers_workflows.json`` holds what ``.github/workflows/wheels.yml`` and
``wheels_build.yml`` say at each tag from v0.0.23 (recorded by ``scripts/refresh_index.py``:
the build matrix as the tag push ran it, the upload filters, the torch pin step). These tests
replay the derivation and compare it with the shipped index and with each wheel's METADATA.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.version import Version

from attn_doctor.index import load_index

REPO = Path(__file__).resolve().parent.parent
RECORD = json.loads((REPO / "tests" / "data" / "xformers_workflows.json").read_text("utf-8"))
INDEX = load_index()


@pytest.fixture(scope="module")
def refresh() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "refresh_index", REPO / "scripts" / "refresh_index.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["refresh_index"] = module
    spec.loader.exec_module(module)
    return module


def _record(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "cells": [c.split(" ") for c in raw["cells"]]}


@pytest.mark.parametrize("raw", RECORD["tags"], ids=lambda r: r["tag"])
def test_variant_table_replays_the_workflow_at_each_tag(
    refresh: ModuleType, raw: dict[str, Any]
) -> None:
    derived = refresh.xformers_builds_from_record(_record(raw))
    build = INDEX.xformers_build(derived["version"])
    assert build is not None, raw["tag"]
    assert build.requires_torch == derived["requires_torch"]
    assert build.build_torch == derived["build_torch"]
    assert build.package_index_cuda == derived["package_index_cuda"]
    assert list(build.package_index_platforms) == derived["package_index_platforms"]
    assert [f"{o}:{v}" for o, v in build.pytorch_index] == derived["pytorch_index"]
    assert build.source.startswith(f"facebookresearch/xformers@{raw['tag']}:")


def test_every_release_from_0_0_23_is_covered() -> None:
    tags = [b.tag for b in INDEX.xformers_builds]
    assert tags[0] == "v0.0.23"
    assert tags == sorted(tags, key=lambda t: Version(t[1:]))
    assert len(tags) == len(RECORD["tags"])
    on_index = {w.version for w in INDEX.xformers}
    # Every release on the package index has its CI table (0.0.26 and 0.0.32 never reached it).
    assert on_index <= {b.version for b in INDEX.xformers_builds}
    assert {"0.0.26", "0.0.32"}.isdisjoint(on_index)


@pytest.mark.parametrize("build", INDEX.xformers_builds, ids=lambda b: b.tag)
def test_ci_pin_and_platforms_agree_with_the_package_index_metadata(build: Any) -> None:
    wheels = [w for w in INDEX.xformers if w.version == build.version]
    if not wheels:
        pytest.skip(f"{build.version} is not on the package index")
    for w in wheels:
        assert w.requires_torch.replace(" ", "") == build.requires_torch, w.filename
    # The package index holds exactly the platforms whose CI cell matched upload_pip's filter.
    observed = sorted({"windows" if w.platform_tag == "win_amd64" else "linux" for w in wheels})
    assert observed == list(build.package_index_platforms)
    linux = {w.platform_tag for w in wheels if w.platform_tag != "win_amd64"}
    assert linux == {build.linux_platform}


def test_known_gaps_from_the_workflows() -> None:
    post2 = INDEX.xformers_build("0.0.27.post2")
    assert post2 is not None
    assert "cu124" not in post2.pytorch_variants("linux")
    for version in ("0.0.28.post1", "0.0.29.post1", "0.0.30", "0.0.35"):
        build = INDEX.xformers_build(version)
        assert build is not None
        assert "cu118" not in build.pytorch_variants("windows"), version
    newest = INDEX.xformers_build("0.0.35")
    assert newest is not None
    assert (newest.package_index_cuda, newest.build_torch) == ("cu128", "2.10.0")
    assert newest.stable_abi_torch == "2.10"


def test_upload_and_matrix_readers_on_a_small_workflow(refresh: ModuleType) -> None:
    wheels = {
        "jobs": {
            "build": {
                "strategy": {
                    "matrix": {
                        "os": ["8-core-ubuntu", "windows-8-core"],
                        "python": ["3.10"],
                        "torch_version": ["2.1.1"],
                        "cuda_short_version": ["118", "121"],
                    }
                }
            },
            "upload_pip": {
                "uses": "./.github/workflows/wheels_upload_pip.yml",
                "with": {"filter": "*torch2.1.1+cu121*"},
            },
            "upload_pt": {
                "uses": "./.github/workflows/wheels_upload_s3.yml",
                "strategy": {"matrix": {"suffix": ["cu118"]}},
                "with": {"filter": "*torch2.1.1+${{ matrix.suffix }}*"},
            },
        }
    }
    cells = refresh._xf_matrix_cells(wheels)
    assert len(cells) == 4
    assert refresh._xf_uploads(wheels) == ("*torch2.1.1+cu121*", ["*torch2.1.1+cu118*"])
    record = {
        "tag": "v9.9.9",
        "cells": [
            [
                "linux" if "ubuntu" in c["os"] else "windows",
                c["python"],
                c["torch_version"],
                "cu" + c["cuda_short_version"],
            ]
            for c in cells
        ],
        "pip_filter": "*torch2.1.1+cu121*",
        "s3_filters": ["*torch2.1.1+cu118*"],
        "pins_build_torch": False,
        "requirements_torch": "torch >= 2.1",
        "linux_platform": "manylinux2014_x86_64",
        "python_tag": "cpXY-cpXY",
        "stable_abi_torch": "",
    }
    out = refresh.xformers_builds_from_record(record)
    assert out["requires_torch"] == "torch>=2.1"
    assert out["package_index_platforms"] == ["linux", "windows"]
    assert out["pytorch_index"] == ["linux:cu118", "windows:cu118"]
    with pytest.raises(ValueError, match="cannot read"):
        refresh.xformers_builds_from_record({**record, "pip_filter": "*"})


def test_package_index_variant_agrees_with_a_wheels_own_build_metadata() -> None:
    """``xformers/cpp_lib.json`` of the package-index 0.0.34 wheel (recorded by the probe tests)
    names the torch and CUDA its CI filter sent to the package index."""
    meta = json.loads(
        (REPO / "tests" / "data" / "probe" / "xformers_cpp_lib_0.0.34_cu128.json").read_text(
            "utf-8"
        )
    )
    build = INDEX.xformers_build(meta["env"]["XFORMERS_PACKAGE_FROM"].removeprefix("wheel-v"))
    assert build is not None
    torch, _, variant = meta["version"]["torch"].partition("+")
    assert (build.build_torch, build.package_index_cuda) == (torch, variant)
    cuda = meta["version"]["cuda"]  # 1208 -> 12.8
    assert variant == f"cu{cuda // 100}{cuda % 100}"
