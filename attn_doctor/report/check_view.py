"""The human view of ``attn-doctor check``: the answer first, then the facts behind it.

Read at 80 columns, top to bottom:

1. the answer in two lines: what to use (the one decision's top choice, and for torch SDPA
   the kernel its dispatch runs), and what to do next (the top fix, or nothing);
2. the interpreter that was inspected, and the machine around it;
3. the problems, each with its cause and its fix on a line of its own;
4. the ranked choices: a table of short text, then the command for each rank under it;
5. with ``--verbose``: every fact, the evidence and sources of each finding, every backend's
   status and why, and what the knowledge base says about failed imports.

Nothing is cut: text wraps at spaces only, and commands, paths and URLs are never split
(a command longer than the line stays whole on its own line). ``--json`` holds all of it.
The view is plain text (``attn_doctor.report.text``): no rich import on ``check``'s path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from attn_doctor.backends import BACKENDS
from attn_doctor.diagnosis import Diagnosis, Finding, Recommendation
from attn_doctor.facts import Environment, GpuFacts
from attn_doctor.report.check_tables import backend_lines, name_of, ranked_lines, split_way
from attn_doctor.report.framework_view import framework_lines
from attn_doctor.report.text import GLUE, Painter, output_painter, output_width, wrap, write_lines

if TYPE_CHECKING:
    from attn_doctor.report.check_result import ImportExplanation

_MARK = {"error": ("✗ ERROR", "red"), "warning": ("! WARN", "yellow"), "info": ("i INFO", "cyan")}
_ORDER = {"error": 0, "warning": 1, "info": 2}
KEY_WIDTH = 10
"""Width of the key column of the facts ("Packages" and two spaces)."""


def render_check(
    env: Environment,
    diagnosis: Diagnosis,
    *,
    snapshot: Path | None = None,
    verbose: bool = False,
    import_explanations: tuple[ImportExplanation, ...] = (),
    stream: IO[str] | None = None,
) -> None:
    """Print the view to ``stream`` (stdout), as wide as ``output_width`` says."""
    import sys

    out = sys.stdout if stream is None else stream
    lines = check_lines(
        env,
        diagnosis,
        width=output_width(out),
        paint=output_painter(out),
        snapshot=snapshot,
        verbose=verbose,
        import_explanations=import_explanations,
    )
    write_lines(lines, out)


def check_lines(
    env: Environment,
    diagnosis: Diagnosis,
    *,
    width: int,
    paint: Painter,
    snapshot: Path | None = None,
    verbose: bool = False,
    import_explanations: tuple[ImportExplanation, ...] = (),
) -> list[str]:
    """The whole view as lines (pure: the golden-file tests call it at 80 and 120 columns)."""
    lines = answer_lines(diagnosis, width=width, paint=paint)
    lines.append("")
    lines += facts_lines(env, width=width, paint=paint, snapshot=snapshot, verbose=verbose)
    lines.append("")
    lines += findings_lines(diagnosis.findings, width=width, paint=paint, verbose=verbose)
    if import_explanations:
        lines.append("")
        lines += import_lines(import_explanations, width=width, paint=paint, verbose=verbose)
    if verbose:
        lines.append("")
        lines += backend_lines(diagnosis, width=width, paint=paint)
    lines.append("")
    lines += ranked_lines(diagnosis, width=width, paint=paint, verbose=verbose)
    knobs = framework_lines(diagnosis, width=width, paint=paint, verbose=verbose)
    if knobs:
        lines.append("")
        lines += knobs
    for text in diagnosis.folklore:
        lines += wrap(text, width, first=paint("Folklore check: ", "bold", "magenta"), indent="")
    lines.append("")
    lines += summary_lines(diagnosis, width=width, paint=paint, verbose=verbose)
    return lines


# --- 1. the answer -------------------------------------------------------------------------


def _top_choices(diagnosis: Diagnosis) -> list[tuple[Recommendation, Recommendation | None]]:
    """Per GPU group: the top choice, and the best choice that works now when the top one
    does not."""
    groups: dict[int | None, list[Recommendation]] = {}
    for rec in diagnosis.recommendations:
        groups.setdefault(rec.gpu_index, []).append(rec)
    out = []
    for recs in groups.values():
        ranked = sorted(recs, key=lambda r: r.rank)
        top = ranked[0]
        ready = next((r for r in ranked if r.status == "ready"), None)
        out.append((top, None if top.status == "ready" else ready))
    return out


def _kernel_phrase(rec: Recommendation) -> str:
    if rec.kernel is None:
        return ""
    kernel = name_of(rec.kernel).removeprefix("torch SDPA: ")
    text = f"runs the {kernel}{'' if kernel.endswith('kernel') else ' kernel'}"
    if rec.activate is not None:
        text += f" ({BACKENDS[rec.activate].title} was measured faster)"
    return text


def _use_text(rec: Recommendation) -> str:
    """``torch SDPA, attn_implementation="sdpa" (ready): runs the cuDNN kernel``."""
    impl = f', attn_implementation="{rec.attn_implementation}"' if rec.attn_implementation else ""
    status = {"ready": "ready", "install": "install it first", "blocked": "blocked: fix below"}
    text = f"{name_of(rec.backend)}{impl} ({status[rec.status]})"
    then = []
    registration = BACKENDS[rec.backend].registration
    if registration and rec.status == "ready":
        then.append(f"call {registration} first")
    if rec.kernel is not None and rec.status == "ready":
        then.append(_kernel_phrase(rec))
    return text + (": " + "; ".join(then) if then else "")


def _next_text(diagnosis: Diagnosis) -> tuple[str, str | None]:
    """What to do next: (a label, a command or instruction shown whole) or (a sentence, None)."""
    errors = [f for f in diagnosis.findings if f.severity == "error"]
    if errors:
        first = errors[0]
        label = "Next"
        if first.fix:
            return label, first.fix
        return f"{label}: {first.title} (no known fix: see below)", None
    tops = _top_choices(diagnosis)
    top = tops[0][0] if tops else None
    if top is not None and top.status == "install":
        command, _detail = split_way(top.way)
        return "Next", command
    if top is not None and top.status == "blocked":
        if top.way.startswith("fix first: "):
            return "Next", top.way.removeprefix("fix first: ")
        return f"Next: {top.way}", None
    warnings = sum(f.severity == "warning" for f in diagnosis.findings)
    if warnings:
        return f"Next: nothing required; {warnings} warning(s) below", None
    return "Next: nothing to do", None


def answer_lines(diagnosis: Diagnosis, *, width: int, paint: Painter) -> list[str]:
    """The first lines: what to use, which kernel runs, what to do next."""
    lines: list[str] = []
    tops = _top_choices(diagnosis)
    for top, ready in tops:
        label = "Use"
        if len(tops) > 1 and top.gpu_index is not None:
            label = f"Use on GPU {top.gpu_index}"
        text = _use_text(top)
        if ready is not None:
            impl = f', "{ready.attn_implementation}"' if ready.attn_implementation else ""
            text += f"; works now: {name_of(ready.backend)}{impl}"
        lines += wrap(text, width, first=paint(label, "bold", "green") + " ", indent="    ")
    if not tops:
        lines.append(paint("Use: nothing (no backend can run here)", "bold", "red"))
    label, command = _next_text(diagnosis)
    if command is None:
        lines += wrap(label, width, first="", indent="    ")
    else:
        lines.append(f"{paint(label, 'bold')} {paint(command, 'cyan')}")
    return lines


# --- 2. the interpreter and the machine ----------------------------------------------------


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.1f} GiB"


def _unknown(env: Environment, field: str) -> str:
    reason = env.unknown_reason(field)
    return f"unknown ({reason})" if reason else "unknown"


def _gpu_text(g: GpuFacts) -> str:
    arch = f"sm_{g.sm}" if g.sm is not None else (g.gfx_arch or "")
    cc = f"cc {g.compute_capability} ({arch})" if g.compute_capability else arch
    memory = _gib(g.memory_total_bytes) if g.memory_total_bytes is not None else ""
    return " · ".join(part for part in (g.name, cc, memory) if part)


def _gpu_rows(gpus: Sequence[GpuFacts], *, verbose: bool) -> list[tuple[str, str]]:
    """One row per GPU, or (without --verbose) one per run of identical GPUs."""
    if verbose:
        return [(f"GPU {g.index}", _gpu_text(g)) for g in gpus]
    rows: list[tuple[str, str]] = []
    run: list[GpuFacts] = []
    for g in [*gpus, None]:
        if run and (g is None or _gpu_text(g) != _gpu_text(run[0])):
            key = f"GPU {run[0].index}" if len(run) == 1 else f"GPU {run[0].index}-{run[-1].index}"
            rows.append((key, (f"{len(run)} × " if len(run) > 1 else "") + _gpu_text(run[0])))
            run = []
        if g is not None:
            run.append(g)
    return rows


def _torch_text(env: Environment) -> str:
    tf = env.torch
    if tf is None:
        return "not installed"
    flavour = {
        "cuda": f"CUDA {tf.cuda}",
        "rocm": f"ROCm/HIP {tf.hip}",
        "cpu": "CPU-only",
        "xpu": "Intel XPU",
        "unknown": "unknown build",
    }[tf.build]
    abi = (
        "C++11 ABI unknown"
        if tf.cxx11_abi is None
        else (f"C++11 ABI {'TRUE' if tf.cxx11_abi else 'FALSE'}")
    )
    return f"{tf.version} · {flavour} · {abi}"


def _import_status(env: Environment, dist: str) -> str | None:
    modules = {b.distribution: b.module for b in BACKENDS.values() if b.distribution and b.module}
    res = env.import_result(modules.get(dist, dist.replace("-", "_")))
    if res is None:
        return None
    return "imports" if res.status == "ok" else f"import {res.status}: {res.detail or ''}".strip()


def fact_rows(env: Environment, *, verbose: bool) -> list[tuple[str, str]]:
    """(key, value) rows: the interpreter first, then the machine, torch and packages."""
    py = env.python
    where = py.executable or _unknown(env, "python.executable")
    details = [py.version, f"{py.implementation} {py.abi_tag or '?'}"]
    if py.in_venv:
        details.append("venv")
    if py.conda_env:
        details.append(f"conda:{py.conda_env}")
    rows = [("Python", f"{where} ({', '.join(details)})")]
    h = env.host
    system: list[str] = [h.os]
    if h.distro_name or h.os_release:
        system.append(h.distro_name or h.os_release or "")
    if h.wsl:
        system.append(f"WSL{h.wsl}")
    if h.in_container:
        system.append("container")
    system.append(h.arch or "?")
    if verbose:
        system.append(f"{h.cpu_count or '?'} CPUs")
        system.append(f"{_gib(h.ram_total_bytes)} RAM, {_gib(h.ram_available_bytes)} free")
        if h.libc and h.libc_version:
            system.append(f"{h.libc} {h.libc_version}")
    rows.append(("System", " · ".join(system)))
    if env.gpus:
        rows += _gpu_rows(env.gpus, verbose=verbose)
    else:
        rows.append(
            ("GPU", "none found" if not env.unknown_reason("gpus") else _unknown(env, "gpus"))
        )
    d, ct = env.driver, env.cuda_toolkit
    driver = f"{d.version} (supports CUDA ≤ {d.cuda_version or '?'})" if d.version else None
    nvcc = f"nvcc {ct.release}" if ct.release else None
    if verbose:
        rows.append(("Driver", driver or _unknown(env, "driver.version")))
        toolkit = (
            f"nvcc {ct.release} ({ct.nvcc_path})"
            if ct.release
            else _unknown(env, "cuda_toolkit.nvcc_version")
        )
        if ct.cuda_home:
            toolkit += f" · CUDA_HOME={ct.cuda_home}"
        rows.append(("CUDA", toolkit))
    elif driver or env.nvidia_gpus:
        known = driver or _unknown(env, "driver.version")
        rows.append(("Driver", " · ".join(x for x in (known, nvcc) if x)))
    elif nvcc:
        rows.append(("CUDA", nvcc))
    if ct.rocm_version:
        rows.append(("ROCm", ct.rocm_version))
    rows.append(("torch", _torch_text(env)))
    rt = env.torch_runtime
    if verbose and rt is not None and rt.error is None:
        rows.append((
            "runtime",
            f"cuda available={rt.cuda_available} · devices={rt.device_count} · "
            f"archs={' '.join(rt.arch_list) or '—'}",
        ))  # fmt: skip
    if verbose:
        for pkg in env.packages:
            parts = [f"{pkg.name} {pkg.version}"]
            if pkg.build_info:
                parts.append("built for " + ", ".join(f"{k}={v}" for k, v in pkg.build_info))
            status = _import_status(env, pkg.name)
            if status:
                parts.append(status)
            rows.append(("Package", " · ".join(parts)))
        rows += [("Env var", f"{key}={value}") for key, value in env.env_vars]
        rows += [("Unknown", f"{unk.field}: {unk.reason}") for unk in env.unknowns]
    elif env.packages:
        names = []
        for pkg in env.packages:
            status = _import_status(env, pkg.name)
            failed = status is not None and status != "imports"
            names.append(f"{pkg.name}{GLUE}{pkg.version}" + (" (import fails)" if failed else ""))
        rows.append(("Packages", " · ".join(names)))
    return rows


def facts_lines(
    env: Environment, *, width: int, paint: Painter, snapshot: Path | None, verbose: bool
) -> list[str]:
    rows = fact_rows(env, verbose=verbose)
    if snapshot is not None:
        rows.insert(1, ("Snapshot", f"{snapshot} (facts recorded on that machine)"))
    lines: list[str] = []
    for key, value in rows:
        first = paint(f"{key:<{KEY_WIDTH}}", "bold")
        lines += wrap(value, width, first=first, indent=" " * KEY_WIDTH)
    return lines


# --- 3. the problems -----------------------------------------------------------------------


def findings_lines(
    findings: Sequence[Finding], *, width: int, paint: Painter, verbose: bool
) -> list[str]:
    if not findings:
        return [paint("No problems found.", "green")]
    lines: list[str] = []
    for f in sorted(findings, key=lambda f: _ORDER[f.severity]):
        mark, colour = _MARK[f.severity]
        lines += wrap(
            f"{f.title}  [{f.id}]", width, first=paint(mark, "bold", colour) + " ", indent="  "
        )
        if f.severity == "info" and not verbose:
            continue
        lines += wrap(f.cause, width, first="  why: ", indent="       ")
        if verbose:
            for ev in f.evidence:
                lines += wrap(f"{ev.fact} = {ev.value}", width, first="  · ", indent="    ")
        if f.fix:
            lines.append("  " + paint("fix:", "bold"))
            lines.append("    " + paint(f.fix, "green"))
        if f.fix_note:
            lines += wrap(f.fix_note, width, first="  note: ", indent="        ")
        if verbose and f.sources:
            lines += wrap(" ".join(f.sources), width, first="  sources: ", indent="    ")
    return lines


def import_lines(
    items: tuple[ImportExplanation, ...], *, width: int, paint: Painter, verbose: bool
) -> list[str]:
    """Why the ``--deep`` imports failed: the best known cause of each (all, with --verbose)."""
    lines = [paint("Why the imports failed", "bold")]
    for item in items:
        result = item.explanation
        if not result.matched:
            lines += wrap(f"{item.module}: no known cause matched", width, indent="    ")
            continue
        shown = result.explanations if verbose else result.explanations[:1]
        for exp in shown:
            status = exp.confirmation.status.replace("unknown", "not confirmed")
            lines += wrap(
                f"{exp.match.title} ({status} here)  [{exp.match.symptom_id}]",
                width,
                first=f"  {item.module}: ",
                indent="    ",
            )
            if not verbose:
                continue
            lines += wrap(exp.cause, width, first="    cause: ", indent="      ")
            for fix in exp.fix:
                lines.append("      " + paint(fix.command, "green"))
            if exp.fix_note:
                lines += wrap(exp.fix_note, width, indent="    ")
            if exp.threads:
                lines.append("    reported upstream:")
                lines += ["      " + url for url in exp.threads]
    return lines


# --- the end -------------------------------------------------------------------------------


def summary_lines(diagnosis: Diagnosis, *, width: int, paint: Painter, verbose: bool) -> list[str]:
    errors = sum(f.severity == "error" for f in diagnosis.findings)
    warnings = sum(f.severity == "warning" for f in diagnosis.findings)
    colour = ("bold", "red") if errors else (("yellow",) if warnings else ("bold", "green"))
    text = f"{errors} error(s), {warnings} warning(s)."
    if verbose:
        return [paint(text, *colour)]
    more = "Every fact, the evidence and every backend: --verbose; for scripts: --json."
    return wrap(more, width, first=paint(text, *colour) + " ")
