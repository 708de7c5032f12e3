"""The shipped JSON Schemas match the code and validate real documents."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from attn_doctor.schema import SCHEMAS

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "attn_doctor" / "schemas"


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_shipped_schema_is_current(name: str) -> None:
    shipped = json.loads((SCHEMA_DIR / name).read_text())
    assert shipped == SCHEMAS[name](), f"run: python scripts/gen_schema.py ({name} is stale)"
    jsonschema.Draft202012Validator.check_schema(shipped)


def test_snapshots_validate_against_snapshot_schema() -> None:
    schema = json.loads((SCHEMA_DIR / "snapshot.schema.json").read_text())
    snapshots = sorted((Path(__file__).parent / "snapshots").glob("*.json"))
    for path in snapshots:
        jsonschema.validate(json.loads(path.read_text()), schema)
