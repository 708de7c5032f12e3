"""People's output for ``attn-doctor bench``: rich tables on stdout."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from attn_doctor.bench.results import BackendSweep, BenchPoint, BenchResult
from attn_doctor.bench.shapes import BenchShape


def _unit(result: BenchResult) -> tuple[str, float]:
    best = max(
        (p.tflops for s in result.sweeps for p in s.points if p.tflops is not None), default=0.0
    )
    return ("TFLOP/s", 1.0) if best >= 1.0 else ("GFLOP/s", 1e3)


def _cell(point: BenchPoint | None, scale: float) -> str:
    if point is None:
        return "—"
    if point.status != "ok" or point.tflops is None:
        return point.status
    text = f"{point.tflops * scale:.3g}"
    rel = point.time.relative_iqr if point.time is not None else None
    if rel is not None:
        text += f" ±{rel * 50:.0f}%"
    if point.ceiling_fraction is not None:
        text += f" ({point.ceiling_fraction:.0%})"
    if point.problem is not None:
        text += " unreliable"
    return text


def _mib(point: BenchPoint | None) -> str:
    if point is None or point.peak_memory_bytes is None:
        return "—" if point is None or point.status == "ok" else point.status
    return f"{point.peak_memory_bytes / 2**20:,.0f}"


def _title(shape: BenchShape, mode: str) -> str:
    kv = f" ({shape.kv_heads} kv heads)" if shape.kv_heads != shape.heads else ""
    mask = "causal" if shape.causal else "non-causal"
    return f"{shape.dtype} · {shape.heads} heads{kv} × {shape.head_dim} · {mask} · {mode}"


def _sweep_line(sweep: BackendSweep) -> str:
    if sweep.status == "ok":
        bad = [p for p in sweep.points if p.status != "ok"]
        extra = f", {len(bad)} point(s) not measured ({bad[0].status})" if bad else ""
        return f"[green]ok[/green] checks passed{extra}"
    colour = "yellow" if sweep.status == "unavailable" else "red"
    return f"[{colour}]{sweep.status}[/{colour}] {sweep.detail or ''}"


def render_bench(result: BenchResult, console: Console) -> None:
    """Header, ceilings, per-backend status, one TFLOP/s table (and on CUDA one memory table)
    per shape group, then the recommendation."""
    cc = f" (compute capability {result.compute_capability})" if result.compute_capability else ""
    console.print(
        f"[bold]attn-doctor bench[/bold]  {result.device_name}{cc} · torch {result.torch_version}"
        f" · {'forward + backward' if result.mode == 'fwd_bwd' else 'forward'}"
        f" · median of up to {result.reps} reps"
    )
    unit, scale = _unit(result)
    for c in result.ceilings:
        if c.status != "ok" or c.tflops is None:
            line = f"  matmul ceiling {c.dtype}: not measured ({c.detail})"
        else:
            spread = f" ±{c.time.relative_iqr * 50:.0f}%" if c.time and c.time.relative_iqr else ""
            line = (
                f"  matmul ceiling {c.dtype}: {c.tflops * scale:.3g}{spread} {unit} measured "
                f"({c.size}×{c.size}, median)"
            )
            if c.problem is not None:
                line += f", unreliable: {c.problem}"
        if c.datasheet is not None and c.datasheet_tflops is not None:
            flag = "" if c.datasheet.verified else ", unverified"
            line += (
                f"; datasheet {c.datasheet_tflops * scale:.4g} {unit} dense "
                f"({c.datasheet.name}{flag})"
            )
        console.print(line)
    console.print()
    for sweep in result.sweeps:
        label: str = sweep.backend
        if sweep.backend == "sdpa":
            label = "sdpa (as dispatched by default)"
        console.print(f"  {label:<20} {_sweep_line(sweep)}")
    if result.sdpa_kernel is not None:
        console.print(
            f"  SDPA's default dispatch runs the {result.sdpa_kernel} kernel here "
            "(torch._fused_sdp_choice; torch's printed priority list is not the answer)"
        )
    groups: dict[tuple[object, ...], list[BenchShape]] = {}
    for sweep in result.sweeps:
        for p in sweep.points:
            shapes = groups.setdefault(p.shape.group, [])
            if p.shape not in shapes:
                shapes.append(p.shape)
    timed = [s for s in result.sweeps if s.points]
    for shapes in groups.values():
        shapes.sort(key=lambda s: (s.seqlen, s.batch))
        lookup = {(s.backend, p.shape): p for s in timed for p in s.points}
        table = Table(title=_title(shapes[0], result.mode), title_justify="left")
        table.add_column("seqlen", justify="right")
        table.add_column("batch", justify="right")
        for s in timed:
            table.add_column(f"{s.backend}\n{unit} (% ceiling)", justify="right")
        for shape in shapes:
            table.add_row(
                str(shape.seqlen),
                str(shape.batch),
                *(_cell(lookup.get((s.backend, shape)), scale) for s in timed),
            )
        console.print()
        console.print(table)
        if result.device == "cuda":
            mem = Table(title="peak memory per call, MiB (beyond the inputs)", title_justify="left")
            mem.add_column("seqlen", justify="right")
            for s in timed:
                mem.add_column(s.backend, justify="right")
            for shape in shapes:
                mem.add_row(
                    str(shape.seqlen), *(_mib(lookup.get((s.backend, shape))) for s in timed)
                )
            console.print(mem)
    console.print()
    shaky = [
        (s.backend, p) for s in result.sweeps for p in s.points if p.status == "ok" and p.problem
    ]
    for backend, p in shaky:
        console.print(
            f"  unreliable: {backend} at seqlen {p.shape.seqlen} ({p.shape.dtype}): "
            f"{p.problem}, after {p.attempts} timed loop(s)"
        )
    for note in result.notes:
        console.print(f"  note: {note}")
    rec = result.recommendation
    if rec is None:
        console.print("[red]No backend passed its checks and produced a measurement.[/red]")
    else:
        impl = (
            f' (attn_implementation="{rec.attn_implementation}")' if rec.attn_implementation else ""
        )
        console.print(f"[bold]Recommended here:[/bold] {rec.backend}{impl}: {rec.reason}")
