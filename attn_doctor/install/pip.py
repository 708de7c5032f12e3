"""The one entry point for pip (and uv): every install, uninstall, dry run and download.

In the manner of pypa/build's ``env.py``: the target interpreter runs ``-m pip`` with
``--no-input`` and ``--disable-pip-version-check``; requirements and constraints are written to
temporary files and passed as ``-r``/``-c``; both streams are captured and appended to a log;
a failure raises ``InstallFailed`` naming the command and the tail of stderr.

``protected_constraints`` pins the installed torch family to its *full* version, local label
included (``torch==2.8.0+cu128``). PEP 440 ignores local labels only when the specifier has
none: ``==2.8.0`` is also satisfied by ``2.8.0+cpu``, so a pin without the label would let a
resolver swap a CUDA torch for a CPU one of the same public version.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from attn_doctor.errors import InstallFailed, UsageError
from attn_doctor.planner.pip_command import (
    Installer,
    build_argv,
)

PROTECTED_DISTRIBUTIONS: tuple[str, ...] = (
    "torch",
    "torchvision",
    "torchaudio",
    "triton",
    # PyTorch's own builds of triton for nightly/ROCm/XPU wheels carry these names.
    "pytorch-triton",
    "pytorch-triton-rocm",
    "pytorch-triton-xpu",
)
"""Distributions an install must never change (compared by canonical name)."""

STDERR_TAIL_LINES = 25


@dataclass(frozen=True, kw_only=True)
class PipResult:
    """One finished pip (or uv) run."""

    argv: tuple[str, ...]
    """The command as run (temporary file paths included)."""
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    constraints: tuple[str, ...] = ()
    """The constraint lines that were in force."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def canonical_name(name: str) -> str:
    """PEP 503 normalised project name (``Flash_Attn`` -> ``flash-attn``)."""
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def protected_constraints(installed: Mapping[str, str]) -> tuple[str, ...]:
    """Constraint lines pinning each installed protected distribution to its exact version.

    ``installed`` maps canonical names to installed versions. The full version, local label
    included, is used: ``torch==2.8.0+cu128`` (see the module docstring for why).
    """
    lines = []
    for name in PROTECTED_DISTRIBUTIONS:
        version = installed.get(name)
        if version:
            lines.append(f"{name}=={version}")
    return tuple(lines)


def find_uv(environ: Mapping[str, str] | None = None) -> str | None:
    """The ``uv`` executable on PATH, or None."""
    env = os.environ if environ is None else environ
    return shutil.which("uv", path=env.get("PATH"))


def constraints_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where shown plans keep their constraints files: ``<user cache>/attn-doctor/plans``."""
    from attn_doctor.loadtime.importcheck import cache_dir

    return cache_dir(os.environ if environ is None else environ) / "plans"


def write_constraints_file(
    lines: Sequence[str], *, environ: Mapping[str, str] | None = None
) -> Path | None:
    """Write the pins a shown command names with ``-c``; its path, or None when there is
    nothing to pin or the file cannot be written (the caller then shows the pins inline).

    The name is the content's hash: the same pins give the same file, written once and
    atomically, so a shown command never names a file that is missing or half written.
    """
    if not lines:
        return None
    import hashlib

    text = "".join(f"{line}\n" for line in lines)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    directory = constraints_dir(environ)
    path = directory / f"constraints-{digest}.txt"
    try:
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return path
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".constraints-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        Path(tmp).replace(path)
    except OSError:
        return None
    return path


def _write_lines(directory: str, name: str, lines: Iterable[str]) -> str:
    path = Path(directory) / name
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return str(path)


def _pump(stream: IO[str], sink: list[str], echo: Callable[[str], None] | None) -> None:
    for line in stream:
        sink.append(line)
        if echo is not None:
            echo(line.rstrip("\n"))


def run_pip(
    args: Sequence[str],
    *,
    python: str = sys.executable,
    constraints: Sequence[str] = (),
    requirements: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    installer: Installer = "pip",
    echo: Callable[[str], None] | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> PipResult:
    """Run ``python -m pip ARGS`` (or ``uv pip ARGS --python python``) and return its result.

    ``constraints`` and ``requirements`` are lines written to temporary files passed as
    ``-c``/``-r``. ``env`` replaces the child's environment (default: this process's, with
    ``PIP_NO_INPUT=1``). Both streams are captured; ``echo`` receives stdout lines as they come
    (progress for long steps); ``log`` gets the command, both streams and the exit status.
    With ``check`` a non-zero exit raises ``InstallFailed`` with the command and stderr's tail.
    """
    uv: str | None = None
    if installer == "uv":
        uv = find_uv(env)
        if uv is None:
            raise UsageError(
                "--installer uv: no uv executable on PATH", hint="Install uv, or use pip."
            )
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PIP_NO_INPUT", "1")
    with tempfile.TemporaryDirectory(prefix="attn-doctor-pip-") as tmp:
        req_file = _write_lines(tmp, "requirements.txt", requirements) if requirements else None
        con_file = _write_lines(tmp, "constraints.txt", constraints) if constraints else None
        argv = build_argv(
            args,
            python=python,
            installer=installer,
            requirements_file=req_file,
            constraints_file=con_file,
            uv=uv,
        )
        start = time.monotonic()
        out: list[str] = []
        err: list[str] = []
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                env=child_env,
            )
        except OSError as exc:
            raise InstallFailed(
                f"cannot run {shlex.join(argv)}: {exc.strerror or exc}",
                hint="Check the --python interpreter path.",
            ) from exc
        with proc:
            assert proc.stdout is not None
            assert proc.stderr is not None
            pumps = [
                threading.Thread(target=_pump, args=(proc.stdout, out, echo), daemon=True),
                threading.Thread(target=_pump, args=(proc.stderr, err, None), daemon=True),
            ]
            for t in pumps:
                t.start()
            try:
                returncode = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                returncode = proc.wait()
                err.append(f"\nattn-doctor: killed after {timeout:.0f} s\n")
            except BaseException:
                # Ctrl-C or a kill of attn-doctor: do not leave pip running behind our back.
                proc.kill()
                proc.wait()
                raise
            for t in pumps:
                t.join()
        result = PipResult(
            argv=tuple(argv),
            returncode=returncode,
            stdout="".join(out),
            stderr="".join(err),
            seconds=time.monotonic() - start,
            constraints=tuple(constraints),
        )
    if log is not None:
        append_log(log, result)
    if check and not result.ok:
        raise InstallFailed(
            f"pip failed (exit {result.returncode}): {result.command}",
            hint=stderr_tail(result.stderr) or None,
        )
    return result


def stderr_tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    """The last ``lines`` non-empty lines of a stream."""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def append_log(path: Path, result: PipResult) -> None:
    """Append one run (command, constraints, both streams, status) to a log file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"$ {result.command}\n")
        if result.constraints:
            fh.write("# constraints:\n")
            fh.writelines(f"#   {c}\n" for c in result.constraints)
        fh.write("# --- stdout ---\n")
        fh.write(result.stdout)
        fh.write("# --- stderr ---\n")
        fh.write(result.stderr)
        fh.write(f"# exit {result.returncode} after {result.seconds:.1f} s\n\n")
