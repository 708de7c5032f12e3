"""The install journal: what a run was doing, so that a killed run can be undone.

Written atomically (``mkstemp`` + ``os.replace``) to ``<prefix>/.attn-doctor-journal.json``
before anything changes, updated at each step, removed when the install succeeds or its
rollback completes. A journal found by a later run means that run was killed (or its rollback
could not finish): the later run reports it, refuses to install on top of it, and
``attn-doctor install --rollback`` restores the state recorded in it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from attn_doctor.errors import UsageError
from attn_doctor.install.state import Backup, EnvState, backup_from_dict, backup_to_dict

JOURNAL_NAME = ".attn-doctor-journal.json"
JOURNAL_SCHEMA = "attn-doctor/install-journal"
JOURNAL_SCHEMA_VERSION = 1

Step = Literal["prepared", "installing", "checking", "rolling-back"]


@dataclass(frozen=True, kw_only=True)
class Journal:
    """One in-flight install."""

    pid: int
    started_at: str
    step: Step
    backend: str
    requirement: str
    prior: EnvState
    backups: tuple[Backup, ...] = ()
    state_dir: str | None = None
    """Directory holding backups and logs for this run (removed with the journal)."""
    index_args: tuple[str, ...] = ()
    """How the install reached its wheels (``--no-index --find-links DIR``), for rollback."""
    installer: Literal["pip", "uv"] = "pip"
    log: str | None = None
    plan: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": JOURNAL_SCHEMA,
            "schema_version": JOURNAL_SCHEMA_VERSION,
            "pid": self.pid,
            "started_at": self.started_at,
            "step": self.step,
            "backend": self.backend,
            "requirement": self.requirement,
            "prior": self.prior.to_dict(),
            "backups": [backup_to_dict(b) for b in self.backups],
            "state_dir": self.state_dir,
            "index_args": list(self.index_args),
            "installer": self.installer,
            "log": self.log,
            "plan": self.plan,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Journal:
        if data.get("schema") != JOURNAL_SCHEMA:
            raise ValueError("not an attn-doctor install journal")
        if data.get("schema_version") != JOURNAL_SCHEMA_VERSION:
            raise ValueError(f"journal schema_version {data.get('schema_version')} not understood")
        step = data["step"]
        if step not in ("prepared", "installing", "checking", "rolling-back"):
            raise ValueError(f"journal: unknown step {step!r}")
        installer = data.get("installer", "pip")
        if installer not in ("pip", "uv"):
            raise ValueError(f"journal: unknown installer {installer!r}")
        return cls(
            pid=int(data["pid"]),
            started_at=str(data["started_at"]),
            step=step,
            backend=str(data["backend"]),
            requirement=str(data["requirement"]),
            prior=EnvState.from_dict(data["prior"]),
            backups=tuple(backup_from_dict(b) for b in data.get("backups", [])),
            state_dir=data.get("state_dir"),
            index_args=tuple(str(a) for a in data.get("index_args", [])),
            installer=installer,
            log=data.get("log"),
            plan=dict(data.get("plan") or {}),
        )


def journal_path(prefix: str | Path) -> Path:
    return Path(prefix) / JOURNAL_NAME


def write_journal(prefix: str | Path, journal: Journal) -> Path:
    """Write atomically: a reader never sees half a journal."""
    path = journal_path(prefix)
    fd, tmp = tempfile.mkstemp(prefix=".attn-doctor-journal-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(journal.to_dict(), fh, indent=1, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


JOURNAL_MAX_BYTES = 64 << 20
"""A journal lists the environment's distributions and backed-up files: a few MiB at most."""

# What a malformed (hand-edited, truncated, foreign) journal can raise while being decoded:
# a wrong type where an object or a list belongs, a missing key, a number too large for int.
_MALFORMED = (ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError)


def read_journal(prefix: str | Path) -> Journal | None:
    """The leftover journal of an interrupted run, or None. A corrupt one is a usage error."""
    from attn_doctor.userfiles import read_json_file

    path = journal_path(prefix)
    try:
        data = read_json_file(path, max_bytes=JOURNAL_MAX_BYTES)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read the install journal {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # UnreadableFile: binary, not JSON, too large
        raise UsageError(
            f"the install journal {path} is unreadable: {exc}", hint=_CORRUPT_HINT
        ) from None
    try:
        if not isinstance(data, dict):
            raise TypeError("expected a JSON object at the top level")
        return Journal.from_dict(data)
    except _MALFORMED as exc:
        why = str(exc) if not isinstance(exc, KeyError) else f"missing field {exc}"
        raise UsageError(
            f"the install journal {path} is unreadable: {why}", hint=_CORRUPT_HINT
        ) from None


_CORRUPT_HINT = (
    "attn-doctor cannot tell what the interrupted install changed. Compare `pip freeze` with "
    "what you expect, fix the environment by hand, then delete that file."
)


def remove_journal(prefix: str | Path) -> None:
    journal_path(prefix).unlink(missing_ok=True)
