"""People's output to a pipe or a file: no padding, and as wide as COLUMNS says."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from attn_doctor.report.console import PIPE_WIDTH, StripTrailingSpaces, console_width

from .conftest import REPO_ROOT, SNAPSHOTS


def check_to_pipe(columns: str | None) -> list[str]:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(REPO_ROOT)}
    env.pop("FORCE_COLOR", None)
    env.pop("COLUMNS", None)
    if columns is not None:
        env["COLUMNS"] = columns
    proc = subprocess.run(
        [sys.executable, "-m", "attn_doctor", "check", "--snapshot",
         str(SNAPSHOTS / "h100-linux-recent-torch.json")],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.mark.functional
@pytest.mark.parametrize("columns", [None, "70"], ids=["default", "COLUMNS=70"])
def test_check_to_a_pipe_has_no_trailing_spaces_and_honours_columns(columns: str | None) -> None:
    lines = check_to_pipe(columns)
    assert len(lines) > 20
    padded = [line for line in lines if line.endswith(" ")]
    assert padded == []
    width = int(columns) if columns else PIPE_WIDTH
    # A command is never split (tests/unit/test_check_view.py checks each is one of the
    # plan's): only such a line may pass the width.
    commands = ("attn-doctor ", " -m pip ")

    def whole(line: str) -> bool:
        """A command, or a path at the end of the line, is never split."""
        last = line.rsplit(maxsplit=1)[-1]
        return any(c in line for c in commands) or ("/" in last and " " not in last)

    over = [line for line in lines if len(line) > width and not whole(line)]
    assert over == []
    if columns:
        assert max(len(line) for line in lines if len(line) <= width) > 40  # the room was used


def test_console_width_rule() -> None:
    assert console_width(False, {}) == PIPE_WIDTH
    assert console_width(False, {"COLUMNS": "70"}) == 70
    assert console_width(True, {"COLUMNS": "90"}) == 90
    assert console_width(True, {}) is None  # the terminal's own width
    assert console_width(False, {"COLUMNS": "wide"}) == PIPE_WIDTH


def test_strip_trailing_spaces_across_partial_writes() -> None:
    out = io.StringIO()
    stream = StripTrailingSpaces(out)
    stream.write("a   \nb")
    stream.write("c  ")
    assert out.getvalue() == "a\n"  # "bc  " waits: more of its line may come
    stream.write("  \n  indented kept\n")
    stream.flush()
    assert out.getvalue() == "a\nbc\n  indented kept\n"
