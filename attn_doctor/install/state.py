"""What is installed in the target interpreter, how two states differ, and the way back.

``record_state`` asks the target interpreter itself (``importlib.metadata`` in a child
process): the interpreter attn-doctor runs in may not be the one it installs into.

Rollback is exact for what was backed up: before pip runs, the files of every installed
distribution that pip is about to replace (learned from ``pip install --dry-run --report``)
are copied, byte for byte, from their ``RECORD`` into a backup directory. ``rollback``
uninstalls what was added, and puts each replaced distribution back by uninstalling the new
version and copying the saved files back. A distribution that changed without a backup (the
prediction missed it) is reinstalled at its prior version with ``--no-deps`` from the same
index or wheelhouse, which needs that version to be available there; the rollback then checks
the result against the recorded state and says what it could not restore.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from attn_doctor.errors import InstallFailed, UsageError
from attn_doctor.install.pip import canonical_name, run_pip
from attn_doctor.planner.pip_command import Installer

STATE_TIMEOUT_S = 120.0

# Runs in the target interpreter; standard library only.
_STATE_SCRIPT = r"""
import json, sys, sysconfig
import importlib.metadata as md
seen = {}
for dist in md.distributions():
    name = dist.metadata["Name"]
    if not name:
        continue
    key = name.lower().replace("_", "-").replace(".", "-")
    while "--" in key:
        key = key.replace("--", "-")
    if key in seen:
        continue  # the first on sys.path is the one imports see
    try:
        direct = dist.read_text("direct_url.json")
        installer = dist.read_text("INSTALLER")
    except Exception:
        direct = installer = None
    seen[key] = {
        "name": key,
        "display_name": name,
        "version": dist.version,
        "location": str(dist.locate_file("")),
        "direct_url": direct.strip() if direct else None,
        "installer": installer.strip() if installer else None,
    }
print(json.dumps({
    "executable": sys.executable,
    "prefix": sys.prefix,
    "purelib": sysconfig.get_paths()["purelib"],
    "distributions": sorted(seen.values(), key=lambda d: d["name"]),
}))
"""

# Lists the absolute paths of the files of the named distributions (from RECORD).
_FILES_SCRIPT = r"""
import json, os, sys
import importlib.metadata as md
wanted = set(json.loads(sys.argv[1]))
out = {}
for dist in md.distributions():
    name = (dist.metadata["Name"] or "").lower().replace("_", "-").replace(".", "-")
    while "--" in name:
        name = name.replace("--", "-")
    if name not in wanted or name in out:
        continue
    files = []
    for f in dist.files or ():
        p = os.path.normpath(str(dist.locate_file(f)))
        if os.path.isfile(p):
            files.append(p)
    out[name] = {"version": dist.version, "files": files, "has_record": dist.files is not None}
print(json.dumps(out))
"""


@dataclass(frozen=True, kw_only=True)
class InstalledDist:
    """One installed distribution, as the target interpreter sees it."""

    name: str
    """Canonical (PEP 503) name."""
    version: str
    display_name: str = ""
    location: str | None = None
    direct_url: str | None = None
    """The ``direct_url.json`` text (PEP 610) when installed from a URL or a path."""
    installer: str | None = None

    @property
    def identity(self) -> tuple[str, str | None]:
        """What must match for two installs to count as the same."""
        return (self.version, self.direct_url)


@dataclass(frozen=True, kw_only=True)
class EnvState:
    """Every distribution importable from the target interpreter, at one moment."""

    python: str
    prefix: str
    purelib: str
    distributions: tuple[InstalledDist, ...]

    def versions(self) -> dict[str, str]:
        return {d.name: d.version for d in self.distributions}

    def get(self, name: str) -> InstalledDist | None:
        key = canonical_name(name)
        for d in self.distributions:
            if d.name == key:
                return d
        return None

    def to_dict(self) -> dict[str, object]:
        from attn_doctor.facts import encode

        return {
            "python": self.python,
            "prefix": self.prefix,
            "purelib": self.purelib,
            "distributions": encode(self.distributions),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> EnvState:
        dists = data.get("distributions")
        if not isinstance(dists, list):
            raise ValueError("state: distributions must be a list")
        return cls(
            python=str(data["python"]),
            prefix=str(data["prefix"]),
            purelib=str(data["purelib"]),
            distributions=tuple(_dist_from_dict(d) for d in dists),
        )


def _dist_from_dict(d: object) -> InstalledDist:
    if not isinstance(d, dict):
        raise ValueError("state: a distribution must be an object")

    def opt(key: str) -> str | None:
        value = d.get(key)
        return None if value is None else str(value)

    return InstalledDist(
        name=str(d["name"]),
        version=str(d["version"]),
        display_name=str(d.get("display_name") or d["name"]),
        location=opt("location"),
        direct_url=opt("direct_url"),
        installer=opt("installer"),
    )


@dataclass(frozen=True, kw_only=True)
class StateDiff:
    """How ``after`` differs from ``before``."""

    added: tuple[InstalledDist, ...] = ()
    removed: tuple[InstalledDist, ...] = ()
    changed: tuple[tuple[InstalledDist, InstalledDist], ...] = ()
    """(before, after) pairs whose version or origin differ."""

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def lines(self) -> tuple[str, ...]:
        """People's summary: ``+ flash-attn 2.8.3``, ``~ einops 0.7.0 -> 0.8.1``."""
        out = [f"+ {d.name} {d.version}" for d in self.added]
        out += [f"- {d.name} {d.version}" for d in self.removed]
        out += [
            f"~ {a.name} {a.version} -> {b.version}"
            + ("" if a.version != b.version else " (reinstalled from another origin)")
            for a, b in self.changed
        ]
        return tuple(out)


