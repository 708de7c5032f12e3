"""What ``check`` imports on its way to an answer: its start-up is most of its time.

No wall-clock asserts (benchmarks/bench_check.py measures speed); these tests only keep
modules that check does not need from creeping back onto its path.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, SNAPSHOTS

NOT_ON_CHECKS_PATH = (
    "rich",  # the people's view is plain text (report/text.py)
    "attn_doctor.bench.recommend",  # only when a bench cache exists
    "packaging.tags",  # distribution names are normalised without it
    "torch",
    "urllib.request",  # only `index update` reaches the network (index/overlay.py is local)
    "ssl",
)


SNAPSHOT = ["--snapshot", str(SNAPSHOTS / "cpu-only-laptop.json")]


@pytest.mark.parametrize(
    "args",
    [["check"], ["check", "--json"], ["check", *SNAPSHOT], ["check", "--json", *SNAPSHOT]],
    ids=["people", "json", "people-snapshot", "json-snapshot"],
)
def test_check_leaves_heavy_modules_alone(args: list[str]) -> None:
    """This machine (the suite's empty HOME: no bench cache), and a recorded one."""
    code = (
        "import sys\n"
        "from attn_doctor.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"loaded = [m for m in {NOT_ON_CHECKS_PATH!r} if m in sys.modules]\n"
        "sys.stderr.write('LOADED=' + ','.join(loaded))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
        timeout=120,
    )
    assert "LOADED=" in proc.stderr, proc.stderr
    assert proc.stderr.rsplit("LOADED=", 1)[1].strip() == ""
