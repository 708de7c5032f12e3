"""Hub kernels on disk: what the project here asks for, and what the local cache holds.

Read without the network and without importing ``kernels``:

- ``kernels.lock`` in the current folder (kernels 0.19: a JSON list of
  ``{"dependency": {"repo-id": ..., "version": N}, "lock": {"commit": ...}}``);
- ``[tool.kernels.dependencies]`` of ``pyproject.toml`` there (``"org/repo" = N``);
- the cache: ``KERNELS_CACHE``, else ``HF_HUB_CACHE``, else ``HF_HOME``/hub, else
  ``~/.cache/huggingface/hub`` (kernels ``hf_hub.py: _get_cache_dir`` then huggingface_hub's
  constants); each kernel repository is ``kernels--org--name`` with ``refs/vN`` files (the
  version branches) and ``snapshots/<commit>/build/<variant>/`` folders.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from attn_doctor.facts import CachedKernel, HubKernelFacts, LockedKernel, Unknown
from attn_doctor.probe.runner import unknown
from attn_doctor.userfiles import UnreadableFile, load_json_bytes

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_PREFIX = "kernels--"
MAX_REPOS = 200
"""A cache with more kernel repositories than this is cut (a report is not a file listing)."""


MAX_FILE_BYTES = 4 << 20
"""A kernels.lock or pyproject.toml is a few KiB; a larger one is not read (it is not one)."""


def _read(path: Path) -> str:
    with path.open("rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise OSError(f"{path} is larger than {MAX_FILE_BYTES >> 20} MiB")
    return data.decode("utf-8")


def cache_dir(environ: Mapping[str, str], home: Path) -> Path:
    """Where ``kernels`` looks for its cache (see the module docstring)."""
    for key in ("KERNELS_CACHE", "HF_HUB_CACHE"):
        if environ.get(key):
            return Path(environ[key])
    if environ.get("HF_HOME"):
        return Path(environ["HF_HOME"]) / "hub"
    base = Path(environ["XDG_CACHE_HOME"]) if environ.get("XDG_CACHE_HOME") else home / ".cache"
    return base / "huggingface" / "hub"


def parse_lockfile(text: str) -> tuple[LockedKernel, ...] | None:
    """The kernels of a ``kernels.lock`` (None: not that format)."""
    try:
        data = load_json_bytes(text)
    except UnreadableFile:
        return None
    if not isinstance(data, list):
        return None
    out = []
    for item in data:
        if not isinstance(item, dict):
            return None
        dep, lock = item.get("dependency"), item.get("lock")
        if not isinstance(dep, dict) or not isinstance(dep.get("repo-id"), str):
            return None
        version = dep.get("version")
        commit = lock.get("commit") if isinstance(lock, dict) else None
        out.append(
            LockedKernel(
                repo=dep["repo-id"],
                version=None if version is None else str(version),
                commit=commit if isinstance(commit, str) else None,
            )
        )
    return tuple(out)


def parse_pyproject_dependencies(text: str) -> tuple[LockedKernel, ...] | None:
    """``[tool.kernels.dependencies]`` (None: unreadable or absent)."""
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError):
        return None
    deps: object = data
    for key in ("tool", "kernels", "dependencies"):
        deps = deps.get(key) if isinstance(deps, dict) else None
    if not isinstance(deps, dict):
        return None
    return tuple(LockedKernel(repo=str(k), version=str(v)) for k, v in sorted(deps.items()))


def _list_dir(path: Path) -> list[Path]:
    try:
        return sorted(path.iterdir())
    except OSError:
        return []


def scan_cache(root: Path) -> tuple[CachedKernel, ...]:
    """Every kernel repository in the cache, with its version refs and build variants."""
    out = []
    repos = [p for p in _list_dir(root) if p.name.startswith(_PREFIX)]
    for repo_dir in repos:
        if not repo_dir.is_dir():
            continue
        repo = repo_dir.name[len(_PREFIX) :].replace("--", "/", 1)
        refs = []
        for ref in _list_dir(repo_dir / "refs"):
            try:
                refs.append((ref.name, ref.read_text(encoding="utf-8").strip()))
            except (OSError, UnicodeDecodeError):
                continue
        variants = []
        for snap in _list_dir(repo_dir / "snapshots"):
            for build in _list_dir(snap / "build"):
                if build.is_dir():
                    variants.append((snap.name, build.name))
        out.append(CachedKernel(repo=repo, versions=tuple(refs), variants=tuple(variants)))
        if len(out) >= MAX_REPOS:
            break
    return tuple(out)


MAX_CHECKED_VARIANTS = 8
"""At most this many variants of one kernel are hashed by check (the others: by kernels)."""


def _with_digests(cached: CachedKernel, kernel: LockedKernel | None, root: Path) -> CachedKernel:
    """The cached variants of the commit the project asks for, checked against their digest."""
    if kernel is None:
        return cached
    from dataclasses import replace

    from attn_doctor.probe.hub_digest import variant_digest

    commit = kernel.commit or dict(cached.versions).get(f"v{kernel.version}")
    if commit is None:
        return cached
    repo_dir = root / (_PREFIX + kernel.repo.replace("/", "--"))
    variants = [v for c, v in cached.variants if c == commit][:MAX_CHECKED_VARIANTS]
    digests = tuple(
        (commit, v, variant_digest(repo_dir / "snapshots" / commit / "build" / v)) for v in variants
    )
    return replace(cached, digests=digests)


def probe_hub_kernels(
    cwd: Path, environ: Mapping[str, str], home: Path
) -> tuple[HubKernelFacts | None, list[Unknown]]:
    """What the project in ``cwd`` asks for and what the cache holds (None: neither exists)."""
    unknowns: list[Unknown] = []
    locked: dict[str, LockedKernel] = {}
    lockfile = None
    lock_path = cwd / "kernels.lock"
    if lock_path.is_file():
        try:
            parsed = parse_lockfile(_read(lock_path))
        except (OSError, UnicodeDecodeError):
            parsed = None
        if parsed is None:
            unknowns.append(unknown("hub_kernels.lockfile", f"{lock_path} is not a kernels.lock"))
        else:
            lockfile = str(lock_path)
            locked.update((k.repo, k) for k in parsed)
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        try:
            deps = parse_pyproject_dependencies(_read(pyproject))
        except (OSError, UnicodeDecodeError):
            deps = None
        for dep in deps or ():
            locked.setdefault(dep.repo, dep)
    root = cache_dir(environ, home)
    cached = scan_cache(root) if root.is_dir() else ()
    if not locked and not cached:
        return None, unknowns
    cached = tuple(_with_digests(c, locked.get(c.repo), root) for c in cached)
    return (
        HubKernelFacts(
            cache_dir=str(root),
            lockfile=lockfile,
            locked=tuple(locked[k] for k in sorted(locked)),
            cached=cached,
        ),
        unknowns,
    )
