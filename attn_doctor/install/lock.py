"""One install at a time per environment: a non-blocking file lock in the target's prefix.

The lock is ``<prefix>/.attn-doctor.lock``, held with ``fcntl.flock`` (``msvcrt.locking`` on
Windows) for the whole install. The kernel releases it when the holder dies, so a killed run
never leaves a stale lock; the holder writes its PID into the file so that a refused run can
name it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from attn_doctor.errors import Locked, UsageError

LOCK_NAME = ".attn-doctor.lock"


def lock_path(prefix: str | Path) -> Path:
    return Path(prefix) / LOCK_NAME


def _try_lock(fh: IO[str]) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fh: IO[str]) -> None:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def read_holder(path: Path) -> int | None:
    """The PID written by the current holder, if readable."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def env_lock(prefix: str | Path) -> Iterator[Path]:
    """Hold the environment's install lock, or raise ``Locked`` naming the holder's PID."""
    path = lock_path(prefix)
    try:
        # "a+" so that opening never truncates the holder's PID before we know we hold it.
        fh = path.open("a+", encoding="ascii")
    except OSError as exc:
        raise UsageError(
            f"cannot create the install lock {path}: {exc.strerror or exc}",
            hint="attn-doctor installs need write access to the environment's prefix.",
        ) from exc
    with fh:
        if not _try_lock(fh):
            pid = read_holder(path)
            who = f"process {pid}" if pid is not None else "another process"
            raise Locked(
                f"another attn-doctor install ({who}) holds the lock on this environment: {path}",
                hint="Wait for it to finish; the lock is released when that process exits.",
            )
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            yield path
        finally:
            with contextlib.suppress(OSError):
                fh.seek(0)
                fh.truncate()
                fh.flush()
            _unlock(fh)
