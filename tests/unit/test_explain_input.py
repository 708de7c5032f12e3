"""explain's input: text starting with '-', 'explain -', UTF-16/BOM logs, binary input, and
the facts-only answer for a message no class or phrase knows (in-process, no probe)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from attn_doctor.cli import main
from attn_doctor.commands.explain import decode_input


class _Stdin(io.StringIO):
    def __init__(self, text: str, *, tty: bool) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.fixture(autouse=True)
def _terminal_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", _Stdin("", tty=True))


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    assert isinstance(exc.value.code, int)
    return exc.value.code, out, err


@pytest.mark.parametrize("text", ["----", "-x is not an option", "--- separator line ---"])
def test_text_starting_with_a_dash_is_text(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["explain", "--no-probe", text], capsys)
    assert code == 1  # read and explained (no known cause), not a usage error (2)
    assert "No known cause" in out


def test_a_known_message_after_dashes_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        [
            "explain",
            "--no-probe",
            "--- RuntimeError: FlashAttention only supports Ampere GPUs or newer.",
        ],
        capsys,
    )
    assert code == 0
    assert "Ampere" in out


def test_explain_dash_reads_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "sys.stdin", _Stdin("ImportError: libcuda.so.1: cannot open shared object file\n", tty=True)
    )
    code, out, _ = _run(["explain", "--no-probe", "--json", "-"], capsys)
    doc = json.loads(out)
    assert code == 0
    assert doc["result"]["input"]["source"] == "stdin"
    assert doc["result"]["explanations"][0]["match"]["symptom_id"] == "libcuda-not-found"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-8-sig"])
def test_utf16_and_bom_logs_are_decoded(
    encoding: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "out.log"
    log.write_bytes(
        "Traceback:\r\nImportError: libcuda.so.1: cannot open shared object file\r\n".encode(
            encoding
        )
    )
    code, out, _ = _run(["explain", "--no-probe", "--json", "--log", str(log)], capsys)
    assert code == 0
    assert json.loads(out)["result"]["input"]["lines"] == 2


def test_binary_input_is_not_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "core"
    log.write_bytes(bytes(range(256)) * 8)
    code, _, err = _run(["explain", "--no-probe", "--log", str(log)], capsys)
    assert code == 2
    assert "this is not text" in err


def test_decode_input_directly() -> None:
    assert decode_input("é\n".encode("utf-8-sig")) == ("é\n", False)
    assert decode_input("ok\n".encode("utf-16")) == ("ok\n", False)
    text, binary = decode_input(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x03\x00>\x00")
    assert binary
    assert isinstance(text, str)


def test_unknown_message_prints_its_facts_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _run(
        [
            "explain",
            "--no-probe",
            "RuntimeError: something odd in flash_attn 2.7.4 on RTX 5090 with torch 2.6.0+cu124",
        ],
        capsys,
    )
    assert code == 1
    assert "No known cause" in out
    assert "What the message shows" in out
    assert "package torch: 2.6.0+cu124" in out
    assert "architecture: sm_120" in out
    assert "facts of this machine unavailable" in out


def test_unknown_message_facts_are_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["explain", "--no-probe", "--json", "weird failure on a Tesla T4"], capsys)
    result = json.loads(out)["result"]
    assert code == 1
    assert {"fact": "architecture", "value": "sm_75"} in result["message_facts"]
