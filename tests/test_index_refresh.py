"""The offline parts of scripts/refresh_index.py: TOML writing, naming replay, arch parsing."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "refresh_index.py"


@pytest.fixture(scope="module")
def refresh() -> ModuleType:
    spec = importlib.util.spec_from_file_location("refresh_index", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["refresh_index"] = module
    spec.loader.exec_module(module)
    return module


# A setup.py written for this test in the shape upstream's has (not upstream's code).
FAKE_SETUP = """
import os
BASE_WHEEL_URL = "https://example.invalid/{tag_name}/{wheel_name}"

def get_platform():
    if sys.platform.startswith("linux"):
        return f"linux_{platform.uname().machine}"
    return "win_amd64"

def get_wheel_url():
    v = parse(torch.version.cuda)
    cuda = "118" if v.major == 11 else "124"
    py = f"cp{sys.version_info.major}{sys.version_info.minor}"
    abi = str(torch._C._GLIBCXX_USE_CXX11_ABI).upper()
    tv = parse(torch.__version__)
    local = f"cu{cuda}torch{tv.major}.{tv.minor}cxx11abi{abi}"
    name = f"{PACKAGE_NAME}-{get_package_version()}+{local}-{py}-{py}-{get_platform()}.whl"
    return BASE_WHEEL_URL.format(tag_name="v1", wheel_name=name), name

cc_flag = []
if "80" in cuda_archs():
    cc_flag.append("arch=compute_80,code=sm_80")
if bare_metal_version >= Version("12.8") and "120" in cuda_archs():
    cc_flag.append("arch=compute_120,code=sm_120")
