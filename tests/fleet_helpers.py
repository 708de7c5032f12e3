"""Made-up clusters: copies of a recorded snapshot, each node with its own identity, and one
or more nodes changed the way real clusters drift (another driver, flash-attn build, import)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conftest import SNAPSHOTS

Doc = dict[str, Any]


def snapshot(name: str) -> Doc:
    data: Doc = json.loads((SNAPSHOTS / f"{name}.json").read_text())
    return data


def node_copy(base: Doc, number: int) -> Doc:
    """``base`` as node ``number``: its own GPU UUIDs, bus ids and time, nothing else changed."""
    doc: Doc = json.loads(json.dumps(base))
    doc["created_at"] = f"2026-11-29T10:{number % 60:02d}:00Z"
    for gpu in doc["gpus"]:
        gpu["uuid"] = f"GPU-{number:08d}-{gpu['index']:04d}"
        gpu["pci_bus_id"] = f"00000000:{number % 256:02X}:00.0"
    return doc


def write_cluster(
    folder: Path,
    base: str,
    count: int,
    changes: dict[int, Callable[[Doc], None]] | None = None,
) -> list[Path]:
    """``count`` files ``node01.json``…, copies of ``base``; ``changes[n]`` edits node n."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(1, count + 1):
        doc = node_copy(snapshot(base), n)
        if changes and n in changes:
            changes[n](doc)
        path = folder / f"node{n:02d}.json"
        path.write_text(json.dumps(doc, indent=2))
        paths.append(path)
    return paths


def old_driver(doc: Doc) -> None:
    doc["driver"]["version"] = "470.256.02"
    doc["driver"]["cuda_version"] = "11.4"


def other_flash_attn(doc: Doc) -> None:
    for pkg in doc["packages"]:
        if pkg["name"] == "flash-attn":
            pkg["version"] = "2.7.3"


def broken_flash_attn_import(doc: Doc) -> None:
    for res in doc["imports"]:
        if res["module"] == "flash_attn":
            res["status"] = "error"
            res["detail"] = (
                "ImportError: flash_attn_2_cuda.cpython-311-x86_64-linux-gnu.so: undefined "
                "symbol: _ZN3c105ErrorC2ENS_14SourceLocationENSt7__cxx1112basic_stringIcSt11"
                "char_traitsIcESaIcEEE"
            )
