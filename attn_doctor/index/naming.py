"""Wheel file names: upstream flash-attn's rules per tag (from data), and a name parser.

Two different names matter for a flash-attn release:

* the name ``setup.py`` at that tag *asks for* on a given machine (``setup_py_wheel_name``), and
* the names the release workflow *published* (``published_wheels``: one per matrix cell).

A machine gets a prebuilt wheel from ``pip install flash-attn`` only when the first is one of
the second. ``tests/test_index_naming.py`` replays upstream's own ``get_wheel_url`` (recorded by
``scripts/refresh_index.py``) against ``setup_py_wheel_name`` for every tag.
"""

from __future__ import annotations

import functools
import itertools

from packaging.version import Version

from attn_doctor.index.records import FlashAttnRelease, PublishedWheel


def torch_minor(version: str) -> str:
    """``2.8.0+cu128`` -> ``2.8``; ``2.6.0.dev20241010`` -> ``2.6``."""
    v = Version(version)
    return f"{v.major}.{v.minor}"


def python_minor(version: str) -> str:
    """``3.12.7`` -> ``3.12``."""
    major, minor, *_ = version.split(".")
    return f"{major}.{minor}"


def setup_py_platform(release: FlashAttnRelease, *, sys_platform: str, machine: str) -> str:
    """``get_platform()`` at this tag."""
    if sys_platform.startswith("linux"):
        return release.setup_linux_platform.format(machine=machine)
    if sys_platform == "win32":
        return "win_amd64"
    if sys_platform == "darwin":
        return "macosx_14.0_x86_64"
    raise ValueError(f"setup.py raises for platform {sys_platform!r}")


def setup_py_cuda_tag(release: FlashAttnRelease, torch_cuda: str) -> str:
    """The CUDA part setup.py puts in the name for a torch built with CUDA ``torch_cuda``."""
    major = str(Version(torch_cuda).major)
    table = dict(release.setup_cuda_tag)
    # setup.py treats every CUDA major it does not name like its last branch ("else").
    return table.get(major) or table[max(table, key=int)]


def setup_py_wheel_name(
    release: FlashAttnRelease,
    *,
    torch_version: str,
    torch_cuda: str,
    cxx11_abi: bool,
    python: str,
    sys_platform: str,
    machine: str,
) -> str:
    """The file name ``get_wheel_url()`` at ``release.tag`` asks for on the described machine."""
    cuda = setup_py_cuda_tag(release, torch_cuda)
    py = "cp" + python_minor(python).replace(".", "")
    plat = setup_py_platform(release, sys_platform=sys_platform, machine=machine)
    return (
        f"flash_attn-{release.version}+cu{cuda}torch{torch_minor(torch_version)}"
        f"cxx11abi{str(cxx11_abi).upper()}-{py}-{py}-{plat}.whl"
    )


def published_cuda_tag(release: FlashAttnRelease, build_cuda: str) -> str:
    """The CUDA part the publish workflow writes: ``12.2.2`` -> ``122`` or ``12``."""
    v = Version(build_cuda)
    if release.published_cuda_tag == "major":
        return str(v.major)
    return f"{v.major}{v.minor}"


@functools.cache  # releases are frozen facts; the resolver asks for the same ones repeatedly
def published_wheels(release: FlashAttnRelease) -> tuple[PublishedWheel, ...]:
    """Every wheel the release workflow built: the matrix product minus its excludes, minus
    the cells a confirmed release page lacks."""
    out: list[PublishedWheel] = []
    for py, torch, cuda, abi in itertools.product(
        release.python, release.torch, release.cuda, release.cxx11_abi
    ):
        if release.excluded(torch=torch, python=py, cuda=cuda):
            continue
        tag = published_cuda_tag(release, cuda)
        pytag = "cp" + py.replace(".", "")
        # CPython 3.7 builds carry the pymalloc ABI flag: its assets are cp37-cp37m (setup.py
        # asks for cp37-cp37, so Python 3.7 never gets one through setup.py).
        abitag = pytag + "m" if py == "3.7" else pytag
        name = (
            f"flash_attn-{release.version}+cu{tag}torch{torch_minor(torch)}"
            f"cxx11abi{str(abi).upper()}-{pytag}-{abitag}-{release.published_platform}.whl"
        )
        out.append(
            PublishedWheel(
                filename=name,
                version=release.version,
                torch_minor=torch_minor(torch),
                build_torch=torch,
                build_cuda=cuda,
                cuda_tag=tag,
                cxx11_abi=abi,
                python=py,
                platform_tag=release.published_platform,
            )
        )
    missing = set(release.missing_assets)
    return tuple(w for w in out if w.filename not in missing)


def parse_wheel_filename(filename: str) -> tuple[str, str, str, str, str]:
    """``name-version(-build)?-python-abi-platform.whl`` -> (name, version, python, abi, platform).

    Raises ``ValueError`` on anything that is not a wheel file name.
    """
    if not filename.endswith(".whl"):
        raise ValueError(f"not a wheel file name: {filename!r}")
    parts = filename[:-4].split("-")
    if len(parts) not in (5, 6):
        raise ValueError(f"not a wheel file name: {filename!r}")
    return parts[0], parts[1], parts[-3], parts[-2], parts[-1]
