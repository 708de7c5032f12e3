"""Installed attention-related distributions, from their metadata only (nothing imported).

For each: version, location, Requires-Dist, INSTALLER, editable (``direct_url.json``) and
``build_info``, what the package says it was built for:

- ``local``: the version's local label (``2.8.3+cu128torch2.8cxx11abiTRUE`` -> that label);
- ``wheel_url`` / ``wheel_local``: for a wheel installed from a URL (flash-attn's GitHub
  release wheels), the URL from ``direct_url.json`` and the local label in its file name
  (the release wheels' METADATA has no label; the file name does);
- xformers: its ``xformers/cpp_lib.json``, written by xformers' ``setup.py`` at build time:
  ``{"version": {"cuda": 1208, "hip": null, "torch": "2.10.0+cu128", "python": "3.10.11",
  "flash": …, "use_torch_flash": …}, "env": {"TORCH_CUDA_ARCH_LIST": …,
  "XFORMERS_PACKAGE_FROM": "wheel-v0.0.34", …}}`` -> ``torch``, ``cuda``, ``hip``, ``python``,
  ``flash``, ``use_torch_flash``, ``env.TORCH_CUDA_ARCH_LIST``, ``env.XFORMERS_PACKAGE_FROM``…
  (``cuda`` is nvcc's version as ``major*100+minor``: ``1208`` is 12.8).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from collections.abc import Iterable

from attn_doctor.backends import BACKENDS
from attn_doctor.facts import PackageFacts, Unknown
from attn_doctor.probe.distributions import (
    canonicalize_name,
    dist_file,
    dist_location,
    dist_read_text,
    dist_requires,
)
from attn_doctor.probe.runner import read_text, unknown
from attn_doctor.probe.torch_meta import local_label


def _record_distributions() -> tuple[str, ...]:
    """Every distribution a backend record names: its own, its companions, what it needs."""
    names: dict[str, None] = {}
    for record in BACKENDS.values():
        for name in (*record.distributions, *record.companions, *record.needs):
            names[canonicalize_name(name)] = None
    return tuple(names)


WATCHED: tuple[str, ...] = tuple(
    dict.fromkeys(
        (
            *_record_distributions(),
            "unsloth-zoo",
            "transformers",
            "pytorch-triton",
            "pytorch-triton-rocm",
            "pytorch-triton-xpu",
            "triton-windows",
            "accelerate",
            "peft",
            "torchvision",
            "torchaudio",
            "bitsandbytes",
            "deepspeed",
            "vllm",
            "sglang",
            "sglang-kernel",
            "sgl-kernel",  # sglang-kernel's name before 0.4 (unverified)
            "diffusers",
            "kernels",
            "triton",
            "sageattention",
            "nvidia-cutlass-dsl",
            "liger-kernel",
        )
    )
)
"""Canonical names of the distributions recorded: every distribution the backend records
name (``wheels_index/backends.toml``), the frameworks and tools around them (plus every
``nvidia-cudnn-*`` and ``nvidia-cutlass-dsl-*``)."""


def is_watched(name: str) -> bool:
    # nvidia-cutlass-dsl-libs-*: the parts of flash-attn-4's runtime (one missing breaks it).
    return name in WATCHED or name.startswith(("nvidia-cudnn-", "nvidia-cutlass-dsl-"))


def parse_xformers_cpp_lib(text: str) -> tuple[tuple[str, str], ...] | None:
    """``build_info`` pairs from xformers' ``cpp_lib.json``; None when it is not that JSON."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    pairs: list[tuple[str, str]] = []
    version = data.get("version")
    if isinstance(version, dict):
        for key in sorted(version):
            value = version[key]
            if value is not None:
                pairs.append((key, _json_scalar(value)))
    env = data.get("env")
    if isinstance(env, dict):
        for key in sorted(env):
            value = env[key]
            if value is not None:
                pairs.append((f"env.{key}", _json_scalar(value)))
    return tuple(pairs)


def _json_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def parse_direct_url(text: str) -> tuple[bool, str | None]:
    """(editable, URL of an archive/wheel) from PEP 610 ``direct_url.json``."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return False, None
    if not isinstance(data, dict):
        return False, None
    dir_info = data.get("dir_info")
    editable = isinstance(dir_info, dict) and dir_info.get("editable") is True
    url = data.get("url")
    archive = isinstance(data.get("archive_info"), dict)
    return editable, url if archive and isinstance(url, str) else None


_WHEEL_LOCAL = re.compile(r"^[^-/]+-[^-+/]+\+([^-/]+)-[^/]*\.whl$")


def wheel_local_label(url: str) -> str | None:
    """``cu12torch2.8cxx11abiTRUE`` from
    ``…/flash_attn-2.8.3+cu12torch2.8cxx11abiTRUE-cp311-cp311-linux_x86_64.whl``."""
    filename = url.rsplit("/", 1)[-1].split("#", 1)[0].split("?", 1)[0]
    filename = filename.replace("%2B", "+").replace("%2b", "+")
    m = _WHEEL_LOCAL.match(filename)
    return m.group(1) if m else None


def package_facts(
    name: str, dist: importlib.metadata.Distribution
) -> tuple[PackageFacts, list[Unknown]]:
    unknowns: list[Unknown] = []
    version = dist.version
    build: list[tuple[str, str]] = []
    label = local_label(version)
    if label:
        build.append(("local", label))
    editable = False
    direct = dist_read_text(dist, "direct_url.json")
    if direct:
        editable, url = parse_direct_url(direct)
        if url:
            build.append(("wheel_url", url))
            wl = wheel_local_label(url)
            if wl and wl != label:
                build.append(("wheel_local", wl))
    if name == "xformers":
        cpp_lib = dist_file(dist, "xformers/cpp_lib.json")
        text = read_text(cpp_lib) if cpp_lib else None
        parsed = parse_xformers_cpp_lib(text) if text else None
        if parsed is None:
            unknowns.append(
                unknown(
                    "packages.xformers.build_info",
                    "xformers/cpp_lib.json is missing or unreadable (a source build without "
                    "the C++ extension writes none)",
                )
            )
        else:
            build.extend(parsed)
    installer = (dist_read_text(dist, "INSTALLER") or "").strip() or None
    facts = PackageFacts(
        name=name,
        version=version,
        location=dist_location(dist),
        requires=dist_requires(dist),
        installer=installer,
        build_info=tuple(build),
        editable=editable,
    )
    return facts, unknowns


def probe_packages(
    dists: dict[str, importlib.metadata.Distribution], names: Iterable[str] | None = None
) -> tuple[tuple[PackageFacts, ...], list[Unknown]]:
    """PackageFacts for every watched distribution installed (torch excluded), sorted by name."""
    wanted = sorted(n for n in (names if names is not None else dists) if is_watched(n))
    result: list[PackageFacts] = []
    unknowns: list[Unknown] = []
    for name in wanted:
        dist = dists.get(name)
        if dist is None:
            continue
        try:
            facts, unk = package_facts(name, dist)
        except Exception as exc:  # a corrupt dist-info must not stop the probe
            unknowns.append(unknown(f"packages.{name}", f"metadata unreadable: {exc}"))
            continue
        result.append(facts)
        unknowns.extend(unk)
    return tuple(result), unknowns
