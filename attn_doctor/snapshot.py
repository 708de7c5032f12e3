"""Machine snapshots on disk: read one (or a saved ``check --json`` document), write one
atomically. ``check --snapshot``, ``install``, ``explain``, ``download`` and ``fleet`` share it."""

from __future__ import annotations

from pathlib import Path

from attn_doctor.errors import SnapshotError, UsageError
from attn_doctor.facts import Environment

SNAPSHOT_MAX_BYTES = 8 << 20
"""A snapshot is a few KiB (tens with --deep tracebacks); anything above 8 MiB is not one,
and is refused before it is read whole."""


def load_snapshot(path: Path) -> Environment:
    """Read a snapshot file, or a saved ``check --json`` document (its ``result.environment``);
    every failure is a ``SnapshotError`` naming the file."""
    from attn_doctor.fleet.read import parse_document
    from attn_doctor.userfiles import UnreadableFile, read_json_file

    hint = "Write one with `attn-doctor check --save-snapshot FILE` (or `check --json`) there."
    try:
        data = read_json_file(path, max_bytes=SNAPSHOT_MAX_BYTES)
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot {path}: {exc.strerror or exc}") from None
    except UnreadableFile as exc:
        raise SnapshotError(f"--snapshot {path}: {_why_not_json(path, exc)}", hint=hint) from None
    try:
        node = parse_document(data, name=path.stem, source=f"--snapshot {path}")
    except SnapshotError as exc:
        raise SnapshotError(exc.message, hint=exc.hint or hint) from None
    if node.environment is None:  # a check --json document whose check failed on that machine
        raise SnapshotError(
            f"--snapshot {path}: that machine's check recorded no facts ({node.failure})",
            hint=hint,
        )
    return node.environment


def _why_not_json(path: Path, exc: Exception) -> str:
    """Where a JSON file breaks (a truncated copy says so), else the reader's reason. Only a
    file already read once under the size cap is read again."""
    import json

    from attn_doctor.fleet.read import json_error

    if not str(exc).startswith("not valid JSON"):  # too large, not text: already said
        return str(exc)
    try:
        text = path.read_text(encoding="utf-8")
        json.loads(text)
    except (OSError, UnicodeDecodeError, RecursionError):
        return str(exc)
    except json.JSONDecodeError as error:
        return json_error(error, text.strip())
    return str(exc)


def host_path(path: Path) -> Path:
    """``{host}`` in the file name replaced by this machine's short host name (Slurm's ``%N``)."""
    if "{host}" not in str(path):
        return path
    import socket

    host = socket.gethostname().split(".")[0] or "localhost"
    return Path(str(path).replace("{host}", host))


def save_snapshot(env: Environment, path: Path) -> None:
    """Write atomically: a reader never sees half a snapshot."""
    import os
    import tempfile

    path = path.expanduser()
    try:
        fd, tmp = tempfile.mkstemp(prefix=".attn-doctor-", suffix=".json", dir=path.parent or ".")
    except OSError as exc:
        raise UsageError(
            f"--save-snapshot {path}: cannot write there ({exc.strerror or exc})"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(env.to_json())
            fh.write("\n")
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
