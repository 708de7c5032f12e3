"""The download command's pure parts: target tags and dependency filtering from a snapshot."""

from __future__ import annotations

import pytest

from attn_doctor.errors import UsageError
from attn_doctor.facts import Environment, HostFacts, PackageFacts, PythonFacts, TorchFacts
from attn_doctor.install.download import (
    download_args,
    marker_environment,
    needed_requirements,
    platform_tags,
)


def _env(os_name: str = "linux", arch: str = "x86_64", libc: str | None = "glibc",
         libc_version: str | None = "2.28") -> Environment:  # fmt: skip
    return Environment(
        host=HostFacts(os=os_name, arch=arch, libc=libc, libc_version=libc_version),  # type: ignore[arg-type]
        python=PythonFacts(version="3.12.3", implementation="cpython", abi_tag="cp312"),
        torch=TorchFacts(version="2.8.0+cu128", build="cuda", cuda="12.8"),
        packages=(PackageFacts(name="einops", version="0.8.1"),),
    )


def test_linux_tags_from_glibc_down_to_manylinux2014_and_bare_linux() -> None:
    tags = platform_tags(_env())
    assert tags[0] == "manylinux_2_28_x86_64"
    assert tags[-3:] == ("manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64")
    assert len(tags) == 12 + 2


def test_other_platforms() -> None:
    assert platform_tags(_env("windows", "AMD64", None, None)) == ("win_amd64",)
    assert platform_tags(_env(libc="musl", libc_version="1.2"))[:2] == (
        "musllinux_1_2_x86_64",
        "musllinux_1_1_x86_64",
    )
    with pytest.raises(UsageError):
        platform_tags(_env("darwin", "arm64", None, None))
    with pytest.raises(UsageError, match="glibc"):
        platform_tags(_env(libc_version=None))


def test_download_args_carry_python_and_abi(tmp_path: object) -> None:
    from pathlib import Path

    args = download_args(_env(), Path("/dest"))
    assert args[:5] == ["download", "--no-deps", "--only-binary=:all:", "--dest", "/dest"]
    joined = " ".join(args)
    assert "--python-version 3.12 --implementation cp --abi cp312" in joined
    assert "--platform linux_x86_64" in joined


def test_needed_requirements_skip_torch_markers_and_what_the_target_has() -> None:
    markers = marker_environment(_env())
    fetch, skipped = needed_requirements(
        [
            "torch",
            "einops>=0.8",
            "ninja; platform_system == 'Windows'",
            "numpy>=1.26; python_version >= '3.12'",
            "triton==3.4.0",
        ],
        markers=markers,
        installed={"torch": "2.8.0+cu128", "einops": "0.8.1"},
    )
    assert fetch == ["numpy>=1.26"]
    assert skipped == [
        "torch: protected, the target keeps its own",
        "einops>=0.8: the target has einops 0.8.1",
        "triton==3.4.0: protected, the target keeps its own",
    ]
