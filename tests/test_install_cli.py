"""``attn-doctor install`` argument handling and plan display (nothing is installed here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from attn_doctor.cli import main


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    code = info.value.code
    assert isinstance(code, int)
    return code, out, err


@pytest.mark.parametrize(
    "args",
    [["install"], ["install", "xformers", "--auto"], ["install", "xformers", "--rollback"]],
    ids=["nothing", "both", "rollback-with-backend"],
)
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run([*args, "--json"], capsys)
    assert code == 2
    assert json.loads(out)["error"]["code"] == "usage"


def test_torch_internal_backends_need_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["install", "sdpa", "--json"], capsys)
    assert code == 0
    assert "comes with torch" in json.loads(out)["result"]["note"]


@pytest.mark.functional
def test_dry_run_shows_the_pins_of_the_target_interpreter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pins come from the interpreter named by --python (here: the test's own)."""
    from importlib.metadata import version

    torch_version = version("torch")
    args = ["install", "flash-attn", "--requirement", "flash-attn==2.8.3", "--python",
            sys.executable, "--wheelhouse", str(tmp_path), "--dry-run", "--json"]  # fmt: skip
    code, out, _ = _run(args, capsys)
    assert code == 0
    result = json.loads(out)["result"]
    assert result["dry_run"] is True
    assert f"torch=={torch_version}" in result["constraints"]
    (cmd,) = result["commands"]
    assert cmd.startswith(f"{sys.executable} -m pip install ")
    assert f"--no-index --find-links {tmp_path} flash-attn==2.8.3 -c " in cmd
    # The constraints file the command names was written, and holds the pins.
    written = Path(cmd.rsplit(" -c ", 1)[1])
    assert str(written) == result["constraints_file"]
    assert written.read_text(encoding="utf-8").splitlines() == result["constraints"]


@pytest.mark.functional
def test_source_policy_is_enforced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["install", "flash-attn", "--python", sys.executable, "--wheelhouse", str(tmp_path),
            "--source", "community", "--dry-run", "--json"]  # fmt: skip
    code, out, _ = _run(args, capsys)
    assert code == 2
    assert "--source official" in json.loads(out)["error"]["hint"]


SNAPSHOTS = Path(__file__).parent / "snapshots"


def test_auto_on_a_t4_needs_nothing_and_xformers_installs_without_touching_torch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    snap = str(SNAPSHOTS / "t4-colab.json")
    code, out, _ = _run(["install", "--auto", "--snapshot", snap, "--json"], capsys)
    assert code == 0
    # SDPA's memory-efficient kernel is the CUTLASS kernel xformers would run on sm75.
    note = json.loads(out)["result"]["note"]
    assert "nothing to install" in note
    assert "memory-efficient kernel" in note
    code, out, _ = _run(["install", "xformers", "--snapshot", snap, "--json"], capsys)
    assert code == 0
    plan = json.loads(out)["result"]["plan"]
    assert plan["backend"] == "xformers"  # flash-attn 2 cannot run on sm75
    assert "torch==2.8.0+cu126" in plan["protected"]
    assert plan["candidate"]["index_url"].endswith("/cu126")


def test_auto_when_the_best_is_already_usable(capsys: pytest.CaptureFixture[str]) -> None:
    snap = str(SNAPSHOTS / "a100-linux.json")
    code, out, _ = _run(["install", "--auto", "--snapshot", snap, "--json"], capsys)
    assert code == 0
    note = json.loads(out)["result"]["note"]
    assert "nothing to install" in note
    assert "flash-attn 2" in note  # installed and usable: preferred over SDPA's same kernel


def test_auto_on_a_cpu_laptop_has_nothing_to_install(capsys: pytest.CaptureFixture[str]) -> None:
    snap = str(SNAPSHOTS / "cpu-only-laptop.json")
    code, out, _ = _run(["install", "--auto", "--snapshot", snap, "--json"], capsys)
    assert code == 0
    assert "built into torch" in json.loads(out)["result"]["note"]


def test_official_only_names_the_ways_out(capsys: pytest.CaptureFixture[str]) -> None:
    # torch 2.9 has no upstream flash-attn wheel: refuse, and say what would work instead.
    snap = str(SNAPSHOTS / "h100-linux-recent-torch.json")
    args = ["install", "flash-attn", "--snapshot", snap, "--source", "official", "--json"]
    code, out, _ = _run(args, capsys)
    assert code == 1  # a fact about this machine, not bad input
    error = json.loads(out)["error"]
    assert error["code"] == "no-way-to-install"
    assert "no wheel for torch 2.9" in error["message"]
    assert "community build exists" in error["hint"]
