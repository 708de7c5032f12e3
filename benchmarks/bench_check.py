"""Time `attn-doctor check` (the people's view and `--json`) against the reporters users
would run instead, in paired runs.

Each attn-doctor command is run in turn with `python -m torch.utils.collect_env` (A B A B
...), and the ratio is taken pair by pair: on a machine shared with other jobs, the speed
drifts during a run, and only a ratio of neighbouring runs keeps its meaning. Printed per
command: the median wall and CPU (user + system) seconds, the median of the per-pair ratios
("times faster than collect_env", by wall time and by CPU time), the peak resident memory of
one run, and the median time to the first line of output. Output goes to a pipe, as in a
script or CI (the people's view then has no colour).

    python benchmarks/bench_check.py                # 9 pairs each
    python benchmarks/bench_check.py --runs 15 --json
    python benchmarks/bench_check.py --snapshot tests/snapshots/h200-real.json --no-deep

Rivals that are not installed here (xformers.info, ds_report) are reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RIVAL = "torch.utils.collect_env"


def _commands(python: str, snapshot: str | None, *, deep: bool) -> dict[str, list[str]]:
    check = [python, "-m", "attn_doctor", "check"]
    if snapshot:
        check += ["--snapshot", snapshot]
    out = {
        "attn-doctor check": check,
        "attn-doctor check --json": [*check, "--json"],
    }
    if deep and not snapshot:
        out["attn-doctor check --deep"] = [*check, "--deep", "--json"]
    return out


def _rivals(python: str) -> dict[str, list[str]]:
    return {
        RIVAL: [python, "-m", "torch.utils.collect_env"],
        "xformers.info": [python, "-m", "xformers.info"],
        "ds_report": [python, "-c", "from deepspeed.env_report import cli_main; cli_main()"],
    }


# Installed packages have their bytecode compiled by pip; a source checkout run with
# PYTHONDONTWRITEBYTECODE would recompile attn-doctor on every run and measure the compiler.
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "COLUMNS")}


def _run_once(cmd: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system, the child's own) and exit code of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, check=False, env=ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode


def _first_line_s(cmd: list[str]) -> float:
    """Seconds until the first line of output reaches the pipe."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV)
    assert proc.stdout is not None
    proc.stdout.readline()
    first = time.perf_counter() - start
    proc.communicate()
    return first


def _peak_rss_kib(cmd: list[str]) -> int | None:
    """Peak RSS of one run, measured in a fresh helper so earlier children do not count."""
    code = (
        "import resource,subprocess,sys;"
        "subprocess.run(sys.argv[1:],capture_output=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *cmd], check=False, capture_output=True, text=True, env=ENV
    )
    try:
        return int(out.stdout.strip())
    except ValueError:
        return None


def _summary(
    walls: list[float], cpus: list[float], code: int, cmd: list[str], runs: int
) -> dict[str, object]:
    rss = _peak_rss_kib(cmd)
    first = statistics.median(_first_line_s(cmd) for _ in range(min(runs, 5)))
    return {
        "median_s": round(statistics.median(walls), 3),
        "min_s": round(min(walls), 3),
        "max_s": round(max(walls), 3),
        "median_cpu_s": round(statistics.median(cpus), 3),
        "runs": len(walls),
        "exit_code": code,
        "peak_rss_mib": None if rss is None else round(rss / 1024, 1),
        "first_line_s": round(first, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="pairs per command (default 9)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--snapshot", help="time check --snapshot FILE instead of a probe")
    parser.add_argument("--no-deep", action="store_true", help="leave out check --deep")
    args = parser.parse_args()

    source_tree = Path(__file__).resolve().parent.parent / "attn_doctor"
    if source_tree.is_dir():  # an installed attn-doctor already has its bytecode
        subprocess.run(
            [args.python, "-m", "compileall", "-q", str(source_tree)], check=False, env=ENV
        )
    rivals = _rivals(args.python)
    rival_cmd = rivals[RIVAL]
    if _run_once(rival_cmd)[2] != 0:  # also warms the page cache
        print(f"{RIVAL} does not run here (is torch installed?)", file=sys.stderr)
        return 1
    results: dict[str, dict[str, object]] = {}
    rival_walls: list[float] = []
    rival_cpus: list[float] = []
    for name, cmd in _commands(args.python, args.snapshot, deep=not args.no_deep).items():
        code = _run_once(cmd)[2]  # warm-up
        walls: list[float] = []
        cpus: list[float] = []
        wall_ratios: list[float] = []
        cpu_ratios: list[float] = []
        for i in range(args.runs):
            order = (cmd, rival_cmd) if i % 2 == 0 else (rival_cmd, cmd)
            timed = {id(c): _run_once(c) for c in order}
            a_wall, a_cpu, code = timed[id(cmd)]
            b_wall, b_cpu, _ = timed[id(rival_cmd)]
            walls.append(a_wall)
            cpus.append(a_cpu)
            rival_walls.append(b_wall)
            rival_cpus.append(b_cpu)
            wall_ratios.append(b_wall / a_wall)
            cpu_ratios.append(b_cpu / a_cpu if a_cpu else float("nan"))
        res = _summary(walls, cpus, code, cmd, args.runs)
        res["times_faster_wall"] = round(statistics.median(wall_ratios), 1)
        res["times_faster_cpu"] = round(statistics.median(cpu_ratios), 1)
        results[name] = res
    results[RIVAL] = _summary(rival_walls, rival_cpus, 0, rival_cmd, args.runs)
    for name, cmd in rivals.items():
        if name != RIVAL and _run_once(cmd)[2] != 0:
            results[name] = {"skipped": "not installed here"}

    if args.json:
        doc = {"python": args.python, "cpus": os.cpu_count(), "pairs": args.runs}
        print(json.dumps({**doc, "results": results}))
        return 0
    print(f"{os.cpu_count()} CPUs, {args.runs} pairs (A B A B ...) per command, output to a pipe")
    head = ("command", "median", "cpu", "1st line", "RSS MiB", "x wall", "x cpu")
    print(f"{head[0]:28} " + " ".join(f"{h:>8}" for h in head[1:]))
    for name, res in results.items():
        if "skipped" in res:
            print(f"{name:28} skipped: {res['skipped']}")
            continue
        wall_x, cpu_x = res.get("times_faster_wall"), res.get("times_faster_cpu")
        print(
            f"{name:28} {res['median_s']:8.3f} {res['median_cpu_s']:8.3f} "
            f"{res['first_line_s']:8.3f} {res['peak_rss_mib']!s:>8} "
            f"{'' if wall_x is None else f'{wall_x:.1f}x':>8} "
            f"{'' if cpu_x is None else f'{cpu_x:.1f}x':>8}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
