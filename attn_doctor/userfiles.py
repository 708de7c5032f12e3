"""Reading the JSON files that a user or a crash leaves behind (snapshots, the install journal,
the caches), so that no content whatever can end in a traceback.

Every reader goes through ``load_json_bytes``: a size cap first (a 200 MB file is refused
before it is read), then UTF-8, then JSON (``json`` recurses once per nesting level: 100,000
``[`` end in ``RecursionError``, turned here into a clean error). Each failure is one
``ValueError`` subclass, ``UnreadableFile``, with a message that says what is wrong; callers
turn it into their own error type (a usage error naming the file, or "ignore the cache").
"""

from __future__ import annotations

import json
from pathlib import Path


class UnreadableFile(ValueError):
    """The file's bytes are not the JSON document they should be; the message says why."""


def load_json_bytes(data: bytes | str) -> object:
    """Decode ``data`` as one UTF-8 JSON document; ``UnreadableFile`` says what is wrong."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnreadableFile(
                f"not a text file (byte {exc.start} is not UTF-8); expected JSON"
            ) from None
    else:
        text = data
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise UnreadableFile(f"not valid JSON ({exc})") from None
    except RecursionError:  # the C scanner's own guard: clean, nothing half-built
        raise UnreadableFile("not a JSON document attn-doctor writes: nested too deeply") from None


def _refuse_constant(name: str) -> object:
    raise UnreadableFile(f"not valid JSON ({name} is not a JSON number)")


def read_json_file(path: Path, *, max_bytes: int) -> object:
    """Read ``path`` (at most ``max_bytes``) as JSON.

    Raises ``OSError`` when the file cannot be opened or read, and ``UnreadableFile`` when it
    is too large or not JSON. Never reads more than ``max_bytes + 1`` bytes.
    """
    with path.open("rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnreadableFile(
            f"larger than {_size(max_bytes)}, far more than a file of this kind holds"
        )
    return load_json_bytes(data)


def _size(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.0f} MiB"
    return f"{n / 1024:.0f} KiB"
