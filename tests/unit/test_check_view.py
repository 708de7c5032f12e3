"""``check``'s human view at 80 and 120 columns: golden files, and the rules it keeps.

The golden files are ``tests/data/views/<snapshot>-<width>[-verbose].txt``. After a change to
the view, regenerate them with ``ATTN_DOCTOR_REGEN_VIEWS=1 pytest tests/unit/test_check_view.py``
and read the diff before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from attn_doctor.commands.check import check_command
from attn_doctor.diagnose import diagnose
from attn_doctor.diagnosis import Diagnosis
from attn_doctor.facts import Environment
from attn_doctor.index import load_index
from attn_doctor.report.check_tables import name_of, split_way
from attn_doctor.rules_data import load_rules
from attn_doctor.snapshot import load_snapshot
from tests.conftest import REPO_ROOT, SNAPSHOTS

VIEWS = REPO_ROOT / "tests" / "data" / "views"
REGEN = os.environ.get("ATTN_DOCTOR_REGEN_VIEWS") == "1"
GOLDEN = [
    ("h200-real", 80, False),
    ("h200-real", 120, False),
    ("h200-real", 80, True),
    ("cpu-only-laptop", 80, False),
    ("cpu-only-laptop", 120, False),
    ("rtx4090-windows", 80, False),
    ("rtx4090-windows", 120, False),
    ("broken-flash-attn-undefined-symbol", 80, False),
    ("broken-flash-attn-undefined-symbol", 120, False),
    ("broken-flash-attn-undefined-symbol", 80, True),
]


def render(snapshot: str, width: int, *, verbose: bool = False) -> tuple[str, int]:
    """The view as a user gets it in a pipe with COLUMNS set, and check's exit code."""
    args = ["--snapshot", f"tests/snapshots/{snapshot}.json"] + (["--verbose"] if verbose else [])
    cwd = Path.cwd()
    os.chdir(REPO_ROOT)  # the snapshot path is shown as given: relative, no machine path
    try:
        result = CliRunner().invoke(
            check_command, args, env={"COLUMNS": str(width), "NO_COLOR": "1", "FORCE_COLOR": None}
        )
    finally:
        os.chdir(cwd)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.output, result.exit_code


@pytest.mark.parametrize(
    ("snapshot", "width", "verbose"),
    GOLDEN,
    ids=[f"{s}-{w}{'-verbose' if v else ''}" for s, w, v in GOLDEN],
)
def test_view_matches_golden_file(snapshot: str, width: int, verbose: bool) -> None:
    out, _ = render(snapshot, width, verbose=verbose)
    golden = VIEWS / f"{snapshot}-{width}{'-verbose' if verbose else ''}.txt"
    if REGEN:
        golden.write_text(out, encoding="utf-8")
    assert golden.is_file(), f"no golden file: run with ATTN_DOCTOR_REGEN_VIEWS=1 ({golden.name})"
    assert out == golden.read_text(encoding="utf-8")


def _diagnose(snapshot: str) -> tuple[Environment, Diagnosis]:
    """As check does: the wheel index is consulted on a machine with a GPU."""
    env = load_snapshot(SNAPSHOTS / f"{snapshot}.json")
    return env, diagnose(env, load_rules(), index=load_index() if env.gpus else None)


def _commands(snapshot: str) -> list[str]:
    """Text the view must never split: every fix and every install or unblock command."""
    _, diagnosis = _diagnose(snapshot)
    out = [f.fix for f in diagnosis.findings if f.fix]
    for rec in diagnosis.recommendations:
        if rec.status == "install" or rec.way.startswith("fix first: "):
            out.append(split_way(rec.way)[0])
    return out


def _data_with_ellipsis(snapshot: str) -> str:
    """Text of check's JSON document: "…" in the view must come from the data, not a cut."""
    args = ["--json", "--snapshot", str(SNAPSHOTS / f"{snapshot}.json")]
    doc = json.loads(CliRunner().invoke(check_command, args).output)
    return json.dumps(doc, ensure_ascii=False)


ALL = sorted(p.stem for p in SNAPSHOTS.glob("*.json"))


@pytest.mark.parametrize("snapshot", ALL)
@pytest.mark.parametrize("width", [80, 120])
def test_nothing_is_cut_and_lines_fit(snapshot: str, width: int) -> None:
    out, code = render(snapshot, width)
    lines = out.splitlines()
    commands = _commands(snapshot)
    for line in lines:
        assert line == line.rstrip()
        if len(line) > width:  # only a command (never split) or one unbreakable word
            assert any(c in line for c in commands) or " " not in line.strip(), line
    for command in commands:  # each command whole on one line
        assert any(command in line for line in lines), command
    if "…" in out:  # nothing truncated: every "…" is the data's own
        data = _data_with_ellipsis(snapshot)
        for word in out.split():
            assert "…" not in word or word.strip("()[].,;:") in data, word
    assert code in (0, 1)


@pytest.mark.parametrize("snapshot", ["h200-real", "cpu-only-laptop", "no-torch-gpu"])
def test_answer_and_interpreter_lead(snapshot: str) -> None:
    env, diagnosis = _diagnose(snapshot)
    out, _ = render(snapshot, 80)
    head = out.splitlines()[:6]
    top = min(diagnosis.recommendations, key=lambda r: r.rank)
    assert head[0].startswith(f"Use {name_of(top.backend)}, ")
    assert f'attn_implementation="{top.attn_implementation}"' in head[0]
    assert any(line.startswith("Next") for line in head[:3])
    assert env.python.executable is not None
    assert any(env.python.executable in line for line in head)


def test_h200_fits_in_about_40_lines_and_names_the_kernel() -> None:
    out, code = render("h200-real", 80)
    lines = out.splitlines()
    assert code == 0
    assert len(lines) <= 45
    assert lines[0].endswith("(ready): runs the cuDNN kernel")
    assert lines[1] == "Next: nothing to do"
    numbered = {line.split(None, 1)[1] for line in lines if line[:3].strip().isdigit()}
    # whole, under the table; a snapshot names the interpreter it describes
    assert "attn-doctor install flash-attn-4 --python /opt/venv/bin/python3" in numbered
    # every ranked backend appears, and the table never folds attn_implementation values
    for value in ("flash_attention_4", "kernels-community/flash-attn2", "flex_attention"):
        assert any(value in line.split() for line in lines)


def test_verbose_keeps_the_details() -> None:
    short, _ = render("broken-flash-attn-undefined-symbol", 80)
    full, _ = render("broken-flash-attn-undefined-symbol", 80, verbose=True)
    assert len(full.splitlines()) > len(short.splitlines())
    assert "· torch.cxx11_abi = True" in full  # a finding's evidence
    assert "Backends" in full
    assert "Backends" not in short
    wheel = "flash_attn-2.8.3.post1+cu12torch2.8cxx11abiTRUE-cp311-cp311-linux_x86_64.whl"
    assert any(line.strip() == wheel for line in full.splitlines())  # whole, on its own line