# cc_flag.append("arch=compute_75,code=sm_75")
os.getenv("FLASH_ATTN_CUDA_ARCHS", "80;120")
"""


def test_naming_is_observed_by_running_the_function(refresh: ModuleType) -> None:
    call = refresh.load_get_wheel_url(FAKE_SETUP)
    url, name = call(
        version="9.9.9",
        torch_version="2.8.0+cu128",
        torch_cuda="12.8",
        cxx11_abi=True,
        python="3.12",
        sys_platform="linux",
        machine="aarch64",
    )
    assert name == "flash_attn-9.9.9+cu124torch2.8cxx11abiTRUE-cp312-cp312-linux_aarch64.whl"
    assert url == f"https://example.invalid/v1/{name}"
    derived = refresh._derive_naming(call, "9.9.9")
    assert derived == {
        "setup_cuda_tag": {"11": "118", "12": "124", "13": "124"},
        "setup_linux_platform": "linux_{machine}",
    }


def test_archs_skip_comments_and_keep_nvcc_minimums(refresh: ModuleType) -> None:
    assert refresh._archs_at(FAKE_SETUP) == [{"sm": "80"}, {"sm": "120", "min_nvcc": "12.8"}]


def test_toml_writer_round_trips(refresh: ModuleType) -> None:
    text = refresh.to_toml(
        {"schema": 1, "name": "x"},
        [
            (
                "release",
                {"v": "1", "flags": [True, False], "ex": [{"torch": "2.1", "python": "3.8"}]},
            ),
            ("release", {"v": "2", "long": ["item-" + str(i) * 20 for i in range(10)]}),
        ],
    )
    data = tomllib.loads(text)
    assert data["schema"] == 1
    assert data["release"][0]["ex"] == [{"torch": "2.1", "python": "3.8"}]
    assert data["release"][1]["long"][9] == "item-" + "9" * 20
    assert text.startswith(refresh.HEADER)


def test_recorded_names_are_shared_between_tags(refresh: ModuleType) -> None:
    record = {
        "comment": "c",
        "tags": {
            "v1": {"version": "1", "names": {"k": "a-{version}"}},
            "v2": {"version": "2", "names": {"k": "a-{version}"}},
            "v3": {"version": "3", "names": {"k": "b-{version}"}},
        },
    }
    out = refresh._dedupe_names(record)
    assert out["tags"]["v1"]["names"] == out["tags"]["v2"]["names"] == "v0"
    assert out["variants"] == {"v0": {"k": "a-{version}"}, "v1": {"k": "b-{version}"}}


def test_grid_keys_round_trip_with_the_naming_test(refresh: ModuleType) -> None:
    from tests.test_index_naming import _point

    for point in refresh.naming_grid()[:50]:
        assert _point(refresh.grid_key(point)) == point


def test_script_and_package_agree_on_published_names(refresh: ModuleType) -> None:
    from attn_doctor.index import load_index
    from attn_doctor.index.naming import published_wheels

    raw = tomllib.loads((REPO / "wheels_index" / "flash_attn.toml").read_text(encoding="utf-8"))
    by_tag = {r.tag: r for r in load_index().flash_attn}
    for table in raw["release"]:
        expected = sorted(w.filename for w in published_wheels(by_tag[table["tag"]]))
        assert sorted(refresh._matrix_names(table)) == expected, table["tag"]


def test_missing_assets_are_the_matrix_names_not_uploaded(refresh: ModuleType) -> None:
    assert refresh.missing_assets(["a.whl", "b.whl", "c.whl"], ["b.whl", "x.whl"]) == [
        "a.whl",
        "c.whl",
    ]


BUILD_IMAGES = REPO / "tests" / "data" / "flash_attn_build_images.json"


def test_build_image_is_read_from_the_workflow_excerpt(refresh: ModuleType) -> None:
    text = (
        "jobs:\n  setup_release:\n    runs-on: ubuntu-latest\n"
        "  build_wheels:\n    name: Build\n    runs-on: ${{ matrix.os }}\n"
        "    strategy:\n      matrix:\n"
        "          # Using ubuntu-20.04 instead of 22.04 for more compatibility (glibc).\n"
        "          os: [ubuntu-22.04]  # a comment\n"
        "  publish_package:\n    runs-on: ubuntu-latest\n"
    )
    excerpt = refresh.workflow_excerpt(text)
    assert "ubuntu-latest" not in excerpt  # other jobs' runners are not the build image
    assert refresh.build_image(excerpt) == {"runner": ["ubuntu-22.04"], "container": None}
    plain = refresh.build_image("  build_wheels:\n    runs-on: ubuntu-20.04\n")
    assert plain["runner"] == ["ubuntu-20.04"]
    boxed = (
        "  build_wheels:\n    runs-on: ubuntu-22.04\n"
        "    container:\n      image: quay.io/pypa/manylinux_2_28_x86_64\n"
    )
    assert refresh.build_image(boxed)["container"] == "quay.io/pypa/manylinux_2_28_x86_64"
    with pytest.raises(ValueError, match="no glibc fact"):
        refresh.release_build("v9", "9", "2025-01-01", boxed)


def test_build_runners_replay_every_tag(refresh: ModuleType) -> None:
    """Each release's build image, glibc and built flag, replayed from the recorded lines of
    publish.yml at its tag, are what wheels_index/build_runners.toml says."""
    import json

    from attn_doctor.index import load_index

    recorded = json.loads(BUILD_IMAGES.read_text(encoding="utf-8"))["tags"]
    index = load_index()
    assert {b.tag for b in index.release_builds} == set(recorded)
    assert {r.tag for r in index.flash_attn} <= set(recorded)  # every release names its image
    for tag, rec in recorded.items():
        build = next(b for b in index.release_builds if b.tag == tag)
        replay = refresh.release_build(tag, build.version, rec["date"], rec["excerpt"])
        assert (list(build.image), build.glibc, build.built) == (
            replay["image"],
            replay["glibc"],
            replay["built"],
        ), tag
        assert build.verified
        release = next((r for r in index.flash_attn if r.tag == tag), None)
        assert release is None or release.runner == build.image, tag  # flash_attn.toml agrees
        assert f"@{tag}: .github/workflows/publish.yml" in build.source
    # What the workflows say: ubuntu-20.04 up to v2.8.0, ubuntu-22.04 from v2.8.0.post1 on;
    # v2.8.0 asked for ubuntu-20.04 after GitHub had retired it, and was rebuilt as .post1.
    by_tag = {b.tag: b for b in index.release_builds}
    assert by_tag["v2.7.4.post1"].glibc == "2.31"
    assert by_tag["v2.7.4.post1"].built
    assert by_tag["v2.8.0"].image == ("ubuntu-20.04",)
    assert not by_tag["v2.8.0"].built
    assert by_tag["v2.8.0.post1"].glibc == "2.35"
    runners = {r.name: r for r in index.runners}
    assert runners["ubuntu-20.04"].retired == "2025-04-15"
    assert "actions/runner-images#11101" in runners["ubuntu-20.04"].retired_source


def test_build_runners_toml_is_what_the_script_writes(refresh: ModuleType) -> None:
    """The script regenerates build_runners.toml byte for byte from the recorded excerpts."""
    import json

    recorded = json.loads(BUILD_IMAGES.read_text(encoding="utf-8"))["tags"]
    index_text = (REPO / "wheels_index" / "build_runners.toml").read_text(encoding="utf-8")
    versions = dict(re.findall(r'version = "([^"]+)"\ntag = "([^"]+)"', index_text))
    tables = [("runner", {"name": n, **f}) for n, f in refresh.BUILD_IMAGES.items()]
    tags = {t: v for v, t in versions.items()}
    tables += [
        ("release", refresh.release_build(tag, tags[tag], rec["date"], rec["excerpt"]))
        for tag, rec in recorded.items()
    ]
    assert refresh.to_toml({"schema": 1}, tables) == index_text
