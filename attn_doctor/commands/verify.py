"""``attn-doctor verify``: prove each backend with a real kernel launch and a model forward."""

from __future__ import annotations

import sys

import click

from attn_doctor.backends import BackendName, parse_backend
from attn_doctor.errors import ExitCode, UsageError
from attn_doctor.verify.runner import DEFAULT_TIMEOUT, VerifyReport


def _require_torch() -> None:
    """``UsageError`` when torch is not installed: every check launches a torch kernel, so
    there is nothing to verify (twelve "FAILED" rows would say less than this one line)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise UsageError(
            f"cannot verify: torch is not installed in this environment ({sys.executable})",
            hint=f"Install torch first: {sys.executable} -m pip install torch",
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
) -> None:
    """Launch each backend's kernel on random inputs against a reference, then run a tiny model
    with each attn_implementation against eager.

    BACKEND names: flash_attn_2 (fa2), flash_attn_3, flash_attn_4, xformers, unsloth,
    sdpa_math, sdpa_cpu_fused, sdpa_flash, sdpa_mem_efficient, sdpa_cudnn, flex_attention,
    eager. Default: all of them. Exit 1 when a backend that can run here fails.
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
        render_verify(report)
    sys.exit(int(code))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"


def render_verify(report: VerifyReport) -> None:
    """The people's table: one row per backend."""
    from rich.table import Table

    from attn_doctor.report.console import make_console

    console = make_console()
    table = Table(title=f"attn-doctor verify ({report.device})", show_lines=False)
    for col in ("backend", "kernel", "max err / allowed", "model", "logits diff", "note"):
        table.add_column(col)
    for v in report.backends:
        kernel: str = "-" if v.kernel is None else v.kernel.status
        if v.unsloth is not None:
            kernel = f"unsloth {v.unsloth.status}"
        err = (
            "-"
            if v.kernel is None or v.kernel.max_error is None
            else f"{_fmt(v.kernel.max_error)} / {_fmt(v.kernel.allowed)}"
        )
        ran = [r for r in v.model if r.status != "skipped"]
        model = ", ".join(f"{r.family}:{r.status}" for r in ran) or "-"
        diffs = [r.logits_max_diff for r in ran if r.logits_max_diff is not None]
        verdict = {True: "[green]ok[/]", False: "[red]FAILED[/]", None: "[dim]n/a[/]"}[v.passed]
        note = v.failure or "; ".join(v.notes)
        table.add_row(
            f"{v.backend} {verdict}",
            kernel,
            err,
            model,
            _fmt(max(diffs)) if diffs else "-",
            note[:160],
        )
    console.print(table)
    if report.model is not None and report.model.declared:
        for d in report.model.declared:
            console.print(
                f"{d.family} ({d.model_class}) declares: sdpa={d.sdpa} "
                f"flash_attn={d.flash_attn} flex_attn={d.flex_attn}"
            )
    if report.model is not None and report.model.reason:
        console.print(f"model check: {report.model.reason}")
    console.print("[green]all usable backends passed[/]" if report.ok else "[red]failures[/]")
