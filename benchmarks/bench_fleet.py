"""Time `attn-doctor fleet` over 1,000 node snapshots.

Writes a made-up cluster of N snapshots (default 1,000) into a temporary folder, copies of
the recorded machines in tests/snapshots/ with their own GPU UUIDs, bus ids and times (and,
with --vary-ram, each node's free memory, which the diagnosis reads), a few nodes drifted
(another driver, another flash-attn, a failed import). Then runs `attn-doctor fleet DIR --json`
as a user would and prints the median wall time over the runs.

    python benchmarks/bench_fleet.py                 # 1,000 nodes, 3 runs
    python benchmarks/bench_fleet.py --nodes 5000 --vary-ram
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = ROOT / "tests" / "snapshots"
# The fleet's make-up: mostly one machine type, some others, as a real cluster grows.
MIX = (("a100-linux", 0.80), ("h100-linux-recent-torch", 0.15), ("h200-real", 0.05))


def _drift(doc: dict[str, object], rng: random.Random) -> None:
    """One of the ways a node drifts from its siblings."""
    kind = rng.choice(("driver", "flash-attn", "import"))
    if kind == "driver":
        doc["driver"] = {"version": "470.256.02", "cuda_version": "11.4", "source": "nvml"}
    elif kind == "flash-attn":
        for pkg in doc["packages"]:  # type: ignore[attr-defined]
            if pkg["name"] == "flash-attn":
                pkg["version"] = "2.7.3"
    else:
        for res in doc["imports"]:  # type: ignore[attr-defined]
            if res["module"] == "flash_attn":
                res["status"] = "error"
                res["detail"] = "ImportError: undefined symbol: _ZN3c105ErrorC2E"


def write_fleet(folder: Path, nodes: int, *, vary_ram: bool, seed: int = 0) -> None:
    rng = random.Random(seed)
    bases = {name: json.loads((SNAPSHOTS / f"{name}.json").read_text()) for name, _ in MIX}
    names = [name for name, _ in MIX]
    weights = [w for _, w in MIX]
    for n in range(nodes):
        doc = json.loads(json.dumps(bases[rng.choices(names, weights)[0]]))
        doc["created_at"] = f"2026-11-29T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"
        for gpu in doc["gpus"]:
            gpu["uuid"] = f"GPU-{n:08x}-{gpu['index']:04x}"
            gpu["pci_bus_id"] = f"00000000:{gpu['index'] + 1:02X}:00.0"
        if vary_ram and doc["host"]["ram_available_bytes"]:
            doc["host"]["ram_available_bytes"] -= rng.randrange(2**30, 2**34)
        if rng.random() < 0.01:
            _drift(doc, rng)
        (folder / f"gpu-{n:05d}.json").write_text(json.dumps(doc, indent=2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--vary-ram", action="store_true", help="each node's free RAM differs")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="attn-doctor-fleet-") as tmp:
        folder = Path(tmp)
        write_fleet(folder, args.nodes, vary_ram=args.vary_ram)
        cmd = [sys.executable, "-m", "attn_doctor", "fleet", str(folder), "--json"]
        times = []
        result: dict[str, object] = {}
        for _ in range(args.runs):
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            times.append(time.perf_counter() - start)
            if proc.returncode not in (0, 1):
                print(proc.stderr, file=sys.stderr)
                return 1
            result = json.loads(proc.stdout)["result"]
    groups = result["groups"]
    assert isinstance(groups, list)
    print(
        f"attn-doctor fleet: {args.nodes} snapshots"
        f"{' (each with its own free RAM)' if args.vary_ram else ''}, "
        f"{len(groups)} groups, {len(result['outliers'])} outliers: "  # type: ignore[arg-type]
        f"median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}) "
        f"over {args.runs} runs on {os.cpu_count()} CPUs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
