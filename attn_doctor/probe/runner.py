"""The probe's one way to run a program and read a file; neither ever raises.

Every reader in this package goes through ``run_tool`` and ``read_text``: a failure comes
back as a reason string (what was run, what went wrong), which the caller turns into an
``Unknown`` entry. Nothing here is a shell command: argv lists only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from attn_doctor.facts import Unknown

DEFAULT_TOOL_TIMEOUT = 10.0
"""Seconds a quick tool (``nvidia-smi``, ``nvcc --version``, ``uv --version``) may take.
A hung ``nvidia-smi`` (a wedged driver does that) must not hang the doctor."""


@dataclass(frozen=True, kw_only=True)
class Completed:
    """A program that ran to completion (whatever its exit status)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout then stderr: some tools print their version on either."""
        return self.stdout + ("\n" + self.stderr if self.stderr else "")


def which(name: str, environ: Mapping[str, str]) -> str | None:
    """``shutil.which`` over the ``PATH`` in ``environ`` (not necessarily ``os.environ``)."""
    return shutil.which(name, path=environ.get("PATH", os.defpath))


def run_tool(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TOOL_TIMEOUT,
    environ: Mapping[str, str] | None = None,
) -> Completed | str:
    """Run ``argv`` and capture its output as text; on failure return why, as a sentence.

    Like ``run_isolated``'s children, the tool gets a process group of its own and is tracked
    in ``CHILDREN``: Ctrl-C (``stop_children``) ends a hung ``nvidia-smi`` at once instead of
    after its timeout.
    """
    env = dict(os.environ if environ is None else environ)
    # Tools print their versions in English only with the C locale (nvidia-smi, nvcc do not
    # translate today, but a localised "Version" would silently defeat the parsers).
    env["LC_ALL"] = "C"
    kwargs: dict[str, object] = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        kwargs["start_new_session"] = True
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=env,
            **kwargs,  # type: ignore[call-overload]
        )
    except FileNotFoundError:
        return f"{argv[0]} not found"
    except OSError as exc:
        return f"`{' '.join(argv)}` could not be run: {exc.strerror or exc}"
    if not CHILDREN.add(proc):  # Ctrl-C came first
        proc.communicate()
        return f"`{' '.join(argv)}` was interrupted (Ctrl-C)"
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=1.0)
        return f"`{' '.join(argv)}` did not finish within {timeout:g} s"
    finally:
        CHILDREN.discard(proc)
        if proc.returncode is None:  # interrupted: do not leave the tool running
            kill_tree(proc)
            proc.wait()
    if proc.returncode < 0 and CHILDREN.stopping:
        return f"`{' '.join(argv)}` was interrupted (Ctrl-C)"
    return Completed(argv=tuple(argv), returncode=proc.returncode, stdout=stdout, stderr=stderr)


def read_text(path: str | Path, *, limit: int = 1 << 20) -> str | None:
    """The file's text (at most ``limit`` characters), or None when it cannot be read."""
    try:
        with Path(path).open(encoding="utf-8", errors="replace") as fh:
            return fh.read(limit)
    except (OSError, ValueError):
        return None


def unknown(field: str, reason: str) -> Unknown:
    """Shorthand used by every reader."""
    return Unknown(field=field, reason=reason)


def is_windows() -> bool:
    return sys.platform == "win32"


@dataclass(frozen=True, kw_only=True)
class Isolated:
    """How a program run by ``run_isolated`` ended."""

    returncode: int | None
    """Exit status (negative: killed by that signal on POSIX); None when it timed out or
    could not start."""
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    start_error: str | None = None
    """Why the program could not be started, if it could not."""


