"""``attn-doctor explain`` end to end: argument, --log, stdin, --json, --snapshot, exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import attn_doctor.probe
from attn_doctor.cli import main
from attn_doctor.facts import Environment
from tests.explain_envs import gpu, make_env

DATA = Path(__file__).parent / "data" / "explain"
AMPERE = "RuntimeError: FlashAttention only supports Ampere GPUs or newer."


class _Stdin(io.StringIO):
    def __init__(self, text: str, *, tty: bool) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    code = exc.value.code
    assert isinstance(code, int)
    return code, out, err


@pytest.fixture(autouse=True)
def _no_tty_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read the real stdin; an empty terminal unless a test pipes text."""
    monkeypatch.setattr("sys.stdin", _Stdin("", tty=True))


@pytest.fixture
def probe_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(**_kwargs: object) -> Environment:
        raise NotImplementedError("probe layer: being written")

    monkeypatch.setattr(attn_doctor.probe, "probe_environment", fail)


@pytest.fixture
def snapshot_t4(tmp_path: Path) -> Path:
    path = tmp_path / "t4.json"
    path.write_text(make_env(gpus=(gpu("7.5", "Tesla T4"),)).to_json(), encoding="utf-8")
    return path


def test_argument_text_explained_with_probe_unavailable(
    capsys: pytest.CaptureFixture[str], probe_unavailable: None
) -> None:
    code, out, _ = _run(["explain", AMPERE], capsys)
    assert code == 0
    assert "FlashAttention only supports Ampere GPUs or newer" in out
    assert "could not confirm: facts unavailable" in out
    assert "https://github.com/Dao-AILab/flash-attention/issues/762" in out


def test_probe_crash_is_survived(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(**_kwargs: object) -> Environment:
        raise OSError("NVML exploded")

    monkeypatch.setattr(attn_doctor.probe, "probe_environment", boom)
    code, out, _ = _run(["explain", "--json", AMPERE], capsys)
    doc = json.loads(out)
    assert code == 0
    assert doc["result"]["facts_available"] is False
    assert "OSError: NVML exploded" in doc["result"]["facts_unavailable_reason"]


def test_log_file_is_scanned_line_by_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, snapshot_t4: Path
) -> None:
    log = tmp_path / "train.log"
    noise = "\n".join(f"step {i} loss 0.{i}" for i in range(2000))
    log.write_text(noise + "\n" + AMPERE + "\n" + noise, encoding="utf-8")
    code, out, _ = _run(["explain", "--log", str(log), "--snapshot", str(snapshot_t4)], capsys)
    assert code == 0
    assert "line 2001" in out
    assert "confirmed on this machine" in out
    assert "Tesla T4 (sm_75) is below sm_80" in out


def test_piped_stdin_is_read_when_not_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (DATA / "xformers-with-cpu-torch.txt").read_text(encoding="utf-8").partition("\n")[2]
    monkeypatch.setattr("sys.stdin", _Stdin(text, tty=False))
    code, out, _ = _run(["explain", "--no-probe", "--json"], capsys)
    doc = json.loads(out)
    assert code == 0
    assert doc["result"]["input"] == {"source": "stdin", "lines": 7, "truncated": False}
    ids = [e["match"]["symptom_id"] for e in doc["result"]["explanations"]]
    assert ids == ["xformers-with-cpu-torch"]


def test_json_envelope_with_snapshot_confirmation(
    capsys: pytest.CaptureFixture[str], snapshot_t4: Path
) -> None:
    code, out, err = _run(["explain", "--json", "--snapshot", str(snapshot_t4), AMPERE], capsys)
    assert code == 0
    doc = json.loads(out)
    assert err == ""
    assert (doc["schema"], doc["command"], doc["exit_code"], doc["ok"]) == (
        "attn-doctor/envelope", "explain", 0, True
    )
    res = doc["result"]
    assert res["matched"] is True
    assert res["facts_available"] is True
    assert res["snapshot"] == str(snapshot_t4)
    (exp,) = res["explanations"]
    assert exp["match"]["symptom_id"] == "flash-attn-needs-ampere"
    assert exp["confirmation"]["status"] == "confirmed"
    (check,) = exp["confirmation"]["checks"]
    assert check["evidence"] == [{"fact": "gpus[0].compute_capability", "value": "7.5"}]
    assert exp["verified"] is True
    assert any(f["fact"] == "torch.version" for f in res["key_facts"])


def test_unknown_text_exits_1_with_honest_answer(
    capsys: pytest.CaptureFixture[str], snapshot_t4: Path
) -> None:
    code, out, _ = _run(["explain", "--snapshot", str(snapshot_t4), "my cat sat on it"], capsys)
    assert code == 1
    assert "No known cause" in out
    assert "torch.version: 2.7.1+cu126" in out
    assert "gpus[0]: Tesla T4, compute capability 7.5" in out


