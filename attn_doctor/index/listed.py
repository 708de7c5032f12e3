"""``listed_wheels.toml``: the wheels that ``attn-doctor index update`` found listed by GitHub
release pages and PEP 503 / ``--find-links`` pages, validated like every other index file.

The bundled copy lists none; the overlay in the user's cache lists what the sources served on
the day of the update, each wheel with the torch it fits (its METADATA's ``Requires-Dist:
torch``, or for release assets whose METADATA does not pin torch, the project's naming rule),
its sha256 where the source publishes one, and the trust of the source that listed it.
"""

from __future__ import annotations

import re

from attn_doctor.datafiles import Entry
from attn_doctor.errors import IndexDataError
from attn_doctor.index.naming import parse_wheel_filename
from attn_doctor.index.records import ListedWheel

FILE = "listed_wheels.toml"
PACKAGES = ("flash_attn", "flash_attn_3", "sageattention", "xformers")
TRUSTS = ("official", "community", "third-party index")


def listed_wheels(top: Entry) -> tuple[ListedWheel, ...]:
    out = []
    for i, e in enumerate(top.tables("wheel", [])):
        e.where = f"{top.where}: wheel[{i}]" + (
            f" ({e.data.get('filename')})" if isinstance(e.data, dict) else ""
        )
        filename = e.text("filename")
        try:
            name, version, _, _, _ = parse_wheel_filename(filename)
        except ValueError as exc:
            raise IndexDataError(f"{e.where}.filename: {exc}") from None
        package = e.text("package")
        if package not in PACKAGES or name.lower() != package:
            raise IndexDataError(f"{e.where}.package: {package!r} does not name {filename!r}")
        trust = e.text("trust")
        if trust not in TRUSTS:
            raise IndexDataError(f"{e.where}.trust: {trust!r} is not one of {', '.join(TRUSTS)}")
        torch_from = e.text("torch_from")
        if torch_from not in ("metadata", "filename"):
            raise IndexDataError(f"{e.where}.torch_from: expected metadata|filename")
        requires = e.text("requires_torch")
        if requires:
            e.requirement("requires_torch", f"torch{requires}")
        sha = e.text("sha256", "")
        if sha and not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise IndexDataError(f"{e.where}.sha256: {sha!r} is not a sha256 hex digest")
        if e.version("version") != version:
            raise IndexDataError(f"{e.where}.version: does not match {filename!r}")
        out.append(
            ListedWheel(
                package=package,
                version=version,
                filename=filename,
                url=e.text("url", pattern=r"https?://\S+"),
                sha256=sha or None,
                requires_torch=requires,
                torch_from="metadata" if torch_from == "metadata" else "filename",
                listed_by=e.text("listed_by"),
                trust="official"
                if trust == "official"
                else "community"
                if trust == "community"
                else "third-party index",
                source=e.text("source"),
                verified=e.flag("verified"),
            )
        )
    return tuple(out)
