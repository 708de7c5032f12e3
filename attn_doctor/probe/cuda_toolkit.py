"""The CUDA toolkit a source build would use: ``nvcc`` and ``CUDA_HOME``.

The lookup mirrors ``torch.utils.cpp_extension._find_cuda_home`` (which is what flash-attn's
and xformers' ``setup.py`` use): ``CUDA_HOME``, then ``CUDA_PATH``, then the directory above
the ``nvcc`` found on ``PATH``, then ``/usr/local/cuda``. The nvcc we report is
``<that home>/bin/nvcc`` when it exists, else the one on ``PATH``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from attn_doctor.facts import CudaToolkitFacts, Unknown
from attn_doctor.probe.runner import is_windows, run_tool, unknown, which

_NVCC = re.compile(r"release\s+(\d+\.\d+),\s*V(\d+\.\d+\.\d+)")


def parse_nvcc_version(output: str) -> tuple[str, str] | None:
    """(``13.0``, ``13.0.88``) from ``nvcc --version``'s
    ``Cuda compilation tools, release 13.0, V13.0.88``."""
    m = _NVCC.search(output)
    return (m.group(1), m.group(2)) if m else None


def find_cuda_home(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(CUDA home, nvcc path) the way torch's cpp_extension finds them."""
    exe = "nvcc.exe" if is_windows() else "nvcc"
    home = environ.get("CUDA_HOME") or environ.get("CUDA_PATH")
    on_path = which("nvcc", environ)
    if not home and on_path:
        home = str(Path(on_path).parent.parent)
    if not home and not is_windows() and Path("/usr/local/cuda").is_dir():
        home = "/usr/local/cuda"
    nvcc: str | None = None
    if home and (Path(home) / "bin" / exe).is_file():
        nvcc = str(Path(home) / "bin" / exe)
    elif on_path:
        nvcc = on_path
    return home or None, nvcc


def probe_cuda_toolkit(
    environ: Mapping[str, str], *, timeout: float, rocm_version: str | None = None
) -> tuple[CudaToolkitFacts, list[Unknown]]:
    """nvcc path and version, CUDA home. No nvcc is a fact (None), not an unknown."""
    unknowns: list[Unknown] = []
    home, nvcc = find_cuda_home(environ)
    release: str | None = None
    version: str | None = None
    if nvcc is not None:
        res = run_tool([nvcc, "--version"], timeout=timeout, environ=environ)
        if isinstance(res, str):
            unknowns.append(unknown("cuda_toolkit.nvcc_version", res))
        else:
            parsed = parse_nvcc_version(res.output)
            if parsed is None:
                unknowns.append(
                    unknown(
                        "cuda_toolkit.nvcc_version",
                        f"`{nvcc} --version` (exit {res.returncode}) printed no release line",
                    )
                )
            else:
                release, version = parsed
    facts = CudaToolkitFacts(
        nvcc_path=nvcc,
        nvcc_version=version,
        release=release,
        cuda_home=home,
        rocm_version=rocm_version,
    )
    return facts, unknowns
