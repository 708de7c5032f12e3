"""``attn-doctor bench``: each backend's measured speed and memory, against the ceiling."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import get_args

import click

from attn_doctor.errors import ExitCode, UsageError


def _int_list(text: str | None, option: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UsageError(f"{option}: expected integers separated by commas, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise UsageError(f"{option}: expected positive integers, got {text!r}")
    return values


@click.command("bench")
@click.argument("backends", nargs=-1)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    help="Batch size (default: 16k tokens / seqlen on GPU, 1 on CPU).",
)
@click.option(
    "--heads",
    type=click.IntRange(min=1),
    help="Query heads (default: 2048 / head dim on GPU, 8 on CPU).",
)
@click.option(
    "--kv-heads",
    type=click.IntRange(min=1),
    help="Key/value heads (grouped-query attention; default: = heads).",
)
@click.option(
    "--head-dim",
    "head_dim",
    help="Head dimension(s), e.g. 128 or 64,128 (default: 64,128 on GPU, 64 on CPU).",
)
@click.option(
    "--seqlen",
    help="Sequence length(s), e.g. 4096 or 512,1k,2k (default: 512…16k on GPU, 128…1024 on CPU).",
)
@click.option(
    "--dtype",
    "dtype",
    help="bf16, fp16 or fp32, or a comma list (default: fp16 on GPU, fp32,bf16 on CPU).",
)
@click.option(
    "--causal/--no-causal", default=None, help="Only causal / only full attention (default: both)."
)
@click.option(
    "--fwd", "mode", flag_value="fwd", default=True, help="Time the forward pass (default)."
)
@click.option("--fwd-bwd", "mode", flag_value="fwd_bwd", help="Time forward + backward.")
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
@click.option(
    "--reps",
    type=click.IntRange(min=3),
    help="Timed repetitions per point (default: 30 GPU, 10 CPU; capped at ~2 s per point).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=10.0),
    default=900.0,
    show_default=True,
    help="Seconds each backend's child process may take for its whole sweep.",
)
@click.option(
    "--no-baseline", is_flag=True, help="Do not add eager as the baseline when backends are named."
)
@click.option(
    "--no-save", is_flag=True, help="Do not store the result in the cache that `check` reads."
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a PNG of TFLOP/s against seqlen (needs matplotlib).",
)
@click.option("--json", "json_mode", is_flag=True, help="Print one versioned JSON document.")
def bench_command(  # click passes every option by keyword
    *,
    backends: tuple[str, ...],
    batch: int | None,
    heads: int | None,
    kv_heads: int | None,
    head_dim: str | None,
    seqlen: str | None,
    dtype: str | None,
    causal: bool | None,
    mode: str,
    device: str,
    reps: int | None,
    timeout: float,
    no_baseline: bool,
    no_save: bool,
    plot_path: Path | None,
    json_mode: bool,
) -> None:
    """Measure each attention backend's speed and memory on this machine.

    \b
    Each backend first passes a correctness check, then is timed at every shape in its own
    child process (a crash or hang loses that backend, not the run). Figures are TFLOP/s as
    flash-attn's benchmarks count them, the median of many reps with its spread, and the
    fraction of this device's measured dense matmul rate. The defaults on a GPU are
    flash-attn's published benchmark shapes.

    \b
    attn-doctor bench                          every backend that can run here
    attn-doctor bench fa2 sdpa --seqlen 4k,8k --head-dim 128 --causal
    attn-doctor bench --device cpu --seqlen 256 --json
    """
    from attn_doctor.backends import BackendName, parse_backend
    from attn_doctor.bench.shapes import DType, build_shapes, parse_seqlens

    names: list[BackendName] = [parse_backend(b) for b in backends]
    try:
        seqlens = parse_seqlens(seqlen) if seqlen is not None else None
    except ValueError as exc:
        raise UsageError(f"--seqlen: {exc}") from None
    dtypes: tuple[DType, ...] | None = None
    if dtype is not None:
        allowed = get_args(DType)
        items = tuple(x.strip().lower() for x in dtype.split(",") if x.strip())
        bad = [x for x in items if x not in allowed]
        if bad or not items:
            raise UsageError(
                f"--dtype: {bad[0] if bad else dtype!r} is not one of bf16, fp16, fp32"
            )
        dtypes = items  # type: ignore[assignment]
    head_dims = _int_list(head_dim, "--head-dim")
    if plot_path is not None:
        from attn_doctor.bench.plot import require_matplotlib

        require_matplotlib()

    from attn_doctor.bench.runner import probe_device, run_bench
    from attn_doctor.report.console import make_console

    err = make_console(stderr=True)
    info = probe_device(None if device == "auto" else device)  # type: ignore[arg-type]
    try:
        shapes = build_shapes(
            device=info.device,
            seqlens=seqlens,
            batch=batch,
            heads=heads,
            kv_heads=kv_heads,
            head_dims=head_dims,
            dtypes=dtypes,
            causal=causal,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    result = run_bench(
        info=info,
        shapes=shapes,
        backends=names,
        mode="fwd_bwd" if mode == "fwd_bwd" else "fwd",
        reps=reps,
        timeout=timeout,
        baseline=not no_baseline,
        progress=lambda msg: err.print(f"[dim]bench: {msg}[/dim]"),
    )
    notes = list(result.notes)
    if not no_save and result.recommendation is not None:
        from attn_doctor.bench.cache import save_bench_result

        try:
            path = save_bench_result(result)
            if path is None:
                notes.append("not saved: no figure passed the quality gate")
            else:
                kept = "" if not result.unreliable else " (reliable figures only)"
                notes.append(f"saved for `attn-doctor check` in {path}{kept}")
        except OSError as exc:
            notes.append(f"could not save the result to the cache: {exc}")
    elif not no_save:
        notes.append("not saved: no backend produced a reliable, checked figure")
    if plot_path is not None:
        from attn_doctor.bench.plot import write_plot

        notes.append(f"plot written to {write_plot(result, plot_path)}")
    import dataclasses

    result = dataclasses.replace(result, notes=tuple(notes))
    requested = set(names)
    failed = [
        s
        for s in result.sweeps
        if s.status not in ("ok", "unavailable")
        or (s.status == "unavailable" and s.backend in requested)
    ]
    code = ExitCode.PROBLEMS if failed or result.recommendation is None else ExitCode.OK
    if json_mode:
        from attn_doctor.report.envelope import make_envelope, write_envelope

        write_envelope(make_envelope("bench", result=result, exit_code=code))
    else:
        from attn_doctor.bench.view import render_bench

        render_bench(result, make_console())
    sys.exit(int(code))
