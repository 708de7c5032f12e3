"""Build small, real wheels (zip files with METADATA, WHEEL and RECORD) for integration tests.

Written by hand rather than with a build backend: a wheel is a zip archive (PEP 427), and
writing it directly takes milliseconds, so the whole wheelhouse is built once per session.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path


def _hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def build_wheel(
    dest: Path,
    name: str,
    version: str,
    files: Mapping[str, str],
    *,
    requires: Sequence[str] = (),
    tag: str = "py3-none-any",
) -> Path:
    """Write ``{name}-{version}-{tag}.whl`` into ``dest`` and return its path."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    metadata = "\n".join(
        [
            "Metadata-Version: 2.1",
            f"Name: {name}",
            f"Version: {version}",
            "Summary: attn-doctor integration-test stand-in",
            *(f"Requires-Dist: {r}" for r in requires),
        ]
    )
    wheel = "\n".join(
        [
            "Wheel-Version: 1.0",
            "Generator: attn-doctor-tests",
            "Root-Is-Purelib: true",
            f"Tag: {tag}",
        ]
    )
    entries: dict[str, bytes] = {path: text.encode() for path, text in files.items()}
    entries[f"{info}/METADATA"] = (metadata + "\n").encode()
    entries[f"{info}/WHEEL"] = (wheel + "\n").encode()
    record = "".join(f"{p},{_hash(d)},{len(d)}\n" for p, d in entries.items())
    record += f"{info}/RECORD,,\n"
    entries[f"{info}/RECORD"] = record.encode()
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p, d in entries.items():
            zf.writestr(p, d)
    return path


def build_fake_ecosystem(wheelhouse: Path, preinstall: Path) -> None:
    """Stand-ins named like the real packages, with real versions and requirements.

    ``wheelhouse``: what ``--find-links`` offers. ``preinstall``: what the test venv starts
    with but the wheelhouse does not offer (einops 0.7.0), so only a backup can restore it.
    """
    for ver, triton in (("2.8.0+cu128", "3.4.0"), ("2.9.0+cu128", "3.5.0")):
        build_wheel(
            wheelhouse,
            "torch",
            ver,
            {"torch/__init__.py": f'__version__ = "{ver}"\n'},
            requires=[f"triton=={triton}; platform_system == 'Linux'"],
        )
    # A CPU build with the same public version as the installed CUDA one: only the full
    # local-label pin keeps pip from treating it as interchangeable.
    build_wheel(
        wheelhouse, "torch", "2.8.0+cpu", {"torch/__init__.py": '__version__ = "2.8.0+cpu"\n'}
    )
    for ver in ("3.4.0", "3.5.0"):
        build_wheel(wheelhouse, "triton", ver, {"triton/__init__.py": f'__version__ = "{ver}"\n'})
    build_wheel(wheelhouse, "einops", "0.8.1", {"einops/__init__.py": '__version__ = "0.8.1"\n'})
    build_wheel(preinstall, "einops", "0.7.0", {"einops/__init__.py": '__version__ = "0.7.0"\n'})
    build_wheel(
        wheelhouse,
        "flash-attn",
        "2.8.3",
        {"flash_attn/__init__.py": 'import torch\nimport einops\n__version__ = "2.8.3"\n'},
        requires=["torch", "einops>=0.8"],
    )
    # Built against another torch: the import fails the way real mismatched builds fail.
    build_wheel(
        wheelhouse,
        "flash-attn",
        "2.7.4.post1",
        {
            "flash_attn/__init__.py": (
                "import torch\n"
                "raise ImportError('flash_attn_2_cuda.cpython-311-x86_64-linux-gnu.so: "
                "undefined symbol: _ZN3c105ErrorC2ENS_14SourceLocationESs')\n"
            )
        },
        requires=["torch", "einops>=0.8"],
    )
    # Its import takes long enough for a test to kill attn-doctor during the check.
    build_wheel(
        wheelhouse,
        "flash-attn",
        "2.6.3",
        {"flash_attn/__init__.py": "import time\ntime.sleep(120)\n"},
        requires=["torch", "einops>=0.8"],
    )
    for ver, torch_pin in (("0.0.32.post2", "2.8.0"), ("0.0.33", "2.9.0")):
        build_wheel(
            wheelhouse,
            "xformers",
            ver,
            {
                "xformers/__init__.py": f'__version__ = "{ver}"\n',
                "xformers/ops.py": "import torch\n",
            },
            requires=[f"torch=={torch_pin}", "numpy; python_version < '3'"],
        )


# An in-tree PEP 517 backend (standard library only) that "compiles" flash-attn: it records
# the build environment it saw in the module it installs, so a test can check MAX_JOBS and
# the arch list reached the build.
_BACKEND = r"""
import base64, hashlib, json, os, zipfile

NAME, VERSION = "flash_attn", "2.8.3"


def _h(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    seen = {k: os.environ.get(k) for k in ("MAX_JOBS", "NVCC_THREADS", "FLASH_ATTN_CUDA_ARCHS",
                                           "FLASH_ATTENTION_FORCE_BUILD")}
    info = f"{NAME}-{VERSION}.dist-info"
    files = {
        "flash_attn/__init__.py": (
            "import torch, einops\nBUILD_ENV = %s\n" % json.dumps(seen)
        ).encode(),
        f"{info}/METADATA": b"Metadata-Version: 2.1\nName: flash-attn\nVersion: 2.8.3\n"
                            b"Requires-Dist: torch\nRequires-Dist: einops>=0.8\n",
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: fake\nRoot-Is-Purelib: true\n"
                         b"Tag: py3-none-any\n",
    }
    record = "".join(f"{p},{_h(d)},{len(d)}\n" for p, d in files.items()) + f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for p, d in files.items():
            zf.writestr(p, d)
    print("building flash-attn 2.8.3 with", seen)
    return name
"""


def build_fake_sdist(dest: Path) -> Path:
    """``flash_attn-2.8.3.tar.gz``: an sdist whose backend records the build environment."""
    import io
    import tarfile

    root = "flash_attn-2.8.3"
    members = {
        f"{root}/pyproject.toml": (
            '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
            '\n[project]\nname = "flash-attn"\nversion = "2.8.3"\n'
        ),
        f"{root}/backend.py": _BACKEND,
        f"{root}/PKG-INFO": "Metadata-Version: 2.1\nName: flash-attn\nVersion: 2.8.3\n",
    }
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{root}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def build_build_requirements(wheelhouse: Path) -> None:
    """Stand-ins for what a --no-build-isolation build of flash-attn needs installed first."""
    for name, ver in (("ninja", "1.13.0"), ("psutil", "7.0.0"), ("wheel", "0.45.1"),
                      ("packaging", "25.0")):  # fmt: skip
        build_wheel(wheelhouse, name, ver, {f"{name}/__init__.py": f'__version__ = "{ver}"\n'})
