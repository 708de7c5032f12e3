"""torch, read from its metadata and files without importing it.

- version, location and Requires-Dist from the ``torch`` distribution's metadata;
- ``cuda``, ``hip``, ``xpu``, ``git_version`` from ``torch/version.py``, parsed with ``ast``
  (never executed);
- the build kind from those fields, else from the version's local label (``+cu128``,
  ``+rocm6.3``, ``+cpu``, ``+xpu``);
- the C++11 ABI flag from ``torch/share/cmake/Torch/TorchConfig.cmake``
  (``-D_GLIBCXX_USE_CXX11_ABI=0|1``), and where that file no longer carries the flag (torch
  2.13's does not: only the CXX11 ABI is built any more), from the ``std::__cxx11`` symbol
  names in ``torch/lib/libc10.so``, which exist only in a CXX11-ABI build;
- cuDNN from the installed ``nvidia-cudnn-cu1x`` wheel.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path
from typing import Literal

from packaging.version import InvalidVersion, Version

from attn_doctor.facts import TorchBuild, TorchFacts, Unknown
from attn_doctor.probe.distributions import dist_file, dist_location, dist_requires
from attn_doctor.probe.runner import read_text, unknown

VERSION_PY_FIELDS = ("__version__", "cuda", "hip", "rocm", "xpu", "git_version", "debug")


def parse_version_py(text: str) -> dict[str, str | bool | None]:
    """Top-level constant assignments of ``torch/version.py`` (``cuda: Optional[str] = '12.8'``).

    Only literal values are taken; anything else (a function call) is ignored. Never executed.
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    result: dict[str, str | bool | None] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if not isinstance(target, ast.Name) or not isinstance(value, ast.Constant):
            continue
        if isinstance(value.value, str | bool) or value.value is None:
            result[target.id] = value.value
    return result


def local_label(version: str) -> str | None:
    """The local version label: ``cu128`` from ``2.8.0+cu128``."""
    try:
        return Version(version).local
    except InvalidVersion:
        _, plus, label = version.partition("+")
        return label if plus else None


BuildSource = Literal["version.py", "local label"]


def torch_build(
    version: str, fields: dict[str, str | bool | None]
) -> tuple[TorchBuild, BuildSource | None]:
    """CUDA / ROCm / XPU / CPU build, from ``version.py`` fields first, then the local label.

    With no accelerator field and no label (macOS wheels, the default Linux wheel on the
    package index before 2.x was CUDA) the build is ``cpu`` when version.py was read, else
    ``unknown``.
    """
    if isinstance(fields.get("hip"), str) and fields["hip"]:
        return "rocm", "version.py"
    if isinstance(fields.get("cuda"), str) and fields["cuda"]:
        return "cuda", "version.py"
    if isinstance(fields.get("xpu"), str) and fields["xpu"]:
        return "xpu", "version.py"
    label = (local_label(version) or "").lower()
    if label.startswith("cu"):
        return "cuda", "local label"
    if label.startswith("rocm"):
        return "rocm", "local label"
    if label.startswith("xpu"):
        return "xpu", "local label"
    if label.startswith("cpu"):
        return "cpu", "local label"
    if fields:
        return "cpu", "version.py"
    return "unknown", None


_CMAKE_ABI = re.compile(r"-D_GLIBCXX_USE_CXX11_ABI=([01])")


def parse_torchconfig_abi(text: str) -> bool | None:
    """The ``-D_GLIBCXX_USE_CXX11_ABI=0|1`` flag in an installed TorchConfig.cmake."""
    m = _CMAKE_ABI.search(text)
    return None if m is None else m.group(1) == "1"


CXX11_MARKERS = (b"St7__cxx11", b"B5cxx11")
"""Itanium-mangled names of the CXX11-ABI ``std::string`` (``NSt7__cxx1112basic_string…``)
and the ``[abi:cxx11]`` tag. An old-ABI build has neither."""


def scan_cxx11_symbols(path: Path, *, chunk: int = 1 << 20) -> bool | None:
    """True when the shared library contains CXX11-ABI symbol names, False when it has none,
    None when it cannot be read. libc10 (~1.5 MB) exports many ``std::string`` functions
    (``c10::Error``), so absence of the marker means the old ABI."""
    try:
        with path.open("rb") as fh:
            tail = b""
            while block := fh.read(chunk):
                data = tail + block
                if any(marker in data for marker in CXX11_MARKERS):
                    return True
                tail = data[-16:]
    except OSError:
        return None
    return False


def _cxx11_abi(torch_dir: Path | None) -> tuple[bool | None, str | None, str | None]:
    """(flag, source, reason if unknown)."""
    if not sys.platform.startswith("linux"):
        return None, None, "the C++11 ABI flag applies to libstdc++ builds on Linux only"
    if torch_dir is None:
        return None, None, "torch's package directory was not found"
    cmake = read_text(torch_dir / "share" / "cmake" / "Torch" / "TorchConfig.cmake")
    if cmake is not None:
        flag = parse_torchconfig_abi(cmake)
        if flag is not None:
            return flag, "TorchConfig.cmake", None
    lib = torch_dir / "lib" / "libc10.so"
    if lib.is_file():
        flag = scan_cxx11_symbols(lib)
        if flag is not None:
            return flag, "libc10 symbols", None
    return None, None, "neither TorchConfig.cmake nor torch/lib/libc10.so says"


def _cudnn_version(
    torch_requires: tuple[str, ...], dists: dict[str, importlib.metadata.Distribution]
) -> str | None:
    names = sorted(n for n in dists if n.startswith("nvidia-cudnn-cu"))
    required = [n for n in names if any(r.lower().startswith(n) for r in torch_requires)]
    for name in required or names:
        try:
            return dists[name].version
        except Exception:  # noqa: S112 - a broken dist-info is skipped
            continue
    return None


def probe_torch(
    dists: dict[str, importlib.metadata.Distribution],
) -> tuple[TorchFacts | None, list[Unknown]]:
    """TorchFacts from the installed distribution, or None when torch is not installed."""
    dist = dists.get("torch")
    if dist is None:
        return None, []
    unknowns: list[Unknown] = []
    version = dist.version
    version_py = dist_file(dist, "torch/version.py")
    fields: dict[str, str | bool | None] = {}
    if version_py is None:
        unknowns.append(unknown("torch.cuda", "torch/version.py is missing"))
    else:
        text = read_text(version_py)
        fields = parse_version_py(text) if text is not None else {}
        if not fields:
            unknowns.append(unknown("torch.cuda", f"{version_py} could not be parsed"))
    torch_dir = version_py.parent if version_py is not None else None
    build, build_source = torch_build(version, fields)
    if build == "unknown":
        unknowns.append(unknown("torch.build", "no version.py fields and no local label"))
    abi, abi_source, abi_reason = _cxx11_abi(torch_dir)
    if abi_reason is not None:
        unknowns.append(unknown("torch.cxx11_abi", abi_reason))
    requires = dist_requires(dist)

    def text_field(name: str) -> str | None:
        value = fields.get(name)
        return value if isinstance(value, str) and value else None

    facts = TorchFacts(
        version=version,
        build=build,
        build_source=build_source,
        cuda=text_field("cuda"),
        hip=text_field("hip"),
        cxx11_abi=abi,
        cxx11_abi_source=abi_source,
        git_version=text_field("git_version"),
        location=dist_location(dist),
        requires=requires,
        cudnn_version=_cudnn_version(requires, dists),
    )
    return facts, unknowns
