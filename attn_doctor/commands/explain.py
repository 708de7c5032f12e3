"""``attn-doctor explain``: an error message or log in, its cause and this machine's fix out.

Input: the TEXT arguments, ``--log FILE``, or stdin when it is piped. The machine is probed
(``probe_environment``) to confirm each cause, or read from ``--snapshot FILE``; if the probe
fails the causes are still reported, marked "could not confirm: facts unavailable".

Exit codes: 0 a known cause matched, 1 no known cause matched, 2 bad input (no text, an
unreadable log or snapshot, a malformed knowledge base).
"""

from __future__ import annotations

import collections
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from attn_doctor.errors import ExitCode, UsageError
from attn_doctor.facts import Environment

if TYPE_CHECKING:
    from attn_doctor.explain.engine import ExplainResult

MAX_INPUT_BYTES = 32 * 1024 * 1024
"""Longer logs are cut (from the front: the end of a log is where a failure shows)."""


@dataclass(frozen=True, kw_only=True)
class InputText:
    """The text to explain, where it came from, and how much of it was read."""

    text: str
    source: str
    """``argument``, ``log`` or ``stdin``."""
    total_bytes: int
    """Size of the whole input in bytes (UTF-8 for arguments and stdin)."""
    read_bytes: int
    """Bytes actually read: less than ``total_bytes`` when only the last part was kept."""
    binary: bool = False
    """The bytes are not text (the command refuses them: "this is not text")."""

    @property
    def truncated(self) -> bool:
        return self.read_bytes < self.total_bytes

    def to_json(self, lines: int) -> dict[str, object]:
        out: dict[str, object] = {"source": self.source, "lines": lines}
        if self.truncated:
            out.update(truncated=True, bytes_total=self.total_bytes, bytes_read=self.read_bytes)
        else:
            out["truncated"] = False
        return out


