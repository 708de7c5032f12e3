"""``attn-doctor verify``: prove each backend with a real kernel launch and a model forward."""

from __future__ import annotations

import sys

import click

from attn_doctor.backends import BackendName, parse_backend
from attn_doctor.errors import ExitCode, UsageError
from attn_doctor.report.verify_view import render_verify
from attn_doctor.shell import join_command
from attn_doctor.verify.runner import DEFAULT_TIMEOUT


def _require_torch() -> None:
    """``UsageError`` when torch is not installed: every check launches a torch kernel, so
    there is nothing to verify (twelve "FAILED" rows would say less than this one line)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise UsageError(
            f"cannot verify: torch is not installed in this environment ({sys.executable})",
            hint="install torch first:\n  "
            + join_command([sys.executable, "-m", "pip", "install", "torch"]),
        )


@click.command("verify")
@click.argument("backend_names", nargs=-1, metavar="[BACKEND]...")
@click.option("--json", "json_mode", is_flag=True, help="Print one versioned JSON document.")
@click.option(
    "--model",
    "model",
    default=None,
    metavar="PATH_OR_ID",
    help="Use this model's config (local path, or the local cache offline) shrunk to 2 layers.",
)
@click.option("--trust-remote-code", is_flag=True, help="Allow the model's own code (--model).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1.0),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds each child process (one backend's kernels, the model checks) may take.",
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default=None,
    help="Where to run (default: cuda when torch sees a GPU, else cpu).",
)
@click.option(
    "--family",
    "families",
    multiple=True,
    type=click.Choice(["llama", "qwen2", "gemma"]),
    help="Model families for the model check (repeatable; default: llama and qwen2).",
)
@click.option("--quick", is_flag=True, help="A smaller case matrix (one dtype).")
@click.option("--no-model", is_flag=True, help="Kernel checks only, no model forward.")
@click.option(
    "--verbose", "-v", is_flag=True, help="Also show the errors against what was allowed."
)
def verify_command(
    *,
    backend_names: tuple[str, ...],
    json_mode: bool,
    model: str | None,
    trust_remote_code: bool,
    timeout: float,
    device: str | None,
    families: tuple[str, ...],
    quick: bool,
    no_model: bool,
    verbose: bool,
) -> None:
    """Launch each backend's kernel on random inputs against a reference, then run a tiny model
    with each attn_implementation against eager.

    BACKEND names: flash_attn_2 (fa2), flash_attn_3, flash_attn_4, xformers, unsloth,
    sdpa_math, sdpa_cpu_fused, sdpa_flash, sdpa_mem_efficient, sdpa_cudnn, flex_attention,
    eager. Default: all of them.

    \b
    Exit 0: every backend named was verified; with none named, nothing
            failed and at least one backend was verified.
    Exit 1: a backend failed, a named backend could not be verified here
            (not installed, needs CUDA), or nothing was verified.
    Exit 2: bad input, or --device cuda where torch sees no CUDA device.
    """
    from attn_doctor.report.console import make_console
    from attn_doctor.report.envelope import make_envelope, write_envelope
    from attn_doctor.verify.runner import verify_backends

    backends: list[BackendName] = [parse_backend(name) for name in backend_names]
    _require_torch()
    errors = make_console(stderr=True)
    # Progress goes to stderr, and only to a terminal: stdout stays the table or the envelope.
    with errors.status("verifying...") as status:
        report = verify_backends(
            backends or None,
            device=device,
            timeout=timeout,
            model=model,
            trust_remote_code=trust_remote_code,
            families=families or None,
            include_model=not no_model,
            quick=quick,
            progress=status.update if errors.is_terminal else None,
        )
    code = ExitCode.OK if report.ok else ExitCode.PROBLEMS
    if json_mode:
        write_envelope(make_envelope("verify", result=report, exit_code=code))
    else:
        render_verify(report, verbose=verbose)
    sys.exit(int(code))
