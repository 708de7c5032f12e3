"""Offline integrity of cached Hub kernel variants: each ``build/<variant>/metadata.json``
written by kernel-builder records a ``digest`` (``{"algorithm": "sha256"|"sha512", "files":
{"relative/path": "<base64 hash>"}}``), and ``kernels`` 0.19.1 checks a variant's files against
it before loading (``kernels/_internals/digest.py: verify_digest``, hashing with
``Digest.hash_variant``). This restates that hashing so ``check`` can say whether a cached
variant still matches, without the network and without importing ``kernels``.

``kernels.lock`` itself (0.19.1, ``_internals/locking.py``) pins a commit per kernel (a git
object id), not a file hash: the commit names the snapshot, the digest covers its files.

Which files ``Digest.hash_variant`` covers was observed on kernels 0.19.1 (its Rust code is
not readable here): every file under the variant folder, symlinks followed (the Hub cache's
snapshots are links to blobs), hidden files included, except ``metadata.json`` at the top,
``__pycache__`` folders and ``*.pyc`` files; paths relative with ``/``; the hash base64
(standard alphabet, padded) of the whole file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

MAX_VARIANT_BYTES = 4 << 30
"""A variant larger than this is not hashed by ``check`` (``kernels`` checks it on load)."""


def _hash_file(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return base64.b64encode(h.digest()).decode("ascii")


def variant_files(variant: Path) -> list[tuple[str, Path]]:
    """(relative path, file) of every file the digest covers."""
    out = []
    for top, dirs, files in os.walk(variant, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            path = Path(top) / name
            rel = path.relative_to(variant).as_posix()
            if rel == "metadata.json" or name.endswith(".pyc"):
                continue
            out.append((rel, path))
    return out


def variant_digest(variant: Path, max_bytes: int = MAX_VARIANT_BYTES) -> str:
    """``ok sha256 12 files``, ``mismatch: …``, ``none`` (no digest recorded), or
    ``not checked: …``."""
    try:
        data = json.loads((variant / "metadata.json").read_bytes())
    except (OSError, ValueError) as exc:
        return f"not checked: metadata.json unreadable ({type(exc).__name__})"
    digest = data.get("digest") if isinstance(data, dict) else None
    if digest is None:
        return "none"
    algorithm = digest.get("algorithm") if isinstance(digest, dict) else None
    expected = digest.get("files") if isinstance(digest, dict) else None
    if algorithm not in ("sha256", "sha512") or not isinstance(expected, dict):
        return "not checked: the digest in metadata.json is not in the known format"
    try:
        files = variant_files(variant)
        size = sum(p.stat().st_size for _, p in files)
        if size > max_bytes:
            return f"not checked: {size >> 20} MiB (kernels checks it when it loads)"
        got = {rel: _hash_file(p, algorithm) for rel, p in files}
    except OSError as exc:
        return f"not checked: {exc.strerror or exc}"
    missing = sorted(set(expected) - set(got))
    unknown = sorted(set(got) - set(expected))
    differ = sorted(p for p in set(expected) & set(got) if expected[p] != got[p])
    if not (missing or unknown or differ):
        return f"ok {algorithm} {len(expected)} files"
    parts = [
        f"{label}: {', '.join(names[:3])}" + (" …" if len(names) > 3 else "")
        for label, names in (
            ("differ", differ),
            ("missing", missing),
            ("not in the digest", unknown),
        )
        if names
    ]
    return "mismatch: " + "; ".join(parts)
