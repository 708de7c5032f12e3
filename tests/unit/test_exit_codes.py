"""One exit-code table: every command's error paths end in a code of ``errors.ExitCode``, the
JSON envelope carries the same code, and ``--help`` and the README list every code."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from attn_doctor import cli
from attn_doctor.errors import EXIT_CODE_SUMMARY, SUMMARY_WORDS, ExitCode
from tests.conftest import REPO_ROOT, SNAPSHOTS


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        cli.main(args)
    out, err = capsys.readouterr()
    code = info.value.code
    assert isinstance(code, int)
    return code, out, err


def _bad(tmp_path: Path) -> Path:
    path = tmp_path / "bad.json"
    path.write_text('{"schema_version": 1, "host": ')
    return path


# (arguments, the code the table says) for each command's error paths.
Case = tuple[Callable[[Path], list[str]], ExitCode]
CASES: dict[str, Case] = {
    "no-such-command": (lambda t: ["no-such-command"], ExitCode.USAGE),
    "bad-option": (lambda t: ["--no-such-option"], ExitCode.USAGE),
    "check-bad-option": (lambda t: ["check", "--no-such-option"], ExitCode.USAGE),
    "check-bad-snapshot": (lambda t: ["check", "--snapshot", str(_bad(t))], ExitCode.USAGE),
    "check-missing-snapshot": (
        lambda t: ["check", "--snapshot", str(t / "none.json")],
        ExitCode.USAGE,
    ),
    "check-deep-with-snapshot": (
        lambda t: ["check", "--deep", "--snapshot", str(SNAPSHOTS / "h200-real.json")],
        ExitCode.USAGE,
    ),
    "check-problems": (
        lambda t: ["check", "--snapshot", str(SNAPSHOTS / "driver-too-old.json")],
        ExitCode.PROBLEMS,
    ),
    "check-ok": (lambda t: ["check", "--snapshot", str(SNAPSHOTS / "h200-real.json")], ExitCode.OK),
    "explain-bad-snapshot": (
        lambda t: ["explain", "--snapshot", str(_bad(t)), "No module named 'flash_attn'"],
        ExitCode.USAGE,
    ),
    "explain-no-known-cause": (lambda t: ["explain", "zzzz qqqq"], ExitCode.PROBLEMS),
    "install-unknown-backend": (
        lambda t: [
            "install",
            "flash-atn",
            "--dry-run",
            "--snapshot",
            str(SNAPSHOTS / "h200-real.json"),
        ],
        ExitCode.USAGE,
    ),
    "install-bad-snapshot": (
        lambda t: ["install", "xformers", "--dry-run", "--snapshot", str(_bad(t))],
        ExitCode.USAGE,
    ),
    "download-bad-snapshot": (
        lambda t: ["download", "xformers", "--snapshot", str(_bad(t))],
        ExitCode.USAGE,
    ),
    "verify-unknown-backend": (lambda t: ["verify", "xformer"], ExitCode.USAGE),
    "bench-unknown-backend": (lambda t: ["bench", "flash-atn"], ExitCode.USAGE),
    "fleet-missing": (lambda t: ["fleet", str(t / "none")], ExitCode.USAGE),
    "fleet-only-bad": (lambda t: ["fleet", str(_bad(t))], ExitCode.USAGE),
    "fleet-one-bad": (
        lambda t: ["fleet", str(_bad(t)), str(SNAPSHOTS / "h200-real.json")],
        ExitCode.INCOMPLETE,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("json_mode", [False, True], ids=["human", "json"])
def test_every_error_path_ends_in_its_table_code(
    case: str, json_mode: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, expected = CASES[case]
    args = make(tmp_path) + (["--json"] if json_mode else [])
    code, out, err = _run(args, capsys)
    assert code in set(ExitCode)
    assert code == expected, (out, err)
    assert "Traceback" not in err
    if json_mode and case not in ("no-such-command", "bad-option"):
        doc = json.loads(out)  # stdout holds the envelope and nothing else
        assert doc["exit_code"] == code
        assert doc["ok"] == (code == ExitCode.OK)
    if code == ExitCode.USAGE and not json_mode:
        assert err.startswith("attn-doctor: error: ")


def test_a_bug_is_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(*args: object, **kwargs: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr("attn_doctor.commands.check.load_snapshot", boom)
    code, _, err = _run(["check", "--snapshot", str(SNAPSHOTS / "h200-real.json")], capsys)
    assert code == ExitCode.INTERNAL
    assert "internal error" in err


def test_ctrl_c_is_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupt(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr("attn_doctor.commands.check.load_snapshot", interrupt)
    code, _, err = _run(["check", "--snapshot", str(SNAPSHOTS / "h200-real.json")], capsys)
    assert code == ExitCode.INTERRUPTED
    assert "interrupted" in err


def test_help_and_readme_list_every_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert set(SUMMARY_WORDS) == set(ExitCode)
    code, out, _ = _run(["--help"], capsys)
    assert code == ExitCode.OK
    flat = " ".join(out.split())
    assert " ".join(EXIT_CODE_SUMMARY.split()) in flat
    for exit_code in ExitCode:
        assert re.search(rf"\b{int(exit_code)} {SUMMARY_WORDS[exit_code].split()[0]}", flat)
    readme = (REPO_ROOT / "README.md").read_text()
    table = readme[readme.index("## Exit codes") :]
    listed = {int(m) for m in re.findall(r"^\| (\d+) \|", table, flags=re.MULTILINE)}
    assert listed == {int(c) for c in ExitCode}
