"""The versioned JSON envelope every ``--json`` command prints, and nothing else.

Shape (documented in README.md, schema in ``attn_doctor/schemas/envelope.schema.json``)::

    {"schema": "attn-doctor/envelope", "schema_version": 1, "command": "check",
     "attn_doctor_version": "0.1.0", "ok": true, "exit_code": 0,
     "result": {...command specific...} | null,
     "error": null | {"code": "bad-snapshot", "message": "...", "hint": "..." | null}}
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from attn_doctor._version import __version__
from attn_doctor.errors import AttnDoctorError, ExitCode
from attn_doctor.facts import encode

ENVELOPE_SCHEMA_VERSION = 1


def make_envelope(
    command: str,
    *,
    result: object = None,
    exit_code: ExitCode = ExitCode.OK,
    error: AttnDoctorError | None = None,
) -> dict[str, Any]:
    """Build the envelope dict; ``result`` may be a fact dataclass or plain JSON data."""
    return {
        "schema": "attn-doctor/envelope",
        "schema_version": ENVELOPE_SCHEMA_VERSION,
        "command": command,
        "attn_doctor_version": __version__,
        "ok": exit_code == ExitCode.OK,
        "exit_code": int(exit_code),
        "result": encode(result),
        "error": None
        if error is None
        else {"code": error.code, "message": error.message, "hint": error.hint},
    }


def write_envelope(envelope: dict[str, Any], stream: TextIO | None = None) -> None:
    """Print the envelope as one sorted JSON document."""
    out = stream if stream is not None else sys.stdout
    out.write(json.dumps(envelope, indent=2, sort_keys=True))
    out.write("\n")
    out.flush()