def test_unknown_text_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["explain", "--json", "--no-probe", "my cat sat on it"], capsys)
    doc = json.loads(out)
    assert code == 1
    assert doc["ok"] is False
    assert doc["result"]["matched"] is False
    assert doc["result"]["explanations"] == []


def test_no_input_on_a_terminal_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["explain"], capsys)
    assert code == 2
    assert "nothing to explain" in err


def test_text_and_log_together_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "x.log"
    log.write_text(AMPERE, encoding="utf-8")
    code, out, _ = _run(["explain", "--json", "--log", str(log), AMPERE], capsys)
    assert code == 2
    assert json.loads(out)["error"]["code"] == "usage"


def test_missing_log_and_bad_snapshot_are_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _run(["explain", "--log", str(tmp_path / "nope.log")], capsys)
    assert code == 2
    assert "cannot read log" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    code, out, _ = _run(["explain", "--json", "--snapshot", str(bad), AMPERE], capsys)
    assert code == 2
    assert json.loads(out)["error"]["code"] == "bad-snapshot"


TRITON = "torch._inductor.exc.TritonMissing: Cannot find a working triton installation."


@pytest.mark.slow
def test_long_log_is_read_from_its_end_and_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("attn_doctor.commands.explain.MAX_INPUT_BYTES", 64 * 1024)
    log = tmp_path / "train.log"
    noise = "".join(f"step {i} loss 0.{i}\n" for i in range(20_000))
    log.write_text(AMPERE + "\n" + noise + TRITON + "\n", encoding="utf-8")
    size = log.stat().st_size
    code, out, _ = _run(["explain", "--no-probe", "--log", str(log)], capsys)
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith("Read only the last 0.1 MiB of this ")
    assert first.endswith("MiB log: causes earlier in it were not scanned.")
    assert "triton-missing" in out
    assert "flash-attn-needs-ampere" not in out  # it is in the part that was not read
    code, out, _ = _run(["explain", "--json", "--no-probe", "--log", str(log)], capsys)
    given = json.loads(out)["result"]["input"]
    assert given["truncated"] is True
    assert given["bytes_total"] == size
    assert 64 * 1024 - 100 < given["bytes_read"] < 64 * 1024  # from a line boundary
    assert given["lines"] < 20_000


def test_short_log_is_read_whole_and_says_nothing_about_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "build.log"
    log.write_text("noise\n" + AMPERE + "\n", encoding="utf-8")
    code, out, _ = _run(["explain", "--no-probe", "--log", str(log)], capsys)
    assert code == 0
    assert "Read only" not in out
    code, out, _ = _run(["explain", "--json", "--no-probe", "--log", str(log)], capsys)
    assert json.loads(out)["result"]["input"] == {"source": "log", "lines": 2, "truncated": False}


def test_piped_input_over_the_limit_keeps_its_end(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("attn_doctor.commands.explain.MAX_INPUT_BYTES", 32 * 1024)
    noise = "".join(f"it {i}\n" for i in range(30_000))
    monkeypatch.setattr("sys.stdin", _Stdin(AMPERE + "\n" + noise + TRITON + "\n", tty=False))
    code, out, _ = _run(["explain", "--json", "--no-probe"], capsys)
    res = json.loads(out)["result"]
    assert code == 0
    assert res["input"]["truncated"] is True
    assert res["input"]["source"] == "stdin"
    assert [e["match"]["symptom_id"] for e in res["explanations"]] == ["triton-missing"]


@pytest.mark.slow
def test_a_100_mib_log_keeps_working(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "huge.log"
    line = b"step 123456 loss 0.12345 lr 3e-4 grad_norm 0.456 tokens/s 12345\n"
    with log.open("wb") as fh:
        fh.write(AMPERE.encode() + b"\n")
        fh.write(line * (100 * 1024 * 1024 // len(line)))
        fh.write(TRITON.encode() + b"\n")
    code, out, _ = _run(["explain", "--json", "--no-probe", "--log", str(log)], capsys)
    res = json.loads(out)["result"]
    assert code == 0
    assert res["input"]["truncated"] is True
    assert res["input"]["bytes_total"] > 100 * 1000 * 1000
    assert res["input"]["bytes_read"] <= 32 * 1024 * 1024
    assert [e["match"]["symptom_id"] for e in res["explanations"]] == ["triton-missing"]


def test_a_control_message_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    text = (DATA / "controls" / "keyerror-data-collator.txt").read_text(encoding="utf-8")
    code, out, _ = _run(["explain", "--no-probe", text.partition("\n")[2]], capsys)
    assert code == 1
    assert "No known cause" in out
