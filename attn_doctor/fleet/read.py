"""Read nodes from files, folders and stdin: snapshots or ``check --json`` documents.

Accepted, per node: a snapshot (``check --save-snapshot FILE``, an ``Environment``) or the
envelope that ``attn-doctor check --json`` prints. A file holds one JSON document, or one
document per line (JSON Lines); so does stdin. A folder means every ``*.json`` and ``*.jsonl``
file directly in it.

``read_inputs`` reads everything it can: each bad input (unreadable, binary, too large, not
JSON, truncated, neither a snapshot nor a check document) becomes an ``UnreadableInput``
naming the file (and the line) and what is wrong, and the other inputs are still read.
``read_paths`` is the strict form: the first bad input is a ``SnapshotError`` (exit 2).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from attn_doctor.diagnosis import Diagnosis
from attn_doctor.errors import SnapshotError
from attn_doctor.facts import Environment, decode
from attn_doctor.fleet.types import NodeInput, UnreadableInput

MAX_INPUT_BYTES = 64 * 1024 * 1024
"""Largest file (or stdin) read: a snapshot is a few kB to a few hundred kB; anything this big
is not one, and reading it whole would only exhaust memory."""

ENVELOPE_SCHEMA = "attn-doctor/envelope"
SUFFIXES = (".json", ".jsonl")


def parse_document(data: object, *, name: str, source: str) -> NodeInput:
    """One decoded JSON document as a node; ``SnapshotError`` naming ``source`` if it is not
    a snapshot or a ``check --json`` document."""
    if not isinstance(data, dict):
        raise SnapshotError(f"{source}: expected a JSON object, not {type(data).__name__}")
    if data.get("schema") != ENVELOPE_SCHEMA:
        if "host" not in data or "schema_version" not in data:
            raise SnapshotError(
                f"{source}: neither an attn-doctor snapshot nor a `check --json` document",
                hint="Make them with: attn-doctor check --json (or --save-snapshot FILE)",
            )
        try:
            return NodeInput(name=name, source=source, environment=Environment.from_dict(data))
        except SnapshotError as exc:
            raise SnapshotError(f"{source}: {exc.message}", hint=exc.hint) from exc
    return _parse_envelope(data, name=name, source=source)


def _parse_envelope(data: dict[str, object], *, name: str, source: str) -> NodeInput:
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version != 1:
        raise SnapshotError(
            f"{source}: envelope schema_version {version!r} is not one this attn-doctor reads (1)"
        )
    if data.get("command") != "check":
        raise SnapshotError(
            f"{source}: a `{data.get('command')}` document, not `check --json`",
            hint="fleet reads snapshots and the output of attn-doctor check --json",
        )
    result = data.get("result")
    error = data.get("error")
    if result is None:
        message = error.get("message") if isinstance(error, dict) else None
        return NodeInput(name=name, source=source, failure=f"check failed: {message or error}")
    if not isinstance(result, dict) or "environment" not in result:
        raise SnapshotError(f"{source}: the check document has no result.environment")
    try:
        env = Environment.from_dict(result["environment"])
    except SnapshotError as exc:
        raise SnapshotError(f"{source}: result.environment: {exc.message}", hint=exc.hint) from exc
    diagnosis: Diagnosis | None = None
    try:
        diagnosis = decode(Diagnosis, result.get("diagnosis"), "result.diagnosis")
    except SnapshotError:
        # Another attn-doctor version wrote it (a backend name this one does not know):
        # the facts still hold, and they are diagnosed here instead.
        diagnosis = None
    return NodeInput(name=name, source=source, environment=env, diagnosis=diagnosis)


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise SnapshotError(
                f"{path}: {size} bytes is too large for a snapshot "
                f"(limit {MAX_INPUT_BYTES // 2**20} MiB)"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise SnapshotError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return _decode_bytes(raw, str(path))


def _decode_bytes(raw: bytes, source: str) -> str:
    if b"\x00" in raw:
        raise SnapshotError(f"{source}: a binary file, not a JSON snapshot")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SnapshotError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def json_error(exc: json.JSONDecodeError, text: str) -> str:
    """Where the document stops being JSON; a document that simply ends early is truncated."""
    rest = text[exc.pos :]
    cut = exc.pos >= len(text.rstrip()) or (
        exc.msg.startswith("Unterminated string") and "\n" not in rest
    )
    if cut:
        return (
            f"truncated: the JSON document ends at line {exc.lineno} before it is complete "
            "(a copy or a write that was cut short?)"
        )
    return f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


def parse_text_lenient(
    text: str, *, name: str, source: str
) -> tuple[list[NodeInput], list[UnreadableInput]]:
    """A file's (or stdin's) text: one JSON document, or one per line (JSON Lines). Each
    document that is not a node is an ``UnreadableInput``; the others are still read."""
    stripped = text.strip()
    if not stripped:
        return [], [UnreadableInput(source=source, error="empty, not a JSON snapshot")]
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError as whole_error:
        lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        if len(lines) < 2 or not _is_document(lines[0][1]):
            # One document (pretty-printed JSON spans many lines): say where it breaks.
            return [], [UnreadableInput(source=source, error=json_error(whole_error, stripped))]
    else:
        return _one(data, name=name, source=source)
    nodes: list[NodeInput] = []
    bad: list[UnreadableInput] = []
    for number, line in lines:
        where = f"{source}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(UnreadableInput(source=where, error=json_error(exc, line.strip())))
            continue
        more, errors = _one(data, name=f"{name}:{number}", source=where)
        nodes += more
        bad += errors
    return nodes, bad


def _is_document(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _one(data: object, *, name: str, source: str) -> tuple[list[NodeInput], list[UnreadableInput]]:
    try:
        return [parse_document(data, name=name, source=source)], []
    except SnapshotError as exc:
        return [], [_unreadable(source, exc)]


def _unreadable(source: str, exc: SnapshotError) -> UnreadableInput:
    """The error without the source it starts with (the entry names the source)."""
    message = exc.message
    if message.startswith(f"{source}: "):
        message = message[len(source) + 2 :]
    elif message.startswith(f"cannot read {source}: "):
        message = "cannot read it: " + message[len(source) + 13 :]
    return UnreadableInput(source=source, error=message)


def parse_text(text: str, *, name: str, source: str) -> list[NodeInput]:
    """``parse_text_lenient``, strict: the first bad document is a ``SnapshotError``."""
    nodes, bad = parse_text_lenient(text, name=name, source=source)
    if bad:
        raise SnapshotError(f"{bad[0].source}: {bad[0].error}")
    return nodes


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, folders as their ``*.json``/``*.jsonl`` files (sorted, hidden skipped)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.iterdir()
                if p.suffix in SUFFIXES and not p.name.startswith(".") and p.is_file()
            )
            if not found:
                raise SnapshotError(f"{path}: no .json or .jsonl files in this folder")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise SnapshotError(f"{path}: no such file or folder")
    return files


def _node_names(files: list[Path]) -> list[str]:
    """File names without the suffix; the path where two files share a name."""
    stems = [p.stem for p in files]
    counts = Counter(stems)
    return [stem if counts[stem] == 1 else str(p) for stem, p in zip(stems, files, strict=True)]


def read_paths(paths: Iterable[Path]) -> Iterator[NodeInput]:
    """Every node in these files and folders, in order; the first bad input raises."""
    files = expand_paths(paths)
    for path, name in zip(files, _node_names(files), strict=True):
        yield from parse_text(_read_text(path), name=name, source=str(path))


def read_inputs(
    paths: Iterable[Path], stdin: IO[bytes] | None = None
) -> tuple[list[NodeInput], list[UnreadableInput]]:
    """Every node that can be read from ``stdin`` (when given) and these files and folders,
    and each input that cannot, with what is wrong with it."""
    nodes: list[NodeInput] = []
    bad: list[UnreadableInput] = []
    if stdin is not None:
        try:
            more, errors = _stream_lenient(stdin, source="stdin")
        except SnapshotError as exc:
            more, errors = [], [_unreadable("stdin", exc)]
        nodes += more
        bad += errors
    files: list[Path] = []
    for path in paths:
        try:
            files += expand_paths([path])
        except SnapshotError as exc:
            bad.append(_unreadable(str(path), exc))
    for path, name in zip(files, _node_names(files), strict=True):
        try:
            text = _read_text(path)
        except SnapshotError as exc:
            bad.append(_unreadable(str(path), exc))
            continue
        more, errors = parse_text_lenient(text, name=name, source=str(path))
        nodes += more
        bad += errors
    return nodes, bad


def _stream_lenient(
    stream: IO[bytes], *, source: str
) -> tuple[list[NodeInput], list[UnreadableInput]]:
    raw = stream.read(MAX_INPUT_BYTES + 1)
    if len(raw) > MAX_INPUT_BYTES:
        raise SnapshotError(f"{source}: more than {MAX_INPUT_BYTES // 2**20} MiB of input")
    return parse_text_lenient(_decode_bytes(raw, source), name=source, source=source)


def read_stream(stream: IO[bytes], *, source: str = "stdin") -> list[NodeInput]:
    """Nodes from a stream (stdin): one JSON document, or one per line."""
    raw = stream.read(MAX_INPUT_BYTES + 1)
    if len(raw) > MAX_INPUT_BYTES:
        raise SnapshotError(f"{source}: more than {MAX_INPUT_BYTES // 2**20} MiB of input")
    return parse_text(_decode_bytes(raw, source), name=source, source=source)
