"""Time `attn-doctor check` (the people's view and `--json`) against the reporters users
would run instead.

Prints the median wall time (and min/max) of each command over N runs on this machine, the
peak resident memory of one run, the median time to the first line of output, and how many
times faster each attn-doctor command is than `python -m torch.utils.collect_env`.
Output goes to a pipe, as in a script or CI (the people's view then has no colour).

    python benchmarks/bench_check.py            # 7 runs each
    python benchmarks/bench_check.py --runs 15 --json

Rivals that are not installed here (xformers.info, ds_report) are reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _commands(python: str) -> dict[str, list[str]]:
    return {
        "attn-doctor check": [python, "-m", "attn_doctor", "check"],
        "attn-doctor check --json": [python, "-m", "attn_doctor", "check", "--json"],
        "attn-doctor check --deep": [python, "-m", "attn_doctor", "check", "--deep", "--json"],
        "torch.utils.collect_env": [python, "-m", "torch.utils.collect_env"],
        "xformers.info": [python, "-m", "xformers.info"],
        "ds_report": [python, "-c", "from deepspeed.env_report import cli_main; cli_main()"],
    }


# Installed packages have their bytecode compiled by pip; a source checkout run with
# PYTHONDONTWRITEBYTECODE would recompile attn-doctor on every run and measure the compiler.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _run_once(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and exit code of one run."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, check=False, env=ENV)
    return time.perf_counter() - start, proc.returncode


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()

    source_tree = Path(__file__).resolve().parent.parent / "attn_doctor"
    if source_tree.is_dir():  # an installed attn-doctor already has its bytecode
        subprocess.run(
            [args.python, "-m", "compileall", "-q", str(source_tree)], check=False, env=ENV
        )
    results: dict[str, dict[str, object]] = {}
    for name, cmd in _commands(args.python).items():
        elapsed, code = _run_once(cmd)  # warm the page cache; also tells if it exists
        if code != 0 and name in ("xformers.info", "ds_report"):
            results[name] = {"skipped": "not installed here"}
            continue
        rss = _peak_rss_kib(cmd)
        times = [elapsed]
        times += [_run_once(cmd)[0] for _ in range(args.runs - 1)]
        first = statistics.median(_first_line_s(cmd) for _ in range(min(args.runs, 5)))
        results[name] = {
            "median_s": statistics.median(times),
            "min_s": min(times),
            "max_s": max(times),
            "runs": len(times),
            "exit_code": code,
            "peak_rss_mib": None if rss is None else round(rss / 1024, 1),
            "first_line_s": round(first, 3),
        }
    rival = results["torch.utils.collect_env"].get("median_s")
    for name, res in results.items():
        med = res.get("median_s")
        if isinstance(med, float) and isinstance(rival, float) and name.startswith("attn-doctor"):
            res["times_faster_than_collect_env"] = round(rival / med, 1)

    if args.json:
        print(json.dumps({"python": args.python, "cpus": os.cpu_count(), "results": results}))
        return 0
    print(f"{os.cpu_count()} CPUs, medians of {args.runs} runs, output to a pipe")
    head = ("command", "median", "min", "max", "1st line", "RSS MiB", "x faster")
    print(f"{head[0]:28} " + " ".join(f"{h:>8}" for h in head[1:]))
    for name, res in results.items():
        if "skipped" in res:
            print(f"{name:28} skipped: {res['skipped']}")
            continue
        faster = res.get("times_faster_than_collect_env")
        print(
            f"{name:28} {res['median_s']:8.3f} {res['min_s']:8.3f} {res['max_s']:8.3f} "
            f"{res['first_line_s']:8.3f} {res['peak_rss_mib']!s:>8} "
            f"{'' if faster is None else f'{faster:.1f}x':>8}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
