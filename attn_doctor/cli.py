"""Command line entry point: wires probe -> plan -> act -> verify -> report in a straight line.

``main()`` is the only place that turns exceptions into exit codes (see ``errors.ExitCode``).
It also keeps a closed pipe (``attn-doctor check | head -1``) from turning into an error: the
rest of the output is dropped and the command exits with its own code.
Each subcommand lives in ``attn_doctor.commands.<name>`` and is registered below.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import io
import os
import sys
import traceback

import click

from attn_doctor._version import __version__
from attn_doctor.errors import EXIT_CODE_SUMMARY, AttnDoctorError, ExitCode, UsageError
from attn_doctor.report.envelope import make_envelope, write_envelope

# Subcommands, imported only when run: `check` must not pay for bench, verify or install.
COMMANDS: dict[str, str] = {
    "check": "attn_doctor.commands.check:check_command",
    "explain": "attn_doctor.commands.explain:explain_command",
    "install": "attn_doctor.commands.install:install_command",
    "download": "attn_doctor.commands.download:download_command",
    "verify": "attn_doctor.commands.verify:verify_command",
    "bench": "attn_doctor.commands.bench:bench_command",
    "fleet": "attn_doctor.commands.fleet:fleet_command",
    "index": "attn_doctor.commands.index:index_group",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command


_HELP = f"""Get a fast attention backend working on this machine, and prove it.

    \b
    attn-doctor check            what is here, what works, what is wrong and why, the fix
    attn-doctor check --deep     ... also import each package in a child process
    attn-doctor install --auto   pick, install and prove the best backend, never moving torch
    attn-doctor verify           real kernel launches vs a reference, and a small model forward
    attn-doctor bench            each backend's speed and memory on this machine
    attn-doctor explain TEXT     an error message in, its cause and this machine's fix out
    attn-doctor fleet DIR|--ray  many machines: which nodes are ready, which differ and why
    attn-doctor index update     read newer releases from the registries into the user's cache
    ... --json                   one versioned JSON document on stdout

    Exit codes: {EXIT_CODE_SUMMARY}.
    """


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    invoke_without_command=True,
    help=_HELP,
)
@click.version_option(__version__, prog_name="attn-doctor")
@click.option(
    "--debug",
    is_flag=True,
    help="On an error, also print the Python traceback (for bug reports).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    del debug  # read from argv by main(), which must know it even when parsing fails
    if ctx.invoked_subcommand is None:  # bare `attn-doctor`: the help, not an error
        click.echo(ctx.get_help())


def _wants_json(argv: list[str]) -> bool:
    return "--json" in argv


def _wants_debug(argv: list[str]) -> bool:
    """``--debug`` before the subcommand (the group's option), or anywhere: a bug report
    needs the traceback even when the arguments after it did not parse."""
    return "--debug" in argv


def _command_name(argv: list[str]) -> str:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return ""


class _PipeWriter(io.RawIOBase):
    """Writes to a file descriptor; once its reader has gone (EPIPE), drops the rest.

    Python ignores SIGPIPE, so a write to a closed pipe raises ``BrokenPipeError`` wherever
    it happens (deep inside rich, or while flushing at exit). Below the text layer, the
    command never sees it and ends with its own exit code, as it would with a reader.
    """

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self.reader_gone = False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def write(self, data: object) -> int:
        size = len(memoryview(data))  # type: ignore[arg-type]
        if self.reader_gone:
            return size
        try:
            return os.write(self._fd, data)  # type: ignore[arg-type]
        except OSError as exc:
            # EINVAL: what Windows reports for a pipe whose reader has gone.
            if exc.errno not in (errno.EPIPE, errno.EINVAL):
                raise
        self.reader_gone = True
        try:  # later writers of this descriptor (at exit, a child) find /dev/null instead
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._fd)
            os.close(null)
        except OSError:
            pass
        return size


def _guard_stream(name: str) -> io.TextIOWrapper | None:
    """Put ``sys.<name>`` (stdout or stderr) behind a ``_PipeWriter``, when it is the real
    stream of this process (a test harness's replacement is left alone)."""
    stream = getattr(sys, name)
    if stream is None or stream is not getattr(sys, f"__{name}__"):
        return None
    try:
        fd = stream.fileno()
        stream.flush()
    except (AttributeError, OSError, ValueError):
        return None
    guarded = io.TextIOWrapper(
        io.BufferedWriter(_PipeWriter(fd)),
        encoding=stream.encoding,
        errors=stream.errors,
        line_buffering=stream.line_buffering,
    )
    setattr(sys, name, guarded)
    return guarded


def _release_streams(guarded: dict[str, io.TextIOWrapper | None]) -> None:
    for name, stream in guarded.items():
        if stream is None:
            continue
        with contextlib.suppress(OSError):
            stream.flush()
        setattr(sys, name, getattr(sys, f"__{name}__"))


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with a documented exit code (a closed pipe changes nothing)."""
    guarded = {name: _guard_stream(name) for name in ("stdout", "stderr")}
    try:
        _main(argv)
    finally:
        _release_streams(guarded)


def _main(argv: list[str] | None) -> None:
    # Children ended by an earlier run in this process (tests, notebooks) are not this run's;
    # the module is not imported just to learn that none were.
    run_module = sys.modules.get("attn_doctor.probe.runner")
    stopped_before = run_module.CHILDREN.stopped if run_module is not None else 0
    args = list(sys.argv[1:] if argv is None else argv)
    json_mode = _wants_json(args)
    debug = _wants_debug(args)
    try:
        cli.main(args=args, prog_name="attn-doctor", standalone_mode=False)
    except AttnDoctorError as exc:
        if debug:
            traceback.print_exc(file=sys.stderr)
        _fail(exc, json_mode=json_mode, command=_command_name(args))
    except click.exceptions.Abort:
        _fail(
            AttnDoctorError(_interrupted(stopped_before)),
            json_mode=json_mode,
            command=_command_name(args),
            code=ExitCode.INTERRUPTED,
        )
    except click.ClickException as exc:
        _fail(UsageError(exc.format_message()), json_mode=json_mode, command=_command_name(args))
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _fail(
            AttnDoctorError(_interrupted(stopped_before)),
            json_mode=json_mode,
            command=_command_name(args),
            code=ExitCode.INTERRUPTED,
        )
    except Exception as exc:  # a bug: say so in one line, the traceback with --debug
        if debug:
            traceback.print_exc(file=sys.stderr)
        hint = (
            "This is a bug in attn-doctor; please report it with the traceback above."
            if debug
            else "This is a bug in attn-doctor; run again with --debug "
            "(attn-doctor --debug ...) and report it with the traceback."
        )
        _fail(
            AttnDoctorError(f"internal error: {type(exc).__name__}: {_one_line(exc)}", hint=hint),
            json_mode=json_mode,
            command=_command_name(args),
            code=ExitCode.INTERNAL,
        )
    sys.exit(ExitCode.OK)


def _interrupted(stopped_before: int) -> str:
    """What Ctrl-C stopped: the child processes ended with it in this run, if any."""
    from attn_doctor.probe.runner import CHILDREN

    CHILDREN.stop()  # any still running (a command that did not end them itself)
    CHILDREN.reset()
    total = CHILDREN.stopped - stopped_before
    if total == 0:
        return "interrupted (Ctrl-C)"
    if total == 1:
        return "interrupted (Ctrl-C); 1 child process was ended, with its process group"
    return f"interrupted (Ctrl-C); {total} child processes were ended, with their process groups"


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(
    exc: AttnDoctorError,
    *,
    json_mode: bool,
    command: str,
    code: ExitCode | None = None,
) -> None:
    exit_code = code if code is not None else exc.exit_code
    if exit_code == ExitCode.OK:  # an early, successful answer (e.g. nothing to install)
        if json_mode:
            result = {"note": exc.message}
            if exc.hint:
                result["hint"] = exc.hint
            write_envelope(make_envelope(command, result=result))
        else:
            click.echo(exc.message)
            _echo_hint(exc.hint, err=False)
        sys.exit(int(exit_code))
    if json_mode:
        write_envelope(make_envelope(command, exit_code=exit_code, error=exc))
    else:
        click.echo(f"attn-doctor: error: {exc.message}", err=True)
        _echo_hint(exc.hint, err=True)
    sys.exit(int(exit_code))


def _echo_hint(hint: str | None, *, err: bool) -> None:
    """``  hint: FIRST LINE`` and the hint's further lines (commands, each on its own line)
    indented under it, never folded."""
    if not hint:
        return
    first, *rest = hint.splitlines()
    click.echo(f"  hint: {first}", err=err)
    for line in rest:
        click.echo(f"  {line}", err=err)