def kill_tree(proc: subprocess.Popen[str]) -> None:
    """Kill a child started by ``run_isolated`` and everything it started."""
    if sys.platform == "win32":
        # taskkill /T ends the child's own children too; kill() alone would leave them.
        subprocess.run(
            ["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True, check=False
        )
        proc.kill()
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # start_new_session: its pgid is its pid
    except (ProcessLookupError, PermissionError):
        if proc.returncode is None:
            proc.kill()


class _Children:
    """The children ``run_isolated`` started that still run, so that Ctrl-C can end them.

    Ctrl-C reaches only this process (each child has a session of its own) and only its main
    thread; the children are waited for in worker threads, which would otherwise wait out
    each child's whole timeout. Process-wide on purpose: it mirrors the process table.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[str]] = set()
        self._stopping = False
        self.stopped = 0
        """How many children ``stop`` ended (for the interruption message)."""

    def add(self, proc: subprocess.Popen[str]) -> bool:
        """Track ``proc``; False (and killed) when an interruption is already under way."""
        with self._lock:
            if not self._stopping:
                self._running.add(proc)
                return True
        kill_tree(proc)
        return False

    def discard(self, proc: subprocess.Popen[str]) -> None:
        with self._lock:
            self._running.discard(proc)

    def stop(self) -> int:
        """Kill every running child's process group; children started later are killed at
        once. Returns how many were running."""
        with self._lock:
            self._stopping = True
            running = list(self._running)
            self._running.clear()
        for proc in running:
            kill_tree(proc)
        self.stopped += len(running)
        return len(running)

    @property
    def stopping(self) -> bool:
        """An interruption is under way (``stop`` ran, ``reset`` not yet)."""
        return self._stopping

    def reset(self) -> None:
        """Allow children again, once the interrupted work has ended."""
        with self._lock:
            self._stopping = False


CHILDREN = _Children()


def stop_children() -> int:
    """End every child of ``run_isolated`` still running (their whole process groups)."""
    return CHILDREN.stop()


@contextlib.contextmanager
def children_end_on_interrupt(pool: Executor) -> Iterator[None]:
    """Inside ``with pool:``: on Ctrl-C, end the running children and drop the queued ones,
    so that leaving the pool (which waits for its threads) takes no longer than a kill."""
    try:
        yield
    except KeyboardInterrupt:
        stop_children()
        try:
            # The workers' children are dead: their threads end at once. Queued work is
            # dropped; a worker between two children is refused a new one meanwhile.
            pool.shutdown(wait=True, cancel_futures=True)
        finally:
            CHILDREN.reset()  # this process (a notebook, a test) may start children again
        raise


def run_isolated(
    argv: Sequence[str], *, timeout: float, env: Mapping[str, str], grace: float = 5.0
) -> Isolated:
    """Run a program that may crash or hang (an import of the user's packages, a kernel).

    It gets a process group of its own, so a timeout (or Ctrl-C here) ends it together with
    the helpers it started (torch.compile workers would otherwise hold the pipes open).
    Never raises for the program's sake; KeyboardInterrupt still propagates, child killed.
    """
    kwargs: dict[str, object] = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        kwargs["start_new_session"] = True
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=dict(env),
            **kwargs,  # type: ignore[call-overload]
        )
    except OSError as exc:
        return Isolated(
            returncode=None,
            stdout="",
            stderr="",
            seconds=0.0,
            start_error=f"could not start {argv[0]}: {exc.strerror or exc}",
        )
    if not CHILDREN.add(proc):  # Ctrl-C came first: this child is not wanted any more
        proc.communicate()
        return Isolated(
            returncode=proc.returncode,
            stdout="",
            stderr="",
            seconds=time.perf_counter() - start,
            start_error="interrupted (Ctrl-C) before it ran",
        )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        try:
            stdout, stderr = proc.communicate(timeout=grace)
        except subprocess.TimeoutExpired:  # a grandchild holds the pipes open; give up on them
            stdout, stderr = "", ""
        return Isolated(
            returncode=None,
            stdout=stdout,
            stderr=stderr,
            seconds=time.perf_counter() - start,
            timed_out=True,
        )
    finally:
        CHILDREN.discard(proc)
        if proc.returncode is None:  # interrupted (Ctrl-C): do not leave the child running
            kill_tree(proc)
            proc.wait()
    kill_tree(proc)  # stragglers left in the child's process group, if any
    return Isolated(
        returncode=proc.returncode,
        stdout=stdout,
        stderr=stderr,
        seconds=time.perf_counter() - start,
    )
