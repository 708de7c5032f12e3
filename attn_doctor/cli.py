"""Command line entry point: wires probe -> plan -> act -> verify -> report in a straight line.

``main()`` is the only place that turns exceptions into exit codes (see ``errors.ExitCode``).
Each subcommand lives in ``attn_doctor.commands.<name>`` and is registered below.
"""

from __future__ import annotations

import importlib
import sys
import traceback

import click

from attn_doctor._version import __version__
from attn_doctor.errors import AttnDoctorError, ExitCode, UsageError
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


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    invoke_without_command=True,
)
@click.version_option(__version__, prog_name="attn-doctor")
@click.option(
    "--debug",
    is_flag=True,
    help="On an error, also print the Python traceback (for bug reports).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Get a fast attention backend working on this machine, and prove it.

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

    Exit codes: 0 healthy, 1 problems found, 2 usage error or bad input file,
    3 internal error, 4 install failed (rolled back), 5 another install holds the lock.
    """
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


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with a documented exit code."""
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
            AttnDoctorError("interrupted"),
            json_mode=json_mode,
            command=_command_name(args),
            code=ExitCode.INTERRUPTED,
        )
    except click.ClickException as exc:
        _fail(UsageError(exc.format_message()), json_mode=json_mode, command=_command_name(args))
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED)
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
            write_envelope(make_envelope(command, result={"note": exc.message}))
        else:
            click.echo(exc.message)
        sys.exit(int(exit_code))
    if json_mode:
        write_envelope(make_envelope(command, exit_code=exit_code, error=exc))
    else:
        click.echo(f"attn-doctor: error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"  hint: {exc.hint}", err=True)
    sys.exit(int(exit_code))