def _run_child(
    python: str, script: str, *args: str, timeout: float, bad_input: bool = False
) -> str:
    """Run ``script`` under ``python``. ``bad_input``: a failure to start or to run a
    standard-library script means ``python`` is not an interpreter (``UsageError``, exit 2),
    not that an install failed."""
    try:
        proc = subprocess.run(
            [python, "-c", script, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except OSError as exc:
        if bad_input:
            raise _not_a_python(python, exc.strerror or str(exc)) from None
        raise InstallFailed(f"cannot read the installed packages of {python}: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise InstallFailed(f"cannot read the installed packages of {python}: {exc}") from exc
    if proc.returncode != 0:
        if bad_input:
            last = (proc.stderr.strip().splitlines() or [""])[-1][:200]
            why = f"it exited {proc.returncode}" + (f": {last}" if last else "")
            raise _not_a_python(python, why)
        raise InstallFailed(
            f"cannot read the installed packages of {python} (exit {proc.returncode})",
            hint=proc.stderr.strip()[-2000:] or None,
        )
    return proc.stdout


def _not_a_python(python: str, why: str) -> UsageError:
    return UsageError(
        f"--python {python}: not a working Python interpreter ({why})",
        hint="Give the path of the environment's python, e.g. .venv/bin/python.",
    )


def parse_state(python: str, text: str) -> EnvState:
    """Parse the state script's JSON output (pure); ``UsageError`` when it is not that."""
    try:
        data = json.loads(text)
        return EnvState(
            python=python,
            prefix=str(data["prefix"]),
            purelib=str(data["purelib"]),
            distributions=tuple(_dist_from_dict(d) for d in data["distributions"]),
        )
    except (ValueError, KeyError, TypeError, IndexError, RecursionError):
        shown = " ".join(text.split())[:80]
        raise _not_a_python(
            python, f"it printed {shown!r}, not the package list" if shown else "it printed nothing"
        ) from None


def record_state(python: str, *, timeout: float = STATE_TIMEOUT_S) -> EnvState:
    """Every installed distribution of ``python``, with exact versions and PEP 610 origins.

    Raises ``UsageError`` when ``python`` is not a working interpreter (missing, not
    executable, not Python), ``InstallFailed`` when it does not answer in time."""
    return parse_state(python, _run_child(python, _STATE_SCRIPT, timeout=timeout, bad_input=True))


def diff_state(before: EnvState, after: EnvState) -> StateDiff:
    """What was added, removed and changed between two states (pure)."""
    a = {d.name: d for d in before.distributions}
    b = {d.name: d for d in after.distributions}
    return StateDiff(
        added=tuple(b[n] for n in sorted(b.keys() - a.keys())),
        removed=tuple(a[n] for n in sorted(a.keys() - b.keys())),
        changed=tuple(
            (a[n], b[n]) for n in sorted(a.keys() & b.keys()) if a[n].identity != b[n].identity
        ),
    )


# --- backups ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Backup:
    """A byte-exact copy of one installed distribution's files."""

    name: str
    version: str
    directory: str
    files: tuple[tuple[str, str], ...]
    """(original absolute path, path of the copy relative to ``directory``)."""


def backup_distributions(
    python: str, names: Sequence[str], dest: Path, *, timeout: float = STATE_TIMEOUT_S
) -> tuple[Backup, ...]:
    """Copy every file listed in the ``RECORD`` of each named distribution into ``dest``.

    Distributions that are not installed are skipped. A distribution without a ``RECORD``
    cannot be backed up (and pip could not uninstall it either): ``InstallFailed``.
    """
    wanted = sorted({canonical_name(n) for n in names})
    if not wanted:
        return ()
    listing = json.loads(_run_child(python, _FILES_SCRIPT, json.dumps(wanted), timeout=timeout))
    backups = []
    for name in wanted:
        entry = listing.get(name)
        if entry is None:
            continue
        if not entry["has_record"]:
            raise InstallFailed(
                f"{name} {entry['version']} has no RECORD file: it cannot be backed up or "
                "safely replaced",
                hint=f"Reinstall it first: python -m pip install --force-reinstall {name}",
            )
        directory = dest / f"{name}-{entry['version']}"
        directory.mkdir(parents=True, exist_ok=True)
        files = []
        for i, original in enumerate(entry["files"]):
            rel = f"f{i:06d}"
            shutil.copy2(original, directory / rel)
            files.append((original, rel))
        backup = Backup(
            name=name, version=str(entry["version"]), directory=str(directory), files=tuple(files)
        )
        (directory / "manifest.json").write_text(
            json.dumps(backup_to_dict(backup), indent=1), encoding="utf-8"
        )
        backups.append(backup)
    return tuple(backups)


def backup_to_dict(b: Backup) -> dict[str, object]:
    return {
        "name": b.name,
        "version": b.version,
        "directory": b.directory,
        "files": [list(f) for f in b.files],
    }


def backup_from_dict(d: Mapping[str, object]) -> Backup:
    files = d["files"]
    if not isinstance(files, list):
        raise ValueError("backup: files must be a list")
    return Backup(
        name=str(d["name"]),
        version=str(d["version"]),
        directory=str(d["directory"]),
        files=tuple((str(f[0]), str(f[1])) for f in files),
    )


def restore_backup(backup: Backup) -> None:
    """Copy a backup's files back to where they were (directories recreated)."""
    base = Path(backup.directory)
    for original, rel in backup.files:
        target = Path(original)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.attn-doctor-restore")
        shutil.copy2(base / rel, tmp)
        tmp.replace(target)


# --- rollback -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RollbackResult:
    """What a rollback did, and whether the environment now matches the recorded state."""

    uninstalled: tuple[str, ...] = ()
    restored: tuple[str, ...] = ()
    """Put back from backups (byte-exact)."""
    reinstalled: tuple[str, ...] = ()
    """Reinstalled with ``--no-deps`` at the prior version (no backup was available)."""
    remaining: StateDiff = field(default_factory=StateDiff)
    """What still differs from the recorded state afterwards (empty when exact)."""

    @property
    def exact(self) -> bool:
        return self.remaining.empty


def rollback(
    prior: EnvState,
    current: EnvState,
    *,
    backups: Sequence[Backup] = (),
    index_args: Sequence[str] = (),
    installer: Installer = "pip",
    log: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> RollbackResult:
    """Return the environment to ``prior``: uninstall additions, put back what changed.

    Changed or removed distributions come back from ``backups`` when one holds their prior
    version, else by ``pip install --no-deps name==version`` with ``index_args`` (the same
    index or wheelhouse the install used). Never raises for a step that fails: the result's
    ``remaining`` says what still differs.
    """
    diff = diff_state(prior, current)
    by_name = {(b.name, b.version): b for b in backups}
    python = prior.python
    now = {after.name: after for _, after in diff.changed}

    def uninstall(name: str) -> bool:
        res = run_pip(
            ["uninstall", "-y", name],
            python=python,
            log=log,
            check=False,
            installer=installer,
            env=environ,
        )
        return res.ok

    # One at a time: one broken RECORD must not stop the others.
    uninstalled = [d.name for d in diff.added if uninstall(d.name)]
    restored: list[str] = []
    reinstalled: list[str] = []
    for dist in [before for before, _ in diff.changed] + list(diff.removed):
        spec = f"{dist.name}=={dist.version}"
        backup = by_name.get((dist.name, dist.version))
        if backup is not None:
            # Remove the new version's files first, then put the saved files back.
            if dist.name in now and uninstall(dist.name):
                uninstalled.append(dist.name)
            restore_backup(backup)
            restored.append(spec)
            continue
        # No backup: let pip replace the current version with the prior one. The current one
        # is not removed first, so a prior version that cannot be found leaves it in place.
        same_version = dist.name in now and now[dist.name].version == dist.version
        res = run_pip(
            [
                "install",
                "--no-deps",
                *(["--force-reinstall"] if same_version else []),
                *index_args,
                f"{dist.display_name or dist.name}=={dist.version}",
            ],
            python=python,
            log=log,
            check=False,
            installer=installer,
            env=environ,
        )
        if res.ok:
            reinstalled.append(spec)
    after = record_state(python)
    return RollbackResult(
        uninstalled=tuple(uninstalled),
        restored=tuple(restored),
        reinstalled=tuple(reinstalled),
        remaining=diff_state(prior, after),
    )
