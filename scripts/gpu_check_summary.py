"""Write the one-page summary.md of a ``scripts/gpu_check.sh`` folder (standard library only).

Usage: ``python scripts/gpu_check_summary.py OUT > OUT/summary.md``. Every section reads one
step's output and says "no output" when the step did not run or wrote nothing parsable: the
summary of a half-finished run is still a summary.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

_STEP_HELP = {
    "check": "`attn-doctor check` (exit 1: it found an error)",
    "check-deep": "`check --deep --json`",
    "snapshot": "`check --save-snapshot machine.snapshot.json`",
    "runtime": "`explain_choice()` / `load_kwargs()`",
    "verify": "`verify --json`",
    "install-plan": "`install NAME --dry-run --wheelhouse DIR`",
    "install": "`install NAME --yes --wheelhouse DIR`",
    "pytest-gpu": "`pytest -m gpu`",
    "bench-fwd": "`bench --fwd --json`",
    "bench-fwd-bwd": "`bench --fwd-bwd --json`",
}


def _text(out: Path, name: str) -> str | None:
    path = out / name
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _envelope(out: Path, name: str) -> dict[str, Any] | None:
    """The JSON envelope a ``--json`` step printed (its last JSON document), or None."""
    text = _text(out, name)
    if not text:
        return None
    start = text.find("{")
    if start < 0:
        return None
    try:
        data = json.loads(text[start:])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def steps(out: Path) -> list[str]:
    lines = ["| step | status | seconds | limit | what |", "|---|---|---|---|---|"]
    text = _text(out, "steps.tsv") or ""
    for row in text.splitlines():
        parts = row.split("\t")
        if len(parts) != 5:
            continue
        name, status, _rc, seconds, limit = parts
        lines.append(f"| {name} | {status} | {seconds} | {limit} | {_STEP_HELP.get(name, '')} |")
    return lines


def check_section(out: Path) -> list[str]:
    env = _envelope(out, "check-deep.out")
    if env is None or not isinstance(env.get("result"), dict):
        return ["check --deep: no output"]
    diag = env["result"].get("diagnosis") or {}
    lines = []
    for rec in (diag.get("recommendations") or [])[:3]:
        now = "ready" if rec.get("usable_now") else "install"
        impl = rec.get("attn_implementation")
        lines.append(f"- #{rec.get('rank')} `{rec.get('backend')}` (`{impl}`): {now}")
    for f in diag.get("findings") or []:
        if f.get("severity") in ("error", "warning"):
            lines.append(f"- {f.get('severity')}: {f.get('title') or f.get('id')}")
    for exp in env["result"].get("import_explanations") or []:
        lines.append(f"- import {exp.get('module')}: {json.dumps(exp)[:160]}")
    return lines or ["check --deep: nothing to report"]


def verify_section(out: Path) -> list[str]:
    env = _envelope(out, "verify.out")
    if env is None or not isinstance(env.get("result"), dict):
        return ["verify: no output"]
    rows = ["| backend | verdict | cases | notes |", "|---|---|---|---|"]
    for b in env["result"].get("backends") or []:
        kernel = b.get("kernel") or {}
        cases = kernel.get("cases") or []
        passed = sum(1 for c in cases if c.get("outcome") == "passed")
        verdict = {True: "passed", False: "FAILED", None: "not here"}[b.get("passed")]
        note = b.get("failure") or "; ".join(b.get("notes") or [])
        rows.append(f"| {b.get('backend')} | {verdict} | {passed}/{len(cases)} | {note[:120]} |")
    rows.append(f"\nverify ok: {env['result'].get('ok')}")
    return rows


def bench_section(out: Path, name: str) -> list[str]:
    env = _envelope(out, f"{name}.out")
    result = env.get("result") if env else None
    if not isinstance(result, dict):
        return [f"{name}: no output"]
    ceiling = next(
        (c.get("tflops") for c in result.get("ceilings") or [] if c.get("status") == "ok"), None
    )
    seqlens: list[int] = []
    table: dict[str, dict[int, str]] = {}
    for sweep in result.get("sweeps") or []:
        cells = table.setdefault(str(sweep.get("backend")), {})
        for p in sweep.get("points") or []:
            seqlen = int((p.get("shape") or {}).get("seqlen") or 0)
            if seqlen not in seqlens:
                seqlens.append(seqlen)
            tflops = p.get("tflops")
            if p.get("status") == "ok" and isinstance(tflops, int | float):
                share = f" ({100 * tflops / ceiling:.0f} %)" if ceiling else ""
                cells[seqlen] = f"{tflops:.3g}{share}"
            else:
                cells[seqlen] = str(p.get("status"))
    lines = [
        f"mode {result.get('mode')}, device {result.get('device_name') or result.get('device')}, "
        f"matmul ceiling {f'{ceiling:.3g}' if ceiling else 'not measured'} TFLOP/s",
        "",
        "| backend | " + " | ".join(str(s) for s in seqlens) + " |",
        "|---|" + "---|" * len(seqlens),
    ]
    for backend, cells in table.items():
        if not cells:
            status = next(
                (s.get("status") for s in result["sweeps"] if s.get("backend") == backend), ""
            )
            lines.append(f"| {backend} | {status} |" + " |" * max(len(seqlens) - 1, 0))
            continue
        lines.append(f"| {backend} | " + " | ".join(cells.get(s, "") for s in seqlens) + " |")
    rec = result.get("recommendation") or {}
    if rec:
        lines.append(f"\nfastest: `{rec.get('backend')}` ({rec.get('reason')})")
    return lines


def install_section(out: Path) -> list[str]:
    if _text(out, "install.out") is None:
        return ["install: not run (no --wheelhouse/--wheel)"]
    diff = _text(out, "freeze.diff")
    err = (_text(out, "install.err") or "").strip().splitlines()
    lines = ["`pip freeze` before vs after (empty: identical):", "```", (diff or "").strip(), "```"]
    if err:
        lines.append(f"last message: {err[-1][:200]}")
    return lines


def last_line(out: Path, name: str) -> str:
    text = (_text(out, name) or "").strip().splitlines()
    return text[-1] if text else f"{name}: no output"


def summary(out: Path) -> str:
    env = (_text(out, "env.txt") or "").strip()
    parts = [
        "# attn-doctor GPU check",
        "",
        "```",
        env,
        "```",
        "",
        "## Steps",
        *steps(out),
        "",
        "## check --deep",
        *check_section(out),
        "",
        "## Runtime choice",
        "```",
        *[
            ln
            for ln in (_text(out, "runtime.out") or "no output").splitlines()
            if "->" in ln or ln.startswith("load_kwargs")
        ],
        "```",
        "",
        "## verify",
        *verify_section(out),
        "",
        "## install from the wheelhouse",
        *install_section(out),
        "",
        "## pytest -m gpu",
        last_line(out, "pytest-gpu.out"),
        "",
        "## bench, forward (TFLOP/s, share of the matmul rate)",
        *bench_section(out, "bench-fwd"),
        "",
        "## bench, forward + backward",
        *bench_section(out, "bench-fwd-bwd"),
        "",
    ]
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not Path(argv[1]).is_dir():
        print("usage: gpu_check_summary.py OUT (a gpu_check.sh output folder)", file=sys.stderr)
        return 2
    sys.stdout.write(summary(Path(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
