"""Does a backend module import here? Asked of a child process, remembered on disk.

A broken CUDA extension can segfault or hang on import, so the selector never imports a
backend in the caller's process: a child interpreter does, with a timeout, through the same
``attn_doctor.probe.imports.import_in_child`` that ``check --deep`` uses. The answer is cached
in ``$XDG_CACHE_HOME/attn-doctor/imports.json`` (``~/.cache/attn-doctor`` when unset), keyed by
everything that can change it: the module, the interpreter (path and version), the versions of
torch, triton and the backend's distributions as found on the child's search path, the file and
modification time the module would be loaded from, the NVIDIA driver version and
``LD_LIBRARY_PATH``. Change any of them and the module is checked again. Timeouts are not
cached (a cold file cache can make a first import slow).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import importlib.machinery
import importlib.metadata
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attn_doctor.facts import ImportResult
from attn_doctor.probe.imports import import_code, import_in_child

CACHE_FILE = "imports.json"
CACHE_SCHEMA = 1
MAX_ENTRIES = 256
DEFAULT_TIMEOUT = 120.0


def cache_dir(environ: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/attn-doctor``, or ``~/.cache/attn-doctor``."""
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "attn-doctor"


def search_path(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The module search path a child started with ``environ`` will have (best estimate).

    ``PYTHONPATH`` from ``environ`` first, then this interpreter's ``sys.path`` without the
    entries that came from this process's own ``PYTHONPATH`` and without the script directory.
    """
    own = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    child = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    rest = [p for p in sys.path if p and p not in own and p not in child]
    return tuple(child + rest)


def distribution_version(name: str, path: Sequence[str]) -> str | None:
    """Version of the first distribution called ``name`` on ``path``, read from metadata."""
    for dist in importlib.metadata.distributions(name=name, path=list(path)):
        version = dist.metadata["Version"]
        return str(version) if version else None
    return None


def module_origin(module: str, path: Sequence[str]) -> tuple[str | None, int | None]:
    """Where the top-level package of ``module`` would load from, and its mtime (ns).

    Only the top-level name is looked up, with ``PathFinder``: nothing is executed.
    """
    top = module.split(".", 1)[0]
    spec = importlib.machinery.PathFinder.find_spec(top, list(path))
    if spec is None:
        return None, None
    origin = spec.origin
    if origin is None or origin == "namespace":
        locations = list(spec.submodule_search_locations or [])
        origin = locations[0] if locations else None
    if origin is None:
        return None, None
    try:
        return origin, Path(origin).stat().st_mtime_ns
    except OSError:
        return origin, None


def driver_version() -> str | None:
    """The NVIDIA kernel driver version from sysfs/procfs (no NVML, no process)."""
    with contextlib.suppress(OSError):
        return Path("/sys/module/nvidia/version").read_text(encoding="utf-8").strip() or None
    with contextlib.suppress(OSError):
        text = Path("/proc/driver/nvidia/version").read_text(encoding="utf-8")
        for word in text.split():
            parts = word.split(".")
            if len(parts) >= 2 and all(p.isdigit() for p in parts):
                return word
    return None


def cache_key(
    module: str,
    *,
    distributions: Iterable[str] = (),
    environ: Mapping[str, str],
    python: str | None = None,
) -> dict[str, Any]:
    """Everything that can change whether ``module`` imports, as a JSON-ready dict."""
    path = search_path(environ)
    origin, mtime = module_origin(module, path)
    names = sorted({"torch", "triton", *distributions})
    return {
        "schema": CACHE_SCHEMA,
        "module": module,
        # The child program itself (e.g. the probe's extra check for xformers' C++ library).
        "child": hashlib.sha256(import_code(module).encode()).hexdigest()[:16],
        "python": python or sys.executable,
        "python_version": sys.version if python is None else None,
        "versions": {name: distribution_version(name, path) for name in names},
        "origin": origin,
        "origin_mtime_ns": mtime,
        "driver": driver_version(),
        "ld_library_path": environ.get("LD_LIBRARY_PATH", ""),
    }


def _digest(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class CheckedImport:
    """An import check and where its answer came from."""

    result: ImportResult
    cached: bool
    """True when the answer was read from the on-disk cache (no child was started)."""
    key: str
    """The cache key's digest."""


CACHE_MAX_BYTES = 16 << 20
"""Far above MAX_ENTRIES entries; a larger file is not this cache and is ignored."""


def _read_cache(path: Path) -> dict[str, Any]:
    """The cache's entries; anything unreadable (binary, not JSON, truncated, too large, a
    foreign schema, entries of the wrong shape) reads as an empty cache, rebuilt on write."""
    from attn_doctor.userfiles import read_json_file

    try:
        data = read_json_file(path, max_bytes=CACHE_MAX_BYTES)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("schema") != CACHE_SCHEMA:
        return {}
    entries = data.get("entries")
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items() if isinstance(v, dict)}