def decode_input(data: bytes) -> tuple[str, bool]:
    """Bytes to text, and whether they are text at all.

    UTF-8 (with or without a BOM) and UTF-16 (what PowerShell's ``>`` writes, with a BOM or
    recognised by its zero bytes) are decoded; anything else that is not text (NUL bytes and
    control codes: a core file, a wheel) is still decoded with replacements, and flagged so
    that the command can say "this is not text" instead of scanning it line by line.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace"), False
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), False
    sample = data[:4096]
    if len(sample) >= 4 and sample.count(b"\x00") >= len(sample) // 4:
        # UTF-16 without a BOM: every other byte of ASCII text is zero.
        odd, even = sample[1::2].count(0), sample[0::2].count(0)
        half = len(sample) // 2
        if odd >= half * 0.9 or even >= half * 0.9:
            codec = "utf-16-le" if odd >= even else "utf-16-be"
            return data.decode(codec, errors="replace"), False
    return data.decode("utf-8", errors="replace"), is_binary(sample)


def is_binary(sample: bytes) -> bool:
    """NUL bytes, or many control codes besides tab/newline/carriage return/escape."""
    if b"\x00" in sample:
        return True
    control = sum(1 for b in sample if b < 32 and b not in (9, 10, 13, 27, 12, 8))
    return bool(sample) and control > len(sample) // 20


def _tail(data: bytes, total: int, source: str) -> InputText:
    """Keep the last ``MAX_INPUT_BYTES`` of ``data`` (already cut to at most that), starting
    at a line boundary when the front was dropped."""
    if len(data) < total:
        # Drop the partial first line, unless the window is (nearly) one line.
        cut = data.find(b"\n", 0, 1 << 20)
        if 0 <= cut < len(data) - 1:
            data = data[cut + 1 :]
    text, binary = decode_input(data)
    return InputText(
        text=text, source=source, total_bytes=total, read_bytes=len(data), binary=binary
    )


def read_input(text: tuple[str, ...], log: Path | None, stdin: TextIO) -> InputText:
    """The text to explain; a log longer than ``MAX_INPUT_BYTES`` is read from its end only."""
    if text and log is not None:
        raise UsageError("give the text as an argument or with --log, not both")
    if text == ("-",):
        return _read_stream(stdin)
    if text:
        joined = " ".join(text)
        size = len(joined.encode("utf-8", errors="replace"))
        return InputText(text=joined, source="argument", total_bytes=size, read_bytes=size)
    if log is not None:
        if str(log) == "-":
            return _read_stream(stdin)
        try:
            with log.open("rb") as fh:
                total = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, total - MAX_INPUT_BYTES))
                data = fh.read(MAX_INPUT_BYTES)
        except OSError as exc:
            raise UsageError(f"cannot read log {log}: {exc.strerror or exc}") from exc
        return _tail(data, total, "log")
    if not stdin.isatty():
        return _read_stream(stdin)
    raise UsageError(
        "nothing to explain",
        hint='pass the message: attn-doctor explain "TEXT", --log FILE, or pipe it on stdin',
    )


def _read_stream(stream: TextIO) -> InputText:
    """Read a stream to its end, keeping only its last ``MAX_INPUT_BYTES`` in memory."""
    buffer = getattr(stream, "buffer", None)
    chunks: collections.deque[bytes] = collections.deque()
    kept = total = 0
    while True:
        if buffer is not None:
            chunk = buffer.read(1 << 20)
        else:
            piece = stream.read(1 << 20)
            chunk = piece.encode("utf-8", errors="replace") if piece else b""
        if not chunk:
            break
        chunks.append(chunk)
        kept += len(chunk)
        total += len(chunk)
        while kept - len(chunks[0]) >= MAX_INPUT_BYTES:
            kept -= len(chunks.popleft())
    data = b"".join(chunks)
    return _tail(data[-MAX_INPUT_BYTES:], total, "stdin")


def read_note(given: InputText) -> str | None:
    """The sentence saying that only the end of a long input was read, or None."""
    if not given.truncated:
        return None
    return (
        f"Read only the last {_mib(given.read_bytes)} of this {_mib(given.total_bytes)} "
        f"{'log' if given.source == 'log' else 'input'}: causes earlier in it were not scanned."
    )


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def gather_facts(
    snapshot: Path | None, *, probe: bool, deep: bool
) -> tuple[Environment | None, str | None]:
    """The facts to confirm against, or None and the reason they are unavailable."""
    if snapshot is not None:
        from attn_doctor.snapshot import load_snapshot

        return load_snapshot(snapshot), None
    if not probe:
        return None, "--no-probe was given"
    try:
        from attn_doctor.probe import probe_environment

        return probe_environment(deep=deep), None
    except NotImplementedError as exc:
        return None, f"the probe is not available in this build ({exc})"
    except Exception as exc:  # the doctor must survive a broken machine; say why, go on
        return None, f"probing this machine failed: {type(exc).__name__}: {exc}"


def explain_json(
    result: ExplainResult, *, given: InputText, snapshot: Path | None
) -> dict[str, object]:
    """The ``result`` member of the ``--json`` envelope (documented in docs/explain.md)."""
    from attn_doctor.facts import encode

    return {
        "input": given.to_json(result.lines),
        "matched": result.matched,
        "explanations": encode(result.explanations),
        "facts_available": result.facts_available,
        "facts_unavailable_reason": result.facts_unavailable_reason,
        "key_facts": encode(result.key_facts),
        "message_facts": encode(result.message_facts),
        "rejected": encode(result.rejected),
        "snapshot": None if snapshot is None else str(snapshot),
    }


@click.command("explain", context_settings={"ignore_unknown_options": True})
@click.argument("text", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    help="Read the message or log from FILE ('-' for stdin).",
)
@click.option("--json", "json_mode", is_flag=True, help="Print one versioned JSON document.")
@click.option(
    "--snapshot",
    "snapshot_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Confirm causes against the machine recorded in this snapshot.",
)
@click.option("--no-probe", is_flag=True, help="Do not read this machine; only match the text.")
@click.option("--deep", is_flag=True, help="Probe with child-process imports (slower).")
def explain_command(
    *,
    text: tuple[str, ...],
    log_path: Path | None,
    json_mode: bool,
    snapshot_path: Path | None,
    no_probe: bool,
    deep: bool,
) -> None:
    """Explain an error message or log: its known cause, confirmed here, and the fix.

    \b
    attn-doctor explain "ImportError: ... undefined symbol: _ZN3c10..."
    attn-doctor explain --log build.log
    python train.py 2>&1 | attn-doctor explain -
    attn-doctor explain -- "--- text that starts with dashes"

    Exit codes: 0 a known cause matched, 1 no known cause matched, 2 bad input.
    """
    from attn_doctor.explain import explain_text, load_symptoms
    from attn_doctor.report.envelope import make_envelope, write_envelope

    given = read_input(text, log_path, sys.stdin)
    if given.binary:
        raise UsageError(
            "this is not text (binary data)",
            hint="give the error message, a traceback or a text log",
        )
    message = given.text
    if not message.strip():
        raise UsageError("the text to explain is empty")
    kb = load_symptoms()
    env, why = gather_facts(snapshot_path, probe=not no_probe, deep=deep)
    result = explain_text(message, env, kb=kb, facts_reason=why)
    code = ExitCode.OK if result.matched else ExitCode.PROBLEMS
    if json_mode:
        write_envelope(
            make_envelope(
                "explain",
                result=explain_json(result, given=given, snapshot=snapshot_path),
                exit_code=code,
            )
        )
    else:
        from attn_doctor.report.explain_view import render_explain

        render_explain(result, snapshot=snapshot_path, read_note=read_note(given))
    sys.exit(int(code))
