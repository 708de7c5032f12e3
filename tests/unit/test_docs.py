"""docs/add-a-backend.md names only paths that exist, and counts the files it lists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "add-a-backend.md"
_PATH = re.compile(r"`((?:attn_doctor|wheels_index|tests|scripts|docs)/[\w./-]+)`")


def _paths(text: str) -> list[str]:
    return _PATH.findall(text)


def test_every_path_the_doc_names_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    paths = _paths(text)
    assert paths, "the doc names no path"
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"docs/add-a-backend.md names paths that do not exist: {missing}"


def test_the_flashinfer_table_has_as_many_files_as_its_heading_says() -> None:
    text = DOC.read_text(encoding="utf-8")
    heading = re.search(
        r"^## FlashInfer was added this way: the (\d+) files it touched$", text, re.M
    )
    assert heading is not None
    table = text[heading.end() :].split("\n\n", 2)[1]
    first_cells = [row.split("|")[1] for row in table.splitlines()[2:] if row.startswith("|")]
    files = {p for cell in first_cells for p in _paths(cell)}
    assert len(files) == int(heading.group(1)), sorted(files)


def test_a_missing_path_is_caught() -> None:
    assert _paths("see `attn_doctor/verify/ops.py` and `attn_doctor/resolve.py`") == [
        "attn_doctor/verify/ops.py",
        "attn_doctor/resolve.py",
    ]
    assert not (ROOT / "attn_doctor/resolve.py").exists()
