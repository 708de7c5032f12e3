"""``install BACKEND==VERSION`` and ``--requirement``: exactly that version, or a refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attn_doctor.cli import main
from attn_doctor.commands.install_plan import parse_target
from attn_doctor.errors import UsageError

SNAPSHOTS = Path(__file__).parent / "snapshots"
H100 = str(SNAPSHOTS / "h100-linux-recent-torch.json")  # torch 2.9.1+cu128, Python 3.12
H200 = str(SNAPSHOTS / "h200-real.json")  # torch 2.11.0 (CUDA 13.0), Python 3.12


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    with pytest.raises(SystemExit) as info:
        main([*args, "--json"])
    out, _ = capsys.readouterr()
    code = info.value.code
    assert isinstance(code, int)
    return code, json.loads(out)


def _plan(doc: dict[str, object]) -> dict[str, object]:
    result = doc["result"]
    assert isinstance(result, dict)
    plan = result["plan"]
    assert isinstance(plan, dict)
    return plan


@pytest.mark.parametrize(
    "args",
    [
        ["install", "flash-attn==2.8.3", "--snapshot", H100],
        ["install", "flash-attn", "--requirement", "flash-attn==2.8.3", "--snapshot", H100],
        ["install", "--requirement", "flash-attn==2.8.3", "--snapshot", H100],
    ],
    ids=["positional", "requirement", "requirement-alone"],
)
def test_pinned_version_is_planned_exactly(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = _run(args, capsys)
    assert code == 0
    cand = _plan(doc)["candidate"]
    assert isinstance(cand, dict)
    assert cand["version"] == "2.8.3"
    assert "flash_attn-2.8.3+" in str(cand["filename"])


def test_pinned_version_that_does_not_fit_is_refused_with_the_versions_that_do(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, doc = _run(["install", "xformers==0.0.30", "--snapshot", H100], capsys)
    assert code == 1  # a real release that does not fit here: found, not bad input
    error = doc["error"]
    assert isinstance(error, dict)
    assert "xformers==0.0.30" in error["message"]
    assert "requires torch==2.7.0" in error["message"]
    assert "Versions that fit here: 0.0.33.post2" in str(error["hint"])


@pytest.mark.parametrize(
    "target",
    ["xformers===!!bad", "xformers>=", "xformers==", "flash-attn==9.9.9", "xformers==0.0.1"],
)
def test_malformed_or_unknown_versions_exit_2_without_a_plan(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = _run(["install", target, "--snapshot", H100], capsys)
    assert code == 2
    assert doc["result"] is None or "plan" not in doc["result"]  # type: ignore[operator]
    error = doc["error"]
    assert isinstance(error, dict)
    assert "\n" not in error["message"]


def test_requirement_and_auto_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _run(
        ["install", "--auto", "--requirement", "xformers==0.0.30", "--snapshot", H100], capsys
    )
    assert code == 2
    assert "drop --auto" in str(doc["error"])


def test_requirement_must_name_the_same_backend(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["install", "xformers", "--requirement", "flash-attn==2.8.3", "--snapshot", H100]
    code, doc = _run(args, capsys)
    assert code == 2
    error = doc["error"]
    assert isinstance(error, dict)
    assert "is not a requirement on 'xformers'" in error["message"]


def test_h200_record_gets_the_cu130_xformers_not_the_package_index_cu128_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, doc = _run(["install", "xformers==0.0.35", "--snapshot", H200], capsys)
    assert code == 0
    cand = _plan(doc)["candidate"]
    assert isinstance(cand, dict)
    assert cand["source"] == "pytorch-index"
    assert str(cand["index_url"]).endswith("/cu130")
    # The plan's commands are what would run there: its interpreter, the one index.
    result = doc["result"]
    assert isinstance(result, dict)
    assert _plan(doc)["commands"] == result["commands"]
    (cmd,) = result["commands"]
    snapshot = json.loads(Path(H200).read_text(encoding="utf-8"))
    python = snapshot.get("environment", snapshot)["python"]["executable"]
    assert cmd.startswith(f"{python} -m pip install ")
    assert "--index-url https://download.pytorch.org/whl/cu130 xformers==0.0.35" in cmd
    assert "--extra-index-url" not in cmd


def test_parse_target() -> None:
    assert parse_target("flash-attn") == ("flash_attn_2", None, None)
    backend, versions, url = parse_target("xformers == 0.0.30")
    assert (backend, str(versions), url) == ("xformers", "==0.0.30", None)
    assert parse_target("flash-attn @ https://example.invalid/f.whl")[2] == (
        "https://example.invalid/f.whl"
    )
    for bad in ("xformers>=", "xformers[x]==1", "nothing==1.0"):
        with pytest.raises(UsageError):
            parse_target(bad)