def _write_cache(path: Path, entries: dict[str, Any]) -> None:
    """Atomic write (temporary file + replace); a cache that cannot be written is skipped."""
    if len(entries) > MAX_ENTRIES:
        newest = sorted(entries.items(), key=lambda kv: str(kv[1].get("checked_at", "")))
        entries = dict(newest[-MAX_ENTRIES:])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".imports-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"schema": CACHE_SCHEMA, "entries": entries}, fh, sort_keys=True)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        return


def _result_from(data: object, module: str) -> ImportResult | None:
    if not isinstance(data, dict):
        return None
    status = data.get("status")
    if status not in ("ok", "error", "crashed") or data.get("module") != module:
        return None
    detail = data.get("detail")
    tail = data.get("traceback_tail")
    seconds = data.get("seconds")
    return ImportResult(
        module=module,
        status=status,
        detail=detail if isinstance(detail, str) else None,
        traceback_tail=tail if isinstance(tail, str) else None,
        seconds=_seconds(seconds),
    )


def _seconds(value: object) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an integer too large for a float: not a time this tool wrote
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


@contextlib.contextmanager
def _lock(path: Path, timeout: float) -> Iterator[None]:
    """An advisory lock on ``path`` (POSIX ``flock``), so that the ranks of a distributed job
    starting together check a module once, not once each. Best effort: where the lock cannot
    be taken (no ``fcntl``, an unwritable directory, ``timeout`` seconds passed) the caller
    proceeds without it."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = path.open("a+b")
    except OSError:
        yield
        return
    locked = False
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
                break
            except OSError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
        yield
    finally:
        if locked:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


def _lookup(path: Path, digest: str, key: Mapping[str, Any], module: str) -> ImportResult | None:
    entry = _read_cache(path).get(digest)
    if isinstance(entry, dict) and entry.get("key") == key:
        return _result_from(entry.get("result"), module)
    return None


def check_import(
    module: str,
    *,
    distributions: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    directory: Path | None = None,
) -> CheckedImport:
    """Whether ``module`` imports in a child of this interpreter, using the on-disk cache."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    key = cache_key(module, distributions=distributions, environ=env)
    digest = _digest(key)
    path = (directory or cache_dir(env)) / CACHE_FILE
    cached = _lookup(path, digest, key, module)
    if cached is not None:
        return CheckedImport(result=cached, cached=True, key=digest)
    with _lock(path.with_name(".imports.lock"), timeout + 10):
        cached = _lookup(path, digest, key, module)  # another process checked meanwhile
        if cached is not None:
            return CheckedImport(result=cached, cached=True, key=digest)
        result = import_in_child(module, timeout=timeout, environ=env)
        if result.status != "timeout":
            entries = _read_cache(path)
            entries[digest] = {
                "key": key,
                "result": {
                    "module": result.module,
                    "status": result.status,
                    "detail": result.detail,
                    "traceback_tail": result.traceback_tail,
                    "seconds": result.seconds,
                },
                "checked_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            }
            _write_cache(path, entries)
    return CheckedImport(result=result, cached=False, key=digest)
