"""The human view of ``attn-doctor check``: machine, packages, findings, backends, ranking."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from attn_doctor.backends import BACKENDS
from attn_doctor.diagnosis import Diagnosis, Finding, Tri
from attn_doctor.facts import Environment, ImportResult
from attn_doctor.report.console import make_console

if TYPE_CHECKING:
    from attn_doctor.report.check_result import ImportExplanation

_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_SEVERITY_MARK = {"error": "✗ ERROR", "warning": "! WARN", "info": "i INFO"}
_TRI_STYLE: dict[Tri, str] = {"yes": "green", "no": "red", "unknown": "dim"}


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.1f} GiB"


def _or_unknown(env: Environment, value: object, field: str) -> str:
    if value is not None and value != "":
        return str(value)
    reason = env.unknown_reason(field)
    return f"unknown ({reason})" if reason else "—"


def machine_table(env: Environment) -> Table:
    """Key facts, one row each."""
    t = Table(title="Machine", box=box.SIMPLE_HEAD, show_header=False, title_justify="left")
    t.add_column("fact", style="bold")
    t.add_column("value", overflow="fold")
    h = env.host
    os_text: str = h.os
    if h.distro_name:
        os_text += f" · {h.distro_name}"
    elif h.os_release:
        os_text += f" {h.os_release}"
    if h.wsl:
        os_text += f" · WSL{h.wsl}"
    if h.in_container:
        os_text += " · container"
    t.add_row("OS", os_text)
    libc = f"{h.libc} {h.libc_version}" if h.libc and h.libc_version else None
    t.add_row("CPU / libc", f"{h.arch or '?'} · {h.cpu_count or '?'} CPUs · {libc or '—'}")
    t.add_row("RAM", f"{_gib(h.ram_total_bytes)} total, {_gib(h.ram_available_bytes)} free")
    py = env.python
    t.add_row(
        "Python",
        f"{py.version} ({py.implementation}, {py.abi_tag or '?'})"
        + (" · venv" if py.in_venv else "")
        + (f" · conda:{py.conda_env}" if py.conda_env else ""),
    )
    d = env.driver
    if d.version:
        t.add_row("NVIDIA driver", f"{d.version} (supports CUDA ≤ {d.cuda_version or '?'})")
    else:
        t.add_row("NVIDIA driver", _or_unknown(env, None, "driver.version"))
    if env.gpus:
        for g in env.gpus:
            arch = f"sm_{g.sm}" if g.sm is not None else (g.gfx_arch or "")
            cc = f"cc {g.compute_capability} ({arch})" if g.compute_capability else arch
            t.add_row(f"GPU {g.index}", f"{g.name} · {cc} · {_gib(g.memory_total_bytes)}")
    else:
        t.add_row("GPU", _or_unknown(env, None, "gpus"))
    ct = env.cuda_toolkit
    nvcc = f"nvcc {ct.release} ({ct.nvcc_path})" if ct.release else _or_unknown(
        env, None, "cuda_toolkit.nvcc_version"
    )
    t.add_row("CUDA toolkit", nvcc + (f" · CUDA_HOME={ct.cuda_home}" if ct.cuda_home else ""))
    if ct.rocm_version:
        t.add_row("ROCm", ct.rocm_version)
    if env.torch is None:
        t.add_row("torch", Text("not installed", style="red"))
    else:
        tf = env.torch
        flavour = {
            "cuda": f"CUDA {tf.cuda}",
            "rocm": f"ROCm/HIP {tf.hip}",
            "cpu": "CPU-only",
            "xpu": "Intel XPU",
            "unknown": "unknown build",
        }[tf.build]
        abi = "" if tf.cxx11_abi is None else f" · C++11 ABI {'TRUE' if tf.cxx11_abi else 'FALSE'}"
        t.add_row("torch", f"{tf.version} · {flavour}{abi}")
    rt = env.torch_runtime
    if rt is not None and rt.error is None:
        t.add_row(
            "torch runtime",
            f"cuda available={rt.cuda_available} · devices={rt.device_count} · "
            f"archs={' '.join(rt.arch_list) or '—'}",
        )
    return t


def packages_table(env: Environment) -> Table:
    t = Table(title="Attention packages", box=box.SIMPLE_HEAD, title_justify="left")
    t.add_column("package")
    t.add_column("version")
    t.add_column("built for", overflow="fold")
    if env.deep:
        t.add_column("import", overflow="fold")
    for pkg in env.packages:
        built = ", ".join(f"{k}={v}" for k, v in pkg.build_info) or "—"
        row: list[str | Text] = [pkg.name, pkg.version, built]
        if env.deep:
            row.append(_import_text(env, pkg.name))
        t.add_row(*row)
    return t


def _import_text(env: Environment, dist: str) -> Text:
    modules = {
        b.distribution: b.module for b in BACKENDS.values() if b.distribution and b.module
    }
    module = modules.get(dist, dist.replace("-", "_"))
    res: ImportResult | None = env.import_result(module)
    if res is None:
        return Text("—", style="dim")
    if res.status == "ok":
        return Text("ok", style="green")
    return Text(f"{res.status}: {res.detail or ''}", style="red")


def findings_view(console: Console, findings: tuple[Finding, ...]) -> None:
    if not findings:
        console.print(Text("No problems found.", style="green"))
        return
    order = {"error": 0, "warning": 1, "info": 2}
    for f in sorted(findings, key=lambda f: order[f.severity]):
        console.print(
            Text.assemble(
                (f"{_SEVERITY_MARK[f.severity]:8}", _SEVERITY_STYLE[f.severity]),
                (f.title, "bold"),
                (f"  [{f.id}]", "dim"),
            )
        )
        console.print(f"         why: {f.cause}", highlight=False)
        for ev in f.evidence:
            console.print(Text(f"         · {ev.fact} = {ev.value}", style="dim"))
        if f.fix:
            console.print(Text.assemble(("         fix: ", "bold"), (f.fix, "green")))
        if f.fix_note:
            console.print(f"         note: {f.fix_note}", highlight=False)


def backends_table(diagnosis: Diagnosis) -> Table:
    t = Table(title="Backends", box=box.SIMPLE_HEAD, title_justify="left")
    for col in ("backend", "installed", "imports", "compatible", "usable", "why"):
        t.add_column(col, overflow="fold" if col == "why" else "ellipsis")
    for b in diagnosis.backends:
        t.add_row(
            BACKENDS[b.backend].title
            + (f" {b.version}" if b.version and BACKENDS[b.backend].distribution else ""),
            Text(b.installed, style=_TRI_STYLE[b.installed]),
            Text(b.importable, style=_TRI_STYLE[b.importable]),
            Text(b.compatible, style=_TRI_STYLE[b.compatible]),
            Text("yes" if b.usable else "no", style="bold green" if b.usable else "red"),
            b.reason,
        )
    return t


def recommendation_table(diagnosis: Diagnosis) -> Table:
    t = Table(
        title="Recommendation (one decision: check, install --auto and the runtime agree)",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    t.add_column("#", no_wrap=True)
    t.add_column("backend", max_width=28)
    t.add_column("attn_implementation", max_width=20, overflow="fold")
    t.add_column("status", max_width=9)
    t.add_column("speed", max_width=13)
    t.add_column("how, why", overflow="fold", ratio=1)
    styles = {"ready": "green", "install": "yellow", "blocked": "red"}
    for r in diagnosis.recommendations:
        title = BACKENDS[r.backend].title
        if r.kernel is not None:
            title += f"\n→ runs {BACKENDS[r.kernel].title.removeprefix('torch SDPA: ')}"
        speed = "—"
        if r.score is not None:
            speed = f"{r.score:.3g} TFLOP/s" if r.measured else f"×{r.score:.2g} (prior)"
        t.add_row(
            str(r.rank) + (f" (GPU {r.gpu_index})" if r.gpu_index is not None else ""),
            title,
            r.attn_implementation or "—",
            Text(r.status + ("" if r.auto else " (manual)"), style=styles[r.status]),
            speed,
            r.reason,
        )
    return t


def render_facts(
    env: Environment, *, snapshot: Path | None = None, console: Console | None = None
) -> None:
    """The report's first part, the machine and its packages: it needs only the facts, so
    ``check`` prints it before the diagnosis is computed."""
    out = console or make_console()
    if snapshot is not None:
        out.print(Text(f"Diagnosing the machine recorded in {snapshot}", style="bold"))
    out.print(machine_table(env))
    if env.packages:
        out.print(packages_table(env))


def render_diagnosis(
    diagnosis: Diagnosis,
    *,
    console: Console | None = None,
    import_explanations: tuple[ImportExplanation, ...] = (),
) -> None:
    """The report's second part: findings, why imports failed, backends, recommendation."""
    out = console or make_console()
    out.print(Text("Findings", style="bold underline"))
    findings_view(out, diagnosis.findings)
    if import_explanations:
        from attn_doctor.report.explain_view import render_explanations

        out.print()
        out.print(Text("Why the imports failed", style="bold underline"))
        for item in import_explanations:
            out.print(Text(f"{item.module}:", style="bold"))
            render_explanations(out, item.explanation)
    out.print()
    out.print(backends_table(diagnosis))
    out.print(recommendation_table(diagnosis))
    from attn_doctor.report.framework_view import render_framework_knobs

    render_framework_knobs(out, diagnosis)
    if any(r.backend == "xformers" for r in diagnosis.recommendations):
        out.print(
            Text(
                "¹ not a transformers value by itself: call "
                "attn_doctor.register_xformers_attention() first",
                style="dim",
            )
        )
    for line in diagnosis.folklore:
        out.print(Text.assemble(("Folklore check: ", "bold magenta"), line))
    errors = sum(f.severity == "error" for f in diagnosis.findings)
    warnings = sum(f.severity == "warning" for f in diagnosis.findings)
    out.print(
        Text(
            f"{errors} error(s), {warnings} warning(s)",
            style="bold red" if errors else ("yellow" if warnings else "bold green"),
        )
    )
